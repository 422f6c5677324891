//go:build cluster

package main

// The long cluster suites (make cluster-test): trunkd processes on a
// real 3-member etcd, killed with SIGKILL, stopped, cut off. Not in make
// test: each takes tens of seconds.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/store"
	"github.com/trunkd/trunkd/store/etcd"
	"github.com/trunkd/trunkd/store/etcd/etcdtest"
	"github.com/trunkd/trunkd/trunk/control"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

var trunkdBin struct {
	once sync.Once
	path string
	err  error
}

func buildTrunkd(t *testing.T) string {
	t.Helper()
	trunkdBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "trunkd-bin")
		if err != nil {
			trunkdBin.err = err
			return
		}
		trunkdBin.path = filepath.Join(dir, "trunkd")
		out, err := exec.Command("go", "build", "-o", trunkdBin.path, ".").CombinedOutput()
		if err != nil {
			trunkdBin.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if trunkdBin.err != nil {
		t.Fatal(trunkdBin.err)
	}
	return trunkdBin.path
}

// procCluster is trunkd processes sharing an etcd cluster.
type procCluster struct {
	t      *testing.T
	etcd   *etcdtest.Cluster
	shared string
	tok    string
	ttl    string
	nodes  []*procNode
}

type procNode struct {
	name, ip, dir, log string
	port               uint16
	cmd                *exec.Cmd
	done               chan struct{}
	c                  *rpc.Client
	extra              []string
}

func newProcCluster(t *testing.T, ec *etcdtest.Cluster, n int, ttl string) *procCluster {
	pc := &procCluster{t: t, etcd: ec, shared: t.TempDir(), ttl: ttl}
	if _, err := store.LoadOrCreateKey(filepath.Join(pc.shared, "secret.key")); err != nil {
		t.Fatal(err)
	}
	jwt := filepath.Join(pc.shared, "jwt.secret")
	if err := createSecret(jwt, discardLogger()); err != nil {
		t.Fatal(err)
	}
	secret, err := auth.LoadSecretFile(jwt)
	if err != nil {
		t.Fatal(err)
	}
	if pc.tok, err = auth.MintToken(secret, "trunks:manage", time.Hour, "", ""); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ip := fmt.Sprintf("127.0.0.%d", i+2)
		nd := &procNode{name: fmt.Sprintf("n%d", i+1), ip: ip, dir: filepath.Join(pc.shared, fmt.Sprintf("n%d", i+1)),
			port: uint16(freeSIPPortOn(t, ip))}
		nd.log = nd.dir + ".log"
		pc.nodes = append(pc.nodes, nd)
		pc.start(nd)
	}
	t.Cleanup(func() {
		for _, nd := range pc.nodes {
			pc.signal(nd, syscall.SIGKILL)
		}
	})
	return pc
}

func freeSIPPortOn(t *testing.T, ip string) int {
	c, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func (pc *procCluster) start(nd *procNode) {
	t := pc.t
	t.Helper()
	args := append([]string{"--listen", fmt.Sprintf("%s:%d", nd.ip, nd.port), "--data", nd.dir, "--log-level", "info",
		"--store", "etcd://" + strings.Join(pc.etcd.Endpoints(), ","),
		"--secret-key-file", filepath.Join(pc.shared, "secret.key"), "--jwt-secret-file", filepath.Join(pc.shared, "jwt.secret"),
		"--node-name", nd.name, "--node-ttl", pc.ttl, "--node-settle", "0s", "--ip-map", "127.0.0.2=" + nd.ip,
		"--shutdown-timeout", "2s", "--drain-timeout", "1s"}, nd.extra...)
	f, err := os.OpenFile(nd.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	nd.cmd = exec.Command(buildTrunkd(t), args...)
	nd.cmd.Stdout, nd.cmd.Stderr = f, f
	if err := nd.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	nd.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); f.Close(); close(done) }(nd.cmd, nd.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := pc.dial(nd); err == nil {
			nd.c = c
			return
		} else if time.Now().After(deadline) {
			b, _ := os.ReadFile(nd.log)
			t.Fatalf("%s did not serve: %v\n%s", nd.name, err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (pc *procCluster) dial(nd *procNode) (*rpc.Client, error) {
	tlsc, err := rpc.PinnedTLSConfig(filepath.Join(nd.dir, "tls.crt"), nd.ip)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := rpc.Dial(ctx, fmt.Sprintf("%s:%d", nd.ip, nd.port), tlsc, pc.tok)
	if err != nil {
		return nil, err
	}
	if err := c.Ping(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (pc *procCluster) signal(nd *procNode, sig syscall.Signal) {
	if nd.cmd == nil {
		return
	}
	select {
	case <-nd.done:
		return
	default:
	}
	nd.cmd.Process.Signal(sig)
	if sig == syscall.SIGSTOP || sig == syscall.SIGCONT {
		return
	}
	select {
	case <-nd.done:
	case <-time.After(10 * time.Second):
		nd.cmd.Process.Kill()
		<-nd.done
	}
	if nd.c != nil {
		nd.c.Close()
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// regEvent is one REGISTER a registrar received.
type regEvent struct {
	aor, src string
	unreg    bool
	at       time.Time
}

// events lists the REGISTERs reg received, by AOR.
func events(reg *siptest.Registrar) []regEvent {
	var out []regEvent
	for _, r := range reg.Registers() {
		out = append(out, regEvent{aor: r.Req.To().Address.User, src: r.Source, unreg: r.Unregister, at: r.At})
	}
	return out
}

// lastRegistrant is the source of the newest REGISTER (not un-REGISTER)
// of each AOR.
func lastRegistrant(evs []regEvent) map[string]string {
	m := map[string]string{}
	for _, e := range evs {
		if !e.unreg {
			m[e.aor] = e.src
		}
	}
	return m
}

// TestClusterLongNodeKill: SIGKILL of a node moves each registration it
// owned to one other node within the measured failover time; when it
// comes back, the trunks that move back are un-REGISTERed by the old
// owner before the new one registers.
func TestClusterLongNodeKill(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	pc := newProcCluster(t, ec, 3, "3s")
	reg := siptest.NewRegistrar(t)
	ctx := context.Background()
	const trunks = 12
	for i := range trunks {
		tr := sipTrunk(fmt.Sprintf("r%02d", i), uint16(freeSIPPortOn(t, "127.0.0.2")))
		tr.InternalSIPIP = "127.0.0.2"
		tr.RequireRegistration, tr.Proxy, tr.Domain = true, reg.Addr, "carrier.example"
		tr.SIPUsername, tr.SIPPassword, tr.RegisterExpiresSec = fmt.Sprintf("u%02d", i), "pw", 60
		if err := pc.nodes[i%3].c.AddTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	owners := waitOwners(t, reg, trunks, nil)
	count := map[string]int{}
	for _, src := range owners {
		count[src]++
	}
	t.Logf("registrations per node: %v", count)
	victim := pc.nodes[0]
	for _, nd := range pc.nodes {
		if count[nd.ip] > count[victim.ip] {
			victim = nd
		}
	}
	mark := len(events(reg))
	killed := time.Now()
	pc.signal(victim, syscall.SIGKILL)
	var moved []string
	for aor, src := range owners {
		if src == victim.ip {
			moved = append(moved, aor)
		}
	}
	var worst time.Duration
	deadline := killed.Add(3*time.Second + 5*time.Second)
	for _, aor := range moved {
		for {
			var took time.Duration
			for _, e := range events(reg)[mark:] {
				if e.aor == aor && !e.unreg && e.src != victim.ip {
					took = e.at.Sub(killed)
					break
				}
			}
			if took > 0 {
				worst = max(worst, took)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no REGISTER from another node %v after the kill of its owner", aor, time.Since(killed))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("FAILOVER: kill -9 of %s (owner of %d of %d trunks, node TTL 3s): every trunk registered by another node within %v", victim.name, len(moved), trunks, worst)
	after := waitOwners(t, reg, trunks, func(m map[string]string) bool {
		for _, src := range m {
			if src == victim.ip {
				return false
			}
		}
		return true
	})
	_ = after
	// The node comes back: its share moves back, un-REGISTER first.
	mark = len(events(reg))
	pc.start(victim)
	back := waitOwners(t, reg, trunks, func(m map[string]string) bool {
		for _, src := range m {
			if src == victim.ip {
				return true
			}
		}
		return false
	})
	time.Sleep(2 * time.Second)
	evs := events(reg)[mark:]
	for aor, src := range back {
		if src != victim.ip {
			continue
		}
		var unregAt, regAt time.Time
		for _, e := range evs {
			if e.aor == aor && e.unreg && e.src != victim.ip && unregAt.IsZero() {
				unregAt = e.at
			}
			if e.aor == aor && !e.unreg && e.src == victim.ip && regAt.IsZero() {
				regAt = e.at
			}
		}
		if unregAt.IsZero() || regAt.Before(unregAt) {
			t.Errorf("%s moved back to %s: REGISTER at %v, previous owner's un-REGISTER at %v; want the un-REGISTER first", aor, victim.name, regAt, unregAt)
		}
	}
}

// waitOwners waits until every AOR has a registrant (and cond holds) and
// returns the newest registrant of each.
func waitOwners(t *testing.T, reg *siptest.Registrar, n int, cond func(map[string]string) bool) map[string]string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := lastRegistrant(events(reg))
		if len(m) == n && (cond == nil || cond(m)) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("registrants: %v", m)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func etcdClient(t *testing.T, ec *etcdtest.Cluster) *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{Endpoints: ec.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func leader(t *testing.T, ec *etcdtest.Cluster, cli *clientv3.Client) *etcdtest.Member {
	for i, ep := range ec.Endpoints() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cli.Status(ctx, ep)
		cancel()
		if err == nil && st.Leader == st.Header.MemberId {
			return ec.Members[i]
		}
	}
	t.Fatal("no etcd leader")
	return nil
}

// TestClusterLongLeaderKill: writes through two nodes while etcd's leader
// is killed and restarted: no acknowledged write is lost, writes resume,
// and both nodes run what etcd holds.
func TestClusterLongLeaderKill(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	pc := newProcCluster(t, ec, 2, "3s")
	cli := etcdClient(t, ec)
	ctx := context.Background()
	const trunks = 10
	ports := make([]uint16, trunks)
	for i := range trunks {
		ports[i] = uint16(freeSIPPortOn(t, "127.0.0.2"))
		tr := sipTrunk(fmt.Sprintf("w%02d", i), ports[i])
		tr.InternalSIPIP = "127.0.0.2"
		if err := pc.nodes[0].c.AddTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	type ack struct {
		rev  uint64
		name string
		code uint16
	}
	acked := make([]ack, trunks)
	var mu sync.Mutex
	var okN, failN int
	var longest time.Duration
	stop := time.Now().Add(9 * time.Second)
	var wg sync.WaitGroup
	for w, nd := range pc.nodes {
		wg.Go(func() {
			lastOK := time.Now()
			for seq := 0; time.Now().Before(stop); seq++ {
				i := (seq*2 + w) % trunks
				tr := sipTrunk(fmt.Sprintf("w%02d", i), ports[i])
				tr.InternalSIPIP = "127.0.0.2"
				tr.DisplayName = fmt.Sprintf("writer%d-%d", w, seq)
				tr.RejectSIPCode = []uint16{480, 486, 603}[seq%3]
				cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				err := nd.c.UpdateTrunk(cctx, tr)
				cancel()
				if err != nil {
					mu.Lock()
					failN++
					mu.Unlock()
					time.Sleep(50 * time.Millisecond)
					continue
				}
				r, err := nd.c.GetTrunkRecord(ctx, tr.TrunkID)
				mu.Lock()
				okN++
				longest = max(longest, time.Since(lastOK))
				if err == nil && r.Revision > acked[i].rev {
					// The revision read right after the write is ours or newer.
					acked[i] = ack{r.Revision, tr.DisplayName, tr.RejectSIPCode}
				}
				mu.Unlock()
				lastOK = time.Now()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	time.Sleep(3 * time.Second)
	l := leader(t, ec, cli)
	t.Logf("killing etcd leader %s", l.Name)
	l.Kill()
	time.Sleep(3 * time.Second)
	l.Restart()
	wg.Wait()
	ec.WaitHealthy(20 * time.Second)
	t.Logf("LEADER-KILL: %d writes acknowledged, %d failed (retried), longest gap between acknowledgements %v", okN, failN, longest)
	for i := range trunks {
		id := fmt.Sprintf("w%02d", i)
		r, err := pc.nodes[1].c.GetTrunkRecord(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Revision < acked[i].rev {
			t.Errorf("%s: stored revision %d older than an acknowledged one (%d, %s): acknowledged write lost", id, r.Revision, acked[i].rev, acked[i].name)
		}
		for _, nd := range pc.nodes {
			eventually(t, 10*time.Second, id+" live on "+nd.name, func() (bool, string) {
				got := inviteAt(t, nd.ip, ports[i])
				return got == int(r.Record.RejectSIPCode), fmt.Sprintf("INVITE %d; stored %d", got, r.Record.RejectSIPCode)
			})
		}
	}
}

// cutProxy forwards TCP to an etcd member until cut.
type cutProxy struct {
	ln    net.Listener
	to    string
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func newCutProxy(t *testing.T, to string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, to: to}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.cut {
				p.mu.Unlock()
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", to)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	return p
}

func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// TestClusterLongPartition: a node cut off from etcd stops registering
// before its lease can expire, so before another node takes over.
func TestClusterLongPartition(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	var proxies []*cutProxy
	var eps []string
	for _, ep := range ec.Endpoints() {
		p := newCutProxy(t, ep)
		proxies = append(proxies, p)
		eps = append(eps, p.ln.Addr().String())
	}
	reg := siptest.NewRegistrar(t)
	shared := t.TempDir()
	start := func(name, ip string, endpoints []string) *Daemon {
		args := []string{"--listen", ip + ":0", "--data", filepath.Join(shared, name), "--log-level", "warn",
			"--store", "etcd://" + strings.Join(endpoints, ","), "--secret-key-file", filepath.Join(shared, "secret.key"),
			"--jwt-secret-file", filepath.Join(shared, "jwt.secret"), "--node-name", name, "--node-ttl", "4s",
			"--node-settle", "0s", "--ip-map", "127.0.0.2=" + ip, "--etcd-timeout", "1s"}
		cfg, err := parseConfig(args, func(string) string { return "" }, os.Stderr)
		if err != nil {
			t.Fatal(err)
		}
		store.LoadOrCreateKey(cfg.SecretKeyFile)
		createSecret(cfg.JWTSecretFile, discardLogger())
		d, err := Start(cfg, cfg.logger(os.Stderr).With("node", name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			d.Shutdown(ctx)
		})
		return d
	}
	a := start("a", "127.0.0.2", eps)
	b := start("b", "127.0.0.3", ec.Endpoints())
	// A trunk whose owner is a.
	id := ""
	for i := 0; id == ""; i++ {
		if c := fmt.Sprintf("p%d", i); etcd.Owner([]string{"a", "b"}, c) == "a" {
			id = c
		}
	}
	tr := sipTrunk(id, uint16(freeSIPPortOn(t, "127.0.0.2")))
	tr.InternalSIPIP = "127.0.0.2"
	tr.RequireRegistration, tr.Proxy, tr.Domain = true, reg.Addr, "carrier.example"
	tr.SIPUsername, tr.SIPPassword, tr.RegisterExpiresSec = "part", "pw", 60
	ctx := context.Background()
	if err := a.svc.AddTrunk(ctx, tr, control.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitOwners(t, reg, 1, func(m map[string]string) bool { return m["part"] == "127.0.0.2" })
	cut := time.Now()
	for _, p := range proxies {
		p.setCut(true)
	}
	var gaveUp time.Duration
	eventually(t, 10*time.Second, "a gives up its registration", func() (bool, string) {
		return !a.members.Owns(id), "still owner"
	})
	gaveUp = time.Since(cut)
	eventually(t, 15*time.Second, "b registers", func() (bool, string) {
		return b.members.Owns(id) && lastRegistrant(events(reg))["part"] == "127.0.0.3", "not yet"
	})
	tookOver := time.Since(cut)
	t.Logf("PARTITION: node TTL 4s; cut-off node stopped registering after %v, the other node registered after %v", gaveUp, tookOver)
	if gaveUp >= tookOver {
		t.Errorf("the partitioned node gave up after %v, not before the takeover at %v", gaveUp, tookOver)
	}
	// Healed: a rejoins, and the trunk goes back to it.
	for _, p := range proxies {
		p.setCut(false)
	}
	eventually(t, 20*time.Second, "a owns again after healing", func() (bool, string) {
		return a.members.Owns(id) && !b.members.Owns(id), fmt.Sprint(a.members.Owned(), b.members.Owned())
	})
}

// TestClusterLongCompaction: a node stopped (SIGSTOP) while writes
// happen, etcd compacts past them and restarts member by member: when
// resumed, its watch is refused (compacted), it reads everything again
// and converges.
func TestClusterLongCompaction(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	pc := newProcCluster(t, ec, 2, "3s")
	cli := etcdClient(t, ec)
	ctx := context.Background()
	port := uint16(freeSIPPortOn(t, "127.0.0.2"))
	tr := sipTrunk("c0", port)
	tr.InternalSIPIP = "127.0.0.2"
	if err := pc.nodes[0].c.AddTrunk(ctx, tr); err != nil {
		t.Fatal(err)
	}
	b := pc.nodes[1]
	pc.signal(b, syscall.SIGSTOP)
	// A rolling restart of etcd breaks the stopped node's watch (before the
	// writes, so none of them waits in its socket): resumed, it must watch
	// again from a revision compacted away, and read everything.
	for _, m := range ec.Members {
		m.Stop()
		m.Restart()
		ec.WaitHealthy(20 * time.Second)
	}
	codes := []uint16{480, 603, 486} // the last write sets 486; the node ran 603
	for i := range 1500 {
		tr.RejectSIPCode = codes[i%3]
		tr.DisplayName = strings.Repeat("x", 400) + fmt.Sprint(i)
		if err := pc.nodes[0].c.UpdateTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	final := tr.RejectSIPCode
	head, err := cli.Get(ctx, "/trunkd/v1/meta")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, head.Header.Revision); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	pc.signal(b, syscall.SIGCONT)
	eventually(t, 30*time.Second, "the resumed node runs the last write", func() (bool, string) {
		got := inviteAt(t, b.ip, port)
		return got == int(final), fmt.Sprintf("INVITE %d; want %d", got, final)
	})
	converged := time.Since(resumed)
	log, _ := os.ReadFile(b.log)
	relisted := strings.Contains(string(log), "reading a snapshot")
	t.Logf("COMPACTION: resumed node converged after %v; relisted: %v", converged, relisted)
	if !relisted {
		t.Errorf("the resumed node did not log a relist after the compaction:\n%s", log)
	}
}
