package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// snapshotTo writes a snapshot of db to a new file in dir and returns its
// path, checking that exactly the announced size was written.
func snapshotTo(t *testing.T, db *DB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "backup.db")
	var buf bytes.Buffer
	var size int64
	err := db.Snapshot(ctx, func(n int64, write func(io.Writer) error) error {
		size = n
		return write(&buf)
	})
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if int64(buf.Len()) != size {
		t.Fatalf("Snapshot wrote %d bytes; announced %d", buf.Len(), size)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBackupUnderWritesRestores: a snapshot taken while writers go on,
// restored, holds every write acknowledged before the snapshot began, and
// the writers were never blocked by it.
func TestBackupUnderWritesRestores(t *testing.T) {
	db := open(t, "")
	for i := range 100 {
		if err := db.AddTrunk(ctx, sample(fmt.Sprintf("before-%03d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var acked sync.Map // ids whose AddTrunk returned
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				id := fmt.Sprintf("during-%d-%05d", w, i)
				if err := db.AddTrunk(ctx, sample(id)); err != nil {
					t.Error(err)
					return
				}
				acked.Store(id, true)
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // the writers are going
	var before []string
	acked.Range(func(k, _ any) bool { before = append(before, k.(string)); return true })
	dir := t.TempDir()
	backup := snapshotTo(t, db, dir)
	stop.Store(true)
	wg.Wait()

	restored := filepath.Join(dir, "data", "trunkd.db")
	os.MkdirAll(filepath.Dir(restored), 0o700)
	if err := Restore(backup, restored, testKey, false); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	rdb := open(t, restored)
	for _, id := range append(before, "before-000", "before-099") {
		got, err := rdb.GetTrunk(ctx, id)
		if err != nil {
			t.Fatalf("restored GetTrunk(%s) = %v; want the write acknowledged before the backup", id, err)
		}
		if got.SIPPassword != "pw-"+id {
			t.Errorf("restored %s sip_password = %q; want it unsealed with the key", id, got.SIPPassword)
		}
	}
	t.Logf("%d writes acknowledged before the snapshot, all restored", len(before))
}

func TestRestoreRefusals(t *testing.T) {
	db := open(t, "")
	for i := range 50 {
		db.AddTrunk(ctx, sample(fmt.Sprintf("t%02d", i)))
	}
	dir := t.TempDir()
	good := snapshotTo(t, db, dir)
	full, _ := os.ReadFile(good)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	truncated := write("truncated.db", full[:len(full)/2])
	garbage := write("garbage.db", bytes.Repeat([]byte("not a store "), 2000))
	empty := write("empty.db", nil)
	foreign := filepath.Join(dir, "foreign.db")
	fdb, _ := bolt.Open(foreign, 0o600, nil)
	fdb.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("users")); return err })
	fdb.Close()
	otherKey := bytes.Repeat([]byte{7}, KeySize)

	existing := filepath.Join(t.TempDir(), "trunkd.db")
	os.WriteFile(existing, []byte("old"), 0o600)
	live := db.Path()

	for _, c := range []struct {
		name, from, to string
		key            []byte
		force          bool
		want           string
	}{
		{"truncated", truncated, "", testKey, false, "truncated"},
		{"garbage", garbage, "", testKey, false, "not a trunkd database"},
		{"empty", empty, "", testKey, false, "empty"},
		{"another program's bbolt", foreign, "", testKey, false, "another program"},
		{"another key", good, "", otherKey, false, "key"},
		{"existing without --force", good, existing, testKey, false, "--force"},
		{"live store, even with --force", good, live, testKey, true, "in use"},
	} {
		to := c.to
		if to == "" {
			to = filepath.Join(t.TempDir(), "trunkd.db")
		}
		before, _ := os.ReadFile(to)
		err := Restore(c.from, to, c.key, c.force)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Restore() = %v; want an error saying %q", c.name, err, c.want)
		}
		after, _ := os.ReadFile(to)
		if !bytes.Equal(before, after) {
			t.Errorf("%s: Restore changed %s", c.name, to)
		}
		if _, err := os.Stat(to + ".restore"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: Restore left %s.restore behind", c.name, to)
		}
	}
	if err := Restore(good, existing, testKey, true); err != nil {
		t.Errorf("Restore(--force) over a stopped store = %v; want it replaced", err)
	}
}

// BenchmarkSnapshot copies a store of 10 000 trunks through SHA-256, as
// a Backup does; it reports the copy's rate.
func BenchmarkSnapshot(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "trunkd.db"), testKey)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var wg sync.WaitGroup
	for i := range 10000 {
		wg.Go(func() { db.AddTrunk(ctx, sample(fmt.Sprintf("t%05d", i))) })
	}
	wg.Wait()
	var size int64
	b.ResetTimer()
	for b.Loop() {
		h := sha256.New()
		db.Snapshot(ctx, func(n int64, write func(io.Writer) error) error {
			size = n
			return write(h)
		})
	}
	b.SetBytes(size)
	b.ReportMetric(float64(size)/1e6, "MB/store")
}

// TestRestoreOverCorruptStore: the store a restore replaces is usually
// damaged; with --force it is replaced without being parsed.
func TestRestoreOverCorruptStore(t *testing.T) {
	db := open(t, "")
	db.AddTrunk(ctx, sample("t1"))
	good := snapshotTo(t, db, t.TempDir())
	full, _ := os.ReadFile(good)
	target := filepath.Join(t.TempDir(), "trunkd.db")
	os.WriteFile(target, full[:len(full)/3], 0o600) // cut short: bbolt would read past its end
	if err := Restore(good, target, testKey, true); err != nil {
		t.Fatalf("Restore --force over a truncated store = %v", err)
	}
	rdb := open(t, target)
	if _, err := rdb.GetTrunk(ctx, "t1"); err != nil {
		t.Errorf("GetTrunk after restore = %v", err)
	}
}
