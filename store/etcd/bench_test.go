package etcd

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/trunkd/trunkd/store"
	"github.com/trunkd/trunkd/store/etcd/etcdtest"
)

// inFlight runs op b.N times from n goroutines (n calls in flight), each
// goroutine on its own trunk index.
func inFlight(b *testing.B, n int, op func(g int) error) {
	var next atomic.Int64
	var failed atomic.Value
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := op(g); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// benchStores are the backends GetTrunk and UpdateTrunk are measured on,
// side by side in one run: trunkd's etcd store, the bbolt store, and
// etcd's own client doing a plain Get and Put of the same record bytes
// (what our layer costs over raw etcd).
type benchStores struct {
	etcd *Store
	bolt *store.DB
	vals [][]byte // raw record bytes of trunk i
}

const benchTrunks = 64

func setupBench(b *testing.B) *benchStores {
	c := etcdtest.Start(b, 3)
	ctx := context.Background()
	s, err := Open(ctx, Config{Endpoints: c.Endpoints(), Prefix: "/bench/"}, testKey)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	db, err := store.Open(filepath.Join(b.TempDir(), "trunkd.db"), testKey)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	bs := &benchStores{etcd: s, bolt: db}
	for i := range benchTrunks {
		tr := sample(fmt.Sprintf("b%02d", i))
		if err := s.AddTrunk(ctx, tr.Clone()); err != nil {
			b.Fatal(err)
		}
		if err := db.AddTrunk(ctx, tr.Clone()); err != nil {
			b.Fatal(err)
		}
		v, _ := s.encode(tr)
		bs.vals = append(bs.vals, v)
	}
	return bs
}

// BenchmarkBackends: GetTrunk and UpdateTrunk at 1, 16 and 64 in flight
// on a 3-member etcd on loopback (trunkd's store and raw clientv3) and on
// bbolt (fsync per commit, concurrent writers share it).
func BenchmarkBackends(b *testing.B) {
	bs := setupBench(b)
	ctx := context.Background()
	id := func(g int) string { return fmt.Sprintf("b%02d", g%benchTrunks) }
	ops := []struct {
		name string
		op   func(g int) error
	}{
		{"Get/etcd", func(g int) error { _, err := bs.etcd.GetTrunk(ctx, id(g)); return err }},
		{"Get/raw-etcd", func(g int) error { _, err := bs.etcd.cli.Get(ctx, bs.etcd.key(id(g))); return err }},
		{"Get/bbolt", func(g int) error { _, err := bs.bolt.GetTrunk(ctx, id(g)); return err }},
		{"Update/etcd", func(g int) error { return bs.etcd.UpdateTrunk(ctx, sample(id(g)), 0) }},
		{"Update/raw-etcd", func(g int) error {
			_, err := bs.etcd.cli.Put(ctx, bs.etcd.key(id(g)), string(bs.vals[g%benchTrunks]))
			return err
		}},
		{"Update/bbolt", func(g int) error { return bs.bolt.UpdateTrunk(ctx, sample(id(g)), 0) }},
	}
	for _, o := range ops {
		for _, n := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/inflight-%d", o.name, n), func(b *testing.B) { inFlight(b, n, o.op) })
		}
	}
}
