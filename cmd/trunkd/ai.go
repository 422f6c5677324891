package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/trunkd/trunkd/media/bridge"
	"github.com/trunkd/trunkd/media/bridge/quic"
	"github.com/trunkd/trunkd/media/bridge/ws"
)

// agentDialer is the AI bridge's connector: WebSocket agents, verified
// against --ai-ca or the system roots.
func (d *Daemon) agentDialer() (bridge.Connector, error) {
	var roots *x509.CertPool
	if d.cfg.AICA != "" {
		pem, err := os.ReadFile(d.cfg.AICA)
		if err != nil {
			return nil, fmt.Errorf("--ai-ca: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ai-ca %s: no PEM certificate in it", d.cfg.AICA)
		}
	}
	w := &ws.Dialer{Timeout: d.cfg.AIConnectTimeout, RootCAs: roots, Log: d.log.With("plane", "ai")}
	q := &quic.Dialer{Timeout: d.cfg.AIConnectTimeout, RootCAs: roots}
	return bridge.Schemes{"ws": w, "wss": w, "quic": q}, nil
}

// aiMetrics are the bridge's latency histograms and counters.
type aiMetrics struct {
	st     *bridge.Stats
	up     prometheus.Histogram
	down   prometheus.Histogram
	frames *prometheus.Desc
	drops  *prometheus.Desc
	marks  *prometheus.Desc
	barge  *prometheus.Desc
}

func newAIMetrics() *aiMetrics {
	buckets := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .02, .04, .1}
	m := &aiMetrics{st: &bridge.Stats{},
		up: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "trunkd_ai_uplink_seconds",
			Help: "Caller audio: RTP read to handed to the agent's connection.", Buckets: buckets}),
		down: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "trunkd_ai_downlink_seconds",
			Help: "Agent audio reaching an idle playout queue to its first RTP frame written.", Buckets: buckets}),
		frames: prometheus.NewDesc("trunkd_ai_frames_total", "20 ms frames bridged, by direction (up: to agents, down: to callers).", []string{"dir"}, nil),
		drops:  prometheus.NewDesc("trunkd_ai_frames_dropped_total", "Audio dropped: up, caller frames a slow agent did not take; down, agent frames past the 120 s queue.", []string{"dir"}, nil),
		marks:  prometheus.NewDesc("trunkd_ai_marks_total", "Marks reported to agents, by state.", []string{"state"}, nil),
		barge:  prometheus.NewDesc("trunkd_ai_bargeins_total", "Agent playback cut by trunkd's barge-in.", nil, nil),
	}
	m.st.Uplink = func(d time.Duration) { m.up.Observe(d.Seconds()) }
	m.st.Downlink = func(d time.Duration) { m.down.Observe(d.Seconds()) }
	return m
}

// Describe implements prometheus.Collector.
func (m *aiMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.up.Describe(ch)
	m.down.Describe(ch)
	for _, d := range []*prometheus.Desc{m.frames, m.drops, m.marks, m.barge} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *aiMetrics) Collect(ch chan<- prometheus.Metric) {
	m.up.Collect(ch)
	m.down.Collect(ch)
	c := func(d *prometheus.Desc, v int64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	c(m.frames, m.st.UpFrames.Load(), "up")
	c(m.frames, m.st.DownFrames.Load(), "down")
	c(m.drops, m.st.UpDropped.Load(), "up")
	c(m.drops, m.st.DownDropped.Load()/bridge.FrameSamples, "down")
	c(m.marks, m.st.MarksPlayed.Load(), "played")
	c(m.marks, m.st.MarksCleared.Load(), "cleared")
	c(m.barge, m.st.Bargeins.Load())
}
