//go:build crash && linux

package main

// The crash-safety suite, `make crash` (CRASH_ROUNDS, default 60). Every
// test drives the real trunkd binary, built here, as a subprocess:
//
//   - TestCrashKill9: concurrent writers, kill -9 at a random moment,
//     restart; every acknowledged write must be there, and the bbolt file
//     must pass bbolt's own consistency check after every kill.
//   - TestCrashDiskFull: the data file cannot grow (RLIMIT_FSIZE, and a full
//     tmpfs where one can be mounted); writes fail with ERR_UNAVAILABLE, reads
//     go on, writes work again once there is room, and a restart finds
//     exactly the acknowledged writes.
//   - TestCrashForeignDataFile: start-up on a file trunkd did not write is
//     refused with a clear message and the file is left byte for byte.
//
// Linux only: the disk-full cases use prlimit(2) and tmpfs.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/store"
	"github.com/trunkd/trunkd/trunk"
	bolt "go.etcd.io/bbolt"
)

const (
	crashIDs     = 50 // trunk ids the writers share, so that their writes overlap
	crashClients = 8  // concurrent writers, each on its own QUIC connection
	crashAnchor  = "anchor"
)

// TestCrashKill9 runs CRASH_ROUNDS rounds on one data dir. Each round
// starts trunkd, checks what the previous round left against the model,
// runs crashClients writers doing a random mix of AddTrunk, UpdateTrunk and
// RemoveTrunk over crashIDs ids, kills trunkd with SIGKILL 50–500 ms into
// the load, and checks the bbolt file while nobody has it open.
//
// The model holds, per id, the state after the last acknowledged write.
// Writes to one id are serialised by the writers (at most one in flight per
// id), so "last acknowledged" is well defined; a write that was in flight at
// the kill, or failed without a server answer, leaves two acceptable states
// (applied or not) and freezes its id until the next restart's check, which
// resolves it to what was found.
//
// SIGKILL ends the process, not the machine: what trunkd wrote but did not
// fsync still reaches the file through the page cache. So this proves that
// an acknowledged write was in the write-ahead log (or the bbolt file)
// first, that the log is replayed, and that a commit or a log frame cut
// anywhere leaves a consistent store; that the fsyncs reach the disk
// takes a power-loss test (bbolt's dm-flakey suite), which is not here.
func TestCrashKill9(t *testing.T) {
	rounds := crashRounds(t)
	bin := buildTrunkd(t)
	dir := filepath.Join(t.TempDir(), "data")
	dbPath := filepath.Join(dir, "trunkd.db")
	m := newCrashModel(freeSIPPort(t))
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("%d rounds, %d writers, %d ids, seed %d", rounds, crashClients, crashIDs, seed)

	began := time.Now()
	var sum crashTotals
	replayed := 0 // writes taken from the write-ahead log at restarts
	for round := 1; round <= rounds; round++ {
		p := startCrashProc(t, bin, dir)
		c := p.connect(t, "trunks:manage")
		replayed += p.replayed(t)
		var v verifyStats
		if round == 1 {
			m.addAnchor(t, c)
		} else {
			v = m.verify(t, c, fmt.Sprintf("restart before round %d", round))
		}
		delay := 50*time.Millisecond + time.Duration(rng.Int64N(int64(450*time.Millisecond)))
		l := m.load(t, p, round, delay)
		keys := m.checkFile(t, dbPath, fmt.Sprintf("after the kill of round %d", round), false)
		sum.add(v, l)
		if round > 1 {
			t.Logf("round %2d: restart: %d ids match (%d last written in the round before, %d with a write in flight at the kill: %d applied, %d not)",
				round, v.ids, v.fresh, v.inFlight, v.applied, v.inFlight-v.applied)
		}
		t.Logf("round %2d: %4d writes acknowledged, %3d refused as expected, %d in flight; SIGKILL %3d ms into the load; file: %d trunks, bbolt check clean",
			round, l.acked, l.refused, l.unknown, delay.Milliseconds(), keys)
		if t.Failed() {
			t.Fatalf("stopping after round %d; trunkd's log (last lines):\n%s", round, p.tail(30))
		}
	}
	// The last round's kill is checked by one more restart, then a clean stop.
	p := startCrashProc(t, bin, dir)
	v := m.verify(t, p.connect(t, "trunks:manage"), "final restart")
	replayed += p.replayed(t)
	sum.add(v, loadStats{})
	t.Logf("final restart: %d ids match (%d last written in the last round, %d with a write in flight at the kill: %d applied, %d not)",
		v.ids, v.fresh, v.inFlight, v.applied, v.inFlight-v.applied)
	p.stop(t)
	keys := m.checkFile(t, dbPath, "after the final clean stop", true)
	t.Logf("SUMMARY: %d rounds, %d kill -9, %d writes acknowledged (%d refused as expected), %d in flight at a kill (%d of them applied), "+
		"%d id checks after restarts, %d writes replayed from the write-ahead log, %d trunks at the end, bbolt check clean after every kill, %s",
		rounds, rounds, sum.acked, sum.refused, sum.unknown, sum.applied, sum.checked, replayed, keys, time.Since(began).Round(time.Second))
}

// TestCrashDiskFull fills the disk under trunkd, first by a file-size limit
// on the process (EFBIG), then, where a tmpfs can be mounted, by a full file
// system (ENOSPC).
func TestCrashDiskFull(t *testing.T) {
	bin := buildTrunkd(t)
	t.Run("RLIMIT_FSIZE", func(t *testing.T) {
		diskFull(t, bin, filepath.Join(t.TempDir(), "data"), fsizeLimit{})
	})
	t.Run("tmpfs", func(t *testing.T) {
		mnt := mountTmpfs(t, "2m")
		diskFull(t, bin, filepath.Join(mnt, "data"), &tmpfsFiller{path: filepath.Join(mnt, "filler")})
	})
}

// TestCrashForeignDataFile starts trunkd on data files it did not write:
// each start must fail with a message naming the file and saying why, and
// leave the file exactly as it was.
func TestCrashForeignDataFile(t *testing.T) {
	bin := buildTrunkd(t)

	// A real trunkd database to derive damaged copies from, big enough that
	// its trunks live beyond the first pages.
	good := filepath.Join(t.TempDir(), "good")
	p := startCrashProc(t, bin, good)
	c := p.connect(t, "trunks:manage")
	sipPort := freeSIPPort(t)
	for i := range 40 {
		tr, _ := crashTrunk(fmt.Sprintf("t-%02d", i), sipPort, uint64(i), 2000)
		if err := c.AddTrunk(context.Background(), tr); err != nil {
			t.Fatal(err)
		}
	}
	p.stop(t)
	goodDB, err := os.ReadFile(filepath.Join(good, "trunkd.db"))
	if err != nil {
		t.Fatal(err)
	}
	goodKey, err := os.ReadFile(filepath.Join(good, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other")
	startCrashProc(t, bin, other).stop(t)
	otherWAL, err := os.ReadFile(filepath.Join(other, "trunkd.db-wal"))
	if err != nil {
		t.Fatal(err)
	}
	pageSize := os.Getpagesize()

	cases := []struct {
		name  string
		write func(t *testing.T, dir, db string)
		want  string // in the message, besides the file's path
	}{
		{"garbage", func(t *testing.T, _, db string) {
			writeFile(t, db, bytes.Repeat([]byte("not a database "), 1000))
		}, "is not a trunkd database"},
		{"a few bytes of garbage", func(t *testing.T, _, db string) {
			writeFile(t, db, []byte("hello\n"))
		}, "is not a trunkd database"},
		{"a page of zeros", func(t *testing.T, _, db string) {
			writeFile(t, db, make([]byte, pageSize))
		}, "it was not modified"},
		{"another program's bbolt file", func(t *testing.T, _, db string) {
			boltFile(t, db, func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("users")); return err })
		}, "bbolt database of another program"},
		{"another program's bbolt file, freelist not synced", func(t *testing.T, _, db string) {
			// bbolt writes a freelist into such a file when it is opened
			// for writing (etcd-style NoFreelistSync files).
			boltFileWith(t, db, &bolt.Options{NoFreelistSync: true}, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("users"))
				if err != nil {
					return err
				}
				return b.Put([]byte("alice"), []byte("admin"))
			})
		}, "bbolt database of another program"},
		{"a newer schema", func(t *testing.T, _, db string) {
			boltFile(t, db, func(tx *bolt.Tx) error {
				meta, err := tx.CreateBucket([]byte("meta"))
				if err != nil {
					return err
				}
				if _, err := tx.CreateBucket([]byte("trunks")); err != nil {
					return err
				}
				return errors.Join(meta.Put([]byte("marker"), []byte("trunkd trunk store")), meta.Put([]byte("schema_version"), []byte{store.SchemaVersion + 1}))
			})
		}, fmt.Sprintf("schema version %d", store.SchemaVersion+1)},
		{"another secret key", func(t *testing.T, dir, db string) {
			writeFile(t, db, goodDB)
			writeFile(t, filepath.Join(dir, "secret.key"), []byte(hex.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"))
		}, "another secret key"},
		{"both meta pages torn", func(t *testing.T, _, db string) {
			b := bytes.Clone(goodDB)
			for _, meta := range []int{0, pageSize} {
				b[meta+16+56] ^= 0xff // the last field of the meta page: its checksum
			}
			writeFile(t, db, b)
		}, "is not a trunkd database (or is corrupt)"},
		// A partial copy or a lost tail: the meta pages are intact but name
		// pages beyond the end of the file.
		{"truncated to 10%", truncated(goodDB, 10, pageSize), "corrupt"},
		{"truncated to 25%", truncated(goodDB, 25, pageSize), "corrupt"},
		{"truncated to 50%", truncated(goodDB, 50, pageSize), "corrupt"},
		{"a directory", func(t *testing.T, _, db string) {
			if err := os.Mkdir(db, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"a foreign file as the write-ahead log", func(t *testing.T, dir, db string) {
			writeFile(t, db, goodDB)
			writeFile(t, filepath.Join(dir, "secret.key"), goodKey)
			writeFile(t, db+"-wal", bytes.Repeat([]byte("journal of another program\n"), 100))
		}, "is not a trunkd write-ahead log"},
		{"the write-ahead log of another database", func(t *testing.T, dir, db string) {
			writeFile(t, db, goodDB)
			writeFile(t, filepath.Join(dir, "secret.key"), goodKey)
			writeFile(t, db+"-wal", otherWAL)
		}, "write-ahead log of another database"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "trunkd.db")
			tc.write(t, dir, db)
			before := snapshotFile(t, db)
			walBefore, _ := os.ReadFile(db + "-wal")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "--listen", "127.0.0.1:0", "--data", dir)
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			msg := strings.TrimSpace(stderr.String())
			var exit *exec.ExitError
			switch {
			case ctx.Err() != nil:
				t.Errorf("trunkd kept running on %s for 20s; want a refusal at start-up\n%s", tc.name, crashLastLines(msg, 15))
			case err == nil:
				t.Errorf("trunkd exited 0 on %s; want a non-zero exit", tc.name)
			case !errors.As(err, &exit):
				t.Fatalf("running trunkd: %v", err)
			case !exit.Exited():
				t.Errorf("trunkd died on %s (%v) instead of refusing it; stderr:\n%s", tc.name, err, crashLastLines(msg, 15))
			case strings.Contains(msg, "panic: ") || strings.Contains(msg, "fatal error: "):
				t.Errorf("trunkd crashed on %s (exit %d) instead of refusing it:\n%s", tc.name, exit.ExitCode(), panicHead(msg))
			case !strings.Contains(msg, "cannot start"), !strings.Contains(msg, db), !strings.Contains(msg, tc.want):
				t.Errorf("stderr = %s\nwant a \"cannot start\" line naming %s and saying %q", crashLastLines(msg, 15), db, tc.want)
			}
			if after := snapshotFile(t, db); !after.equal(before) {
				t.Errorf("the file was modified: before %s, after %s%s", before, after, changedPages(before.content, after.content, pageSize))
			}
			if walAfter, _ := os.ReadFile(db + "-wal"); !bytes.Equal(walAfter, walBefore) {
				t.Errorf("the write-ahead log was modified (%d bytes before, %d after)", len(walBefore), len(walAfter))
			}
			if err == nil || t.Failed() {
				return
			}
			t.Logf("exit %d: %s", exit.ExitCode(), crashLastLines(msg, 1))
		})
	}
}

// panicHead returns the lines of a Go crash report that say what happened
// and where it happened in trunkd and bbolt, without the goroutine dumps.
func panicHead(s string) string {
	var keep []string
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "panic: "), strings.HasPrefix(l, "fatal error: "), strings.HasPrefix(l, "unexpected fault"), strings.HasPrefix(l, "[signal "):
			keep = append(keep, l)
		case !strings.HasPrefix(l, "\t") && (strings.Contains(l, "bbolt.") || strings.Contains(l, "store.")) && len(keep) < 12 && i+1 < len(lines):
			keep = append(keep, l, lines[i+1])
		}
	}
	return strings.Join(keep, "\n")
}

// truncated writes the first pct percent of db, cut at a page boundary.
func truncated(db []byte, pct, pageSize int) func(t *testing.T, _, path string) {
	return func(t *testing.T, _, path string) {
		writeFile(t, path, db[:len(db)*pct/100/pageSize*pageSize])
	}
}

// ---- the kill -9 model ----

// trunkState is what the checks compare: presence and the fields every
// write changes.
type trunkState struct {
	present bool
	name    string // display_name: "write <seq> <padding>"
	limit   uint32
	domain  string
}

func (s trunkState) String() string {
	if !s.present {
		return "absent"
	}
	name := s.name
	if i := strings.LastIndexByte(name, ' '); i > 0 {
		name = fmt.Sprintf("%s +%d bytes", name[:i], len(name)-i)
	}
	return fmt.Sprintf("present{display_name %q, channel_limit %d, domain %s}", name, s.limit, s.domain)
}

func configState(found bool, c rpc.TrunkConfig) trunkState {
	if !found {
		return trunkState{}
	}
	return trunkState{present: true, name: c.DisplayName, limit: c.ChannelLimit, domain: c.Domain}
}

// crashTrunk is a trunk whose display_name, channel_limit, domain and
// sealed password all derive from seq; the display name carries pad bytes
// of padding so that records range from a few hundred bytes to overflow
// pages.
func crashTrunk(id string, sipPort uint16, seq uint64, pad int) (*trunk.Trunk, trunkState) {
	tr := trunk.Defaults()
	tr.TrunkID = id
	tr.InternalSIPIP, tr.SourcePBXPort = "127.0.0.1", sipPort // one shared SIP listener
	tr.DisplayName = fmt.Sprintf("write %d %s", seq, strings.Repeat(string(rune('a'+seq%26)), pad))
	tr.ChannelLimit = uint32(1 + seq%500)
	tr.Domain = fmt.Sprintf("w%d.example.com", seq)
	tr.SIPPassword = fmt.Sprintf("pw-%d", seq)
	return &tr, trunkState{present: true, name: tr.DisplayName, limit: tr.ChannelLimit, domain: tr.Domain}
}

// idModel is one trunk id. mu is held by the writer that has a write to it
// in flight.
type idModel struct {
	mu      sync.Mutex
	state   trunkState // after the last acknowledged write, or as last found
	how     string     // where state comes from, for reports
	pending *trunkState
	pendHow string
}

// allows reports whether s is an acceptable state for the id: the
// acknowledged one, or the outcome of the write in flight at the kill.
func (e *idModel) allows(s trunkState) (ok, applied bool) {
	if s == e.state {
		return true, false
	}
	if e.pending != nil && s == *e.pending {
		return true, true
	}
	return false, false
}

func (e *idModel) describe() string {
	d := fmt.Sprintf("last acknowledged: %s → %v", e.how, e.state)
	if e.pending != nil {
		d += fmt.Sprintf("; unacknowledged since: %s → %v", e.pendHow, *e.pending)
	}
	return d
}

type crashModel struct {
	sipPort uint16
	ids     []string // the writers' ids, without the anchor
	byID    map[string]*idModel
	seq     atomic.Uint64
}

func newCrashModel(sipPort uint16) *crashModel {
	m := &crashModel{sipPort: sipPort, byID: map[string]*idModel{}}
	for i := range crashIDs {
		id := fmt.Sprintf("crash-%02d", i)
		m.ids = append(m.ids, id)
		m.byID[id] = &idModel{how: "never written"}
	}
	m.byID[crashAnchor] = &idModel{how: "never written"}
	return m
}

// addAnchor adds a trunk no writer touches: it keeps the shared SIP
// listener open while the writers remove and re-add theirs, and must
// survive every kill.
func (m *crashModel) addAnchor(t *testing.T, c *rpc.Client) {
	t.Helper()
	tr, s := crashTrunk(crashAnchor, m.sipPort, m.seq.Add(1), 100)
	if err := c.AddTrunk(context.Background(), tr); err != nil {
		t.Fatalf("AddTrunk %s: %v", crashAnchor, err)
	}
	e := m.byID[crashAnchor]
	e.state, e.how = s, "AddTrunk in round 1"
}

type loadStats struct{ acked, refused, unknown int }

type verifyStats struct{ ids, fresh, inFlight, applied int }

type crashTotals struct{ acked, refused, unknown, applied, checked int }

func (s *crashTotals) add(v verifyStats, l loadStats) {
	s.acked += l.acked
	s.refused += l.refused
	s.unknown += l.unknown
	s.applied += v.applied
	s.checked += v.ids
}

// load runs the writers against p, kills p after delay, and returns once
// every writer has stopped.
func (m *crashModel) load(t *testing.T, p *crashProc, round int, delay time.Duration) loadStats {
	t.Helper()
	clients := make([]*rpc.Client, crashClients)
	for i := range clients {
		clients[i] = p.connect(t, "trunks:manage")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var killed atomic.Bool
	var acked, refused, unknown atomic.Int64
	var wg sync.WaitGroup
	defer func() { // also when a check below ends the test
		killed.Store(true)
		cancel()
		wg.Wait()
	}()
	for i, c := range clients {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
		who := fmt.Sprintf("round %d writer %d", round, i)
		wg.Go(func() {
			for ctx.Err() == nil && !killed.Load() {
				switch m.step(t, ctx, c, rng, who, &killed) {
				case outcomeAcked:
					acked.Add(1)
				case outcomeRefused:
					refused.Add(1)
				case outcomeUnknown:
					unknown.Add(1)
				}
			}
		})
	}
	time.Sleep(delay)
	if !p.alive() {
		t.Fatalf("round %d: trunkd died under load before the kill: %v\n%s", round, p.waitErr, p.tail(30))
	}
	killed.Store(true)
	p.kill(t)
	cancel() // writes still waiting get ctx.Err(): they were in flight at the kill
	wg.Wait()
	for _, c := range clients {
		c.Close()
	}
	return loadStats{acked: int(acked.Load()), refused: int(refused.Load()), unknown: int(unknown.Load())}
}

type outcome int

const (
	outcomeNone    outcome = iota // the id was busy or frozen; nothing sent
	outcomeAcked                  // acknowledged
	outcomeRefused                // refused by the server as the model said it would be
	outcomeUnknown                // no answer: in flight at the kill
)

// step sends one write to a random id that no other writer holds.
func (m *crashModel) step(t *testing.T, ctx context.Context, c *rpc.Client, rng *rand.Rand, who string, killed *atomic.Bool) outcome {
	id := m.ids[rng.IntN(len(m.ids))]
	e := m.byID[id]
	if !e.mu.TryLock() {
		return outcomeNone
	}
	defer e.mu.Unlock()
	if e.pending != nil {
		return outcomeNone // unknown until the next restart says which
	}
	seq := m.seq.Add(1)
	tr, written := crashTrunk(id, m.sipPort, seq, rng.IntN(3000))
	// Mostly writes the model expects to succeed; one in ten expects a
	// refusal (add of an existing id, update or remove of a missing one),
	// which must change nothing.
	wrong := rng.IntN(10) == 0
	var method, want string
	var next trunkState
	var err error
	switch {
	case e.state.present == wrong:
		method, next = "AddTrunk", written
		if wrong {
			want, next = rpc.CodeTrunkExists, e.state
		}
		err = c.AddTrunk(ctx, tr)
	case rng.IntN(3) == 0:
		method, next = "RemoveTrunk", trunkState{}
		if wrong {
			want, next = rpc.CodeInvalidTrunk, e.state
		}
		err = c.RemoveTrunk(ctx, id)
	default:
		method, next = "UpdateTrunk", written
		if wrong {
			want, next = rpc.CodeInvalidTrunk, e.state
		}
		err = c.UpdateTrunk(ctx, tr)
	}
	op := fmt.Sprintf("%s %s (write %d, %s)", method, id, seq, who)
	code := rpc.ErrorCode(err)
	switch {
	case err == nil && want == "":
		e.state, e.how = next, op
		return outcomeAcked
	case err == nil:
		t.Errorf("%s was acknowledged; the model expected %s (%s)", op, want, e.describe())
		e.state, e.how = written, op
		if method == "RemoveTrunk" {
			e.state = trunkState{}
		}
		return outcomeAcked
	case code != "" && code == want:
		return outcomeRefused
	case code != "":
		// The server answered with something else: a lost write seen live
		// (ERR_INVALID_TRUNK for a trunk acknowledged as added) or a
		// failure that should not happen on a healthy disk.
		t.Errorf("%s = %v; want %s (%s)", op, err, orElse(want, "success"), e.describe())
		e.pending, e.pendHow = &written, op+" answered "+code
		if method == "RemoveTrunk" {
			e.pending = &trunkState{}
		}
		return outcomeUnknown
	default:
		if !killed.Load() {
			t.Errorf("%s failed before the kill: %v", op, err)
		}
		if want != "" {
			return outcomeUnknown // expected to change nothing either way
		}
		e.pending, e.pendHow = &next, op+" in flight at the kill"
		return outcomeUnknown
	}
}

func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// verify reads every id back through GetTrunk and ListTrunks after a
// restart, checks each against the model and resolves the unknown ones to
// what was found.
func (m *crashModel) verify(t *testing.T, c *rpc.Client, when string) verifyStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listed := map[string]rpc.TrunkConfig{}
	for cursor := ""; ; {
		page, next, err := c.ListTrunks(ctx, cursor, 17)
		if err != nil {
			t.Fatalf("%s: ListTrunks: %v", when, err)
		}
		for _, tc := range page {
			if _, dup := listed[tc.TrunkID]; dup {
				t.Errorf("%s: ListTrunks returned %s twice", when, tc.TrunkID)
			}
			listed[tc.TrunkID] = tc
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	var v verifyStats
	for id, e := range m.byID {
		cfg, found, err := c.GetTrunk(ctx, id)
		if err != nil {
			t.Errorf("%s: GetTrunk %s: %v", when, id, err)
			continue
		}
		got := configState(found, cfg)
		if lc, ok := listed[id]; ok != found || configState(ok, lc) != got {
			t.Errorf("%s: GetTrunk says %s is %v, ListTrunks says %v", when, id, got, configState(ok, lc))
		}
		delete(listed, id)
		v.ids++
		if strings.Contains(e.how, " (write ") {
			v.fresh++ // last set by an acknowledged write, not by an earlier check
		}
		if e.pending != nil {
			v.inFlight++
		}
		ok, applied := e.allows(got)
		switch {
		case !ok:
			t.Errorf("%s: ACKNOWLEDGED WRITE LOST: trunk %s is %v; want %v (%s)", when, id, got, e.state, e.describe())
		case applied:
			v.applied++
		}
		e.state, e.how, e.pending, e.pendHow = got, "found at the "+when, nil, ""
	}
	for id, tc := range listed {
		t.Errorf("%s: ListTrunks has %s (%v), which no writer wrote", when, id, configState(true, tc))
	}
	return v
}

// checkFile opens the bbolt file read-only while trunkd is down, runs
// bbolt's consistency check and, after a clean stop (when bbolt holds
// every write), compares every record with the model (without resolving
// anything). After a kill, acknowledged writes may still be only in the
// write-ahead log, which the next start replays: the restart's verify is
// the check then. It returns the number of trunks.
func (m *crashModel) checkFile(t *testing.T, path, when string, clean bool) int {
	t.Helper()
	found := checkBolt(t, path, when)
	n := len(found)
	if !clean {
		return n
	}
	for id, e := range m.byID {
		got, ok := found[id]
		delete(found, id)
		if !ok {
			got = trunkState{}
		}
		if allowed, _ := e.allows(got); !allowed {
			t.Errorf("%s: ACKNOWLEDGED WRITE LOST: the file holds %s as %v; want %v (%s)", when, id, got, e.state, e.describe())
		}
	}
	for id, s := range found {
		t.Errorf("%s: the file holds %s (%v), which no writer wrote", when, id, s)
	}
	return n
}

// checkBolt opens a trunkd database read-only with bbolt, runs tx.Check and
// returns its trunks as found in the file, decoded independently of the
// store package.
func checkBolt(t *testing.T, path, when string) map[string]trunkState {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("%s: bbolt cannot open %s: %v", when, path, err)
	}
	defer db.Close()
	found := map[string]trunkState{}
	err = db.View(func(tx *bolt.Tx) error {
		var problems []string
		for err := range tx.Check() {
			problems = append(problems, err.Error())
		}
		if len(problems) > 0 {
			return fmt.Errorf("bbolt check: %d problems:\n%s", len(problems), strings.Join(problems, "\n"))
		}
		if meta := tx.Bucket([]byte("meta")); meta == nil || string(meta.Get([]byte("marker"))) != "trunkd trunk store" {
			return errors.New("no trunkd meta bucket")
		}
		b := tx.Bucket([]byte("trunks"))
		if b == nil {
			return errors.New("no trunks bucket")
		}
		return b.ForEach(func(k, v []byte) error {
			var r struct {
				TrunkID      string `json:"trunk_id"`
				DisplayName  string `json:"display_name"`
				ChannelLimit uint32 `json:"channel_limit"`
				Domain       string `json:"domain"`
			}
			if len(v) < 2 || v[0] != store.SchemaVersion {
				return fmt.Errorf("record %q: %d bytes, version byte %v", k, len(v), v[:min(len(v), 1)])
			}
			if err := json.Unmarshal(v[1:], &r); err != nil || r.TrunkID != string(k) {
				return fmt.Errorf("record %q does not decode (%v) or names %q", k, err, r.TrunkID)
			}
			found[string(k)] = trunkState{present: true, name: r.DisplayName, limit: r.ChannelLimit, domain: r.Domain}
			return nil
		})
	})
	if err != nil {
		t.Fatalf("%s: %s: %v", when, path, err)
	}
	return found
}

// ---- disk full ----

// diskLimit makes the data file's disk full for a running trunkd, and gives
// room again.
type diskLimit interface {
	fill(t *testing.T, p *crashProc)
	room(t *testing.T, p *crashProc) // p is nil between processes
}

// fsizeLimit caps the file size trunkd may write (RLIMIT_FSIZE, set on the
// running process with prlimit(2)) at the data file's current size: the
// file cannot grow, writes past its end fail with EFBIG and the kernel
// sends SIGXFSZ, which the Go runtime does not act on.
type fsizeLimit struct{}

func (fsizeLimit) fill(t *testing.T, p *crashProc) {
	fi, err := os.Stat(filepath.Join(p.dir, "trunkd.db"))
	if err != nil {
		t.Fatal(err)
	}
	setFileSizeLimit(t, p, uint64(fi.Size()))
}

func (fsizeLimit) room(t *testing.T, p *crashProc) {
	if p != nil {
		setFileSizeLimit(t, p, ^uint64(0)) // RLIM_INFINITY
	}
}

func setFileSizeLimit(t *testing.T, p *crashProc, cur uint64) {
	t.Helper()
	var old struct{ Cur, Max uint64 }
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(p.cmd.Process.Pid), syscall.RLIMIT_FSIZE, 0, uintptr(unsafe.Pointer(&old)), 0, 0); e != 0 {
		t.Fatalf("prlimit: %v", e)
	}
	lim := struct{ Cur, Max uint64 }{Cur: min(cur, old.Max), Max: old.Max}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(p.cmd.Process.Pid), syscall.RLIMIT_FSIZE, uintptr(unsafe.Pointer(&lim)), 0, 0, 0); e != 0 {
		t.Fatalf("prlimit: %v", e)
	}
}

// tmpfsFiller fills the tmpfs the data dir is on with a file, and removes
// it for room.
type tmpfsFiller struct{ path string }

func (f *tmpfsFiller) fill(t *testing.T, _ *crashProc) {
	t.Helper()
	w, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, chunk := range []int{64 << 10, 4 << 10, 512} {
		buf := make([]byte, chunk)
		for {
			if _, err = w.Write(buf); err != nil {
				break
			}
		}
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the tmpfs: %v; want ENOSPC", err)
	}
}

func (f *tmpfsFiller) room(t *testing.T, _ *crashProc) {
	t.Helper()
	if err := os.Remove(f.path); err != nil {
		t.Fatal(err)
	}
}

// mountTmpfs mounts a tmpfs of size on a temp dir, or skips the test where
// that is not allowed (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); the RLIMIT_FSIZE case covers a full disk", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fullModel is the exact expected content during the disk-full test: an
// ERR_UNAVAILABLE write failed as a whole and changed nothing.
type fullModel struct {
	mu       sync.Mutex
	sipPort  uint16
	seq      uint64
	state    map[string]trunkState
	unsure   map[string]bool // answered something other than OK or ERR_UNAVAILABLE
	acked    int
	failed   int            // ERR_UNAVAILABLE
	other    int            // anything else
	messages map[string]int // ERR_UNAVAILABLE messages seen
}

// write sends one write for id (add, update or remove according to the
// model and op) and records its outcome.
func (m *fullModel) write(t *testing.T, c *rpc.Client, id, op string, pad int) error {
	m.mu.Lock()
	m.seq++
	tr, next := crashTrunk(id, m.sipPort, m.seq, pad)
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var err error
	switch op {
	case "add":
		err = c.AddTrunk(ctx, tr)
	case "update":
		err = c.UpdateTrunk(ctx, tr)
	case "remove":
		next = trunkState{}
		err = c.RemoveTrunk(ctx, id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch code := rpc.ErrorCode(err); {
	case err == nil:
		m.state[id] = next
		m.acked++
	case code == rpc.CodeUnavailable:
		m.failed++
		m.messages[err.Error()]++
	default:
		m.unsure[id] = true
		m.other++
		t.Errorf("%s %s = %v; want success or %s", op, id, err, rpc.CodeUnavailable)
	}
	return err
}

// check compares what trunkd serves, or what the file holds, with the model.
func (m *fullModel) check(t *testing.T, got map[string]trunkState, when string) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, want := range m.state {
		if g := got[id]; g != want && !m.unsure[id] {
			what := ""
			if want.present && !g.present {
				what = "ACKNOWLEDGED WRITE LOST: "
			}
			t.Errorf("%s: %strunk %s is %v; want %v", when, what, id, g, want)
		}
	}
	for id, g := range got {
		if _, ok := m.state[id]; !ok && g.present && !m.unsure[id] {
			t.Errorf("%s: trunk %s is %v; it was never acknowledged (its write failed with %s)", when, id, g, rpc.CodeUnavailable)
		}
	}
}

// served reads every trunk through ListTrunks and GetTrunk.
func served(t *testing.T, c *rpc.Client, ids []string, when string) map[string]trunkState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[string]trunkState{}
	for cursor := ""; ; {
		page, next, err := c.ListTrunks(ctx, cursor, 50)
		if err != nil {
			t.Fatalf("%s: ListTrunks: %v", when, err)
		}
		for _, tc := range page {
			got[tc.TrunkID] = configState(true, tc)
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	for _, id := range ids {
		cfg, found, err := c.GetTrunk(ctx, id)
		if err != nil {
			t.Fatalf("%s: GetTrunk %s: %v", when, id, err)
		}
		if g := configState(found, cfg); g != got[id] {
			t.Errorf("%s: GetTrunk says %s is %v, ListTrunks says %v", when, id, g, got[id])
		}
	}
	return got
}

// fill runs writers, each on its own ids, until the disk-full errors add up
// (or a bound is reached), and returns how many writes were acknowledged
// and how many failed meanwhile.
func (m *fullModel) fill(t *testing.T, p *crashProc, phase string) (acked, failed int) {
	t.Helper()
	m.mu.Lock()
	acked0, failed0 := m.acked, m.failed
	m.mu.Unlock()
	var stop atomic.Bool
	var wg sync.WaitGroup
	deadline := time.Now().Add(30 * time.Second)
	for w := range 4 {
		c := p.connect(t, "trunks:manage")
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
		wg.Go(func() {
			defer c.Close()
			var mine []string // ids this writer has added (acknowledged or not)
			for n := 0; !stop.Load() && time.Now().Before(deadline); n++ {
				var id, op string
				switch r := rng.IntN(10); {
				case len(mine) > 0 && r < 3:
					id, op = mine[rng.IntN(len(mine))], "update"
				case len(mine) > 0 && r < 4:
					id, op = mine[rng.IntN(len(mine))], "remove"
				default:
					id, op = fmt.Sprintf("%s-w%d-%03d", phase, w, n), "add"
				}
				m.mu.Lock()
				present := m.state[id].present
				m.mu.Unlock()
				if op != "add" && !present {
					continue
				}
				m.write(t, c, id, op, 500+rng.IntN(3000))
				if op == "add" {
					mine = append(mine, id)
				}
				m.mu.Lock()
				enough := m.failed-failed0+m.other >= 40
				m.mu.Unlock()
				if enough || !p.alive() {
					stop.Store(true)
				}
			}
		})
	}
	wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.acked - acked0, m.failed - failed0
}

func (m *fullModel) ids() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.state))
	for id := range m.state {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// diskFull: baseline writes; the disk fills under concurrent writers;
// reads go on; room comes back and writes work again in the same process;
// the disk fills again and trunkd is killed while full; with room again, a
// restart finds exactly the acknowledged writes; a clean stop leaves a file
// that passes bbolt's check.
func diskFull(t *testing.T, bin, dir string, disk diskLimit) {
	m := &fullModel{sipPort: freeSIPPort(t), state: map[string]trunkState{}, unsure: map[string]bool{}, messages: map[string]int{}}
	dbPath := filepath.Join(dir, "trunkd.db")
	p := startCrashProc(t, bin, dir)
	c := p.connect(t, "trunks:manage")
	for i := range 10 {
		if err := m.write(t, c, fmt.Sprintf("base-%02d", i), "add", 1000); err != nil {
			t.Fatalf("baseline: %v", err)
		}
	}

	disk.fill(t, p)
	acked, failed := m.fill(t, p, "full1")
	if !p.alive() {
		t.Fatalf("trunkd died when the disk filled up: %v\n%s", p.waitErr, p.tail(30))
	}
	if failed == 0 {
		t.Fatalf("no write failed with the disk full (%d acknowledged)", acked)
	}
	t.Logf("disk full: %d writes failed with %s, %d acknowledged meanwhile (written into free pages inside the file); trunkd still running", failed, rpc.CodeUnavailable, acked)
	if err := c.Ping(context.Background()); err != nil {
		t.Errorf("Ping with the disk full: %v", err)
	}
	m.check(t, served(t, c, m.ids(), "reads with the disk full"), "reads with the disk full")

	disk.room(t, p)
	for i := range 20 {
		if err := m.write(t, c, fmt.Sprintf("room-%02d", i), "add", 2000); err != nil {
			t.Errorf("write once there is room again, same process: %v", err)
		}
	}
	m.check(t, served(t, c, m.ids(), "after room came back"), "after room came back")

	disk.fill(t, p)
	acked, failed = m.fill(t, p, "full2")
	if failed == 0 || !p.alive() {
		t.Fatalf("second fill: %d failed, %d acknowledged, trunkd alive: %v", failed, acked, p.alive())
	}
	p.kill(t)
	full := p
	disk.room(t, nil)
	checkBolt(t, dbPath, "after kill -9 with the disk full") // consistent; the log holds what bbolt could not take

	p = startCrashProc(t, bin, dir)
	c = p.connect(t, "trunks:manage")
	m.check(t, served(t, c, m.ids(), "restart with room"), "restart with room")
	for i := range 10 {
		if err := m.write(t, c, fmt.Sprintf("after-%02d", i), "add", 2000); err != nil {
			t.Errorf("write after the restart: %v", err)
		}
	}
	p.stop(t)
	m.check(t, checkBolt(t, dbPath, "after a clean stop"), "the file after a clean stop")

	var msgs []string
	for msg, n := range m.messages {
		msgs = append(msgs, fmt.Sprintf("%dx %q", n, msg))
	}
	slices.Sort(msgs)
	logged := "not logged"
	if s := strings.ToLower(full.logText()); strings.Contains(s, "file too large") || strings.Contains(s, "no space left") {
		logged = "logged"
	}
	fi, _ := os.Stat(dbPath)
	t.Logf("%d writes acknowledged, %d failed with %s (%s), none lost or half-applied; the disk error itself was %s by trunkd; file %d bytes, bbolt check clean",
		m.acked, m.failed, rpc.CodeUnavailable, strings.Join(msgs, ", "), logged, fi.Size())
}

// ---- the trunkd process ----

// crashProc is a trunkd subprocess.
type crashProc struct {
	cmd     *exec.Cmd
	dir     string
	addr    string
	exited  chan struct{}
	waitErr error // cmd.Wait's result once exited is closed

	mu  sync.Mutex
	log bytes.Buffer // stderr
}

// buildTrunkd builds this package into a temp dir.
func buildTrunkd(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is not on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "trunkd")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func crashRounds(t *testing.T) int {
	s := os.Getenv("CRASH_ROUNDS")
	if s == "" {
		return 60
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("CRASH_ROUNDS=%q: want a positive number", s)
	}
	return n
}

// startCrashProc starts trunkd on dir with a fresh port and returns once it
// logs that it serves.
func startCrashProc(t *testing.T, bin, dir string) *crashProc {
	t.Helper()
	p := &crashProc{dir: dir, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "--listen", "127.0.0.1:0", "--data", dir, "--log-format", "json", "--shutdown-timeout", "5s", "--drain-timeout", "1s")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no orphan if the test binary is killed
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			p.log.Write(line)
			p.log.WriteByte('\n')
			p.mu.Unlock()
			var l struct {
				Msg    string `json:"msg"`
				Listen string `json:"listen"`
			}
			if json.Unmarshal(line, &l) == nil && l.Msg == "trunkd serving" {
				select {
				case ready <- l.Listen:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		if p.alive() {
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	select {
	case p.addr = <-ready:
	case <-p.exited:
		t.Fatalf("trunkd exited at start-up: %v\n%s", p.waitErr, p.tail(20))
	case <-time.After(30 * time.Second):
		t.Fatalf("trunkd did not serve within 30s\n%s", p.tail(20))
	}
	return p
}

func (p *crashProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *crashProc) kill(t *testing.T) {
	t.Helper()
	if !p.alive() {
		t.Fatalf("trunkd had already exited before the kill: %v\n%s", p.waitErr, p.tail(30))
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("trunkd still running 10s after SIGKILL")
	}
}

// stop sends SIGTERM and expects a clean exit.
func (p *crashProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("trunkd still running 30s after SIGTERM\n%s", p.tail(20))
	}
	if p.waitErr != nil {
		t.Errorf("trunkd exited with %v after SIGTERM; want 0\n%s", p.waitErr, p.tail(20))
	}
}

// connect dials trunkd, pinning its certificate, and returns once a Ping is
// answered.
func (p *crashProc) connect(t *testing.T, scope string) *rpc.Client {
	t.Helper()
	tc, err := rpc.PinnedTLSConfig(filepath.Join(p.dir, "tls.crt"), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tok := token(t, p.dir, scope)
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		c, err := rpc.Dial(ctx, p.addr, tc, tok)
		if err == nil {
			if err = c.Ping(ctx); err != nil {
				c.Close()
			}
		}
		cancel()
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		if !p.alive() || time.Now().After(deadline) {
			t.Fatalf("trunkd at %s does not answer: %v\n%s", p.addr, err, p.tail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *crashProc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// replayed returns how many writes trunkd said it took from the
// write-ahead log at start-up.
func (p *crashProc) replayed(t *testing.T) int {
	for _, line := range strings.Split(p.logText(), "\n") {
		var e struct {
			Msg    string `json:"msg"`
			Writes int    `json:"writes"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && strings.Contains(e.Msg, "replayed from the write-ahead log") {
			return e.Writes
		}
	}
	return 0
}

func (p *crashProc) tail(n int) string { return crashLastLines(p.logText(), n) }

// ---- files ----

// writeFile is in tls_test.go.

// boltFile creates a bbolt file at path holding what fn writes.
func boltFile(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	boltFileWith(t, path, nil, fn)
}

func boltFileWith(t *testing.T, path string, opts *bolt.Options, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

type fileSnapshot struct {
	mode    os.FileMode
	size    int64
	modTime time.Time
	content []byte
}

func snapshotFile(t *testing.T, path string) fileSnapshot {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	s := fileSnapshot{mode: fi.Mode(), size: fi.Size(), modTime: fi.ModTime()}
	if fi.Mode().IsRegular() {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s.content = b
	}
	return s
}

func (s fileSnapshot) equal(o fileSnapshot) bool {
	return s.mode == o.mode && s.size == o.size && s.modTime.Equal(o.modTime) && bytes.Equal(s.content, o.content)
}

func (s fileSnapshot) String() string {
	return fmt.Sprintf("{%v %d bytes, modified %s, sha256 %x}", s.mode, s.size, s.modTime.Format(time.RFC3339Nano), sha256.Sum256(s.content))
}

// changedPages names the pages of a that b differs in.
func changedPages(a, b []byte, pageSize int) string {
	var pages []string
	for off := 0; off < max(len(a), len(b)); off += pageSize {
		pa, pb := a[min(off, len(a)):min(off+pageSize, len(a))], b[min(off, len(b)):min(off+pageSize, len(b))]
		if !bytes.Equal(pa, pb) {
			pages = append(pages, strconv.Itoa(off/pageSize))
		}
	}
	if len(pages) == 0 {
		return ""
	}
	return "; pages changed: " + strings.Join(pages, ", ")
}

func crashLastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
