package store

import (
	"context"

	"github.com/trunkd/trunkd/trunk"
	bolt "go.etcd.io/bbolt"
)

// ViewTrunks calls fn with each trunk of the page q selects, in id order,
// as ListTrunks lists them but without copying them: fn must not modify
// t. It may keep it: the cache, the pending writes and a record decoded
// here never change a trunk once a write has stored it (the next write
// replaces it). fn runs inside the read transaction, so it should be
// quick. q.Keep sees the cached record, so a
// filtered scan neither decodes nor copies the trunks it skips once they
// are cached; a record decoded here is cached too. Writes bbolt does not
// hold yet come from the pending set, merged in order.
func (db *DB) ViewTrunks(ctx context.Context, q trunk.ListQuery, fn func(t *trunk.Trunk)) error {
	gen := db.cache.generation()
	newer := db.pending.after(q.After) // before the transaction: see pending
	return db.bolt.View(func(tx *bolt.Tx) error {
		c := aheadCursor{c: tx.Bucket(bucketTrunks).Cursor(), cache: &db.cache}
		k, v, hit := c.seek(q.After, q.Limit)
		for n, kept := 1, 0; (k != nil || len(newer) > 0) && kept < q.Limit; n++ {
			if n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			var t *trunk.Trunk
			if len(newer) > 0 && (k == nil || newer[0].id <= string(k)) {
				if k != nil && newer[0].id == string(k) {
					k, v, hit = c.next(q.Limit - kept)
				}
				t, newer = newer[0].t, newer[1:]
				if t == nil {
					continue // removed
				}
			} else {
				if t = hit; t == nil {
					var err error
					if t, err = db.decodeAndCache(gen, k, v); err != nil {
						return err
					}
				}
				k, v, hit = c.next(q.Limit - kept)
			}
			if q.Keeps(t) {
				kept++
				fn(t)
			}
		}
		return nil
	})
}

// aheadWindow is how many records aheadCursor reads ahead at most.
const aheadWindow = 64

// aheadCursor walks a bucket a window of records at a time and looks the
// window's keys up in the read cache together, under one lock. At 100 000
// trunks each lookup misses the CPU's caches; one after another they took
// half a microsecond each, and a page of 100 spent 50 µs on them, where
// lookups side by side overlap their misses.
type aheadCursor struct {
	c          *bolt.Cursor
	cache      *cache
	keys, vals [aheadWindow][]byte
	hits       [aheadWindow]*trunk.Trunk
	i, n       int
}

// seek positions the cursor on the first key after after, reading ahead
// up to want records; it returns that record and its cached decoding (nil
// when not cached).
func (a *aheadCursor) seek(after string, want int) (k, v []byte, hit *trunk.Trunk) {
	k, v = a.c.Seek([]byte(after))
	if k != nil && string(k) == after {
		k, v = a.c.Next()
	}
	a.fill(k, v, want)
	return a.current()
}

// next moves on one record; want is how many the caller still looks for,
// which bounds the next window (a filter may need more).
func (a *aheadCursor) next(want int) (k, v []byte, hit *trunk.Trunk) {
	if a.i++; a.i >= a.n {
		k, v = a.c.Next()
		a.fill(k, v, want)
	}
	return a.current()
}

// fill makes k, v and up to want-1 records after it the window, with
// their cached decodings.
func (a *aheadCursor) fill(k, v []byte, want int) {
	a.i, a.n = 0, 0
	for k != nil {
		a.keys[a.n], a.vals[a.n] = k, v
		if a.n++; a.n == min(max(want, 1), aheadWindow) {
			break
		}
		k, v = a.c.Next()
	}
	a.cache.peekKeys(a.keys[:a.n], a.hits[:a.n])
}

func (a *aheadCursor) current() (k, v []byte, hit *trunk.Trunk) {
	if a.i >= a.n {
		return nil, nil, nil
	}
	return a.keys[a.i], a.vals[a.i], a.hits[a.i]
}
