package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trunkd/trunkd/trunk"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var testKey = bytes.Repeat([]byte{0x42}, KeySize)

// open opens a store in a temp dir and checks its consistency when the
// test ends.
func open(t testing.TB, path string) *DB {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "trunkd.db")
	}
	db, err := Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Check(); err != nil && !errors.Is(err, berrors.ErrDatabaseNotOpen) {
			t.Errorf("Check: %v", err)
		}
		db.Close()
	})
	return db
}

func sample(id string) *trunk.Trunk {
	t := trunk.Defaults()
	t.TrunkID = id
	t.DisplayName = "Trunk " + id
	t.SIPPassword = "pw-" + id
	t.APIBearerToken = "tok-" + id
	return &t
}

var ctx = context.Background()

func TestCRUD(t *testing.T) {
	db := open(t, "")
	a := sample("a")
	if err := db.AddTrunk(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := db.AddTrunk(ctx, a); trunk.ErrorCode(err) != trunk.EEXISTS {
		t.Errorf("AddTrunk twice = %v; want %s", err, trunk.EEXISTS)
	}
	got, err := db.GetTrunk(ctx, "a")
	if err != nil || got.SIPPassword != "pw-a" || got.APIBearerToken != "tok-a" || got.DisplayName != "Trunk a" {
		t.Errorf("GetTrunk = %+v, %v; want the record with its secrets", got, err)
	}
	if got.MediaIPCIDRs == nil || len(got.CodecPreferences) != 3 {
		t.Errorf("GetTrunk lists = %v / %v; want non-nil defaults", got.MediaIPCIDRs, got.CodecPreferences)
	}
	a.DisplayName, a.SIPPassword = "changed", ""
	if err := db.UpdateTrunk(ctx, a, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.GetTrunk(ctx, "a"); got.DisplayName != "changed" || got.SIPPassword != "" {
		t.Errorf("after UpdateTrunk = %+v", got)
	}
	if err := db.UpdateTrunk(ctx, sample("nope"), 0); trunk.ErrorCode(err) != trunk.ENOTFOUND {
		t.Errorf("UpdateTrunk unknown = %v; want %s", err, trunk.ENOTFOUND)
	}
	if err := db.RemoveTrunk(ctx, "a", 0); err != nil {
		t.Fatal(err)
	}
	if err := db.RemoveTrunk(ctx, "a", 0); trunk.ErrorCode(err) != trunk.ENOTFOUND {
		t.Errorf("RemoveTrunk twice = %v; want %s", err, trunk.ENOTFOUND)
	}
	if _, err := db.GetTrunk(ctx, "a"); trunk.ErrorCode(err) != trunk.ENOTFOUND {
		t.Errorf("GetTrunk removed = %v; want %s", err, trunk.ENOTFOUND)
	}
}

func TestListPaging(t *testing.T) {
	db := open(t, "")
	const n = 2500
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := db.AddTrunk(ctx, sample(fmt.Sprintf("t%05d", i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var seen []string
	for after := ""; ; {
		page, err := db.ListTrunks(ctx, trunk.ListQuery{After: after, Limit: 333})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, tr := range page {
			seen = append(seen, tr.TrunkID)
		}
		after = page[len(page)-1].TrunkID
	}
	if len(seen) != n {
		t.Fatalf("paged through %d trunks; want %d", len(seen), n)
	}
	for i, id := range seen {
		if want := fmt.Sprintf("t%05d", i); id != want {
			t.Fatalf("trunk %d = %s; want %s", i, id, want)
		}
	}
	if c, _ := db.Count(); c != n {
		t.Errorf("Count = %d; want %d", c, n)
	}
	var each int
	db.ForEachTrunk(ctx, func(*trunk.Trunk) error { each++; return nil })
	if each != n {
		t.Errorf("ForEachTrunk visited %d; want %d", each, n)
	}
}

// TestConcurrentWritersGrouped checks that concurrent writes are all
// acknowledged, durable across reopen with their last content, and share
// commits.
func TestConcurrentWritersGrouped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trunkd.db")
	db, err := Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	const writers, writes = 64, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			tr := sample(fmt.Sprintf("w%02d", w))
			if err := db.AddTrunk(ctx, tr); err != nil {
				t.Error(err)
				return
			}
			for i := range writes - 1 {
				tr.DisplayName = fmt.Sprintf("v%d", i+1)
				if err := db.UpdateTrunk(ctx, tr, 0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	db.Close()
	if db.commits >= writers*writes {
		t.Errorf("%d writes took %d commits; want them grouped", writers*writes, db.commits)
	}
	t.Logf("%d writes in %d commits", writers*writes, db.commits)
	db = open(t, path)
	for w := range writers {
		got, err := db.GetTrunk(ctx, fmt.Sprintf("w%02d", w))
		if err != nil || got.DisplayName != fmt.Sprintf("v%d", writes-1) {
			t.Errorf("after reopen w%02d = %+v, %v; want v%d", w, got, err, writes-1)
		}
	}
}

func TestBatchOpsFailAlone(t *testing.T) {
	db := open(t, "")
	db.AddTrunk(ctx, sample("x"))
	db.AddTrunk(ctx, sample("z"))
	ops := []*op{
		{kind: opAdd, id: "x", trunk: sample("x")}, // exists
		{kind: opRemove, id: "missing"},
		{kind: opRemove, id: "x"},
		{kind: opAdd, id: "y", trunk: sample("y")},
		{kind: opUpdate, id: "y", trunk: sample("y")},
		{kind: opUpdate, id: "z", trunk: sample("z"), ifRevision: 1 << 40}, // conflict
	}
	for _, o := range ops {
		o.err = make(chan error, 1)
	}
	pauseWriter(t, db)
	db.commit(ops) // in one batch: y is added, then updated
	want := []trunk.Code{trunk.EEXISTS, trunk.ENOTFOUND, "", "", "", trunk.ECONFLICT}
	for i, o := range ops {
		if got := trunk.ErrorCode(<-o.err); got != want[i] {
			t.Errorf("op %d = %q; want %q", i, got, want[i])
		}
	}
}

// pauseWriter stops db's writer goroutine until the test ends, so that the
// test may call commit itself.
func pauseWriter(t *testing.T, db *DB) {
	close(db.closed)
	<-db.done
	db.closed, db.done = make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { go db.writer(1000) })
}

func TestSecretsEncryptedAtRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trunkd.db")
	db := open(t, path)
	tr := sample("enc")
	tr.SIPPassword = "Zebra-Password-71"
	tr.APIBearerToken = "Bearer-Token-Marker-93"
	if err := db.AddTrunk(ctx, tr); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Zebra-Password-71", "Bearer-Token-Marker-93"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("database file contains %q in clear", s)
		}
	}
	if !bytes.Contains(raw, []byte("Trunk enc")) {
		t.Error("database file lacks the display name; the test reads the wrong file")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("database mode = %o; want 600", fi.Mode().Perm())
	}
	other := bytes.Repeat([]byte{1}, KeySize)
	if _, err := Open(path, other); err == nil || !strings.Contains(err.Error(), "another secret key") {
		t.Errorf("Open with another key = %v; want a refusal naming the key", err)
	}
}

// TestSealedValueBoundToRecord moves a sealed password to another trunk: it
// must not decrypt there.
func TestSealedValueBoundToRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trunkd.db")
	db, _ := Open(path, testKey)
	db.AddTrunk(ctx, sample("a"))
	db.AddTrunk(ctx, sample("b"))
	db.catchUp() // the records in bbolt, not only in the log
	db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTrunks)
		va := append([]byte(nil), b.Get([]byte("a"))...)
		return b.Put([]byte("b"), bytes.Replace(va, []byte(`"trunk_id":"a"`), []byte(`"trunk_id":"b"`), 1))
	})
	db.Close()
	db = open(t, path) // an empty read cache
	if _, err := db.GetTrunk(ctx, "b"); err == nil {
		t.Error("a secret sealed for trunk a decrypted as trunk b's")
	}
}

func TestOpenRefusesForeignFiles(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 1000), 0o600)
	foreign := filepath.Join(dir, "foreign.db")
	fdb, err := bolt.Open(foreign, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	fdb.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("users")); return err })
	fdb.Close()
	// another program's file without a synced freelist: bbolt opened
	// read-write would write one into it
	nofree := filepath.Join(dir, "nofreelist.db")
	ndb, err := bolt.Open(nofree, 0o600, &bolt.Options{NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ndb.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("users")); return err })
	ndb.Close()
	// trunkd's own database cut short: bbolt would read past its end
	truncated := filepath.Join(dir, "truncated.db")
	tdb := open(t, truncated)
	for i := range 300 {
		tr := trunk.Defaults()
		tr.TrunkID, tr.GatewayIP, tr.DisplayName = fmt.Sprintf("t%03d", i), "192.0.2.1", strings.Repeat("x", 200)
		if err := tdb.AddTrunk(context.Background(), &tr); err != nil {
			t.Fatal(err)
		}
	}
	tdb.Close()
	full, _ := os.ReadFile(truncated)
	os.WriteFile(truncated, full[:len(full)/4], 0o600)
	for _, path := range []string{garbage, foreign, nofree, truncated} {
		before, _ := os.ReadFile(path)
		if db, err := Open(path, testKey); err == nil {
			db.Close()
			t.Errorf("Open(%s) succeeded; want a refusal", filepath.Base(path))
		} else if !strings.Contains(err.Error(), "not modified") {
			t.Errorf("Open(%s) = %v; want a message saying the file was not modified", filepath.Base(path), err)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Errorf("Open(%s) modified the file", filepath.Base(path))
		}
	}
	if _, err := Open(dir, testKey); err == nil {
		t.Error("Open of a directory succeeded")
	}
}

func TestOpenEmptyFileCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	os.WriteFile(path, nil, 0o600)
	db := open(t, path)
	if err := db.AddTrunk(ctx, sample("a")); err != nil {
		t.Fatal(err)
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trunkd.db")
	open(t, path)
	_, err := Open(path, testKey)
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("second Open = %v; want 'in use by another process'", err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trunkd.db")
	db, _ := Open(path, testKey)
	db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, []byte{SchemaVersion + 1}) })
	db.Close()
	if _, err := Open(path, testKey); err == nil || !strings.Contains(err.Error(), "schema version") {
		t.Errorf("Open of a newer schema = %v; want a refusal", err)
	}
}

func TestWritesAfterClose(t *testing.T) {
	db, _ := Open(filepath.Join(t.TempDir(), "trunkd.db"), testKey)
	db.Close()
	if err := db.AddTrunk(ctx, sample("a")); trunk.ErrorCode(err) != trunk.EUNAVAILABLE {
		t.Errorf("AddTrunk after Close = %v; want %s", err, trunk.EUNAVAILABLE)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestUnavailableKeepsCause(t *testing.T) {
	cause := errors.New("no space left on device")
	err := unavailable(cause)
	if trunk.ErrorCode(err) != trunk.EUNAVAILABLE || !errors.Is(err, cause) {
		t.Errorf("unavailable(%v) = %v; want EUNAVAILABLE wrapping the cause", cause, err)
	}
	if strings.Contains(err.Error(), cause.Error()) {
		t.Errorf("unavailable(%v).Error() = %q; want the disk's text kept out of the message", cause, err)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil || len(k1) != KeySize {
		t.Fatalf("create: %v, %d bytes", err, len(k1))
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %o; want 600", fi.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Errorf("reload = %x, %v; want the same key", k2, err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadOrCreateKey(path); err == nil {
		t.Error("a world-readable key was accepted")
	}
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("zz"), 0o600)
	if _, err := LoadOrCreateKey(bad); err == nil {
		t.Error("a malformed key was accepted")
	}
}

// FuzzDecodeRecord: any stored value decodes to a trunk or an error.
func FuzzDecodeRecord(f *testing.F) {
	db, err := Open(filepath.Join(f.TempDir(), "fuzz.db"), testKey)
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	v, _ := db.codec.Encode(sample("a"))
	f.Add(v)
	f.Add([]byte{SchemaVersion, '{', '}'})
	f.Add([]byte{SchemaVersion, '[', ']'})
	f.Fuzz(func(t *testing.T, v []byte) {
		tr, err := db.codec.Decode("a", v)
		if err == nil && tr.TrunkID != "a" {
			t.Fatalf("decoded trunk %q for key a", tr.TrunkID)
		}
	})
}

// TestCacheFollowsWrites checks that reads see every acknowledged write,
// whether or not the record was cached before.
func TestCacheFollowsWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trunkd.db")
	db, _ := Open(path, testKey)
	db.AddTrunk(ctx, sample("a"))
	db.Close()
	db = open(t, path)
	got, _ := db.GetTrunk(ctx, "a") // fills the cache from disk
	got.DisplayName = "mutated by caller"
	if again, _ := db.GetTrunk(ctx, "a"); again.DisplayName != "Trunk a" {
		t.Errorf("a caller's change leaked into the cache: %q", again.DisplayName)
	}
	tr := sample("a")
	tr.DisplayName = "v2"
	db.UpdateTrunk(ctx, tr, 0)
	if got, _ := db.GetTrunk(ctx, "a"); got.DisplayName != "v2" {
		t.Errorf("GetTrunk after UpdateTrunk = %q; want v2", got.DisplayName)
	}
	db.RemoveTrunk(ctx, "a", 0)
	if _, err := db.GetTrunk(ctx, "a"); trunk.ErrorCode(err) != trunk.ENOTFOUND {
		t.Errorf("GetTrunk after RemoveTrunk = %v; want %s", err, trunk.ENOTFOUND)
	}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			tr := sample("r")
			tr.DisplayName = fmt.Sprint(i)
			if i == 0 {
				db.AddTrunk(ctx, tr)
			}
			db.GetTrunk(ctx, "r")
		})
	}
	wg.Wait()
	final := sample("r")
	final.DisplayName = "final"
	if err := db.UpdateTrunk(ctx, final, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.GetTrunk(ctx, "r"); got.DisplayName != "final" {
		t.Errorf("GetTrunk after concurrent reads and an update = %q; want final", got.DisplayName)
	}
}

// TestRevisions: every write gets a new revision (never reused, even after
// a remove and re-add), created_at is kept by updates, and a write naming
// a stale revision is ECONFLICT and changes nothing.
func TestRevisions(t *testing.T) {
	clock := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	db, err := Open(filepath.Join(t.TempDir(), "rev.db"), testKey, WithClock(func() time.Time { clock = clock.Add(time.Second); return clock }))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := sample("a")
	if err := db.AddTrunk(ctx, a); err != nil {
		t.Fatal(err)
	}
	added := a.Meta
	if added.Revision == 0 || !added.CreatedAt.Equal(added.UpdatedAt) || added.CreatedAt.IsZero() {
		t.Fatalf("Meta after add = %+v", added)
	}
	a.DisplayName = "v2"
	if err := db.UpdateTrunk(ctx, a, added.Revision); err != nil {
		t.Fatalf("UpdateTrunk(current revision) = %v", err)
	}
	if a.Meta.Revision == added.Revision || !a.Meta.CreatedAt.Equal(added.CreatedAt) || !a.Meta.UpdatedAt.After(added.UpdatedAt) {
		t.Errorf("Meta after update = %+v; was %+v", a.Meta, added)
	}
	stale := sample("a")
	stale.DisplayName = "lost update"
	if err := db.UpdateTrunk(ctx, stale, added.Revision); trunk.ErrorCode(err) != trunk.ECONFLICT {
		t.Errorf("UpdateTrunk(stale revision) = %v; want %s", err, trunk.ECONFLICT)
	}
	if err := db.RemoveTrunk(ctx, "a", added.Revision); trunk.ErrorCode(err) != trunk.ECONFLICT {
		t.Errorf("RemoveTrunk(stale revision) = %v; want %s", err, trunk.ECONFLICT)
	}
	if got, _ := db.GetTrunk(ctx, "a"); got.DisplayName != "v2" || got.Meta != a.Meta {
		t.Errorf("after refused writes = %q %+v; want v2 %+v", got.DisplayName, got.Meta, a.Meta)
	}
	if err := db.RemoveTrunk(ctx, "a", a.Meta.Revision); err != nil {
		t.Fatal(err)
	}
	again := sample("a")
	db.AddTrunk(ctx, again)
	if again.Meta.Revision <= a.Meta.Revision {
		t.Errorf("revision after re-add = %d; want above %d", again.Meta.Revision, a.Meta.Revision)
	}
	reopened := reopen(t, db)
	if got, _ := reopened.GetTrunk(ctx, "a"); got.Meta != again.Meta {
		t.Errorf("Meta after reopen = %+v; want %+v", got.Meta, again.Meta)
	}
}

func reopen(t *testing.T, db *DB) *DB {
	t.Helper()
	db.Close()
	return open(t, db.Path())
}

// A write that passes submit's closed check just before Close, and is
// queued only after the writer has answered what was queued and stopped,
// is refused as closed; it does not wait forever for an answer.
func TestWriteQueuedAfterWriterStoppedReturns(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "trunkd.db"))
	close(db.closed)
	<-db.done
	// As seen by a write that checked closed before Close closed it:
	db.closed = make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- db.AddTrunk(ctx, sample("late")) }()
	select {
	case err := <-errc:
		if trunk.ErrorCode(err) != trunk.EUNAVAILABLE {
			t.Fatalf("AddTrunk after the writer stopped: %v; want %s", err, trunk.EUNAVAILABLE)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("AddTrunk queued after the writer stopped still waits after 5 s")
	}
	close(db.closed) // Close sees it closed: release the rest here
	db.applier.close()
	db.wal.close()
	db.bolt.Close()
}
