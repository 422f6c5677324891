package store

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkUpdateTrunk measures durable full-record replacements at 1, 16
// and 64 concurrent writers: through the store (grouped into write-ahead
// log frames, one fdatasync each), and, for comparison, with one bbolt
// transaction (one fsync pair) per write.
func BenchmarkUpdateTrunk(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("grouped/writers=%d", writers), func(b *testing.B) {
			db := benchDB(b, 1000)
			runWriters(b, writers, func(id string) error { return db.UpdateTrunk(ctx, sample(id), 0) })
		})
		b.Run(fmt.Sprintf("tx-per-write/writers=%d", writers), func(b *testing.B) {
			db := benchDB(b, 1000)
			runWriters(b, writers, func(id string) error {
				v, err := db.codec.Encode(sample(id))
				if err != nil {
					return err
				}
				return db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketTrunks).Put([]byte(id), v) })
			})
		})
	}
}

func benchDB(b *testing.B, n int) *DB {
	b.Helper()
	db, err := Open(filepath.Join(b.TempDir(), "bench.db"), testKey)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	for i := range n {
		if err := db.AddTrunk(ctx, sample(fmt.Sprintf("t%04d", i))); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

// runWriters runs b.N writes spread over writers goroutines and reports
// writes per second.
func runWriters(b *testing.B, writers int, write func(id string) error) {
	b.SetParallelism((writers + 1) / 2) // GOMAXPROCS=2 on the target machine
	if writers == 1 {
		b.SetParallelism(1)
	}
	var seq atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("t%04d", seq.Add(1)%1000)
			if err := write(id); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

func BenchmarkGetTrunk(b *testing.B) {
	db := benchDB(b, 1000)
	var seq atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.GetTrunk(ctx, fmt.Sprintf("t%04d", seq.Add(1)%1000)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
