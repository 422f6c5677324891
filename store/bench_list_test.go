package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/trunkd/trunkd/trunk"
	bolt "go.etcd.io/bbolt"
)

// BenchmarkListFiltered100k measures one filtered ListTrunks page (limit
// 100) over 100 000 stored trunks, the read cache warm (a scan caches what
// it decodes; the cost of that first scan after open is logged). The
// filter runs on the cached record, before any copy, so a page costs one
// cursor walk over the trunks it must look at: few when matches are
// dense, all of them when they are rare or absent (the worst case).
//
//	name-prefix-dense   1 in 2 trunks match: the walk stops after ~200
//	name-exact-rare     1 in 1000 match: the walk covers the whole store
//	org                 1 in 10 (an organization's page)
//	created-after-none  no trunk matches: the whole store, nothing returned
func BenchmarkListFiltered100k(b *testing.B) {
	const n = 100_000
	path := filepath.Join(b.TempDir(), "list.db")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	db, err := Open(path, testKey)
	if err != nil {
		b.Fatal(err)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketTrunks)
		for i := range n {
			t := sample(fmt.Sprintf("t%06d", i))
			t.Name = fmt.Sprintf("%s-%d", []string{"sales", "support"}[i%2], i%1000)
			t.OrganizationID = fmt.Sprintf("org-%d", i%10)
			t.Meta = trunk.Meta{Revision: uint64(i + 1), CreatedAt: base.Add(time.Duration(i) * time.Second), UpdatedAt: base}
			v, err := db.codec.Encode(t)
			if err != nil {
				return err
			}
			if err := bk.Put([]byte(t.TrunkID), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	filters := []struct {
		name string
		f    trunk.Filter
	}{
		{"name-prefix-dense", trunk.Filter{NamePrefix: "sales-"}},
		{"name-exact-rare", trunk.Filter{Name: "support-7"}},
		{"org", trunk.Filter{Org: "org-3"}},
		{"created-after-none", trunk.Filter{CreatedAfter: base.Add(365 * 24 * time.Hour)}},
	}
	db.Close()
	if db, err = Open(path, testKey); err != nil { // an empty cache, as after a restart
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	if l, err := db.ListTrunks(ctx, trunk.ListQuery{Limit: 100, Keep: filters[3].f.Keeps}); err != nil || len(l) != 0 {
		b.Fatal(l, err)
	}
	b.Logf("first filtered scan of %d trunks after open (decodes and caches each): %v", n, time.Since(start))
	for _, f := range filters {
		b.Run(f.name, func(b *testing.B) {
			q := trunk.ListQuery{Limit: 100, Keep: f.f.Keeps}
			for b.Loop() {
				if _, err := db.ListTrunks(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
