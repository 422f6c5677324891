package etcd

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/trunkd/trunkd/store/record"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// DefaultPrefix is where trunkd's keys live unless Config.Prefix says.
const DefaultPrefix = "/trunkd/v1/"

// marker says the prefix is trunkd's.
const marker = "trunkd trunk store"

// Config says how to reach the cluster.
type Config struct {
	Endpoints []string    // host:port of members (client URLs)
	TLS       *tls.Config // nil: plain TCP
	Username  string
	Password  string
	Prefix    string        // DefaultPrefix when empty
	Timeout   time.Duration // one request, and the start-up check; 5s
	Now       func() time.Time
}

// Store is the trunk store on etcd. It satisfies control.Store and
// control.Feed.
type Store struct {
	cli     *clientv3.Client
	codec   *record.Codec
	prefix  string
	timeout time.Duration
	now     func() time.Time

	// seen is the revision and created_at of each record last read or
	// written here: an update guards on it instead of reading first (a
	// stale entry fails the guard, and the update reads and tries again).
	seenMu sync.Mutex
	seen   map[string]seenRecord
}

type seenRecord struct {
	rev     uint64
	created time.Time
}

func (s *Store) see(id string, rev uint64, created time.Time) {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	if s.seen == nil {
		s.seen = map[string]seenRecord{}
	}
	if rev == 0 {
		delete(s.seen, id)
		return
	}
	s.seen[id] = seenRecord{rev, created}
}

func (s *Store) lastSeen(id string) (seenRecord, bool) {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	r, ok := s.seen[id]
	return r, ok
}

// Open connects to the cluster, checks that it answers with a quorum,
// creates the meta key of a new prefix or checks that of an existing one
// (trunkd's marker, a schema it reads, the same secret key).
func Open(ctx context.Context, cfg Config, key []byte) (*Store, error) {
	codec, err := record.NewCodec(key)
	if err != nil {
		return nil, err
	}
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: cfg.Endpoints, TLS: cfg.TLS, Username: cfg.Username, Password: cfg.Password,
		DialTimeout: cfg.Timeout, DialKeepAliveTime: 10 * time.Second, DialKeepAliveTimeout: 5 * time.Second,
		Logger: zap.NewNop(), AutoSyncInterval: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	s := &Store{cli: cli, codec: codec, prefix: cfg.Prefix, timeout: cfg.Timeout, now: cfg.Now}
	if err := s.check(ctx, cfg.Endpoints); err != nil {
		cli.Close()
		return nil, err
	}
	if err := s.initMeta(ctx); err != nil {
		cli.Close()
		return nil, err
	}
	return s, nil
}

// check fails fast when the cluster does not answer: clientv3 (3.7) no
// longer waits for a connection, so without it trunkd would start with a
// store that fails every request. It tries until ctx's deadline (or for
// one request timeout when ctx has none): members starting together take
// a moment to elect a leader.
func (s *Store) check(ctx context.Context, eps []string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	for {
		err := s.checkOnce(ctx, eps)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (s *Store) checkOnce(ctx context.Context, eps []string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var errs []error
	ok := 0
	for _, ep := range eps {
		if _, err := s.cli.Status(ctx, ep); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep, err))
			continue
		}
		ok++
	}
	if ok == 0 {
		return fmt.Errorf("etcd: no member answered (each asked for up to %v): %w", s.timeout, errors.Join(errs...))
	}
	// A linearizable read needs a leader and a quorum.
	if _, err := s.cli.Get(ctx, s.prefix+"meta"); err != nil {
		return fmt.Errorf("etcd %s: the cluster has no quorum (a linearizable read failed within %v): %w", strings.Join(eps, ","), s.timeout, err)
	}
	return nil
}

type meta struct {
	Marker        string `json:"marker"`
	SchemaVersion int    `json:"schema_version"`
	KeyCheck      []byte `json:"key_check"`
}

func (s *Store) initMeta(ctx context.Context) error {
	check, err := s.codec.SealCheck([]byte(marker))
	if err != nil {
		return err
	}
	v, _ := json.Marshal(meta{Marker: marker, SchemaVersion: record.Version, KeyCheck: check})
	k := s.prefix + "meta"
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, string(v))).Else(clientv3.OpGet(k)).Commit()
	if err != nil {
		return fmt.Errorf("etcd: create %s: %w", k, err)
	}
	if resp.Succeeded {
		return nil
	}
	var m meta
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) != 1 || json.Unmarshal(kvs[0].Value, &m) != nil || m.Marker != marker {
		return fmt.Errorf("etcd: %s holds something that is not trunkd's; choose another --etcd-prefix", k)
	}
	if m.SchemaVersion > record.Version {
		return fmt.Errorf("etcd: %s has schema version %d; this trunkd reads up to %d (upgrade trunkd)", s.prefix, m.SchemaVersion, record.Version)
	}
	if !s.codec.OpenCheck(m.KeyCheck) {
		return fmt.Errorf("etcd: %s was written with another secret key (every node needs the same --secret-key-file)", s.prefix)
	}
	return nil
}

// Close closes the connection to the cluster.
func (s *Store) Close() error { return s.cli.Close() }

// Client is the connection to the cluster, for the node's membership.
func (s *Store) Client() *clientv3.Client { return s.cli }

// Prefix is the key prefix of this store.
func (s *Store) Prefix() string { return s.prefix }

func (s *Store) key(id string) string { return s.prefix + "trunks/" + id }

func (s *Store) idOf(k []byte) string { return strings.TrimPrefix(string(k), s.prefix+"trunks/") }

func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// unavailable wraps an etcd error as EUNAVAILABLE, keeping it as cause.
func unavailable(op, id string, err error) error {
	if e, ok := errors.AsType[*trunk.Error](err); ok {
		return e
	}
	return trunk.Wrap(trunk.EUNAVAILABLE, fmt.Errorf("etcd: %s %q: %w", op, id, err), "the trunk store (etcd) did not answer the %s of %q; try again", op, id)
}

func notFound(id string) error { return trunk.Errorf(trunk.ENOTFOUND, "trunk %q not found", id) }

// decode reads a stored value; the revision is the key's mod_revision.
func (s *Store) decode(id string, v []byte, modRev int64) (*trunk.Trunk, error) {
	t, err := s.codec.Decode(id, v)
	if err != nil {
		return nil, err
	}
	t.Meta.Revision = uint64(modRev)
	return t, nil
}

// encode returns the record of t, without a revision (the key's
// mod_revision is the revision).
func (s *Store) encode(t *trunk.Trunk) ([]byte, error) {
	c := *t
	c.Meta.Revision = 0
	return s.codec.Encode(&c)
}

// GetTrunk returns trunk id (a linearizable read), or ENOTFOUND.
func (s *Store) GetTrunk(ctx context.Context, id string) (*trunk.Trunk, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.key(id))
	if err != nil {
		return nil, unavailable("get", id, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, notFound(id)
	}
	kv := resp.Kvs[0]
	t, err := s.decode(id, kv.Value, kv.ModRevision)
	if err == nil {
		s.see(id, t.Meta.Revision, t.Meta.CreatedAt)
	}
	return t, err
}

// listPage is how many records one range read returns.
const listPage = 1000

// ListTrunks returns up to q.Limit trunks selected by q whose trunk_id
// sorts after q.After, in trunk_id byte order.
func (s *Store) ListTrunks(ctx context.Context, q trunk.ListQuery) ([]*trunk.Trunk, error) {
	list := make([]*trunk.Trunk, 0, min(q.Limit, 1024))
	err := s.scan(ctx, q.After, 0, func(t *trunk.Trunk) (bool, error) {
		if q.Keeps(t) {
			list = append(list, t)
		}
		return len(list) < q.Limit, nil
	})
	return list, err
}

// ForEachTrunk calls fn for every trunk in trunk_id order, stopping at
// the first error fn returns.
func (s *Store) ForEachTrunk(ctx context.Context, fn func(*trunk.Trunk) error) error {
	return s.scan(ctx, "", 0, func(t *trunk.Trunk) (bool, error) { return true, fn(t) })
}

// Snapshot returns every trunk, read at one store revision, and that
// revision.
func (s *Store) Snapshot(ctx context.Context) ([]*trunk.Trunk, uint64, error) {
	var all []*trunk.Trunk
	rev, err := s.snapshot(ctx, func(t *trunk.Trunk) { all = append(all, t) })
	return all, rev, err
}

func (s *Store) snapshot(ctx context.Context, fn func(*trunk.Trunk)) (uint64, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	head, err := s.cli.Get(ctx, s.prefix+"meta")
	if err != nil {
		return 0, unavailable("snapshot", "", err)
	}
	rev := head.Header.Revision
	err = s.scan(ctx, "", rev, func(t *trunk.Trunk) (bool, error) { fn(t); return true, nil })
	return uint64(rev), err
}

// scan reads the trunks after `after` in pages, at revision rev (0: the
// newest), until fn says stop or returns an error.
func (s *Store) scan(ctx context.Context, after string, rev int64, fn func(*trunk.Trunk) (bool, error)) error {
	end := clientv3.GetPrefixRangeEnd(s.prefix + "trunks/")
	from := s.key(after)
	if after != "" {
		from += "\x00"
	}
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		rctx, cancel := s.ctx(ctx)
		resp, err := s.cli.Get(rctx, from, opts...)
		cancel()
		if err != nil {
			return unavailable("list", after, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision // later pages read the same revision
		}
		for _, kv := range resp.Kvs {
			t, err := s.decode(s.idOf(kv.Key), kv.Value, kv.ModRevision)
			if err != nil {
				return err
			}
			more, err := fn(t)
			if err != nil || !more {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// AddTrunk stores a new trunk, or returns EEXISTS.
func (s *Store) AddTrunk(ctx context.Context, t *trunk.Trunk) error {
	now := s.now().UTC()
	c := t.Clone()
	c.Meta = trunk.Meta{CreatedAt: now, UpdatedAt: now}
	k := s.key(t.TrunkID)
	rev, err := s.write(ctx, c, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
	if err != nil {
		return err
	}
	if rev == 0 {
		return trunk.Errorf(trunk.EEXISTS, "trunk %q already exists", t.TrunkID)
	}
	t.Meta, t.Meta.Revision = c.Meta, rev
	s.see(t.TrunkID, rev, c.Meta.CreatedAt)
	return nil
}

// UpdateTrunk replaces a stored trunk, keeping its created_at; ENOTFOUND
// when absent, ECONFLICT when ifRevision is set and not the stored one.
// It guards on the revision last read here (one round trip when the
// service has just read the trunk), and reads again when that is stale.
func (s *Store) UpdateTrunk(ctx context.Context, t *trunk.Trunk, ifRevision uint64) error {
	for {
		old, ok := s.lastSeen(t.TrunkID)
		if !ok || (ifRevision != 0 && old.rev != ifRevision) {
			cur, err := s.GetTrunk(ctx, t.TrunkID)
			if err != nil {
				return err
			}
			old = seenRecord{cur.Meta.Revision, cur.Meta.CreatedAt}
		}
		if err := record.CheckRevision(t.TrunkID, old.rev, ifRevision); err != nil {
			return err
		}
		c := t.Clone()
		c.Meta = trunk.Meta{CreatedAt: old.created, UpdatedAt: s.now().UTC()}
		k := s.key(t.TrunkID)
		rev, err := s.write(ctx, c, clientv3.Compare(clientv3.ModRevision(k), "=", int64(old.rev)))
		if err != nil {
			return err
		}
		if rev != 0 {
			t.Meta, t.Meta.Revision = c.Meta, rev
			s.see(t.TrunkID, rev, c.Meta.CreatedAt)
			return nil
		}
		// The record changed since it was read here (another node wrote,
		// or it was removed): forget it and read it again, which ends in
		// ECONFLICT or ENOTFOUND for a conditional update.
		s.see(t.TrunkID, 0, time.Time{})
	}
}

// write puts t's record if guard holds and returns its revision, or 0 when
// the guard failed. An outcome it cannot know (timeout, lost connection)
// is settled by reading the key back.
func (s *Store) write(ctx context.Context, t *trunk.Trunk, guard clientv3.Cmp) (uint64, error) {
	v, err := s.encode(t)
	if err != nil {
		return 0, err
	}
	k := s.key(t.TrunkID)
	for attempt := 0; ; attempt++ {
		tctx, cancel := s.ctx(ctx)
		resp, err := s.cli.Txn(tctx).If(guard).Then(clientv3.OpPut(k, string(v))).Commit()
		cancel()
		if err == nil {
			if !resp.Succeeded {
				return 0, nil
			}
			return uint64(resp.Header.Revision), nil
		}
		if ctx.Err() != nil || attempt >= 3 {
			return 0, unavailable("write", t.TrunkID, err)
		}
		rev, settled, rerr := s.readBack(ctx, k, v)
		if rerr != nil {
			return 0, unavailable("write", t.TrunkID, errors.Join(err, rerr))
		}
		if settled {
			return rev, nil
		}
		// Not ours: the guard decides again, so the write applies at most once.
	}
}

// readBack reports whether k holds v (our write committed, at rev).
func (s *Store) readBack(ctx context.Context, k string, v []byte) (rev uint64, ours bool, err error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, k)
	if err != nil {
		return 0, false, err
	}
	if len(resp.Kvs) == 1 && bytes.Equal(resp.Kvs[0].Value, v) {
		return uint64(resp.Kvs[0].ModRevision), true, nil
	}
	return 0, false, nil
}

// RemoveTrunk deletes a trunk; ENOTFOUND when absent, ECONFLICT when
// ifRevision is set and not the stored one.
func (s *Store) RemoveTrunk(ctx context.Context, id string, ifRevision uint64) error {
	k := s.key(id)
	for attempt := 0; ; attempt++ {
		old, err := s.GetTrunk(ctx, id)
		if err != nil {
			if attempt > 0 && trunk.ErrorCode(err) == trunk.ENOTFOUND {
				return nil // our delete committed before its answer was lost
			}
			return err
		}
		if err := record.CheckRevision(id, old.Meta.Revision, ifRevision); err != nil {
			return err
		}
		tctx, cancel := s.ctx(ctx)
		resp, err := s.cli.Txn(tctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", int64(old.Meta.Revision))).
			Then(clientv3.OpDelete(k)).Commit()
		cancel()
		switch {
		case err == nil && resp.Succeeded:
			s.see(id, 0, time.Time{})
			return nil
		case err == nil && ifRevision != 0:
			return record.CheckRevision(id, 0, ifRevision)
		case err != nil && (ctx.Err() != nil || attempt >= 3):
			return unavailable("remove", id, err)
		}
	}
}

// Watch sends the changes of trunks after revision after; see
// control.Feed. A compacted revision is a Reset.
func (s *Store) Watch(ctx context.Context, after uint64) <-chan control.Event {
	out := make(chan control.Event, 64)
	go func() {
		defer close(out)
		wctx := clientv3.WithRequireLeader(ctx)
		wc := s.cli.Watch(wctx, s.prefix+"trunks/", clientv3.WithPrefix(), clientv3.WithRev(int64(after)+1), clientv3.WithProgressNotify())
		for resp := range wc {
			if resp.CompactRevision != 0 || resp.Err() != nil {
				send(ctx, out, control.Event{Kind: control.Reset, Err: resp.Err()})
				return
			}
			for _, ev := range resp.Events {
				if !send(ctx, out, s.event(ev)) {
					return
				}
			}
		}
	}()
	return out
}

func (s *Store) event(ev *clientv3.Event) control.Event {
	id := s.idOf(ev.Kv.Key)
	if ev.Type == clientv3.EventTypeDelete {
		return control.Event{Kind: control.Delete, ID: id, Revision: uint64(ev.Kv.ModRevision)}
	}
	t, err := s.decode(id, ev.Kv.Value, ev.Kv.ModRevision)
	if err != nil {
		// A record this node cannot read: resync, which reports it.
		return control.Event{Kind: control.Reset, ID: id, Err: err}
	}
	return control.Event{Kind: control.Put, ID: id, Trunk: t, Revision: uint64(ev.Kv.ModRevision)}
}

func send(ctx context.Context, out chan<- control.Event, ev control.Event) bool {
	select {
	case out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// Count returns the number of trunks.
func (s *Store) Count(ctx context.Context) (int, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix+"trunks/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, unavailable("count", "", err)
	}
	return int(resp.Count), nil
}

// PutRecord stores raw record bytes under id unless a record is there
// already (migrate). It reports whether it wrote.
func (s *Store) PutRecord(ctx context.Context, id string, v []byte) (bool, error) {
	if _, err := s.codec.Decode(id, v); err != nil {
		return false, err
	}
	k := s.key(id)
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).Then(clientv3.OpPut(k, string(v))).Commit()
	if err != nil {
		return false, unavailable("migrate", id, err)
	}
	return resp.Succeeded, nil
}
