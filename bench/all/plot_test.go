package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFigures draws the report's charts from measured figures and from
// bench/sip's JSON, and leaves out a chart with nothing to draw.
func TestFigures(t *testing.T) {
	r := &results{med: map[string]map[string]float64{}}
	for i, n := range []string{"1", "16", "64"} {
		r.med["BenchmarkRPC/GetTrunk/inflight="+n] = map[string]float64{"req/s": float64(10000 * (i + 1))}
		r.med["etcd/get-serializable/"+n] = map[string]float64{"req/s": float64(3000 * (i + 1))}
	}
	for i, n := range []string{"1", "50", "300"} {
		r.med["BenchmarkBridgedCalls/bridge/"+n] = map[string]float64{"up-p50-ms": 0.02, "up-p99-ms": 0.3 * float64(i+1), "down-p50-ms": 5, "down-p99-ms": 15 + float64(i)}
	}
	dir := t.TempDir()
	sip := filepath.Join(dir, "sip.json")
	os.WriteFile(sip, []byte(`[
	  {"name": "trunkd REJECT", "steps": [{"offered": 1000, "cpu_ms_per_1000_calls": 80, "pass": true}, {"offered": 2000, "cpu_ms_per_1000_calls": 75, "pass": true}]},
	  {"name": "Kamailio 603 stateful", "steps": [{"offered": 1000, "cpu_ms_per_1000_calls": 120, "pass": true}, {"offered": 2000, "cpu_ms_per_1000_calls": 900, "pass": false}]}
	]`), 0o644)
	out := filepath.Join(dir, "docs", "benchmarks.md")
	f, err := r.figures(out, sip)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"](benchmarks/rpc-gettrunk.svg)", "](benchmarks/sip-reject-cpu.svg)", "](benchmarks/ai-latency.svg)"} {
		if !strings.Contains(f.rpc+f.sip+f.ai, want) {
			t.Errorf("figures markdown %q lacks %q", f.rpc+f.sip, want)
		}
	}
	for _, absent := range []string{"rpc-updatetrunk.svg", "sip-play-cpu.svg"} {
		if strings.Contains(f.rpc+f.sip, absent) {
			t.Errorf("figures show %s, which had no figures to draw", absent)
		}
	}
	svg, err := os.ReadFile(filepath.Join(dir, "docs", "benchmarks", "sip-reject-cpu.svg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "trunkd REJECT", "Kamailio 603 stateful", "CPU ms per 1000 calls"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("sip-reject-cpu.svg lacks %q", want)
		}
	}
}
