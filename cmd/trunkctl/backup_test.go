package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trunkd/trunkd/rpc/rpctest"
	"github.com/trunkd/trunkd/store"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
)

var backupKey = bytes.Repeat([]byte{9}, store.KeySize)

func sampleTrunk(id string) *trunk.Trunk {
	t := trunk.Defaults()
	t.TrunkID, t.GatewayIP, t.SIPUsername, t.SIPPassword = id, "192.0.2.10", "u", "pw-"+id
	return &t
}

// TestBackupUnderWritesOverQUIC: trunkctl backup, taken over QUIC from a
// server on a real bbolt store while clients keep writing, restores to a
// store holding every write acknowledged before the backup began.
func TestBackupUnderWritesOverQUIC(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "trunkd.db"), backupKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv := rpctest.NewServer(t, rpctest.Options{Dir: dir, Store: db})
	svc := srv.Service
	ctx := context.Background()
	for i := range 50 {
		if err := svc.AddTrunk(ctx, sampleTrunk(fmt.Sprintf("before-%02d", i)), control.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var acked []string
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				id := fmt.Sprintf("during-%d-%04d", w, i)
				if err := svc.AddTrunk(ctx, sampleTrunk(id), control.WriteOptions{}); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		})
	}
	for n := 0; n < 30; { // the writers are going
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		n = len(acked)
		mu.Unlock()
	}
	mu.Lock()
	before := append([]string{"before-00", "before-49"}, acked...)
	mu.Unlock()

	vars := map[string]string{"TRUNKD_ADDR": srv.Addr, "TRUNKD_TOKEN": srv.Token(t, "trunks:admin"), "TRUNKD_CA": srv.CAFile}
	out := filepath.Join(t.TempDir(), "trunkd.backup")
	code, stdout, stderr := ctl(t, vars, "", "backup", "-o", out)
	stop.Store(true)
	wg.Wait()
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "secret.key") {
		t.Errorf("backup output = %q; want the reminder to keep secret.key", stdout)
	}
	b, _ := os.ReadFile(out)
	sumLine, _ := os.ReadFile(out + ".sha256")
	sum := sha256.Sum256(b)
	if want := hex.EncodeToString(sum[:]) + "  trunkd.backup\n"; string(sumLine) != want {
		t.Errorf("%s.sha256 = %q; want %q", out, sumLine, want)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*.part")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	restored := filepath.Join(t.TempDir(), "trunkd.db")
	if err := store.Restore(out, restored, backupKey, false); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	rdb, err := store.Open(restored, backupKey)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	for _, id := range before {
		if _, err := rdb.GetTrunk(ctx, id); err != nil {
			t.Errorf("restored GetTrunk(%s) = %v; want every write acknowledged before the backup", id, err)
		}
	}
	t.Logf("%d trunks acknowledged before the backup began, all restored", len(before))
}

func TestBackupRefusedKeepsNoFile(t *testing.T) {
	dir := t.TempDir()
	srv := rpctest.NewServer(t, rpctest.Options{Dir: dir}) // an in-memory store: no snapshot
	out := filepath.Join(t.TempDir(), "b.db")
	for _, c := range []struct{ scope, want string }{
		{"trunks:manage", "trunks:admin"},
		{"trunks:admin", "not supported"},
	} {
		vars := map[string]string{"TRUNKD_ADDR": srv.Addr, "TRUNKD_TOKEN": srv.Token(t, c.scope), "TRUNKD_CA": srv.CAFile}
		code, _, stderr := ctl(t, vars, "", "backup", "-o", out)
		if code != exitError || !strings.Contains(stderr, c.want) {
			t.Errorf("backup with %s: exit %d, %q; want exit 1 saying %q", c.scope, code, stderr, c.want)
		}
		if files, _ := os.ReadDir(filepath.Dir(out)); len(files) != 0 {
			t.Errorf("backup with %s left %v", c.scope, files)
		}
	}
	if code, _, stderr := ctl(t, nil, "", "backup"); code != exitUsage {
		t.Errorf("backup without -o: exit %d, %q; want usage error", code, stderr)
	}
}

func TestReloadCommand(t *testing.T) {
	srv := rpctest.NewServer(t, rpctest.Options{}) // no reloader behind it
	vars := map[string]string{"TRUNKD_ADDR": srv.Addr, "TRUNKD_CA": srv.CAFile}
	for _, c := range []struct{ scope, want string }{
		{"trunks:manage", "trunks:admin"},
		{"trunks:admin", "cannot reload"},
	} {
		vars["TRUNKD_TOKEN"] = srv.Token(t, c.scope)
		if code, _, stderr := ctl(t, vars, "", "reload", "--log-level", "debug"); code != exitError || !strings.Contains(stderr, c.want) {
			t.Errorf("reload with %s: exit %d, %q; want exit 1 saying %q", c.scope, code, stderr, c.want)
		}
	}
}
