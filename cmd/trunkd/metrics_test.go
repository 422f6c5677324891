package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsScrape scrapes /metrics after a few RPCs and parses it as
// Prometheus text format.
func TestMetricsScrape(t *testing.T) {
	dir := t.TempDir()
	cfg, err := parseConfig([]string{"--listen", "127.0.0.1:0", "--data", dir, "--log-level", "warn", "--metrics-listen", "127.0.0.1:0"}, func(string) string { return "" }, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Start(cfg, cfg.logger(os.Stderr))
	if err != nil {
		t.Fatal(err)
	}
	defer stopDaemon(t, d)
	c := connect(t, d, dir, token(t, dir, "trunks:manage"))
	port := freeSIPPort(t)
	tr := sipTrunk("m1", port)
	tr.SIPTLSPort = freeSIPPort(t)
	if err := c.AddTrunk(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	// One TLS handshake completed, one that fails (plain bytes).
	peerCert(t, tr.SIPTLSPort)
	if raw, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(tr.SIPTLSPort)))); err == nil {
		_, _ = raw.Write([]byte("OPTIONS sip:x SIP/2.0\r\n\r\n"))
		buf := make([]byte, 64)
		_ = raw.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _ = raw.Read(buf) // until the server closes it
		raw.Close()
	}
	tlsListener := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(tr.SIPTLSPort)))
	if _, _, err := c.GetTrunk(context.Background(), "nope"); err != nil {
		t.Fatal(err)
	}
	base := "http://" + d.MetricsAddr().String()
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _ := httpGet(t, base+p); code != 200 {
			t.Errorf("%s = %d; want 200", p, code)
		}
	}
	// The server counts a TLS 1.3 handshake completed when the client's
	// Finished arrives, which may be after peerCert has returned: scrape
	// until it is counted.
	var families map[string]*dto.MetricFamily
	eventually(t, 5*time.Second, "TLS handshake counted", func() (bool, string) {
		families = scrape(t, base)
		v, _ := sample(families["trunkd_sip_tls_connections_total"], map[string]string{"listener": tlsListener, "result": "completed"})
		return v >= 1, fmt.Sprint(v)
	})
	want := []struct {
		family string
		labels map[string]string
		value  float64
	}{
		{"trunkd_rpc_requests_total", map[string]string{"method": "AddTrunk", "code": "OK"}, 1},
		{"trunkd_rpc_requests_total", map[string]string{"method": "GetTrunk", "code": "OK"}, 1},
		{"trunkd_sip_state", map[string]string{"trunk_id": "m1", "state": "active"}, 1},
		{"trunkd_breaker_state", map[string]string{"trunk_id": "m1", "state": "closed"}, 1},
		{"trunkd_breaker_state", map[string]string{"trunk_id": "m1", "state": "open"}, 0},
		{"trunkd_active_calls", map[string]string{"trunk_id": "m1"}, 0},
		{"trunkd_registration_state", map[string]string{"trunk_id": "m1", "state": "off"}, 1},
		{"trunkd_channel_limit", map[string]string{"trunk_id": "m1"}, float64(sipTrunk("m1", port).ChannelLimit)},
		{"trunkd_sip_tls_connections_total", map[string]string{"listener": tlsListener, "result": "completed"}, 1},
		{"trunkd_sip_tls_connections_total", map[string]string{"listener": tlsListener, "result": "failed"}, 1},
		{"trunkd_sip_tls_connections_total", map[string]string{"listener": tlsListener, "result": "refused"}, 0},
	}
	for _, w := range want {
		v, ok := sample(families[w.family], w.labels)
		if !ok || v != w.value {
			t.Errorf("%s%v = %v (found %v); want %v", w.family, w.labels, v, ok, w.value)
		}
	}
	if _, ok := families["trunkd_rpc_request_duration_seconds"]; !ok {
		t.Error("no RPC latency histogram")
	}
	if _, ok := families["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	checkMonitoringMetrics(t, families)
}

// scrape reads base's /metrics, which must be Prometheus text format.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	_, body := httpGet(t, base+"/metrics")
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text format: %v", err)
	}
	return families
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// sample finds the value of the metric in f whose labels include want.
func sample(f *dto.MetricFamily, want map[string]string) (float64, bool) {
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}
