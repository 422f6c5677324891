// Package etcdtest starts a real etcd cluster on loopback for tests: the
// etcd binary (Debian's etcd-server, installed by make deps), free ports,
// data in the test's temporary directory. Members are stopped by their
// process and waited for when the test ends.
package etcdtest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trunkd/trunkd/trunk/porttest"
)

// Member is one etcd process.
type Member struct {
	Name       string
	ClientURL  string
	PeerURL    string
	dir        string
	cmd        *exec.Cmd
	waited     chan struct{}
	cluster    *Cluster
	logPath    string
	generation int
}

// Cluster is a running etcd cluster.
type Cluster struct {
	t       testing.TB
	Members []*Member
	initial string
}

// Binary is the etcd executable tests run; it skips the test when absent.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd is not installed (make deps installs Debian's etcd-server)")
	}
	return p
}

// Start starts an n-member cluster and waits until it has a leader.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	Binary(t)
	c := &Cluster{t: t}
	dir := t.TempDir()
	var initial []string
	for i := range n {
		m := &Member{Name: fmt.Sprintf("m%d", i), ClientURL: "http://" + freeAddr(t), PeerURL: "http://" + freeAddr(t),
			dir: filepath.Join(dir, fmt.Sprintf("m%d", i)), cluster: c}
		m.logPath = m.dir + ".log"
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	c.initial = strings.Join(initial, ",")
	for _, m := range c.Members {
		m.start()
	}
	t.Cleanup(c.Stop)
	t.Cleanup(func() {
		if t.Failed() { // say what etcd said, before the logs go with the temporary directory
			for _, m := range c.Members {
				t.Logf("etcd %s (client %s, peer %s) log ends:\n%s", m.Name, m.ClientURL, m.PeerURL, m.Log())
			}
		}
	})
	c.WaitHealthy(30 * time.Second)
	return c
}

// Endpoints lists the members' client addresses (host:port).
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, strings.TrimPrefix(m.ClientURL, "http://"))
	}
	return eps
}

// freeAddr is a loopback address whose port is free at the moment
// (porttest.Free: not one the kernel may hand to another process first).
func freeAddr(t testing.TB) string {
	p, err := porttest.Free("127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(p)))
}

func (m *Member) start() {
	t := m.cluster.t
	state := "new"
	if m.generation > 0 {
		state = "existing"
	}
	m.generation++
	cmd := exec.Command("etcd", "--name", m.Name, "--data-dir", m.dir,
		"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
		"--initial-cluster", m.cluster.initial, "--initial-cluster-state", state,
		"--initial-cluster-token", "trunkd-test", "--heartbeat-interval", "100", "--election-timeout", "1000",
		"--logger", "zap", "--log-level", "warn", "--experimental-enable-lease-checkpoint")
	f, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("etcd %s: %v", m.Name, err)
	}
	m.cmd, m.waited = cmd, make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(m.waited) }()
}

// Kill stops the member with SIGKILL and waits for it.
func (m *Member) Kill() { m.signal(syscall.SIGKILL) }

// Stop stops the member with SIGTERM and waits for it.
func (m *Member) Stop() { m.signal(syscall.SIGTERM) }

// Pause stops the member's process (SIGSTOP); Resume continues it.
func (m *Member) Pause() { m.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused member.
func (m *Member) Resume() { m.cmd.Process.Signal(syscall.SIGCONT) }

func (m *Member) signal(sig syscall.Signal) {
	if m.cmd == nil {
		return
	}
	select {
	case <-m.waited:
		return
	default:
	}
	m.cmd.Process.Signal(syscall.SIGCONT)
	m.cmd.Process.Signal(sig)
	select {
	case <-m.waited:
	case <-time.After(10 * time.Second):
		m.cmd.Process.Kill()
		<-m.waited
	}
}

// Restart starts a stopped member again with its data.
func (m *Member) Restart() { m.start() }

// Running reports whether the member's process runs.
func (m *Member) Running() bool {
	select {
	case <-m.waited:
		return false
	default:
		return m.cmd != nil
	}
}

// Stop stops every member.
func (c *Cluster) Stop() {
	for _, m := range c.Members {
		m.Stop()
	}
}

// Log returns the end of a member's log, for failure messages.
func (m *Member) Log() string {
	f, err := os.Open(m.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// WaitHealthy waits until every running member answers /health.
func (c *Cluster) WaitHealthy(d time.Duration) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for _, m := range c.Members {
		if !m.Running() {
			continue
		}
		if err := waitHealth(ctx, m.ClientURL); err != nil {
			c.t.Fatalf("etcd %s did not become healthy: %v\n%s", m.Name, err, m.Log())
		}
	}
}
