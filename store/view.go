package store

import (
	"context"

	"github.com/trunkd/trunkd/trunk"
	bolt "go.etcd.io/bbolt"
)

// ViewTrunks calls fn with each trunk of the page q selects, in id order,
// as ListTrunks lists them but without copying them: fn must neither
// modify t nor keep it once it returns. fn runs inside the read
// transaction, so it should be quick.
func (db *DB) ViewTrunks(ctx context.Context, q trunk.ListQuery, fn func(t *trunk.Trunk)) error {
	gen := db.cache.generation()
	return db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketTrunks).Cursor()
		k, v := c.Seek([]byte(q.After))
		if k != nil && string(k) == q.After {
			k, v = c.Next()
		}
		for n, kept := 0, 0; k != nil && kept < q.Limit; k, v = c.Next() {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			t, ok := db.cache.peek(string(k))
			if !ok {
				var err error
				if t, err = db.codec.Decode(string(k), v); err != nil {
					return err
				}
				db.cache.fill(gen, t) // the next scan skips decoding it
			}
			if q.Keeps(t) {
				kept++
				fn(t)
			}
		}
		return nil
	})
}
