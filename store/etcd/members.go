package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trunkd/trunkd/trunk"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// MembersConfig configures a node's membership.
type MembersConfig struct {
	Node   string        // this node's name, unique among live nodes
	Addr   string        // what the node key says about it (admin address)
	TTL    time.Duration // lease of the node key and its ownerships; 10s
	Settle time.Duration // a joining node takes over trunks only after this long; 0 in tests, 30s by default in trunkd
	Logger *slog.Logger
	// OnOwn is called when this node starts (true) or stops (false)
	// owning the registration of a trunk. It must not call back into
	// Members synchronously with a lock Members' callers hold.
	OnOwn func(id string, own bool)
}

// Members is this node's place in the cluster: a node key on its lease,
// the live nodes, and the trunks whose registration it owns.
//
// Ownership: among the live nodes, the owner of trunk t is the node with
// the highest hash(node, t) (rendezvous hashing), so each node owns about
// 1/N of the trunks and a join or leave moves about 1/N. A node claims
// owner/<t> on its lease only when the key is free; the owner of a trunk
// that should move stops registering (un-REGISTERs) first and then
// deletes its key. A dead node's keys vanish with its lease and the next
// node claims. A node that cannot renew its lease gives up everything it
// owns a margin before the lease can expire, so two nodes never register
// one trunk beyond the time an un-REGISTER takes.
type Members struct {
	s   *Store
	cfg MembersConfig
	log *slog.Logger

	mu      sync.Mutex
	lease   clientv3.LeaseID
	safe    time.Time            // the lease surely lives until then
	nodes   map[string]time.Time // live node -> when it joined (as seen here)
	owners  map[string]string    // trunk -> owning node, from owner/
	wanted  map[string]bool      // trunks that need registration
	mine    map[string]bool      // trunks this node registers
	healthy bool
	// gen counts the changes of what decide reads (lease, healthy,
	// nodes, owners, wanted, mine); decide skips a round while gen is
	// quietGen and quietUntil (a joining node settles) has not come.
	gen        uint64
	quietGen   uint64
	quietUntil time.Time
	stats      map[string]map[string]map[string]trunk.QualitySums // node -> chunk -> trunk -> counts
	applied    map[string]uint64                                  // node -> revision its SIP plane runs

	kick  chan struct{}
	stop  context.CancelFunc
	done  chan struct{}
	leave sync.Once
	left  error
}

type nodeValue struct {
	Addr    string    `json:"addr,omitempty"`
	Started time.Time `json:"started"`
}

// Join puts this node's key on a new lease, refusing a name a live node
// holds, and starts keeping the lease alive, following the other nodes
// and owning registrations.
func (s *Store) Join(ctx context.Context, cfg MembersConfig) (*Members, error) {
	if cfg.Node == "" || strings.ContainsAny(cfg.Node, "/\x00") {
		return nil, fmt.Errorf("etcd: node name %q: must be non-empty, without '/'", cfg.Node)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.TTL < 2*time.Second {
		return nil, errors.New("etcd: the node lease TTL must be at least 2s")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OnOwn == nil {
		cfg.OnOwn = func(string, bool) {}
	}
	m := &Members{s: s, cfg: cfg, log: cfg.Logger, nodes: map[string]time.Time{}, owners: map[string]string{},
		wanted: map[string]bool{}, mine: map[string]bool{}, kick: make(chan struct{}, 1), done: make(chan struct{})}
	if err := m.registerWaiting(ctx); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go m.run(rctx)
	return m, nil
}

func (m *Members) nodeKey(n string) string   { return m.s.prefix + "nodes/" + n }
func (m *Members) ownerKey(id string) string { return m.s.prefix + "owner/" + id }

// errNameHeld is a node name another live lease holds.
var errNameHeld = errors.New("is held by a live node")

// registerWaiting registers, waiting while the name is held: a node
// restarted after a crash finds its previous key until that lease
// expires (at most TTL). A second node with the same name fails when ctx
// ends.
func (m *Members) registerWaiting(ctx context.Context) error {
	for logged := false; ; {
		err := m.register(ctx)
		if !errors.Is(err, errNameHeld) {
			return err
		}
		if !logged {
			m.log.Warn("node name held by a live lease (a previous run of this node?); waiting for it to expire", "node", m.cfg.Node, "ttl", m.cfg.TTL)
			logged = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; give each node its own --node-name", err)
		case <-time.After(time.Second):
		}
	}
}

// register grants a lease and puts the node key on it.
func (m *Members) register(ctx context.Context) error {
	ctx, cancel := m.s.ctx(ctx)
	defer cancel()
	sent := time.Now()
	g, err := m.s.cli.Grant(ctx, int64(m.cfg.TTL/time.Second))
	if err != nil {
		return fmt.Errorf("etcd: grant the node lease: %w", err)
	}
	v, _ := json.Marshal(nodeValue{Addr: m.cfg.Addr, Started: time.Now().UTC()})
	k := m.nodeKey(m.cfg.Node)
	resp, err := m.s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, string(v), clientv3.WithLease(g.ID))).Commit()
	if err == nil && !resp.Succeeded {
		err = fmt.Errorf("node name %q %w", m.cfg.Node, errNameHeld)
	}
	if err != nil {
		m.s.cli.Revoke(context.Background(), g.ID)
		return fmt.Errorf("etcd: join as %q: %w", m.cfg.Node, err)
	}
	m.mu.Lock()
	m.lease, m.safe, m.healthy = g.ID, sent.Add(time.Duration(g.TTL)*time.Second), true
	m.gen++
	m.mu.Unlock()
	m.log.Info("joined the cluster", "node", m.cfg.Node, "lease_ttl", m.cfg.TTL)
	return nil
}

// run keeps the lease alive, follows nodes/ and owner/, and decides.
func (m *Members) run(ctx context.Context) {
	defer close(m.done)
	var wg sync.WaitGroup
	wg.Go(func() { m.keepAlive(ctx) })
	wg.Go(func() { m.follow(ctx) })
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
		case <-m.kick:
		}
		m.decide(ctx)
	}
	wg.Wait()
}

func (m *Members) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// keepAlive renews the lease every TTL/4. When the lease may expire
// within TTL/4 (renewals fail: a partition), the node gives up what it
// owns; when the lease is gone, it joins again.
func (m *Members) keepAlive(ctx context.Context) {
	every := m.cfg.TTL / 4
	for ctx.Err() == nil {
		m.mu.Lock()
		lease := m.lease
		m.mu.Unlock()
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, every)
		resp, err := m.s.cli.KeepAliveOnce(rctx, lease)
		cancel()
		switch {
		case err == nil:
			m.mu.Lock()
			if !m.healthy {
				m.gen++
			}
			m.safe, m.healthy = sent.Add(time.Duration(resp.TTL)*time.Second), true
			m.mu.Unlock()
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			m.log.Warn("node lease expired; joining again", "node", m.cfg.Node)
			m.relinquish("lease expired")
			if err := m.register(ctx); err != nil {
				m.log.Warn("rejoin", "err", err)
			}
		case ctx.Err() == nil:
			m.log.Warn("node lease renewal failed", "err", err)
		}
		m.mu.Lock()
		unsafe := m.healthy && time.Until(m.safe) < every
		if unsafe {
			m.healthy = false
			m.gen++
		}
		m.mu.Unlock()
		if unsafe {
			m.relinquish("cannot renew the node lease")
		}
		m.wake()
		sleep(ctx, every-time.Since(sent))
	}
}

// relinquish stops every registration this node runs, locally: its keys
// go with its lease.
func (m *Members) relinquish(why string) {
	m.mu.Lock()
	var ids []string
	for id := range m.mine {
		ids = append(ids, id)
	}
	clear(m.mine)
	m.gen++
	m.mu.Unlock()
	if len(ids) > 0 {
		m.log.Warn("giving up registrations", "why", why, "trunks", len(ids))
	}
	// In parallel (bounded): each un-REGISTER waits for the registrar.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			m.cfg.OnOwn(id, false)
		})
	}
	wg.Wait()
}

// follow reads nodes/ and owner/ and watches them, reading again when a
// watch breaks.
func (m *Members) follow(ctx context.Context) {
	for ctx.Err() == nil {
		rev, err := m.load(ctx)
		if err != nil {
			m.log.Warn("read cluster members", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		m.wake()
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		nodes := m.s.cli.Watch(wctx, m.s.prefix+"nodes/", clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		owners := m.s.cli.Watch(wctx, m.s.prefix+"owner/", clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		stats := m.s.cli.Watch(wctx, m.s.prefix+"stats/", clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		applied := m.s.cli.Watch(wctx, m.s.prefix+"applied/", clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		m.watch(nodes, owners, stats, applied)
		cancel()
	}
}

func (m *Members) load(ctx context.Context) (int64, error) {
	ctx, cancel := m.s.ctx(ctx)
	defer cancel()
	nr, err := m.s.cli.Get(ctx, m.s.prefix+"nodes/", clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	or, err := m.s.cli.Get(ctx, m.s.prefix+"owner/", clientv3.WithPrefix(), clientv3.WithRev(nr.Header.Revision))
	if err != nil {
		return 0, err
	}
	sr, err := m.s.cli.Get(ctx, m.s.prefix+"stats/", clientv3.WithPrefix(), clientv3.WithRev(nr.Header.Revision))
	if err != nil {
		return 0, err
	}
	ar, err := m.s.cli.Get(ctx, m.s.prefix+"applied/", clientv3.WithPrefix(), clientv3.WithRev(nr.Header.Revision))
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	nodes := map[string]time.Time{}
	first := len(m.nodes) == 0
	for _, kv := range nr.Kvs {
		n := strings.TrimPrefix(string(kv.Key), m.s.prefix+"nodes/")
		if nodes[n] = m.joined(n); first {
			nodes[n] = time.Time{} // up before us: settled
		}
	}
	m.nodes = nodes
	m.gen++
	clear(m.owners)
	for _, kv := range or.Kvs {
		m.owners[strings.TrimPrefix(string(kv.Key), m.s.prefix+"owner/")] = string(kv.Value)
	}
	m.stats = nil
	for _, kv := range sr.Kvs {
		m.applyStats(string(kv.Key), kv.Value)
	}
	m.applied = nil
	for _, kv := range ar.Kvs {
		m.applyApplied(string(kv.Key), kv.Value)
	}
	return nr.Header.Revision, nil
}

// joined is when node n joined as far as this node knows; callers hold mu.
func (m *Members) joined(n string) time.Time {
	if t, ok := m.nodes[n]; ok {
		return t
	}
	return time.Now()
}

func (m *Members) watch(nodes, owners, stats, applied clientv3.WatchChan) {
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case resp, ok = <-nodes:
		case resp, ok = <-owners:
		case resp, ok = <-stats:
		case resp, ok = <-applied:
		}
		if !ok || resp.Err() != nil || resp.Canceled {
			return
		}
		m.mu.Lock()
		decide := false
		for _, ev := range resp.Events {
			k := string(ev.Kv.Key)
			put := ev.Type == clientv3.EventTypePut
			if n, isNode := strings.CutPrefix(k, m.s.prefix+"nodes/"); isNode {
				decide = true
				if put {
					m.nodes[n] = m.joined(n)
				} else {
					delete(m.nodes, n)
				}
			} else if id, isOwner := strings.CutPrefix(k, m.s.prefix+"owner/"); isOwner {
				decide = true
				if put {
					m.owners[id] = string(ev.Kv.Value)
				} else {
					delete(m.owners, id)
				}
			} else if strings.HasPrefix(k, m.s.prefix+"applied/") {
				m.applyApplied(k, value(ev))
			} else {
				m.applyStats(k, value(ev))
			}
		}
		if decide {
			m.gen++
		}
		m.mu.Unlock()
		if decide {
			m.wake()
		}
	}
}

// value is a watch event's value, nil for a delete.
func value(ev *clientv3.Event) []byte {
	if ev.Type == clientv3.EventTypeDelete {
		return nil
	}
	return ev.Kv.Value
}

// Want says whether trunk id needs a registration (it runs and has
// require_registration), so that one node owns it.
func (m *Members) Want(id string, want bool) {
	m.mu.Lock()
	changed := m.wanted[id] != want
	if want {
		m.wanted[id] = true
	} else {
		delete(m.wanted, id)
	}
	if changed {
		m.gen++
	}
	m.mu.Unlock()
	if changed {
		m.wake()
	}
}

// Owns reports whether this node registers trunk id.
func (m *Members) Owns(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mine[id]
}

// Owned lists the trunks this node registers.
func (m *Members) Owned() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id := range m.mine {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Nodes lists the live nodes, sorted.
func (m *Members) Nodes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ns []string
	for n := range m.nodes {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns
}

// Rank is this node's place (0 first) among the live nodes for trunk id,
// by rendezvous hash, and the number of live nodes: what a per-node share
// of a limit is computed from.
func (m *Members) Rank(id string) (rank, nodes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mine := score(m.cfg.Node, id)
	for n := range m.nodes {
		if n != m.cfg.Node && score(n, id) > mine {
			rank++
		}
	}
	return rank, max(1, len(m.nodes))
}

// score is the rendezvous hash of node and trunk.
func score(node, id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(node))
	h.Write([]byte{0})
	h.Write([]byte(id))
	x := h.Sum64()
	// splitmix64 finaliser: fnv's low bits mix poorly for short inputs.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// Owner is the node that should register trunk id among nodes, or "".
func Owner(nodes []string, id string) string {
	var best string
	var top uint64
	for _, n := range nodes {
		if s := score(n, id); best == "" || s > top || s == top && n > best {
			best, top = n, s
		}
	}
	return best
}

// action is one step decide takes.
type action struct {
	id    string
	claim bool // claim the free owner key
	give  bool // stop, then delete our owner key
	own   bool // start registering (key already ours)
}

// decide claims, keeps or gives up each wanted trunk's registration. A
// round that found nothing to do is not repeated until what it read
// changes or a joining node settles: it runs every second and on every
// lease renewal, and costs tens of milliseconds at 100 000 trunks that
// require registration.
func (m *Members) decide(ctx context.Context) {
	m.mu.Lock()
	now := time.Now()
	if !m.healthy || m.gen == m.quietGen && now.Before(m.quietUntil) {
		m.mu.Unlock()
		return
	}
	me := m.cfg.Node
	var live []string
	settles := now.Add(time.Hour) // a round an hour at the least
	for n, at := range m.nodes {
		if n == me || now.Sub(at) >= m.cfg.Settle {
			live = append(live, n)
		} else if t := at.Add(m.cfg.Settle); t.Before(settles) {
			settles = t
		}
	}
	if _, ok := m.nodes[me]; !ok {
		live = append(live, me) // our key's event may not have arrived yet
	}
	var acts []action
	for id := range m.wanted {
		target, owner := Owner(live, id), m.owners[id]
		switch {
		case owner == me && target != me:
			acts = append(acts, action{id: id, give: true})
		case owner == me && !m.mine[id]:
			acts = append(acts, action{id: id, own: true})
		case owner == "" && target == me:
			acts = append(acts, action{id: id, claim: true})
		}
	}
	for id := range m.mine {
		if !m.wanted[id] {
			acts = append(acts, action{id: id, give: true})
		}
	}
	for id, owner := range m.owners {
		if owner == me && !m.wanted[id] && !m.mine[id] {
			acts = append(acts, action{id: id, give: true})
		}
	}
	lease := m.lease
	// Actions change gen when they succeed; one that fails (etcd away, a
	// claim lost) is tried again next round.
	m.quietGen, m.quietUntil = m.gen, time.Time{}
	if len(acts) == 0 {
		m.quietUntil = settles
	}
	m.mu.Unlock()
	for _, a := range acts {
		m.act(ctx, a, lease)
	}
}

func (m *Members) act(ctx context.Context, a action, lease clientv3.LeaseID) {
	k := m.ownerKey(a.id)
	switch {
	case a.claim:
		ctx, cancel := m.s.ctx(ctx)
		resp, err := m.s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
			Then(clientv3.OpPut(k, m.cfg.Node, clientv3.WithLease(lease))).Commit()
		cancel()
		if err != nil || !resp.Succeeded {
			return // someone else claimed, or etcd is away: next round
		}
		m.setMine(a.id, true)
	case a.own:
		m.setMine(a.id, true)
	case a.give:
		m.setMine(a.id, false)
		ctx, cancel := m.s.ctx(ctx)
		m.s.cli.Txn(ctx).If(clientv3.Compare(clientv3.Value(k), "=", m.cfg.Node)).Then(clientv3.OpDelete(k)).Commit()
		cancel()
	}
}

// setMine records and announces a change of what this node registers.
func (m *Members) setMine(id string, own bool) {
	m.mu.Lock()
	changed := m.mine[id] != own
	if own {
		m.mine[id] = true
	} else {
		delete(m.mine, id)
	}
	if changed {
		m.gen++
	}
	m.mu.Unlock()
	if changed {
		m.log.Info("registration ownership", "trunk_id", id, "owned", own)
		m.cfg.OnOwn(id, own)
	}
}

// Leave stops registering (un-REGISTERs through OnOwn) and revokes the
// lease, so that the other nodes take over at once.
func (m *Members) Leave(ctx context.Context) error {
	m.leave.Do(func() { m.left = m.leaveOnce(ctx) })
	return m.left
}

func (m *Members) leaveOnce(ctx context.Context) error {
	m.stop()
	<-m.done
	m.relinquish("leaving")
	m.mu.Lock()
	lease := m.lease
	m.mu.Unlock()
	ctx, cancel := m.s.ctx(ctx)
	defer cancel()
	_, err := m.s.cli.Revoke(ctx, lease)
	return err
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Share is this node's part of limit for trunk id: limit split evenly
// over the live nodes, the remainder going to the nodes ranked first for
// the trunk. It follows the live nodes as they join and leave.
func (m *Members) Share(id string, limit uint32) uint32 {
	rank, n := m.Rank(id)
	share := limit / uint32(n)
	if uint32(rank) < limit%uint32(n) {
		share++
	}
	return share
}
