package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trunkd/trunkd/trunk"
	bolt "go.etcd.io/bbolt"
)

// lagging opens a store whose bbolt never catches up on its own, so that
// acknowledged writes live only in the write-ahead log until a crash.
func lagging(t *testing.T, path string, walMax int64) *DB {
	t.Helper()
	db, err := Open(path, testKey, withLog(walMax, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// crash stops db as kill -9 would: the writer stops, the frames queued for
// bbolt are forgotten, the files are closed as they are.
func crash(db *DB) {
	close(db.closed)
	<-db.done
	db.applier.mu.Lock()
	db.applier.queue = nil
	db.applier.mu.Unlock()
	close(db.applier.stop)
	<-db.applier.done
	db.wal.close()
	db.bolt.Close()
}

// inBolt returns the trunk_ids bbolt itself holds.
func inBolt(t *testing.T, path string) []string {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var ids []string
	bdb.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTrunks).ForEach(func(k, _ []byte) error { ids = append(ids, string(k)); return nil })
	})
	return ids
}

// writeSome adds a..e, updates b, removes c, through db, and returns the
// state every reader must see afterwards.
func writeSome(t *testing.T, db *DB) map[string]string {
	t.Helper()
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if err := db.AddTrunk(ctx, sample(id)); err != nil {
			t.Fatal(err)
		}
	}
	b := sample("b")
	b.DisplayName = "b v2"
	if err := db.UpdateTrunk(ctx, b, 0); err != nil {
		t.Fatal(err)
	}
	if err := db.RemoveTrunk(ctx, "c", 0); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"a": "Trunk a", "b": "b v2", "d": "Trunk d", "e": "Trunk e"}
}

// checkState compares every read path with want.
func checkState(t *testing.T, db *DB, want map[string]string, when string) {
	t.Helper()
	list, err := db.ListTrunks(ctx, trunk.ListQuery{Limit: 100})
	if err != nil {
		t.Fatalf("%s: ListTrunks: %v", when, err)
	}
	var got []string
	for _, tr := range list {
		got = append(got, tr.TrunkID+"="+tr.DisplayName)
		if g, err := db.GetTrunk(ctx, tr.TrunkID); err != nil || g.DisplayName != tr.DisplayName || g.SIPPassword != "pw-"+tr.TrunkID {
			t.Errorf("%s: GetTrunk(%s) = %+v, %v; want what ListTrunks gave, secrets intact", when, tr.TrunkID, g, err)
		}
	}
	var wantList []string
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if name, ok := want[id]; ok {
			wantList = append(wantList, id+"="+name)
		} else if _, err := db.GetTrunk(ctx, id); trunk.ErrorCode(err) != trunk.ENOTFOUND {
			t.Errorf("%s: GetTrunk(%s) = %v; want %s", when, id, err, trunk.ENOTFOUND)
		}
	}
	if strings.Join(got, ",") != strings.Join(wantList, ",") {
		t.Errorf("%s: ListTrunks = %v; want %v", when, got, wantList)
	}
	if n, err := db.Count(); err != nil || n != len(want) {
		t.Errorf("%s: Count = %d, %v; want %d", when, n, err, len(want))
	}
}

// TestLogServesReadsBeforeBbolt: acknowledged writes that bbolt does not
// hold yet are seen by every read, in order with what bbolt holds.
func TestLogServesReadsBeforeBbolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trunkd.db")
	db := lagging(t, path, walMaxSize)
	defer db.Close()
	want := writeSome(t, db)
	if db.pending.len() == 0 {
		t.Fatal("nothing pending: the test needs bbolt to lag behind the log")
	}
	checkState(t, db, want, "before bbolt")
	if err := db.catchUp(); err != nil {
		t.Fatal(err)
	}
	checkState(t, db, want, "after bbolt caught up")
}

// TestLogReplayedAfterCrash: writes acknowledged only by the log are in
// the store after a crash and a restart, and bbolt has them then.
func TestLogReplayedAfterCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trunkd.db")
	db := lagging(t, path, walMaxSize)
	want := writeSome(t, db)
	crash(db)
	if ids := inBolt(t, path); len(ids) != 0 {
		t.Fatalf("bbolt holds %v before the replay; want nothing (the writes only in the log)", ids)
	}
	db = open(t, path)
	checkState(t, db, want, "after the crash")
	if ids := inBolt2(t, db); strings.Join(ids, ",") != "a,b,d,e" {
		t.Errorf("bbolt after the replay holds %v; want a,b,d,e", ids)
	}
	tr := sample("f")
	if err := db.AddTrunk(ctx, tr); err != nil || tr.Meta.Revision != 7 {
		t.Errorf("AddTrunk after the replay: revision %d, %v; want 7 (revisions go on from the log's)", tr.Meta.Revision, err)
	}
}

func inBolt2(t *testing.T, db *DB) []string {
	var ids []string
	db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTrunks).ForEach(func(k, _ []byte) error { ids = append(ids, string(k)); return nil })
	})
	return ids
}

// TestLogTornTailIgnored: a frame cut short by the crash (never
// acknowledged) is not applied, and the frames before it are.
func TestLogTornTailIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trunkd.db")
	db := lagging(t, path, walMaxSize)
	want := writeSome(t, db)
	off := db.wal.off
	fr := db.wal.encode(walFrame{seq: db.lastSeq.Load() + 1, rev: db.rev + 1, entries: []walEntry{{id: "torn", value: []byte{2, '{', '}'}}}})
	torn := bytes.Clone(fr[:len(fr)-3])
	crash(db)
	f, err := os.OpenFile(walPath(path), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(torn, off)
	f.Close()
	db = open(t, path)
	checkState(t, db, want, "after a torn frame")
}

// TestLogWrapsUnderLoad: a log much smaller than the writes wraps many
// times, each time after bbolt caught up, and a crash right after loses
// nothing.
func TestLogWrapsUnderLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trunkd.db")
	db := lagging(t, path, 8<<10)
	for i := range 200 {
		tr := sample(fmt.Sprintf("w%03d", i%20))
		tr.DisplayName = fmt.Sprint(i)
		var err error
		if i < 20 {
			err = db.AddTrunk(ctx, tr)
		} else {
			err = db.UpdateTrunk(ctx, tr, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if db.applier.commits < 5 {
		t.Errorf("bbolt committed %d times; want the full log to have made it catch up several times", db.applier.commits)
	}
	crash(db)
	db = open(t, path)
	for i := range 20 {
		tr, err := db.GetTrunk(ctx, fmt.Sprintf("w%03d", i))
		if want := fmt.Sprint(180 + i); err != nil || tr.DisplayName != want {
			t.Errorf("w%03d after the crash = %v, %v; want %s", i, tr, err, want)
		}
	}
}

// TestForeignLogRefused: a file at the log's path that is not trunkd's
// log, or is another database's, stops Open and is left as it was.
func TestForeignLogRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "trunkd.db")
	db := open(t, path)
	db.AddTrunk(ctx, sample("a"))
	db.Close()
	other := filepath.Join(dir, "other.db")
	odb, err := Open(other, testKey)
	if err != nil {
		t.Fatal(err)
	}
	odb.Close()
	otherLog, _ := os.ReadFile(walPath(other))
	for _, c := range []struct {
		name, msg string
		data      []byte
	}{
		{"not a log", "not a trunkd write-ahead log", []byte("hello, this is somebody's notes\n")},
		{"another database's", "of another database", otherLog},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(walPath(path), c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := Open(path, testKey)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "not modified") {
				t.Errorf("Open = %v; want %q, and that it was not modified", err, c.msg)
			}
			if got, _ := os.ReadFile(walPath(path)); !bytes.Equal(got, c.data) {
				t.Error("the file was modified")
			}
		})
	}
}

// TestRestoreDropsTheReplacedLog: a snapshot holds the writes still in
// the log, and writes pending in the log of the store a restore replaces
// are not replayed onto the restored copy.
func TestRestoreDropsTheReplacedLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "trunkd.db")
	db := lagging(t, path, walMaxSize)
	db.AddTrunk(ctx, sample("kept"))
	backup := snapshotTo(t, db, t.TempDir())
	db.AddTrunk(ctx, sample("after-backup"))
	crash(db) // "after-backup" is only in the log
	if err := Restore(backup, path, testKey, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(walPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the replaced store's log is still there (%v)", err)
	}
	db = open(t, path)
	if _, err := db.GetTrunk(ctx, "kept"); err != nil {
		t.Errorf("kept (written before the snapshot, in the log only): %v", err)
	}
	if _, err := db.GetTrunk(ctx, "after-backup"); trunk.ErrorCode(err) != trunk.ENOTFOUND {
		t.Errorf("after-backup = %v; want %s: the restore must undo it", err, trunk.ENOTFOUND)
	}
}

// TestLogPagesMergeInOrder: pages of two walk trunks some of which bbolt
// holds and some only the log (new, updated, removed), in trunk_id order,
// each once.
func TestLogPagesMergeInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trunkd.db")
	db := lagging(t, path, walMaxSize)
	defer db.Close()
	for _, id := range []string{"b", "d", "f", "h"} {
		db.AddTrunk(ctx, sample(id))
	}
	if err := db.catchUp(); err != nil { // b, d, f, h in bbolt
		t.Fatal(err)
	}
	for _, id := range []string{"a", "e", "i"} {
		db.AddTrunk(ctx, sample(id))
	}
	d := sample("d")
	d.DisplayName = "d v2"
	db.UpdateTrunk(ctx, d, 0)
	db.RemoveTrunk(ctx, "f", 0) // a, d, e, f, i only in the log
	var got []string
	for after := ""; ; {
		page, err := db.ListTrunks(ctx, trunk.ListQuery{After: after, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range page {
			got = append(got, tr.TrunkID+"="+tr.DisplayName)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].TrunkID
	}
	want := "a=Trunk a,b=Trunk b,d=d v2,e=Trunk e,h=Trunk h,i=Trunk i"
	if strings.Join(got, ",") != want {
		t.Errorf("pages of 2 = %s; want %s", strings.Join(got, ","), want)
	}
}
