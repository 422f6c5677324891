package store

import (
	"context"
	"errors"

	"github.com/trunkd/trunkd/store/record"
	"github.com/trunkd/trunkd/trunk"
	bolt "go.etcd.io/bbolt"
)

type opKind int

const (
	opAdd opKind = iota
	opUpdate
	opRemove
)

// op is one queued write and the channel its result goes back on.
type op struct {
	kind       opKind
	id         string
	trunk      *trunk.Trunk // the record, for add and update; the writer sets its Meta
	ifRevision uint64       // 0, or the revision the stored record must have
	err        chan error
}

// AddTrunk stores a new trunk; trunk.EEXISTS if its id is taken. It sets
// t.Meta (a new revision, created_at = updated_at = now) and returns once
// the record is durable.
func (db *DB) AddTrunk(ctx context.Context, t *trunk.Trunk) error {
	return db.put(ctx, opAdd, t, 0)
}

// UpdateTrunk replaces the whole record of an existing trunk;
// trunk.ENOTFOUND if there is none, trunk.ECONFLICT if ifRevision is not
// 0 and not the stored revision (checked in the write transaction). It
// sets t.Meta (a new revision, updated_at = now, created_at kept) and
// returns once the record is durable.
func (db *DB) UpdateTrunk(ctx context.Context, t *trunk.Trunk, ifRevision uint64) error {
	return db.put(ctx, opUpdate, t, ifRevision)
}

// RemoveTrunk deletes a trunk; trunk.ENOTFOUND if there is none,
// trunk.ECONFLICT if ifRevision is not 0 and not the stored revision. It
// returns once the removal is durable.
func (db *DB) RemoveTrunk(ctx context.Context, id string, ifRevision uint64) error {
	return db.submit(ctx, &op{kind: opRemove, id: id, ifRevision: ifRevision})
}

func (db *DB) put(ctx context.Context, kind opKind, t *trunk.Trunk, ifRevision uint64) error {
	o := &op{kind: kind, id: t.TrunkID, trunk: t.Clone(), ifRevision: ifRevision}
	if err := db.submit(ctx, o); err != nil {
		return err
	}
	t.Meta = o.trunk.Meta
	return nil
}

var errClosed = trunk.Errorf(trunk.EUNAVAILABLE, "store is closed")

// submit queues o and waits for its result. A ctx that ends while o is
// still queued abandons it; once the writer has taken o, o completes.
func (db *DB) submit(ctx context.Context, o *op) error {
	o.err = make(chan error, 1)
	select {
	case <-db.closed:
		return errClosed
	default:
	}
	select {
	case db.writes <- o:
	case <-db.closed:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-o.err:
		return err
	case <-db.done:
		// The writer answered every op it took or found queued; o came
		// after, while Close stopped it.
		select {
		case err := <-o.err:
			return err
		default:
			return errClosed
		}
	}
}

// writer is the one goroutine that writes. It takes every op queued,
// checks them against the newest state, appends them to the write-ahead
// log as one frame with one fdatasync, and acknowledges them; the applier
// commits the frame to bbolt after.
func (db *DB) writer(maxBatch int) {
	defer close(db.done)
	batch := make([]*op, 0, maxBatch)
	for {
		select {
		case o := <-db.writes:
			batch = append(batch[:0], o)
		case <-db.applier.caughtUp:
			db.prune()
			continue
		case <-db.closed:
			db.drain()
			return
		}
	more:
		for len(batch) < maxBatch {
			select {
			case o := <-db.writes:
				batch = append(batch, o)
			default:
				break more
			}
		}
		db.commit(batch)
	}
}

// drain fails the writes still queued at Close.
func (db *DB) drain() {
	for {
		select {
		case o := <-db.writes:
			o.err <- errClosed
		default:
			return
		}
	}
}

// prune drops the pending entries bbolt now holds, and rewinds the log
// when bbolt holds all of it.
func (db *DB) prune() {
	applied := db.applier.appliedSeq()
	db.pending.prune(applied)
	if applied == db.lastSeq.Load() {
		db.wal.rewind()
	}
}

// commit writes batch as one log frame. Each op's own failure (exists,
// not found, conflict) is its alone; a failed append fails them all.
func (db *DB) commit(batch []*op) {
	db.prune()
	results := make([]error, len(batch))
	fr := walFrame{seq: db.lastSeq.Load() + 1, rev: db.rev}
	v := view{db: db, staged: map[string]*op{}}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v.b = tx.Bucket(bucketTrunks)
		for i, o := range batch {
			results[i] = v.apply(o, &fr)
		}
		return nil
	})
	if err == nil {
		err = db.encode(fr.entries, v.puts)
	}
	if err == nil && len(fr.entries) > 0 {
		err = db.append(fr, db.loaded(len(batch)))
	}
	if err != nil {
		for _, o := range batch {
			o.err <- unavailable(err)
		}
		return
	}
	if len(fr.entries) > 0 {
		db.rev = fr.rev
		db.commits++
		db.pending.set(fr.seq, batch, results)
		db.cache.apply(batch, results)
		db.lastSeq.Store(fr.seq)
		db.applier.push(fr)
	}
	for i, o := range batch {
		o.err <- results[i]
	}
}

// append writes fr to the log; when the log is full, it first waits for
// bbolt to hold every frame and rewinds.
func (db *DB) append(fr walFrame, busy bool) error {
	err := db.wal.append(fr, busy)
	if err != errWALFull {
		return err
	}
	if err := db.applier.wait(db.lastSeq.Load()); err != nil {
		return err
	}
	db.prune()
	return db.wal.append(fr, busy)
}

// loaded says whether writes are queuing up: this batch holds more than
// one, or one of the last 16 did. The log then flushes through its
// io_uring (see wal.sync); a lone write now and then does not.
func (db *DB) loaded(batch int) bool {
	switch {
	case batch > 1:
		db.queued = 16
	case db.queued > 0:
		db.queued--
	}
	return db.queued > 0
}

// put is a record a frame's entry must hold: the op's trunk, encoded.
type put struct {
	entry int
	o     *op
}

// encode fills in the records of puts, on every CPU when there are many
// (encoding and sealing are most of a write's CPU). A record that does
// not encode fails the batch: ops after it may have been checked against
// it.
func (db *DB) encode(entries []walEntry, puts []put) error {
	errs := make([]error, len(puts))
	onCPUs(len(puts), 8, func(i int) {
		p := puts[i]
		entries[p.entry].value, errs[i] = db.codec.Encode(p.o.trunk)
	})
	return errors.Join(errs...)
}

// view is the newest state as the writer sees it: the ops staged in this
// batch, then the read cache (which never holds a record older than the
// last acknowledged write), then the pending writes, then bbolt.
type view struct {
	db     *DB
	b      *bolt.Bucket
	staged map[string]*op
	puts   []put // the records to encode once the batch is checked
}

// lookup returns whether id exists and its meta.
func (v *view) lookup(id string) (bool, trunk.Meta, error) {
	if o, ok := v.staged[id]; ok {
		return o.trunk != nil, metaOf(o.trunk), nil
	}
	if t, ok := v.db.cache.peek(id); ok {
		return true, t.Meta, nil
	}
	if e, ok := v.db.pending.get(id); ok {
		return e.t != nil, metaOf(e.t), nil
	}
	old := v.b.Get([]byte(id))
	if old == nil {
		return false, trunk.Meta{}, nil
	}
	m, err := record.ReadMeta(id, old)
	return true, m, err
}

func metaOf(t *trunk.Trunk) trunk.Meta {
	if t == nil {
		return trunk.Meta{}
	}
	return t.Meta
}

// apply checks one op against the view and, when it holds, stages it and
// adds its entry to fr (a record to put is encoded after). An error here
// fails the op only.
func (v *view) apply(o *op, fr *walFrame) error {
	exists, prev, err := v.lookup(o.id)
	switch {
	case err != nil:
		return err
	case o.kind == opAdd && exists:
		return trunk.Errorf(trunk.EEXISTS, "trunk %q already exists", o.id)
	case o.kind != opAdd && !exists:
		return notFound(o.id)
	}
	if err := record.CheckRevision(o.id, prev.Revision, o.ifRevision); err != nil {
		return err
	}
	if o.kind == opRemove {
		fr.entries = append(fr.entries, walEntry{id: o.id})
		v.staged[o.id] = o
		return nil
	}
	now := v.db.now().UTC()
	o.trunk.Meta = trunk.Meta{Revision: fr.rev + 1, CreatedAt: prev.CreatedAt, UpdatedAt: now}
	if o.kind == opAdd {
		o.trunk.Meta.CreatedAt = now
	}
	fr.rev++
	v.puts = append(v.puts, put{entry: len(fr.entries), o: o})
	fr.entries = append(fr.entries, walEntry{id: o.id}) // its value comes from encode
	v.staged[o.id] = o
	return nil
}

// unavailable is the EUNAVAILABLE domain error of a failed write. It
// keeps the disk's error as its cause, for the logs; a client sees only
// the message.
func unavailable(err error) error {
	return trunk.Wrap(trunk.EUNAVAILABLE, err, "store unavailable: cannot write to disk")
}
