package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/store"
	"github.com/trunkd/trunkd/store/etcd"
	"github.com/trunkd/trunkd/store/etcd/etcdtest"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
)

// testNode is one trunkd of a test cluster, on its own loopback address.
type testNode struct {
	name, ip, dir string
	d             *Daemon
	c             *rpc.Client
}

// testCluster is trunkd nodes on 127.0.0.2, .3, ... sharing one etcd
// cluster, one secret key and one JWT secret. A trunk stored with
// internal_sip_ip 127.0.0.2 runs on each node's own address (--ip-map).
type testCluster struct {
	t      testing.TB
	etcd   *etcdtest.Cluster
	shared string
	prefix string
	extra  []string // flags of every node
	nodes  []*testNode
}

func startTestCluster(t testing.TB, ec *etcdtest.Cluster, prefix string, n int, extra ...string) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, etcd: ec, shared: t.TempDir(), prefix: prefix, extra: extra}
	for i := range n {
		tc.nodes = append(tc.nodes, tc.start(i))
	}
	return tc
}

func (tc *testCluster) start(i int) *testNode {
	t := tc.t
	t.Helper()
	n := &testNode{name: fmt.Sprintf("n%d", i+1), ip: fmt.Sprintf("127.0.0.%d", i+2), dir: filepath.Join(tc.shared, fmt.Sprintf("n%d", i+1))}
	args := []string{"--listen", n.ip + ":0", "--data", n.dir, "--log-level", "warn",
		"--store", "etcd://" + strings.Join(tc.etcd.Endpoints(), ","), "--etcd-prefix", tc.prefix,
		"--secret-key-file", filepath.Join(tc.shared, "secret.key"), "--jwt-secret-file", filepath.Join(tc.shared, "jwt.secret"),
		"--node-name", n.name, "--node-ttl", "2s", "--node-settle", "0s", "--ip-map", "127.0.0.2=" + n.ip,
		"--stats-interval", "200ms"}
	args = append(args, tc.extra...)
	cfg, err := parseConfig(args, func(string) string { return "" }, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if i == 0 {
		if _, err := store.LoadOrCreateKey(cfg.SecretKeyFile); err != nil {
			t.Fatal(err)
		}
		if err := createSecret(cfg.JWTSecretFile, cfg.logger(os.Stderr)); err != nil {
			t.Fatal(err)
		}
	}
	n.d, err = Start(cfg, cfg.logger(os.Stderr).With("node", n.name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.stop(n) })
	secret, err := auth.LoadSecretFile(cfg.JWTSecretFile)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.MintToken(secret, "trunks:manage", time.Hour, "", "")
	if err != nil {
		t.Fatal(err)
	}
	tlsc, err := rpc.PinnedTLSConfig(filepath.Join(n.dir, "tls.crt"), n.ip)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n.c, err = rpc.Dial(ctx, n.d.Addr().String(), tlsc, tok); err != nil {
		t.Fatal(err)
	}
	return n
}

func (tc *testCluster) stop(n *testNode) {
	if n.d == nil {
		return
	}
	n.c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.d.Shutdown(ctx)
	n.d = nil
}

// inviteAt sends one INVITE from 127.0.0.1 to host:port and returns the
// final response code.
func inviteAt(t *testing.T, host string, port uint16) int {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("carrier"))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	dg := diago.NewDiago(ua, diago.WithTransport(diago.Transport{Transport: "udp", BindHost: "127.0.0.1", BindPort: 0}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := dg.Invite(ctx, sip.Uri{User: "100", Host: host, Port: int(port)}, diago.InviteOptions{})
	if err == nil {
		d.Hangup(ctx)
		d.Close()
		return 200
	}
	var re *sipgo.ErrDialogResponse
	if !errors.As(err, &re) {
		return 0 // nobody answered (no listener yet)
	}
	return re.Res.StatusCode
}

// eventually polls cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, got := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v (last: %s)", what, d, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCluster runs three trunkd nodes on one 3-member etcd: a write
// through any node is live on all; conflicting writes from two nodes
// end with one ERR_CONFLICT; exactly one node registers a trunk, and
// another takes over when it leaves; bbolt -> etcd migration.
func TestCluster(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	t.Run("WriteLiveEverywhere", func(t *testing.T) { testWriteLiveEverywhere(t, ec) })
	t.Run("RegistrationOwnedOnce", func(t *testing.T) { testRegistrationOwnedOnce(t, ec) })
	t.Run("Migrate", func(t *testing.T) { testMigrate(t, ec) })
	t.Run("QualityClusterWide", func(t *testing.T) { testQualityClusterWide(t, ec) })
	t.Run("AckCluster", func(t *testing.T) { testAckCluster(t, ec) })
}

func testWriteLiveEverywhere(t *testing.T, ec *etcdtest.Cluster) {
	tc := startTestCluster(t, ec, "/live/", 3)
	ctx := context.Background()
	port := freeSIPPort(t)
	tr := sipTrunk("live", port)
	tr.InternalSIPIP = "127.0.0.2"
	if err := tc.nodes[0].c.AddTrunk(ctx, tr); err != nil {
		t.Fatal(err)
	}
	// Served by node 1: live there when acknowledged.
	if got := inviteAt(t, "127.0.0.2", port); got != 603 {
		t.Fatalf("INVITE to n1 right after its AddTrunk = %d; want 603", got)
	}
	for _, n := range tc.nodes[1:] {
		d := eventually(t, 5*time.Second, "trunk live on "+n.name, func() (bool, string) {
			got := inviteAt(t, n.ip, port)
			return got == 603, fmt.Sprint(got)
		})
		t.Logf("AddTrunk on n1 -> INVITE to %s answered as configured after %v", n.name, d)
	}
	// An update through node 2 reaches nodes 3 and 1.
	tr.RejectSIPCode = 486
	if err := tc.nodes[1].c.UpdateTrunk(ctx, tr); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{tc.nodes[2], tc.nodes[0]} {
		eventually(t, 5*time.Second, "update live on "+n.name, func() (bool, string) {
			got := inviteAt(t, n.ip, port)
			return got == 486, fmt.Sprint(got)
		})
	}
	// Admin reads go to etcd: every node reads the same revision.
	var revs []uint64
	for _, n := range tc.nodes {
		r, err := n.c.GetTrunkRecord(ctx, "live")
		if err != nil || !r.Found {
			t.Fatalf("GetTrunk on %s = %+v, %v", n.name, r, err)
		}
		revs = append(revs, r.Revision)
	}
	if revs[0] == 0 || revs[0] != revs[1] || revs[1] != revs[2] {
		t.Errorf("revisions read on the three nodes = %v; want one non-zero revision", revs)
	}
	// Conflicting writes from two nodes: one wins, the other is ERR_CONFLICT.
	for round := range 5 {
		r, _ := tc.nodes[0].c.GetTrunkRecord(ctx, "live")
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, n := range []*testNode{tc.nodes[0], tc.nodes[2]} {
			wg.Go(func() {
				u := *tr
				u.RejectSIPCode = uint16(480 + i)
				errs[i] = n.c.WriteTrunk(ctx, "UpdateTrunk", rpc.TrunkRequest{Trunk: u, IfRevision: r.Revision})
			})
		}
		wg.Wait()
		conflicts := 0
		for _, err := range errs {
			var re *rpc.Error
			switch {
			case err == nil:
			case errors.As(err, &re) && re.Code == rpc.CodeConflict:
				conflicts++
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if conflicts != 1 {
			t.Fatalf("round %d: %d conflicts (%v); want exactly 1", round, conflicts, errs)
		}
	}
	// A removal through node 3 takes the trunk off node 1.
	if err := tc.nodes[2].c.RemoveTrunk(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "removal live on n1", func() (bool, string) {
		m, err := tc.nodes[0].c.ExplainMatch(ctx, "127.0.0.1", fmt.Sprintf("127.0.0.2:%d", port), "")
		return err == nil && !m.Matched, fmt.Sprint(m, err)
	})
}

// sources counts by source the REGISTERs (not un-REGISTERs) reg received
// after the first from of them, and returns how many there are in all.
func sources(reg *siptest.Registrar, from int) (map[string]int, int) {
	var regs []siptest.Register
	for _, r := range reg.Registers() {
		if !r.Unregister {
			regs = append(regs, r)
		}
	}
	m := map[string]int{}
	for _, r := range regs[min(from, len(regs)):] {
		m[r.Source]++
	}
	return m, len(regs)
}

func (tc *testCluster) owners(id string) []string {
	var own []string
	for _, n := range tc.nodes {
		if n.d != nil && n.d.members.Owns(id) {
			own = append(own, n.name)
		}
	}
	return own
}

func testRegistrationOwnedOnce(t *testing.T, ec *etcdtest.Cluster) {
	tc := startTestCluster(t, ec, "/reg/", 3)
	ctx := context.Background()
	reg := siptest.NewRegistrar(t)
	port := freeSIPPort(t)
	tr := sipTrunk("reg", port)
	tr.InternalSIPIP = "127.0.0.2"
	tr.RequireRegistration, tr.Proxy, tr.Domain = true, reg.Addr, "carrier.example"
	tr.SIPUsername, tr.SIPPassword = "alice", "pw"
	if err := tc.nodes[1].c.AddTrunk(ctx, tr); err != nil {
		t.Fatal(err)
	}
	var owner *testNode
	eventually(t, 10*time.Second, "one owner registers", func() (bool, string) {
		own := tc.owners("reg")
		srcs, _ := sources(reg, 0)
		if len(own) != 1 || len(srcs) != 1 {
			return false, fmt.Sprintf("owners %v, REGISTER sources %v", own, srcs)
		}
		for _, n := range tc.nodes {
			if n.name == own[0] {
				owner = n
			}
		}
		return srcs[owner.ip] > 0, fmt.Sprintf("owner %s at %s, sources %v", owner.name, owner.ip, srcs)
	})
	// The owner leaves: another node registers from its own address.
	_, mark := sources(reg, 0)
	start := time.Now()
	tc.stop(owner)
	d := eventually(t, 10*time.Second, "a new owner registers", func() (bool, string) {
		own := tc.owners("reg")
		srcs, _ := sources(reg, mark)
		return len(own) == 1 && len(srcs) == 1 && srcs[owner.ip] == 0, fmt.Sprintf("owners %v, sources %v", own, srcs)
	})
	t.Logf("graceful leave of %s: REGISTER from the new owner after %v (%v from the stop)", owner.name, d, time.Since(start))
}

// testMigrate copies a bbolt store into etcd, twice (idempotent), and
// checks every field and secret on a node started on etcd.
func testMigrate(t *testing.T, ec *etcdtest.Cluster) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "secret.key")
	key, err := store.LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(dir, "trunkd.db"), key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var want []*trunk.Trunk
	for i := range 25 {
		tr := sipTrunk(fmt.Sprintf("m%02d", i), uint16(20000+i))
		tr.SIPPassword, tr.APIBearerToken, tr.DisplayName = fmt.Sprintf("pw%d", i), fmt.Sprintf("tok%d", i), fmt.Sprintf("Carrier %d", i)
		tr.Normalize()
		if err := db.AddTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
		want = append(want, tr)
	}
	db.Close()
	args := []string{"--from", "bolt://" + filepath.Join(dir, "trunkd.db"), "--to", "etcd://" + strings.Join(ec.Endpoints(), ","),
		"--secret-key-file", keyFile, "--etcd-prefix", "/migrate/"}
	for run := range 2 {
		var out, errOut strings.Builder
		if code := migrate(ctx, args, func(string) string { return "" }, &out, &errOut); code != 0 {
			t.Fatalf("migrate run %d = %d: %s", run+1, code, errOut.String())
		}
		wantLine := "25 copied, 0 already"
		if run == 1 {
			wantLine = "0 copied, 25 already in etcd and equal"
		}
		if !strings.Contains(out.String(), wantLine) {
			t.Errorf("migrate run %d said %q; want %q", run+1, out.String(), wantLine)
		}
	}
	cfg := &Config{Store: "etcd://" + strings.Join(ec.Endpoints(), ",")}
	cfg.Cluster.Prefix, cfg.Cluster.NodeTTL, cfg.Cluster.StatsInterval, cfg.Cluster.Ack = "/migrate/", 2*time.Second, time.Second, "node"
	if err := cfg.parseStore(); err != nil {
		t.Fatal(err)
	}
	ecfg, _ := cfg.Cluster.etcdConfig()
	st, err := etcd.Open(ctx, ecfg, key)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, w := range want {
		got, err := st.GetTrunk(ctx, w.TrunkID)
		if err != nil {
			t.Fatal(err)
		}
		w.Meta.Revision = got.Meta.Revision
		if !reflect.DeepEqual(got, w) {
			t.Errorf("after migration %s =\n%+v\nwant\n%+v", w.TrunkID, got, w)
		}
	}
}

// busyCarrier answers every INVITE with 486 Busy Here.
func busyCarrier(t *testing.T) int {
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("carrier"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, 486, "Busy Here", nil))
	})
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeUDP(conn)
	t.Cleanup(func() { ua.Close(); conn.Close() })
	return conn.LocalAddr().(*net.UDPAddr).Port
}

// testQualityClusterWide: calls dialled through two nodes count in the
// ASR figures GetTrunk reports on a third.
func testQualityClusterWide(t *testing.T, ec *etcdtest.Cluster) {
	tc := startTestCluster(t, ec, "/quality/", 3)
	ctx := context.Background()
	tr := sipTrunk("q", freeSIPPort(t))
	tr.InternalSIPIP = "127.0.0.2"
	tr.DestinationSBCPort = uint16(busyCarrier(t))
	if err := tc.nodes[0].c.AddTrunk(ctx, tr); err != nil {
		t.Fatal(err)
	}
	for i, n := range []*testNode{tc.nodes[0], tc.nodes[0], tc.nodes[1]} {
		eventually(t, 5*time.Second, "dial through "+n.name, func() (bool, string) {
			res, err := n.c.Dial(ctx, rpc.DialRequest{TrunkID: "q", To: fmt.Sprint("100", i)})
			return err == nil && res.SIPCode == 486, fmt.Sprint(res, err)
		})
	}
	eventually(t, 5*time.Second, "n3 reports the cluster's calls", func() (bool, string) {
		cfg, _, err := tc.nodes[2].c.GetTrunk(ctx, "q")
		return err == nil && cfg.CallsAttempted == 3 && cfg.CallsAnswered == 0, fmt.Sprintf("%+v %v", cfg, err)
	})
	cfg, _, _ := tc.nodes[0].c.GetTrunk(ctx, "q")
	if cfg.CallsAttempted != 3 {
		t.Errorf("n1 reports %d attempted; want the cluster's 3", cfg.CallsAttempted)
	}
	page, _, err := tc.nodes[2].c.ListTrunks(ctx, "", 10) // statuses read as a page's
	if err != nil || len(page) != 1 || page[0].CallsAttempted != 3 {
		t.Errorf("n3 lists %+v, %v; want trunk q with the cluster's 3 attempted", page, err)
	}
}

// testAckCluster: with -ack cluster a write is acknowledged once every
// other live node runs it; a node that does not apply it (its reconcile
// loop stopped) delays the acknowledgement by -ack-timeout, no more.
func testAckCluster(t *testing.T, ec *etcdtest.Cluster) {
	tc := startTestCluster(t, ec, "/ack/", 3, "--ack", "cluster", "--ack-timeout", "1s")
	ctx := context.Background()
	tr := sipTrunk("ack", freeSIPPort(t))
	tr.InternalSIPIP = "127.0.0.2"
	if err := tc.nodes[0].c.AddTrunk(ctx, tr); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		tr.DisplayName = fmt.Sprint("write ", i)
		start := time.Now()
		if err := tc.nodes[0].c.UpdateTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		r, err := tc.nodes[0].d.svc.GetTrunk(ctx, "ack", control.Access{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range tc.nodes[1:] {
			if got, _ := n.d.svc.AppliedRevision(); got < r.Meta.Revision {
				t.Fatalf("write %d acknowledged after %v; %s runs revision %d < %d", i, took, n.name, got, r.Meta.Revision)
			}
		}
	}
	// Node 3 stops applying: the acknowledgement waits for it, bounded.
	tc.nodes[2].d.stopReconcile()
	<-tc.nodes[2].d.reconciled
	tr.DisplayName = "after the stop"
	start := time.Now()
	if err := tc.nodes[0].c.UpdateTrunk(ctx, tr); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 900*time.Millisecond || took > 3*time.Second {
		t.Errorf("with a node not applying, the write was acknowledged after %v; want about -ack-timeout (1s)", took)
	}
}
