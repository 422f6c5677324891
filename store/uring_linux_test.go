//go:build linux && (amd64 || arm64)

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// newRing is a ring for a new file in a temporary directory; the test
// skips where the kernel offers no io_uring (the log then uses fdatasync,
// which every other test covers).
func newRing(t *testing.T) (*uringSyncer, *os.File) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	s, err := newUringSyncer(f)
	if err != nil {
		t.Skipf("no io_uring here: %v", err)
	}
	t.Cleanup(s.close)
	return s, f
}

func TestUringSyncerFlushes(t *testing.T) {
	s, f := newRing(t)
	for i := range 300 { // more than the ring's entries: the rings wrap
		if _, err := f.WriteAt([]byte{byte(i)}, int64(i)); err != nil {
			t.Fatal(err)
		}
		if err := s.sync(); err != nil {
			t.Fatalf("sync %d: %v", i, err)
		}
	}
}

// A flush that fails in the kernel returns the kernel's error.
func TestUringSyncerReportsFailure(t *testing.T) {
	s, f := newRing(t)
	s.fd = int(f.Fd()) + 1000 // a descriptor nothing has open
	if err := s.sync(); !errors.Is(err, unix.EBADF) {
		t.Fatalf("sync of a closed descriptor: %v, want EBADF", err)
	}
	s.fd = int(f.Fd())
	if err := s.sync(); err != nil {
		t.Fatalf("sync after a failure: %v", err)
	}
}

// Concurrent writes go through the ring; after a crash the log gives
// back every acknowledged one, as after any other flush.
func TestLogFlushesThroughRingUnderLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trunks.db")
	db := lagging(t, path, walMaxSize)
	if db.wal.ring == nil {
		t.Skip("no io_uring here")
	}
	if got := db.LogFlush(); got != "io_uring" {
		t.Fatalf("LogFlush = %q", got)
	}
	addConcurrently(t, db, "w", 16, 40)
	if db.wal.ring.flushes == 0 {
		t.Fatal("16 concurrent writers, and no flush went through the ring")
	}
	t.Logf("%d frames, %d flushed through the ring", db.commits, db.wal.ring.flushes)
	crash(db)
	db, err := Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, err := db.Count(); err != nil || n != 16*40 {
		t.Fatalf("after the crash: %d trunks, %v; want %d", n, err, 16*40)
	}
}

// When the ring itself fails (here: its descriptor is gone), the log
// flushes with fdatasync from then on; the writes succeed.
func TestLogFallsBackWhenRingFails(t *testing.T) {
	db := lagging(t, filepath.Join(t.TempDir(), "trunks.db"), walMaxSize)
	defer db.Close()
	if db.wal.ring == nil {
		t.Skip("no io_uring here")
	}
	fd := db.wal.ring.ring
	db.wal.ring.ring = -1
	unix.Close(fd)
	addConcurrently(t, db, "f", 8, 20)
	if got := db.LogFlush(); got != "fdatasync" {
		t.Fatalf("after the ring failed, LogFlush = %q; want fdatasync", got)
	}
	if n, err := db.Count(); err != nil || n != 160 {
		t.Fatalf("Count = %d, %v; want 160", n, err)
	}
}

// addConcurrently adds writers*each trunks from writers goroutines, so
// that writes queue up behind each other's flushes.
func addConcurrently(t *testing.T, db *DB, prefix string, writers, each int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := db.AddTrunk(ctx, sample(fmt.Sprintf("%s%02d-%02d", prefix, w, i))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}
