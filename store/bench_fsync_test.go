//go:build linux

package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkDiskFsync measures the disk's own durable-write ceiling, the
// way the store's write-ahead log appends on Linux: write in place at an
// offset of an already allocated file, then fdatasync. One write per
// fsync cannot go faster; a bbolt commit is two of these (the dirty
// pages, then the meta page); grouped writes are how BenchmarkUpdateTrunk
// goes past it with many writers.
//
// writers=N runs N goroutines, each with its own file, all in b.TempDir()
// as the store benchmarks are; shared/writers=N runs N goroutines writing
// their own pages of one file and syncing its one descriptor, so the
// kernel may share a journal commit among them. Each reports fsyncs/s and
// the p50-µs and p99-µs of one write+fdatasync.
func BenchmarkDiskFsync(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			files := make([]*os.File, writers)
			for w := range files {
				files[w] = fsyncFile(b, filepath.Join(b.TempDir(), fmt.Sprintf("f%d", w)), fsyncPages)
			}
			fsyncLoop(b, files, false)
		})
	}
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("shared/writers=%d", writers), func(b *testing.B) {
			f := fsyncFile(b, filepath.Join(b.TempDir(), "shared"), max(fsyncPages, writers))
			files := make([]*os.File, writers)
			for w := range files {
				files[w] = f
			}
			fsyncLoop(b, files, true)
		})
	}
}

// fsyncPages is how many pages each writer cycles over, so that writes
// land on different blocks as bbolt's do.
const fsyncPages = 64

// fsyncFile creates a file of pages zeroed pages, durable, so that the
// timed writes overwrite allocated blocks and fdatasync has no size or
// allocation change to flush, as in a bbolt file past its growth.
func fsyncFile(b *testing.B, path string, pages int) *os.File {
	b.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	if _, err := f.Write(make([]byte, pages*os.Getpagesize())); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	return f
}

// fsyncLoop runs b.N page writes, each followed by fdatasync, from one
// goroutine per entry of files. With shared, writer w writes page w of the
// one file (then w+writers, ...); else each writer cycles over its file's
// pages.
func fsyncLoop(b *testing.B, files []*os.File, shared bool) {
	page := os.Getpagesize()
	writers := len(files)
	var next atomic.Int64
	lat := make([][]time.Duration, writers)
	var wg sync.WaitGroup
	b.ResetTimer()
	for w, f := range files {
		wg.Go(func() {
			buf := make([]byte, page)
			for n := 0; ; n++ {
				if next.Add(1) > int64(b.N) {
					return
				}
				off := int64(n%fsyncPages) * int64(page)
				if shared {
					off = int64((w+n*writers)%max(fsyncPages, writers)) * int64(page)
				}
				buf[0], buf[1] = byte(n), byte(w)
				start := time.Now()
				if _, err := f.WriteAt(buf, off); err != nil {
					b.Error(err)
					return
				}
				if err := syscall.Fdatasync(int(f.Fd())); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/b.Elapsed().Seconds(), "fsyncs/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op")
}
