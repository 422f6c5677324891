package store

import (
	"context"

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
	return <-o.err
}

// writer is the one goroutine that writes. It takes every op queued,
// applies them in one transaction and commits once.
func (db *DB) writer(maxBatch int) {
	defer close(db.done)
	batch := make([]*op, 0, maxBatch)
	for {
		select {
		case o := <-db.writes:
			batch = append(batch[:0], o)
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

// commit applies batch in one transaction. Each op's own failure (exists,
// not found, conflict) is its alone; a failed commit fails them all.
func (db *DB) commit(batch []*op) {
	results := make([]error, len(batch))
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTrunks)
		for i, o := range batch {
			results[i] = db.apply(b, o)
		}
		return nil
	})
	db.commits++
	if err == nil {
		db.cache.apply(batch, results)
	}
	for i, o := range batch {
		if err != nil {
			o.err <- unavailable(err)
		} else {
			o.err <- results[i]
		}
	}
}

// apply runs one op inside a write transaction. An error here fails the op
// only; a bbolt error on Put/Delete is treated as the disk's.
func (db *DB) apply(b *bolt.Bucket, o *op) error {
	old := b.Get([]byte(o.id))
	switch {
	case o.kind == opAdd && old != nil:
		return trunk.Errorf(trunk.EEXISTS, "trunk %q already exists", o.id)
	case o.kind != opAdd && old == nil:
		return notFound(o.id)
	}
	var prev trunk.Meta
	if old != nil {
		var err error
		if prev, err = record.ReadMeta(o.id, old); err != nil {
			return err
		}
	}
	if err := record.CheckRevision(o.id, prev.Revision, o.ifRevision); err != nil {
		return err
	}
	if o.kind == opRemove {
		return diskErr(b.Delete([]byte(o.id)))
	}
	rev, err := b.NextSequence()
	if err != nil {
		return unavailable(err)
	}
	now := db.now().UTC()
	o.trunk.Meta = trunk.Meta{Revision: rev, CreatedAt: prev.CreatedAt, UpdatedAt: now}
	if o.kind == opAdd {
		o.trunk.Meta.CreatedAt = now
	}
	v, err := db.codec.Encode(o.trunk)
	if err != nil {
		return err
	}
	return diskErr(b.Put([]byte(o.id), v))
}

func diskErr(err error) error {
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// unavailable is the EUNAVAILABLE domain error of a failed write. It
// keeps the disk's error as its cause, for the logs; a client sees only
// the message.
func unavailable(err error) error {
	return trunk.Wrap(trunk.EUNAVAILABLE, err, "store unavailable: cannot write to disk")
}
