package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The alert rules and the Grafana dashboard in docs/monitoring are part of
// the product: these tests check them with Prometheus's own tool and hold
// every metric they name against what trunkd really exports.
const (
	alertRules = "../../docs/monitoring/trunkd-alerts.yml"
	alertTests = "../../testdata/monitoring/alerts_test.yml"
	dashboard  = "../../docs/monitoring/trunkd-dashboard.json"
)

// promtool runs Prometheus's promtool: on PATH, or where `make deps` puts
// it (bin/tools).
func promtool(t *testing.T, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if bin, err = exec.LookPath("../../bin/tools/promtool"); err != nil {
			t.Fatal("promtool is not installed: run `make deps` (it takes it from Debian's prometheus package)")
		}
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestAlertRules: the rules are valid, and each alert fires on the
// synthetic series meant to fire it and not on its neighbours.
func TestAlertRules(t *testing.T) {
	promtool(t, "check", "rules", alertRules)
	promtool(t, "test", "rules", alertTests)
}

// TestDashboardShape: the dashboard is Grafana JSON with a query in every
// panel and the datasource left as an import input.
func TestDashboardShape(t *testing.T) {
	b, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Inputs []struct{ Name string } `json:"__inputs"`
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboard, err)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" {
		t.Errorf("__inputs = %+v; want the one DS_PROMETHEUS datasource input", d.Inputs)
	}
	if len(d.Panels) < 10 {
		t.Errorf("%d panels; want the trunk, call, quality, breaker and RPC views", len(d.Panels))
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 || p.Targets[0].Expr == "" {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
}

var metricName = regexp.MustCompile(`\btrunkd_[a-z_]+`)

// checkMonitoringMetrics holds every trunkd_ metric the rules and the
// dashboard name against the families a live trunkd exported, and the
// per-trunk ones it describes (a counter with no sample yet, such as
// trunkd_calls_total before the first call, is not in a scrape).
func checkMonitoringMetrics(t *testing.T, families map[string]*dto.MetricFamily) {
	t.Helper()
	known := map[string]bool{}
	for name := range families {
		known[name] = true
	}
	ch := make(chan *prometheus.Desc, 64)
	(&trunkCollector{}).Describe(ch)
	close(ch)
	for d := range ch {
		if m := regexp.MustCompile(`fqName: "([^"]+)"`).FindStringSubmatch(d.String()); m != nil {
			known[m[1]] = true
		}
	}
	for _, f := range []string{alertRules, dashboard} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range metricName.FindAllString(string(b), -1) {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			if !known[base] {
				t.Errorf("%s names %s, which trunkd does not export", f, name)
			}
		}
	}
}
