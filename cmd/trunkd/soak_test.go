//go:build soak

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trunkd/trunkd/media/audio"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/trunk"
)

// TestSoak runs mixed admin and SIP load on an in-process trunkd for
// SOAK_DURATION (default 10m): RPC writes and reads on a rotating set of
// trunks; inbound calls from sipp rejected and answered with a prompt;
// outbound Dials to a sipp UAS. Afterwards goroutines and live heap must
// return to their baseline, and no request may have failed.
//
//	make soak [SOAK_DURATION=10m]
func TestSoak(t *testing.T) {
	dur := 10 * time.Minute
	if s := os.Getenv("SOAK_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		dur = d
	}
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Fatal("sipp is not installed: run `make deps` (Debian package sip-tester)")
	}
	dir := t.TempDir()
	d := startDaemon(t, dir)
	defer stopDaemon(t, d)
	c := connect(t, d, dir, token(t, dir, "trunks:manage"))

	rejectPort, playPort, uasPort := freeSIPPort(t), freeSIPPort(t), freeSIPPort(t)
	prompt := filepath.Join(dir, "prompt.wav")
	if err := os.WriteFile(prompt, audio.Encode(make([]int16, 8000), audio.Format{Rate: 8000, Channels: 1}), 0o600); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, c, soakTrunk("soak-reject", rejectPort, 0, nil))
	mustAdd(t, c, soakTrunk("soak-play", playPort, 0, func(tr *trunk.Trunk) {
		tr.RejectIncomingCalls, tr.InboundRule, tr.InboundAudioURL = false, trunk.RulePlayAndHangup, "file://"+prompt
	}))
	mustAdd(t, c, soakTrunk("soak-out", freeSIPPort(t), uasPort, nil))

	// warm up: one round of everything, then take the baseline
	load := &soakLoad{t: t, c: c, dir: dir}
	load.warm(rejectPort, playPort, uasPort)
	g0, h0 := settleHeap()
	t.Logf("baseline: %d goroutines, %d KiB live heap", g0, h0>>10)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	rpcPort := freeSIPPort(t)
	wg.Go(func() { load.rpc(stop, rpcPort) })
	wg.Go(func() { load.dial(stop, "soak-out") })
	wg.Go(func() { load.sipp(stop, "uac_reject.xml", rejectPort, 50) })
	wg.Go(func() { load.sipp(stop, "uac_answer_wait_bye.xml", playPort, 10) })
	wg.Go(func() { load.uas(stop, uasPort) })
	time.Sleep(dur)
	close(stop)
	wg.Wait()
	t.Logf("load: %d RPCs, %d Dials answered, %d sipp calls", load.rpcs.Load(), load.dials.Load(), load.sippCalls.Load())
	if n := load.failures.Load(); n > 0 {
		t.Errorf("%d requests failed under load", n)
	}

	// SIP keeps a finished transaction up to 32 s (timer H) to absorb
	// retransmissions; only what outlives that is a leak.
	time.Sleep(35 * time.Second)
	g1, h1 := settleHeap()
	t.Logf("after: %d goroutines, %d KiB live heap", g1, h1>>10)
	if g1 > g0+20 || h1 > h0+8<<20 {
		t.Fatalf("VERDICT: FAIL — goroutines %d → %d, live heap %d → %d KiB after %v of load", g0, g1, h0>>10, h1>>10, dur)
	}
	fmt.Printf("VERDICT: PASS — %v of mixed load; goroutines %d → %d, live heap %d → %d KiB\n", dur, g0, g1, h0>>10, h1>>10)
}

func soakTrunk(id string, port, carrier uint16, edit func(*trunk.Trunk)) *trunk.Trunk {
	tr := sipTrunk(id, port)
	tr.ChannelLimit = 500
	tr.RTPStartPort, tr.RTPEndPort = 30000+uint16(rand.IntN(100))*200, 0
	tr.RTPEndPort = tr.RTPStartPort + 1999
	if carrier != 0 {
		tr.DestinationSBCPort = carrier
	}
	if edit != nil {
		edit(tr)
	}
	return tr
}

func mustAdd(t *testing.T, c *rpc.Client, tr *trunk.Trunk) {
	t.Helper()
	if err := c.AddTrunk(context.Background(), tr); err != nil {
		t.Fatalf("AddTrunk(%s): %v", tr.TrunkID, err)
	}
}

func settleHeap() (int, uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return runtime.NumGoroutine(), m.HeapAlloc
}

type soakLoad struct {
	t                      *testing.T
	c                      *rpc.Client
	dir                    string
	rpcs, dials, sippCalls atomic.Int64
	failures               atomic.Int64
}

func (l *soakLoad) fail(format string, args ...any) {
	l.failures.Add(1)
	l.t.Logf(format, args...)
}

func (l *soakLoad) warm(rejectPort, playPort, uasPort uint16) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { l.uas(stop, uasPort) })
	time.Sleep(300 * time.Millisecond)
	l.dialOnce("soak-out", 0)
	l.sippRun("uac_reject.xml", rejectPort, 5, 5)
	l.sippRun("uac_answer_wait_bye.xml", playPort, 2, 2)
	close(stop)
	wg.Wait()
	time.Sleep(2 * time.Second)
}

// rpc adds, updates, reads, lists and removes trunks in a rotating id
// space, all on one shared SIP listener (port), so listeners are
// reference-counted up and down all along.
func (l *soakLoad) rpc(stop chan struct{}, port uint16) {
	ctx := context.Background()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		n := i % 40
		tr := sipTrunk("rpc-"+strconv.Itoa(n), port)
		tr.GatewayIP, tr.DisplayName = fmt.Sprintf("192.0.2.%d", n+1), "n"+strconv.Itoa(i)
		var err error
		switch i % 5 {
		case 0:
			err = l.c.AddTrunk(ctx, tr)
		case 1:
			err = l.c.UpdateTrunk(ctx, tr)
		case 2:
			_, _, err = l.c.GetTrunk(ctx, tr.TrunkID)
		case 3:
			_, _, err = l.c.ListTrunks(ctx, "", 50)
		case 4:
			err = l.c.RemoveTrunk(ctx, tr.TrunkID)
		}
		if c := rpc.ErrorCode(err); c == rpc.CodeTrunkExists || c == rpc.CodeInvalidTrunk {
			err = nil // the rotation raced itself: an expected answer
		}
		l.rpcs.Add(1)
		if err != nil {
			l.fail("RPC %d: %v", i, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// dial places 5 calls a second through soak-out, each up 2 s.
func (l *soakLoad) dial(stop chan struct{}, trunkID string) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			wg.Go(func() { l.dialOnce(trunkID, 2) })
		}
	}
}

func (l *soakLoad) dialOnce(trunkID string, holdSec uint32) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := l.c.Dial(ctx, rpc.DialRequest{TrunkID: trunkID, To: "100", TimeoutSec: 5, MaxDurationSec: max(holdSec, 1)})
	if err != nil || !res.Answered {
		l.fail("Dial: %+v, %v", res, err)
		return
	}
	l.dials.Add(1)
}

// sipp runs scenario against port at rate calls/s, in 10 s runs, until stop.
func (l *soakLoad) sipp(stop chan struct{}, scenario string, port uint16, rate int) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		l.sippRun(scenario, port, rate, rate*10)
	}
}

func (l *soakLoad) sippRun(scenario string, port uint16, rate, calls int) {
	st, err := siptest.Sipp{Scenario: filepath.Join("..", "..", "testdata", "sipp", scenario), Port: int(port),
		Calls: calls, Rate: rate, Limit: rate * 5, Timeout: 60 * time.Second}.Run(context.Background())
	if err != nil || st.Exit != 0 {
		l.fail("sipp %s: exit %d, %v\n%s", scenario, st.Exit, err, siptest.Tail(st.Output, 15))
		return
	}
	l.sippCalls.Add(int64(calls))
}

// uas runs sipp's built-in UAS on port until stop.
func (l *soakLoad) uas(stop chan struct{}, port uint16) {
	cmd := exec.Command("sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", strconv.Itoa(int(port)),
		"-mp", strconv.Itoa(int(mediaPort())), "-nostdin")
	if err := cmd.Start(); err != nil {
		l.fail("sipp uas: %v", err)
		return
	}
	<-stop
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// mediaPort is a free loopback port for sipp's media, or 0 (sipp picks).
func mediaPort() uint16 {
	p, _ := siptest.Port("127.0.0.1")
	return p
}
