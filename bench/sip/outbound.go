package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/trunkd/trunkd/rpc"
)

// outbound measures Dial through trunkd to sipp's built-in UAS (answers
// with 180 then 200, waits for the BYE): calls per second at stepped
// rates, each call held one second, and the Dial RPC's latency, which is
// the call's setup time as the SDK sees it.
func (b *bench) outbound(d *trunkd) error {
	port := freePort()
	args := pin(generatorCPU, "sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-mp", strconv.Itoa(freePort()), "-nostdin")
	sipp := exec.Command(args[0], args[1:]...)
	sipp.Dir = mkdir(b.dir, "uas")
	if out, err := os.Create(filepath.Join(sipp.Dir, "sipp.log")); err == nil {
		sipp.Stdout, sipp.Stderr = out, out
		defer out.Close()
	}
	if err := sipp.Start(); err != nil {
		return fmt.Errorf("sipp uas: %w", err)
	}
	defer func() { _ = sipp.Process.Kill(); _ = sipp.Wait() }()
	time.Sleep(500 * time.Millisecond)
	t := benchTrunk(freePort())
	t.TrunkID, t.DestinationSBCPort = "bench-out", uint16(port)
	if err := d.c.AddTrunk(context.Background(), t); err != nil {
		return err
	}
	var steps []step
	for _, r := range b.o.dialRates {
		s := dialStep(d.c, t.TrunkID, r, int(b.o.stepDur.Seconds())*r)
		fmt.Fprintf(os.Stderr, "%-22s %5d/s: %s\n", "trunkd Dial → sipp", r, s)
		steps = append(steps, s)
		if !s.pass() {
			break
		}
	}
	b.rep.ramps = append(b.rep.ramps, ramp{name: "trunkd Dial → sipp UAS", steps: steps})
	return nil
}

// dialStep places calls Dial calls at rate per second, each hung up by
// max_duration after a second, and times each Dial.
func dialStep(c *rpc.Client, trunkID string, rate, calls int) step {
	s := step{rate: rate, calls: calls}
	var mu sync.Mutex
	var lat []time.Duration
	var first, last time.Time
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := range calls {
		<-tick.C
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			res, err := c.Dial(ctx, rpc.DialRequest{TrunkID: trunkID, To: strconv.Itoa(1000 + i), TimeoutSec: 10, MaxDurationSec: 1})
			end := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if err != nil || !res.Answered {
				s.failed++
				return
			}
			s.ok++
			lat = append(lat, end.Sub(start))
			if first.IsZero() || end.Before(first) {
				first = end
			}
			if end.After(last) {
				last = end
			}
		})
	}
	wg.Wait()
	if len(lat) > 0 {
		slices.Sort(lat)
		s.p50, s.p99 = lat[len(lat)/2], lat[int(0.99*float64(len(lat)-1))]
		if span := last.Sub(first).Seconds(); span > 0 {
			s.cps = float64(len(lat)-1) / span
		}
	}
	return s
}
