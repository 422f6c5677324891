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
		c := tx.Bucket(bucketTrunks).Cursor()
		k, v := c.Seek([]byte(q.After))
		if k != nil && string(k) == q.After {
			k, v = c.Next()
		}
		for n, kept := 1, 0; (k != nil || len(newer) > 0) && kept < q.Limit; n++ {
			if n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			var t *trunk.Trunk
			if len(newer) > 0 && (k == nil || newer[0].id <= string(k)) {
				if k != nil && newer[0].id == string(k) {
					k, v = c.Next()
				}
				t, newer = newer[0].t, newer[1:]
				if t == nil {
					continue // removed
				}
			} else {
				var err error
				if t, err = db.cached(gen, k, v); err != nil {
					return err
				}
				k, v = c.Next()
			}
			if q.Keeps(t) {
				kept++
				fn(t)
			}
		}
		return nil
	})
}
