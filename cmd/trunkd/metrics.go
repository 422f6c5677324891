package main

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/trunkd/trunkd/media/sipplane"
	"github.com/trunkd/trunkd/store/etcd"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
)

// metrics serves Prometheus text format on /metrics, and /healthz and
// /readyz, on its own HTTP listener (off unless --metrics-listen is set).
type metrics struct {
	reg   *prometheus.Registry
	rpcN  *prometheus.CounterVec
	rpcD  *prometheus.HistogramVec
	ready atomic.Bool
	srv   *http.Server
	ln    net.Listener
	clu   *clusterMetrics
}

func newMetrics(sip *sipplane.Plane) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), clu: newClusterMetrics()}
	m.rpcN = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trunkd_rpc_requests_total", Help: "Admin RPC requests by method and result code (OK or the ERR_ code).",
	}, []string{"method", "code"})
	m.rpcD = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "trunkd_rpc_request_duration_seconds", Help: "Admin RPC handling time by method.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30},
	}, []string{"method"})
	m.reg.MustRegister(m.rpcN, m.rpcD, &trunkCollector{sip: sip},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe records one RPC; the RPC server calls it for every request.
func (m *metrics) observe(method, code string, d time.Duration) {
	if code == "" {
		code = "OK"
	}
	m.rpcN.WithLabelValues(method, code).Inc()
	m.rpcD.WithLabelValues(method).Observe(d.Seconds())
}

func (m *metrics) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !m.ready.Load() {
			http.Error(w, "not ready: starting or shutting down", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}

// listen binds addr and serves in the background.
func (m *metrics) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	m.ln = ln
	m.srv = &http.Server{Handler: m.handler(), ReadHeaderTimeout: 5 * time.Second}
	go m.srv.Serve(ln) // returns http.ErrServerClosed at close

	return nil
}

func (m *metrics) close(ctx context.Context) error {
	if m.srv == nil {
		return nil
	}
	return m.srv.Shutdown(ctx)
}

// trunkCollector reads every trunk's live figures at scrape time.
type trunkCollector struct{ sip *sipplane.Plane }

var (
	descCalls       = prometheus.NewDesc("trunkd_calls_total", "Calls by trunk, direction (inbound, outbound) and outcome.", []string{"trunk_id", "direction", "outcome"}, nil)
	descActive      = prometheus.NewDesc("trunkd_active_calls", "Calls in flight, both directions.", []string{"trunk_id"}, nil)
	descLimit       = prometheus.NewDesc("trunkd_channel_limit", "The trunk's channel_limit: calls in flight it admits.", []string{"trunk_id"}, nil)
	descASR         = prometheus.NewDesc("trunkd_asr_percent", "Answer-seizure ratio of outbound calls over the quality window.", []string{"trunk_id"}, nil)
	descACD         = prometheus.NewDesc("trunkd_acd_seconds", "Mean duration of answered calls that ended in the quality window.", []string{"trunk_id"}, nil)
	descMOS         = prometheus.NewDesc("trunkd_mos", "Mean per-call MOS (E-model) over the quality window; 0 when no call had enough RTP.", []string{"trunk_id"}, nil)
	descPDD         = prometheus.NewDesc("trunkd_pdd_milliseconds", "Mean post-dial delay (INVITE to first 180/183) over the quality window.", []string{"trunk_id"}, nil)
	descBreaker     = prometheus.NewDesc("trunkd_breaker_state", "1 for the circuit breaker's current state (closed, open, half-open).", []string{"trunk_id", "state"}, nil)
	descTransitions = prometheus.NewDesc("trunkd_breaker_transitions_total", "Circuit breaker transitions by the state entered.", []string{"trunk_id", "to"}, nil)
	descReg         = prometheus.NewDesc("trunkd_registration_state", "1 for the trunk's registration state (off, registering, registered, failed).", []string{"trunk_id", "state"}, nil)
	descSIP         = prometheus.NewDesc("trunkd_sip_state", "1 for the trunk's SIP plane state (active, degraded).", []string{"trunk_id", "state"}, nil)
	descTLS         = prometheus.NewDesc("trunkd_sip_tls_connections_total", "Inbound SIP TLS connections by listener and result: completed, failed (handshake failed or timed out), refused (over a connection limit). Counted since the listener started.", []string{"listener", "result"}, nil)
)

func (c *trunkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCalls, descActive, descLimit, descASR, descACD, descMOS, descPDD, descBreaker, descTransitions, descReg, descSIP, descTLS} {
		ch <- d
	}
}

func (c *trunkCollector) Collect(ch chan<- prometheus.Metric) {
	for _, n := range c.sip.TLSCounts() {
		h, _, _ := net.SplitHostPort(n.Listener)
		l := net.JoinHostPort(h, strconv.Itoa(n.Port))
		for result, v := range map[string]int64{"completed": n.Completed, "failed": n.Failed, "refused": n.Refused} {
			ch <- prometheus.MustNewConstMetric(descTLS, prometheus.CounterValue, float64(v), l, result)
		}
	}
	for _, id := range c.sip.TrunkIDs() {
		st := c.sip.TrunkStatus(id)
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{id}, labels...)...)
		}
		gauge(descActive, float64(st.SIP.ActiveCalls))
		gauge(descSIP, 1, string(st.SIP.State))
		gauge(descReg, 1, string(st.SIP.RegistrationState))
		if st.SIP.State != trunk.SIPActive {
			continue
		}
		gauge(descLimit, float64(st.SIP.ChannelLimit))
		gauge(descASR, st.ASR)
		gauge(descACD, st.ACD)
		gauge(descMOS, st.MOS)
		gauge(descPDD, st.PDDms)
		for _, s := range []trunk.BreakerState{trunk.BreakerClosed, trunk.BreakerOpen, trunk.BreakerHalfOpen} {
			gauge(descBreaker, b2f(st.Breaker == s), string(s))
		}
		n, _ := c.sip.Counters(id)
		for k, v := range n.Calls {
			ch <- prometheus.MustNewConstMetric(descCalls, prometheus.CounterValue, float64(v), id, k[0], k[1])
		}
		for to, v := range n.Transitions {
			ch <- prometheus.MustNewConstMetric(descTransitions, prometheus.CounterValue, float64(v), id, to)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// clusterMetrics are a cluster node's figures (--store etcd://).
type clusterMetrics struct {
	delay prometheus.Histogram
}

func newClusterMetrics() *clusterMetrics {
	return &clusterMetrics{delay: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "trunkd_cluster_apply_delay_seconds",
		Help:    "From a trunk write on another node (its updated_at, that node's clock) to the change running on this node's SIP plane.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30},
	})}
}

// applied observes one change another node made, now live here.
func (c *clusterMetrics) applied(ev control.Event) {
	if ev.Kind != control.Put || ev.Trunk.Meta.UpdatedAt.IsZero() {
		return
	}
	c.delay.Observe(max(0, time.Since(ev.Trunk.Meta.UpdatedAt).Seconds()))
}

// cluster registers the figures of a cluster node.
func (m *metrics) cluster(svc *control.Service, members *etcd.Members) {
	m.reg.MustRegister(m.clu.delay,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "trunkd_cluster_applied_revision",
			Help: "The newest etcd revision this node's SIP plane has applied."},
			func() float64 { r, _ := svc.AppliedRevision(); return float64(r) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "trunkd_cluster_nodes", Help: "Live trunkd nodes this node sees."},
			func() float64 { return float64(len(members.Nodes())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "trunkd_cluster_registrations_owned",
			Help: "Trunks whose registration this node owns."},
			func() float64 { return float64(len(members.Owned())) }))
}
