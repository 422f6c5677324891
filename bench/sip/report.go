package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

type ramp struct {
	name  string
	steps []step
}

// sustained is the highest offered rate that passed, and that step.
func (r ramp) sustained() (int, step) {
	best, at := 0, step{}
	for _, s := range r.steps {
		if s.pass() {
			best, at = s.rate, s
		}
	}
	return best, at
}

type update struct {
	n, stale  int
	rpc, next []time.Duration
}

type live struct {
	calls              int
	beforeKiB, withKiB int
}

type report struct {
	env       []string
	ramps     []ramp
	update    *update
	live      *live
	heldCalls *heldCalls
	notes     []string
}

func (r *report) machine() {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	sipp, _ := exec.Command("sipp", "-v").CombinedOutput()
	kam, _ := exec.Command("kamailio", "-v").CombinedOutput()
	r.env = []string{
		fmt.Sprintf("%s, %d CPUs, Linux %s, %s", cpu, runtime.NumCPU(), strings.TrimSpace(string(kernel)), runtime.Version()),
		"generator: " + firstLine(string(sipp)) + "; " + firstLine(string(kam)),
		"server under test pinned to CPU " + serverCPU + ", sipp to CPU " + generatorCPU + " (taskset), UDP on loopback",
	}
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return "not installed"
}

func (r *report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## SIP plane (inbound), %s\n\n", time.Now().UTC().Format("2006-01-02"))
	for _, e := range r.env {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	b.WriteString("\nA rate passes when every call succeeds with no retransmission, p99 setup < 200 ms, and the server delivers ≥ 95% of the offered rate over the step's steady part (the middle 80% of the span its responses arrived in, leaving out sipp's start-up). Each server is offered higher rates until it fails one. CPU is the server's process tree (user+system) over the step, per 1000 calls answered.\n\n")
	b.WriteString("| server | offered/s | delivered/s | ok | failed | retrans | p50 ms | p99 ms | CPU ms/1000 calls | pass |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, rp := range r.ramps {
		for _, s := range rp.steps {
			fmt.Fprintf(&b, "| %s | %d | %.0f | %d | %d | %d | %.1f | %.1f | %.1f | %v |\n",
				rp.name, s.rate, s.cps, s.ok, s.failed, s.retrans, ms(s.p50), ms(s.p99), s.cpuPer1k, s.pass())
		}
	}
	b.WriteString("\n| server | sustained calls/s | p99 setup ms at it |\n|---|---:|---:|\n")
	for _, rp := range r.ramps {
		n, s := rp.sustained()
		fmt.Fprintf(&b, "| %s | %d | %.1f |\n", rp.name, n, ms(s.p99))
	}
	r.ratios(&b)
	r.extras(&b)
	return b.String()
}

func (r *report) find(name string) int {
	for _, rp := range r.ramps {
		if rp.name == name {
			n, _ := rp.sustained()
			return n
		}
	}
	return 0
}

// pairs are the side-by-side comparisons: trunkd first, its anchor second.
var pairs = [][2]string{
	{"trunkd REJECT", "bare diago REJECT"},
	{"trunkd REJECT", "Kamailio 603 stateful"},
	{"trunkd PLAY_AND_HANGUP", "bare diago PLAY"},
}

func (r *report) ratios(b *strings.Builder) {
	b.WriteString("\nHighest clean rate, trunkd / anchor:\n\n")
	for _, p := range pairs {
		x, y := r.find(p[0]), r.find(p[1])
		if y > 0 {
			fmt.Fprintf(b, "- %s / %s: %d / %d = %.2f\n", p[0], p[1], x, y, float64(x)/float64(y))
		}
	}
	b.WriteString("\nServer CPU per 1000 calls at the same offered rate (clean steps of both), trunkd / anchor:\n\n")
	b.WriteString("| trunkd | anchor | offered/s | trunkd ms | anchor ms | ratio |\n|---|---|---:|---:|---:|---:|\n")
	for _, p := range pairs {
		for _, c := range r.cpuPairs(p[0], p[1]) {
			fmt.Fprintf(b, "| %s | %s | %d | %.1f | %.1f | %.2f |\n", p[0], p[1], c[0].rate, c[0].cpuPer1k, c[1].cpuPer1k, c[0].cpuPer1k/c[1].cpuPer1k)
		}
	}
	b.WriteString("\n")
}

// cpuPairs are the steps at offered rates where both servers passed.
func (r *report) cpuPairs(x, y string) [][2]step {
	var out [][2]step
	for _, sx := range r.steps(x) {
		for _, sy := range r.steps(y) {
			if sx.rate == sy.rate && sx.pass() && sy.pass() && sy.cpuPer1k > 0 {
				out = append(out, [2]step{sx, sy})
			}
		}
	}
	return out
}

func (r *report) steps(name string) []step {
	for _, rp := range r.ramps {
		if rp.name == name {
			return rp.steps
		}
	}
	return nil
}

func (r *report) extras(b *strings.Builder) {
	if u := r.update; u != nil {
		fmt.Fprintf(b, "- UpdateTrunk ack → next INVITE: %d of %d calls got the updated reject code (stale: %d); UpdateTrunk p50 %.2f ms; ack → final response p50 %.2f ms, p99 %.2f ms\n",
			u.n-u.stale, u.n, u.stale, ms(pct(u.rpc, 0.5)), ms(pct(u.next, 0.5)), ms(pct(u.next, 0.99)))
	}
	if l := r.live; l != nil {
		fmt.Fprintf(b, "- %d live answered calls (PCMU, 20 ms RTP out): trunkd RSS %d → %d KiB, %.1f KiB per call\n",
			l.calls, l.beforeKiB, l.withKiB, float64(l.withKiB-l.beforeKiB)/float64(l.calls))
	}
	if h := r.heldCalls; h != nil {
		fmt.Fprintf(b, "- %d outbound calls held %v with a prompt playing and sipp echoing the RTP (G.711, 20 ms): %d failed; MOS measured by trunkd %.2f; CPU %.4f core per call (%.1f%% of a core per 100 calls); RSS %.1f KiB per call\n",
			h.calls, h.hold, h.failed, h.mos, h.cpuPerCall, h.cpuPerCall*100*100, h.rssPerCallKiB)
	}
	for _, n := range r.notes {
		fmt.Fprintf(b, "- %s\n", n)
	}
}

func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

// RampJSON is one server's ramp as -json writes it: what bench/all plots.
type RampJSON struct {
	Name  string     `json:"name"`
	Steps []StepJSON `json:"steps"`
}

// StepJSON is one offered rate of a ramp.
type StepJSON struct {
	Offered   int     `json:"offered"`
	Delivered float64 `json:"delivered"`
	CPUPer1k  float64 `json:"cpu_ms_per_1000_calls"`
	P99ms     float64 `json:"p99_ms"`
	Pass      bool    `json:"pass"`
}

func (r *report) json() []byte {
	out := make([]RampJSON, 0, len(r.ramps))
	for _, rp := range r.ramps {
		j := RampJSON{Name: rp.name}
		for _, s := range rp.steps {
			j.Steps = append(j.Steps, StepJSON{Offered: s.rate, Delivered: s.cps, CPUPer1k: s.cpuPer1k, P99ms: ms(s.p99), Pass: s.pass()})
		}
		out = append(out, j)
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	return b
}
