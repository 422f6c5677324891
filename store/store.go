package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trunkd/trunkd/store/record"
	"github.com/trunkd/trunkd/trunk"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the record and meta layout this code writes. A file of
// an earlier version is migrated when opened (see migrate).
const SchemaVersion = record.Version

// KeySize is the length of the secret key.
const KeySize = record.KeySize

var (
	bucketMeta   = []byte("meta")
	bucketTrunks = []byte("trunks")
	bucketAgents = []byte("agents")
	keyMarker    = []byte("marker")
	keyVersion   = []byte("schema_version")
	keyCheck     = []byte("key_check")
	marker       = []byte("trunkd trunk store")
)

// DB is the trunk store.
type DB struct {
	bolt   *bolt.DB
	path   string
	codec  *record.Codec
	now    func() time.Time
	writes chan *op
	done   chan struct{}
	closed chan struct{}

	cache cache

	// The write-ahead log and what it holds that bbolt does not yet.
	wal     *wal
	pending pending
	applier *applier
	lastSeq atomic.Uint64 // the last frame written and acknowledged; only the writer stores it
	rev     uint64        // the writer's: the last revision handed out

	replayed int // writes Open took from the log

	commits int // frames written by the writer goroutine, for tests
	queued  int // the writer's: frames left to flush as under load (see loaded)
}

// Option configures Open.
type Option func(*options)

type options struct {
	maxBatch int
	walMax   int64
	interval time.Duration
	now      func() time.Time
}

// WithMaxBatch bounds how many queued writes share one commit (default 1000).
func WithMaxBatch(n int) Option { return func(o *options) { o.maxBatch = n } }

// withLog sets the write-ahead log's size before it wraps and how long
// frames gather before bbolt commits them, for tests.
func withLog(max int64, interval time.Duration) Option {
	return func(o *options) { o.walMax, o.interval = max, interval }
}

// WithClock sets the clock that stamps created_at and updated_at (default
// time.Now), for tests.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Open opens the database at path, creating it (mode 0600) when absent. key
// is the 32-byte AES-256 key for secrets at rest. A file that is not a
// bbolt database, a bbolt database that is not trunkd's, a newer schema
// and a different key are refused, and the file is left untouched.
func Open(path string, key []byte, opts ...Option) (*DB, error) {
	o := options{maxBatch: 1000, walMax: walMaxSize, interval: applyInterval, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	codec, err := record.NewCodec(key)
	if err != nil {
		return nil, err
	}
	if err := checkFile(path); err != nil {
		return nil, err
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, openError(path, err)
	}
	db := &DB{bolt: bdb, path: path, codec: codec, now: o.now, writes: make(chan *op, o.maxBatch),
		done: make(chan struct{}), closed: make(chan struct{})}
	if err := db.init(); err != nil {
		bdb.Close()
		return nil, err
	}
	if err := db.openWAL(o.walMax, o.interval); err != nil {
		bdb.Close()
		return nil, err
	}
	go db.applier.run()
	go db.writer(o.maxBatch)
	return db, nil
}

// checkFile refuses, before bbolt sees it, a file that bbolt would treat
// as new but that holds something: bbolt initialises a zero-length file,
// so only a missing or empty file may become a new database.
func checkFile(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("store: %s is not a regular file; refusing to use it", path)
	}
	if fi.Size() == 0 {
		return nil
	}
	return checkExisting(path, fi.Size())
}

func openError(path string, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("store: %s: database is in use by another process", path)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
		return fmt.Errorf("store: %s is not a trunkd database (or is corrupt): %w; it was not modified", path, err)
	}
	return fmt.Errorf("store: open %s: %w; it was not modified", path, err)
}

// init creates the buckets of a new database, or checks those of an
// existing one.
func (db *DB) init() error {
	var fresh bool
	err := db.bolt.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			fresh = isEmpty(tx)
			if !fresh {
				return fmt.Errorf("store: %s is a bbolt database of another program; it was not modified", db.path)
			}
			return nil
		}
		return db.checkMeta(meta)
	})
	if err != nil {
		return err
	}
	if !fresh {
		if err := db.migrate(); err != nil {
			return err
		}
		return db.ensureAgents()
	}
	return db.bolt.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucket(bucketAgents); err != nil {
			return err
		}
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketTrunks); err != nil {
			return err
		}
		check, err := db.codec.SealCheck(marker)
		if err != nil {
			return err
		}
		return errors.Join(meta.Put(keyMarker, marker), meta.Put(keyVersion, []byte{SchemaVersion}), meta.Put(keyCheck, check))
	})
}

// migrate brings a file of an earlier schema version up to SchemaVersion
// in one transaction, so a failure leaves it as it was. Version 1 records
// gain a revision; their created_at and updated_at stay unknown (zero).
func (db *DB) migrate() error {
	var from byte
	db.bolt.View(func(tx *bolt.Tx) error {
		from = tx.Bucket(bucketMeta).Get(keyVersion)[0]
		return nil
	})
	if from == SchemaVersion {
		return nil
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTrunks)
		var keys, values [][]byte
		err := b.ForEach(func(k, v []byte) error {
			if record.VersionOf(v) == SchemaVersion {
				return nil
			}
			t, err := db.codec.Decode(string(k), v)
			if err != nil {
				return err
			}
			if t.Meta.Revision, err = b.NextSequence(); err != nil {
				return err
			}
			nv, err := db.codec.Encode(t)
			if err != nil {
				return err
			}
			keys, values = append(keys, bytes.Clone(k)), append(values, nv)
			return nil
		})
		for i := range keys {
			if err == nil {
				err = b.Put(keys[i], values[i])
			}
		}
		if err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyVersion, []byte{SchemaVersion})
	})
	if err != nil {
		return fmt.Errorf("store: %s: migrating from schema version %d to %d: %w; it was not modified", db.path, from, SchemaVersion, err)
	}
	return nil
}

func isEmpty(tx *bolt.Tx) bool {
	empty := true
	tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
	return empty
}

func (db *DB) checkMeta(meta *bolt.Bucket) error {
	if !bytes.Equal(meta.Get(keyMarker), marker) || tx(meta).Bucket(bucketTrunks) == nil {
		return fmt.Errorf("store: %s is a bbolt database of another program; it was not modified", db.path)
	}
	v := meta.Get(keyVersion)
	if len(v) != 1 || v[0] == 0 {
		return fmt.Errorf("store: %s has an unreadable schema version", db.path)
	}
	if v[0] > SchemaVersion {
		return fmt.Errorf("store: %s has schema version %d; this trunkd reads up to %d (upgrade trunkd)", db.path, v[0], SchemaVersion)
	}
	if !db.codec.OpenCheck(meta.Get(keyCheck)) {
		return fmt.Errorf("store: %s was written with another secret key (check --secret-key-file)", db.path)
	}
	return nil
}

func tx(b *bolt.Bucket) *bolt.Tx { return b.Tx() }

// Replayed returns how many writes Open took from the write-ahead log:
// writes acknowledged before a crash that bbolt did not hold yet.
func (db *DB) Replayed() int { return db.replayed }

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// Close waits for queued writes, then closes the database.
func (db *DB) Close() error {
	select {
	case <-db.closed:
		return nil
	default:
	}
	close(db.closed)
	<-db.done
	err := db.applier.close()
	if err != nil {
		err = unavailable(err) // the log keeps the writes: the next Open applies them
	}
	return errors.Join(err, db.wal.close(), db.bolt.Close())
}

// GetTrunk returns trunk id with its secrets decrypted, or trunk.ENOTFOUND.
func (db *DB) GetTrunk(ctx context.Context, id string) (*trunk.Trunk, error) {
	if t, ok := db.cache.get(id); ok {
		return t, nil
	}
	gen := db.cache.generation()
	if e, ok := db.pending.get(id); ok {
		if e.t == nil {
			return nil, notFound(id)
		}
		return e.t.Clone(), nil
	}
	var t *trunk.Trunk
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTrunks).Get([]byte(id))
		if v == nil {
			return notFound(id)
		}
		var err error
		t, err = db.codec.Decode(id, v)
		return err
	})
	if err == nil {
		db.cache.fill(gen, t)
	}
	return t, err
}

// ListTrunks returns copies of up to q.Limit trunks selected by q whose
// trunk_id sorts after q.After, in trunk_id byte order (see ViewTrunks).
func (db *DB) ListTrunks(ctx context.Context, q trunk.ListQuery) ([]*trunk.Trunk, error) {
	list := make([]*trunk.Trunk, 0, min(q.Limit, 1024))
	err := db.ViewTrunks(ctx, q, func(t *trunk.Trunk) { list = append(list, t.Clone()) })
	return list, err
}

// decodeAndCache decodes record k, v, which the cache did not hold, and
// caches it.
func (db *DB) decodeAndCache(gen uint64, k, v []byte) (*trunk.Trunk, error) {
	t, err := db.codec.Decode(string(k), v)
	if err != nil {
		return nil, err
	}
	db.cache.fill(gen, t) // the next scan skips decoding it
	return t, nil
}

// catchUp waits until bbolt holds every acknowledged write, for the
// readers that read bbolt alone.
func (db *DB) catchUp() error {
	if err := db.applier.wait(db.lastSeq.Load()); err != nil {
		return unavailable(err)
	}
	return nil
}

// ForEachTrunk calls fn for every trunk in trunk_id order, stopping at the
// first error fn returns, or at the first record that does not decode
// (after fn saw every trunk before it). Records are decoded a chunk at a
// time on every CPU (start-up reads them all), fn is called on the
// caller's goroutine.
func (db *DB) ForEachTrunk(ctx context.Context, fn func(*trunk.Trunk) error) error {
	if err := db.catchUp(); err != nil {
		return err
	}
	return db.bolt.View(func(tx *bolt.Tx) error {
		var ch chunk
		c := tx.Bucket(bucketTrunks).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if ch.add(k, v) < chunkSize {
				continue
			}
			if err := db.flush(ctx, &ch, fn); err != nil {
				return err
			}
		}
		return db.flush(ctx, &ch, fn)
	})
}

// chunkSize is how many records ForEachTrunk decodes at a time.
const chunkSize = 1024

// chunk is a run of raw records, valid in the transaction that read them,
// and their decodings.
type chunk struct {
	keys, vals [][]byte
	trunks     []*trunk.Trunk
	errs       []error
}

// add appends a record and returns the chunk's length.
func (ch *chunk) add(k, v []byte) int {
	ch.keys, ch.vals = append(ch.keys, k), append(ch.vals, v)
	return len(ch.keys)
}

// flush decodes ch's records on every CPU, calls fn with each in order,
// and empties ch.
func (db *DB) flush(ctx context.Context, ch *chunk, fn func(*trunk.Trunk) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := len(ch.keys)
	ch.trunks, ch.errs = slices.Grow(ch.trunks[:0], n)[:n], slices.Grow(ch.errs[:0], n)[:n]
	onCPUs(n, 64, func(i int) { ch.trunks[i], ch.errs[i] = db.codec.Decode(string(ch.keys[i]), ch.vals[i]) })
	for i := range n {
		if ch.errs[i] != nil {
			return ch.errs[i]
		}
		if err := fn(ch.trunks[i]); err != nil {
			return err
		}
		ch.trunks[i] = nil
	}
	ch.keys, ch.vals = ch.keys[:0], ch.vals[:0]
	return nil
}

// onCPUs calls fn(i) for every i in [0, n) on up to GOMAXPROCS goroutines,
// one for every per items at least (the caller's among them), and returns
// once every call has.
func onCPUs(n, per int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), max(n/per, 1))
	run := func(w int) {
		for i := w; i < n; i += workers {
			fn(i)
		}
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Go(func() { run(w) })
	}
	run(0)
	wg.Wait()
}

// Count returns the number of trunks.
func (db *DB) Count() (int, error) {
	var n int
	newer := db.pending.after("") // before the transaction: see pending
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTrunks)
		n = b.Stats().KeyN
		for _, e := range newer {
			switch stored := b.Get([]byte(e.id)) != nil; {
			case e.t != nil && !stored:
				n++
			case e.t == nil && stored:
				n--
			}
		}
		return nil
	})
	return n, err
}

// Check runs bbolt's consistency check, once bbolt holds every
// acknowledged write, and returns the first problem. bbolt's check reads
// the free list unlocked: run it while nothing writes.
func (db *DB) Check() error {
	if err := db.catchUp(); err != nil {
		return err
	}
	return db.bolt.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain: the checker runs until it closes the channel
			if first == nil {
				first = fmt.Errorf("store: %s: %w", db.path, err)
			}
		}
		return first
	})
}

func notFound(id string) error { return trunk.Errorf(trunk.ENOTFOUND, "trunk %q not found", id) }

// ForEachRecord calls fn with every stored record's raw bytes (the
// format of package store/record), in trunk_id order, for a migration
// that must copy the sealed bytes as they are.
func (db *DB) ForEachRecord(ctx context.Context, fn func(id string, v []byte) error) error {
	if err := db.catchUp(); err != nil {
		return err
	}
	return db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTrunks).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return fn(string(k), bytes.Clone(v))
		})
	})
}

// LogFlush says how the write-ahead log's flushes run: "io_uring" when
// writes queue up (the kernel runs the fdatasync while the writer waits
// in Go's poller) and a blocking fdatasync for a lone write, or
// "fdatasync" where the kernel offers no io_uring.
func (db *DB) LogFlush() string {
	if db.wal.ring != nil {
		return "io_uring"
	}
	return "fdatasync"
}
