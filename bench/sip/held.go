package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trunkd/trunkd/rpc"
)

// held places n outbound calls through a fresh trunkd to sipp's UAS
// echoing RTP back (-rtp_echo), plays a prompt on each for the hold time,
// and reads what they cost trunkd (CPU, resident memory) and the MOS
// trunkd measured on the echoed G.711 stream.
func (b *bench) held(n int, hold time.Duration) error {
	if n <= 0 {
		return nil
	}
	d, err := startTrunkd(b.o.trunkd, filepath.Join(b.dir, "t3"))
	if err != nil {
		return err
	}
	defer d.stop()
	port := freePort()
	args := pin(generatorCPU, "sipp", "-sn", "uas", "-rtp_echo", "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-mp", strconv.Itoa(freePort()), "-nostdin")
	uas := exec.Command(args[0], args[1:]...)
	uas.Dir = mkdir(b.dir, "uas-echo")
	if err := uas.Start(); err != nil {
		return err
	}
	defer func() { _ = uas.Process.Kill(); _ = uas.Wait() }()
	t := benchTrunk(freePort())
	t.TrunkID, t.DestinationSBCPort = "bench-held", uint16(port)
	if err := d.c.AddTrunk(context.Background(), t); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	rss0 := d.rssKiB()
	var wg sync.WaitGroup
	var failed sync.Map
	for i := range n {
		time.Sleep(20 * time.Millisecond)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := d.c.Dial(ctx, rpc.DialRequest{TrunkID: t.TrunkID, To: strconv.Itoa(2000 + i), TimeoutSec: 10,
				AudioURL: "file://" + b.long, MaxDurationSec: uint32(hold.Seconds())})
			if err != nil || !res.Answered {
				failed.Store(i, fmt.Sprint(res, err))
			}
		})
	}
	wg.Wait()
	time.Sleep(time.Second)
	cpu0, at0 := d.cpuSeconds(), time.Now() // all calls up: steady state from here
	time.Sleep(hold / 2)
	rss := d.rssKiB()
	cpu, at := d.cpuSeconds(), time.Now()
	time.Sleep(hold/2 + 5*time.Second) // every call ends (max_duration) and is counted
	cfg, _, err := d.c.GetTrunk(context.Background(), t.TrunkID)
	if err != nil {
		return err
	}
	nfail := 0
	failed.Range(func(_, _ any) bool { nfail++; return true })
	b.rep.heldCalls = &heldCalls{calls: n, failed: nfail, hold: hold, mos: cfg.CurrentMOS, answered: cfg.CallsAnswered,
		cpuPerCall: (cpu - cpu0) / at.Sub(at0).Seconds() / float64(n), rssPerCallKiB: float64(rss-rss0) / float64(n)}
	fmt.Fprintf(os.Stderr, "held calls: %+v\n", *b.rep.heldCalls)
	return nil
}

// cpuSeconds reads the process's user+system CPU time from /proc.
func (p *proc) cpuSeconds() float64 {
	_, cpu := procStat(p.cmd.Process.Pid)
	return cpu
}

// treeCPUSeconds is cpuSeconds summed over the process and every process
// descended from it that is alive (Kamailio's workers are forked children).
func (p *proc) treeCPUSeconds() float64 {
	parent := map[int]int{}
	cpu := map[int]float64{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		parent[pid], cpu[pid] = procStat(pid)
	}
	root, sum := p.cmd.Process.Pid, 0.0
	for pid, c := range cpu {
		for q := pid; q > 1; q = parent[q] {
			if q == root {
				sum += c
				break
			}
		}
	}
	return sum
}

// procStat reads a process's parent and user+system CPU seconds from
// /proc/PID/stat; zeros when it is gone.
func procStat(pid int) (ppid int, cpu float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0, 0
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0, 0
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return ppid, (ut + st) / 100 // clock ticks; USER_HZ is 100 on Linux
}

type heldCalls struct {
	calls, failed int
	hold          time.Duration
	mos           float64
	answered      uint64
	cpuPerCall    float64 // cores per call
	rssPerCallKiB float64
}
