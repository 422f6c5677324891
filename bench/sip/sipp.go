package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/trunkd/trunkd/media/sipplane/siptest"
)

// step is one sipp run at a fixed offered rate.
type step struct {
	rate, calls int
	ok, failed  int
	retrans     int
	cps         float64 // final responses per second delivered over the step's steady part
	cpuPer1k    float64 // server CPU (user+system, process tree) per 1000 calls, ms
	p50, p99    time.Duration
}

// pass is the criterion for a sustained rate: no failed call, no
// retransmission, p99 setup under 200 ms, and the offered rate delivered.
func (s step) pass() bool {
	return s.failed == 0 && s.retrans == 0 && s.p99 < 200*time.Millisecond &&
		s.ok == s.calls && s.cps >= 0.95*float64(s.rate)
}

// sippRun runs scenario xml at rate calls/s for calls calls against
// 127.0.0.1:port, on the generator's CPU.
func sippRun(ctx context.Context, xml string, port, rate, calls int, extra ...string) (step, error) {
	if len(extra) == 0 {
		extra = []string{"-recv_timeout", "10000"}
	}
	dir, err := os.MkdirTemp("", "sipbench-sipp")
	if err != nil {
		return step{}, err
	}
	defer os.RemoveAll(dir)
	sf := filepath.Join(dir, "scenario.xml")
	if err := os.WriteFile(sf, []byte(xml), 0o600); err != nil {
		return step{}, err
	}
	budget := time.Duration(calls/rate+60) * time.Second
	ctx, cancel := context.WithTimeout(ctx, budget+10*time.Second)
	defer cancel()
	st, err := siptest.Sipp{Scenario: sf, Port: port, Rate: rate, Calls: calls, Limit: rate * 10, Timeout: budget,
		Dir: dir, Prefix: pin(generatorCPU), Args: append([]string{"-s", "100", "-trace_rtt", "-rtt_freq", "1"}, extra...)}.Run(ctx)
	s := step{rate: rate, calls: calls, ok: st.Successful, failed: st.Failed, retrans: st.Retransmissions}
	if err != nil {
		return s, err
	}
	rtt, _ := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	if len(rtt) == 0 {
		return s, fmt.Errorf("sipp wrote no response times\n%s", siptest.Tail(st.Output, 15))
	}
	return s, readRTT(rtt[0], &s)
}

// readRTT reads every setup time sample (INVITE sent to final response
// received) and the span they were received over.
func readRTT(path string, s *step) error {
	rows, err := readCSV(path)
	if err != nil {
		return err
	}
	var at, rt []float64
	for _, r := range rows {
		if len(r) < 2 {
			continue
		}
		d, err1 := strconv.ParseFloat(r[0], 64)
		v, err2 := strconv.ParseFloat(r[1], 64)
		if err1 != nil || err2 != nil {
			continue // the header
		}
		at, rt = append(at, d), append(rt, v)
	}
	if len(rt) == 0 {
		return fmt.Errorf("%s: %d samples", path, len(rt))
	}
	slices.Sort(rt)
	ms := func(q float64) time.Duration {
		return time.Duration(rt[int(q*float64(len(rt)-1))] * float64(time.Millisecond))
	}
	s.p50, s.p99 = ms(0.50), ms(0.99)
	s.cps = steadyRate(at)
	return nil
}

// steadyRate is the rate of responses (at: their times in ms) over the
// middle 80% of the span they arrived in, leaving out sipp's start-up and
// the last calls' stragglers.
func steadyRate(at []float64) float64 {
	t0, t1 := slices.Min(at), slices.Max(at)
	lo, hi := t0+(t1-t0)/10, t1-(t1-t0)/10
	if hi <= lo {
		return 0
	}
	n := 0
	for _, t := range at {
		if t >= lo && t < hi {
			n++
		}
	}
	return float64(n) / ((hi - lo) / 1000)
}

func readCSV(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma, r.FieldsPerRecord, r.LazyQuotes = ';', -1, true
	return r.ReadAll()
}
