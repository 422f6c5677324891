package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/rpc"
)

// Under-load benchmark settings.
const (
	underLoadIdleRequests = 10_000           // GetTrunks measured idle
	underLoadSIPRate      = 800              // calls/s offered by sipp; TRUNKD_BENCH_SIP_RATE overrides
	underLoadSIPRun       = 10 * time.Second // how long sipp offers calls
	underLoadWarmUp       = time.Second      // of the sipp run, not measured
)

// BenchmarkGetTrunkUnderSIPLoad measures what a SIP flood does to the
// admin plane: GetTrunk at 1 in flight over the RPC, first idle for a
// fixed number of requests, then for as long as sipp offers calls to a
// REJECT trunk of the same daemon (testdata/sipp/uac_reject.xml: INVITE,
// 603, ACK) at a sustained rate, 800 calls/s unless TRUNKD_BENCH_SIP_RATE
// says otherwise, for 10 s (the first second not measured). sipp runs on
// the same machine, as a carrier's burst would share nothing with it.
//
// Metrics: idle-p50-µs, idle-p99-µs, load-p50-µs, load-p99-µs, p99-ratio
// (load over idle), sip-cps (calls sipp saw end in 603 per second of its
// run, from its statistics file) and sip-failed (calls that did not).
// The work is fixed, not scaled by b.N.
func BenchmarkGetTrunkUnderSIPLoad(b *testing.B) {
	_, err := exec.LookPath("sipp")
	if err != nil {
		b.Skip("sipp is not installed (Debian package sip-tester; `make deps`): no SIP load to measure under")
	}
	rate := underLoadSIPRate
	if s := os.Getenv("TRUNKD_BENCH_SIP_RATE"); s != "" {
		if rate, err = strconv.Atoi(s); err != nil || rate <= 0 {
			b.Fatalf("TRUNKD_BENCH_SIP_RATE=%q: want a positive number of calls per second", s)
		}
	}
	d, dir, _ := benchDaemon(b)
	c := connectB(b, d, dir, token(&testing.T{}, dir, rpc.ScopeManage))
	ctx := context.Background()
	port := freeSIPPort(b)
	if err := c.AddTrunk(ctx, sipTrunk("flooded", port)); err != nil {
		b.Fatal(err)
	}
	getTrunk := func() error {
		_, found, err := c.GetTrunk(ctx, "flooded")
		if err == nil && !found {
			err = errors.New("trunk flooded not found")
		}
		return err
	}
	// A short sipp run first checks the scenario against the trunk and
	// warms both sides up.
	if r := underLoadSipp(b, port, rate, rate/10+1)(); r.err != nil {
		b.Fatalf("sipp warm-up: %v", r.err)
	}

	b.ResetTimer()
	idle := make([]time.Duration, 0, underLoadIdleRequests)
	for range underLoadIdleRequests {
		start := time.Now()
		if err := getTrunk(); err != nil {
			b.Fatal(err)
		}
		idle = append(idle, time.Since(start))
	}

	run := underLoadSipp(b, port, rate, int(float64(rate)*underLoadSIPRun.Seconds()))
	done := make(chan sippOutcome, 1)
	go func() { done <- run() }()
	var load []time.Duration
	measureFrom := time.Now().Add(underLoadWarmUp)
	var sipp sippOutcome
measure:
	for {
		select {
		case sipp = <-done:
			break measure
		default:
		}
		start := time.Now()
		if err := getTrunk(); err != nil {
			b.Fatal(err)
		}
		if start.After(measureFrom) {
			load = append(load, time.Since(start))
		}
	}
	b.StopTimer()
	if sipp.err != nil {
		b.Fatalf("sipp: %v", sipp.err)
	}
	if len(load) == 0 {
		b.Fatal("sipp ended before the load measurement began")
	}
	b.Logf("idle: %d GetTrunks; under load: %d GetTrunks while sipp offered %d calls/s", len(idle), len(load), rate)
	idleP50, idleP99 := quantiles(idle)
	loadP50, loadP99 := quantiles(load)
	b.ReportMetric(float64(idleP50.Microseconds()), "idle-p50-µs")
	b.ReportMetric(float64(idleP99.Microseconds()), "idle-p99-µs")
	b.ReportMetric(float64(loadP50.Microseconds()), "load-p50-µs")
	b.ReportMetric(float64(loadP99.Microseconds()), "load-p99-µs")
	b.ReportMetric(float64(loadP99)/float64(idleP99), "p99-ratio")
	b.ReportMetric(sipp.cps, "sip-cps")
	b.ReportMetric(float64(sipp.failed), "sip-failed")
	b.ReportMetric(0, "ns/op")
}

// quantiles returns the median and 99th percentile of l, which it sorts.
func quantiles(l []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(l)
	return l[len(l)/2], l[len(l)*99/100]
}

// sippOutcome is what a sipp run achieved.
type sippOutcome struct {
	cps        float64 // calls ended as the scenario expects, per second of the run
	ok, failed int
	err        error // sipp could not run, or its statistics could not be read
}

// underLoadSipp prepares a sipp run offering calls INVITEs at rate
// calls/s from 127.0.0.1 to port with testdata/sipp/uac_reject.xml; run
// runs it and reads the outcome from sipp's statistics file. A non-zero
// exit with statistics (some calls failed) is not an error: the failures
// are counted.
func underLoadSipp(b *testing.B, port uint16, rate, calls int) (run func() sippOutcome) {
	b.Helper()
	timeout := calls/rate + 30 // seconds
	s := siptest.Sipp{Scenario: filepath.Join("..", "..", "testdata", "sipp", "uac_reject.xml"), Port: int(port),
		Calls: calls, Rate: rate, Limit: rate * 5, Timeout: time.Duration(timeout) * time.Second, Dir: b.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel) // sipp does not outlive a benchmark that fails
	return func() sippOutcome {
		ctx, cancel := context.WithTimeout(ctx, time.Duration(timeout+10)*time.Second)
		defer cancel()
		st, err := s.Run(ctx)
		if err != nil {
			return sippOutcome{err: err}
		}
		r := sippOutcome{cps: st.CPS(), ok: st.Successful, failed: st.Failed}
		if r.ok == 0 {
			r.err = fmt.Errorf("no call ended in 603 (exit %d): %s", st.Exit, siptest.Tail(st.Output, 15))
		}
		return r
	}
}
