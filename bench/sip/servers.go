package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/trunkd/trunkd/media/sipplane/siptest"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/trunk"
)

// The server under test and the load generator each get a CPU of their
// own when the machine has two or more, so neither steals from the other.
const (
	serverCPU    = "0"
	generatorCPU = "1"
)

// pin prefixes a command with taskset when there are CPUs to pin to.
func pin(cpu string, args ...string) []string {
	if _, err := exec.LookPath("taskset"); err != nil || runtime.NumCPU() < 2 {
		return args
	}
	return append([]string{"taskset", "-c", cpu}, args...)
}

// proc is a server process under test.
type proc struct {
	name string
	cmd  *exec.Cmd
	port int
	log  *os.File
}

func startProc(name string, port int, dir string, args ...string) (*proc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	args = pin(serverCPU, args...)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr, cmd.Dir = log, log, dir
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &proc{name: name, cmd: cmd, port: port, log: log}, nil
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	p.log.Close()
}

// rssKiB reads the process's resident set size.
func (p *proc) rssKiB() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			var n int
			fmt.Sscan(f[1], &n)
			return n
		}
	}
	return -1
}

// trunkd is a running daemon with an admin client.
type trunkd struct {
	*proc
	c *rpc.Client
}

func startTrunkd(bin, dir string) (*trunkd, error) {
	admin := freePort()
	p, err := startProc("trunkd", 0, dir, bin, "--listen", fmt.Sprintf("127.0.0.1:%d", admin),
		"--data", filepath.Join(dir, "data"), "--log-level", "warn", "--drain-timeout", "1s")
	if err != nil {
		return nil, err
	}
	var last error
	for range 100 {
		time.Sleep(100 * time.Millisecond)
		var c *rpc.Client
		if c, last = adminClient(dir, admin); last == nil {
			return &trunkd{proc: p, c: c}, nil
		}
	}
	p.stop()
	log, _ := os.ReadFile(p.log.Name())
	return nil, fmt.Errorf("trunkd did not come up: %v\n%s", last, siptest.Tail(string(log), 30))
}

func adminClient(dir string, port int) (*rpc.Client, error) {
	data := filepath.Join(dir, "data")
	secret, err := auth.LoadSecretFile(filepath.Join(data, "jwt.secret"))
	if err != nil {
		return nil, err
	}
	tok, err := auth.MintToken(secret, "trunks:manage", time.Hour, "", "")
	if err != nil {
		return nil, err
	}
	tc, err := rpc.PinnedTLSConfig(filepath.Join(data, "tls.crt"), "127.0.0.1")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return rpc.Dial(ctx, fmt.Sprintf("127.0.0.1:%d", port), tc, tok)
}

func (d *trunkd) stop() {
	d.c.Close()
	d.proc.stop()
}

// benchTrunk is the trunk every call from sipp (127.0.0.1) matches.
func benchTrunk(port int) *trunk.Trunk {
	t := trunk.Defaults()
	t.TrunkID, t.InternalSIPIP, t.SourcePBXPort, t.GatewayIP = "bench", "127.0.0.1", uint16(port), "127.0.0.1"
	t.ChannelLimit, t.RTPStartPort, t.RTPEndPort = 9000, 20000, 40000
	t.CodecPreferences = []string{"PCMU"}
	return &t
}

func startBare(bin, dir, mode, wav string) (*proc, error) {
	port := freePort()
	p, err := startProc("bareuas-"+mode, port, dir, bin, "-listen", fmt.Sprintf("127.0.0.1:%d", port),
		"-mode", mode, "-code", "603", "-wav", wav)
	if err != nil {
		return nil, err
	}
	return p, waitUDP(p)
}

// startKamailio runs the stateful-603 anchor configuration on a free port.
func startKamailio(cfg, dir string) (*proc, error) {
	b, err := os.ReadFile(cfg)
	if err != nil {
		return nil, err
	}
	port := freePort()
	conf := strings.Replace(string(b), "listen=udp:127.0.0.1:25070", fmt.Sprintf("listen=udp:127.0.0.1:%d", port), 1)
	path := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	// -m/-M: 1024 MB shared, 16 MB private memory. With the default 64 MB
	// of shared memory Kamailio falls over near 1000 calls/s for want of
	// memory, not CPU, which is not a fair anchor.
	p, err := startProc("kamailio", port, dir, "kamailio", "-f", path, "-DD", "-E", "-w", dir,
		"-m", "1024", "-M", "16", "-P", filepath.Join(dir, "kamailio.pid"))
	if err != nil {
		return nil, err
	}
	return p, waitUDP(p)
}

// waitUDP waits until the server has bound its UDP port (read from
// /proc/net/udp, so that checking never takes the port itself).
func waitUDP(p *proc) error {
	want := fmt.Sprintf(":%04X ", p.port)
	for range 100 {
		b, _ := os.ReadFile("/proc/net/udp")
		if strings.Contains(string(b), want) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.stop()
	return fmt.Errorf("%s did not bind 127.0.0.1:%d; see %s", p.name, p.port, p.log.Name())
}

// freePort returns a loopback port free for UDP and TCP at the moment.
func freePort() int {
	p, err := siptest.Port("127.0.0.1")
	if err != nil {
		panic(err)
	}
	return int(p)
}
