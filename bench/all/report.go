package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

func (r *results) report(o options, etcdVersion, sip string, figs figures, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# trunkd benchmarks\n\nWritten by `make bench` on %s (took %s). Each Go figure is the median of %d runs;\nratios compare figures measured in this same run. Client and server share the machine.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), took.Round(time.Second), o.count)
	r.machine(&b, etcdVersion)
	r.rpcTable(&b)
	r.oneCPUTable(&b)
	b.WriteString(figs.rpc)
	r.storeTable(&b)
	r.sipGoFigures(&b)
	r.secureTable(&b)
	r.aiFigures(&b)
	b.WriteString(figs.ai)
	r.scale(&b)
	r.clusterTable(&b)
	if sip != "" {
		b.WriteString("\n" + strings.Replace(sip, "## SIP plane (inbound)", "## SIP with sipp", 1))
		b.WriteString(figs.sip)
	} else {
		b.WriteString("\n## SIP with sipp\n\nLeft out of this run (-skip-sip).\n")
	}
	return b.String()
}

func (r *results) machine(b *strings.Builder, etcdVersion string) {
	kernel, _ := exec.Command("uname", "-r").Output()
	cpu := "unknown CPU"
	if len(r.env) > 0 {
		cpu = r.env[0]
	}
	fmt.Fprintf(b, "Machine: %s, %d CPUs, Linux %s, %s", cpu, runtime.NumCPU(), strings.TrimSpace(string(kernel)), runtime.Version())
	if etcdVersion != "" {
		fmt.Fprintf(b, "; %s", etcdVersion)
	}
	b.WriteString(".\n")
}

// cell formats a median or a dash when it was not measured.
func (r *results) cell(name, unit, format string) string {
	v, ok := r.get(name, unit)
	if !ok {
		return "—"
	}
	return fmt.Sprintf(format, v)
}

func (r *results) ratio(a, unitA, b, unitB string) string {
	x, ok1 := r.get(a, unitA)
	y, ok2 := r.get(b, unitB)
	if !ok1 || !ok2 || y == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", x/y)
}

// rpcMethod is an RPC method of BenchmarkRPC and the bench/etcd
// measurement it is set against ("" for none).
type rpcMethod struct{ name, etcd string }

// etcdTwins are the methods measured against etcd.
var etcdTwins = []rpcMethod{{"GetTrunk", "get-serializable"}, {"UpdateTrunk", "put"}}

func (r *results) rpcTable(b *strings.Builder) {
	b.WriteString("\n## Admin RPC\n\nOne client connection, N requests in flight; trunkd's QUIC + msgpack RPC against the same handler\nserved over HTTP/2 + JSON with net/http (TLS), against etcd (serializable gets, durable puts of a\nrecord of the same size), and against the null method (Ping) as the ceiling. CPU is the benchmark\nprocess's (client and server together) per request. The RPC, the store and etcd run in turns, one\nround of each at a time, so that both sides of a ratio see the machine in the same state.\n\n")
	b.WriteString("| method | in flight | trunkd req/s | p50 µs | p99 µs | CPU µs | HTTP/2+JSON req/s | p99 µs | etcd req/s | p99 µs | trunkd / HTTP | trunkd / etcd | / Ping |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, m := range slices.Concat(etcdTwins, []rpcMethod{{"Ping", ""}, {"GetTrunk-EdDSA", ""}}) {
		for _, n := range []int{1, 16, 64} {
			t := fmt.Sprintf("BenchmarkRPC/%s/inflight=%d", m.name, n)
			h := fmt.Sprintf("BenchmarkHTTPJSON/%s/inflight=%d", m.name, n)
			e := fmt.Sprintf("etcd/%s/%d", m.etcd, n)
			p := fmt.Sprintf("BenchmarkRPC/Ping/inflight=%d", n)
			fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", m.name, n,
				r.cell(t, "req/s", "%.0f"), r.cell(t, "p50-µs", "%.0f"), r.cell(t, "p99-µs", "%.0f"), r.cell(t, "cpu-µs/req", "%.0f"),
				r.cell(h, "req/s", "%.0f"), r.cell(h, "p99-µs", "%.0f"),
				r.cell(e, "req/s", "%.0f"), r.cell(e, "p99-µs", "%.0f"),
				r.ratio(t, "req/s", h, "req/s"), r.ratio(t, "req/s", e, "req/s"), r.ratio(t, "req/s", p, "req/s"))
		}
	}
	dial := "—"
	if v, ok := r.get("BenchmarkDialAndCall", "ns/op"); ok {
		dial = fmt.Sprintf("%.2f ms", v/1e6)
	}
	fmt.Fprintf(b, "\nNew connection (QUIC + TLS 1.3 handshake) and one GetTrunk: %s.\n", dial)
	fmt.Fprintf(b, "Token verification (cached / uncached): %s.\n", r.authLine())
}

func (r *results) authLine() string {
	var parts []string
	for name := range r.med {
		if strings.HasPrefix(name, "BenchmarkAuthorize/") {
			parts = append(parts, fmt.Sprintf("%s %s ns", strings.TrimPrefix(name, "BenchmarkAuthorize/"), r.cell(name, "ns/op", "%.0f")))
		}
	}
	if len(parts) == 0 {
		return "—"
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func (r *results) storeTable(b *strings.Builder) {
	b.WriteString("\n## Store\n\nDurable writes per second (acknowledged only after fsync): trunkd's store (each group of writes\nappended to the write-ahead log with one fdatasync, bbolt committed behind it), bbolt with one\ntransaction per write (two fsyncs), the disk's own fsync rate (write + fdatasync in place: the\nceiling of one write per fsync) and etcd's durable put with as many in flight, all in this run.\nGoal: the admin RPC's UpdateTrunk ≥ 2× etcd's put at 1 in flight, ≥ 1.5× at 16 and 64 (table above).\n\n")
	b.WriteString("| writers | store writes/s | one bbolt tx per write | disk fsyncs/s | store / fsync | etcd put/s | store / etcd |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range []int{1, 16, 64} {
		g := fmt.Sprintf("BenchmarkUpdateTrunk/grouped/writers=%d", n)
		t := fmt.Sprintf("BenchmarkUpdateTrunk/tx-per-write/writers=%d", n)
		f := fmt.Sprintf("BenchmarkDiskFsync/writers=%d", n)
		e := fmt.Sprintf("etcd/put/%d", n)
		fmt.Fprintf(b, "| %d | %s | %s | %s | %s | %s | %s |\n", n, r.cell(g, "writes/s", "%.0f"), r.cell(t, "writes/s", "%.0f"),
			r.cell(f, "fsyncs/s", "%.0f"), r.ratio(g, "writes/s", f, "fsyncs/s"), r.cell(e, "req/s", "%.0f"), r.ratio(g, "writes/s", e, "req/s"))
	}
}

func (r *results) sipGoFigures(b *strings.Builder) {
	b.WriteString("\n## SIP plane, in process\n\n")
	fmt.Fprintf(b, "- An answered call (PLAY_AND_HANGUP, sipp holding it): %s goroutines and %s bytes of live heap per call.\n",
		r.cell("BenchmarkLiveCalls", "goroutines/call", "%.1f"), r.cell("BenchmarkLiveCalls", "heap-B/call", "%.0f"))
	fmt.Fprintf(b, "- Quality tracking per received RTP packet: reading it costs %s ns without tracking and %s ns with (ratio %s); rtpstats alone %s ns/packet.\n",
		r.cell("BenchmarkQualityTracking/off", "ns/op", "%.0f"), r.cell("BenchmarkQualityTracking/on", "ns/op", "%.0f"),
		r.ratio("BenchmarkQualityTracking/on", "ns/op", "BenchmarkQualityTracking/off", "ns/op"), r.cell("BenchmarkPacket", "ns/op", "%.1f"))
	fmt.Fprintf(b, "- Breaker reaction to a dead carrier (never answers), default settings: %s calls sent before it opens with Dials one at a time, %s with 10 at a time.\n",
		r.cell("BenchmarkBreakerReaction/parallel=1", "calls-before-open", "%.0f"), r.cell("BenchmarkBreakerReaction/parallel=10", "calls-before-open", "%.0f"))
	fmt.Fprintf(b, "- Admin plane under SIP load: GetTrunk p99 %s µs idle, %s µs while sipp sends %s REJECT calls/s (ratio %s).\n",
		r.cell("BenchmarkGetTrunkUnderSIPLoad", "idle-p99-µs", "%.0f"), r.cell("BenchmarkGetTrunkUnderSIPLoad", "load-p99-µs", "%.0f"),
		r.cell("BenchmarkGetTrunkUnderSIPLoad", "sip-cps", "%.0f"), r.cell("BenchmarkGetTrunkUnderSIPLoad", "p99-ratio", "%.2f"))
	fmt.Fprintf(b, "- WAV conversion (44.1 kHz stereo → 8 kHz mono, 10 s): %s ns.\n", r.cell("BenchmarkConvert", "ns/op", "%.0f"))
}

// secureTable is SIP over TLS against UDP, TLS handshakes and SRTP's cost
// per packet.
func (r *results) secureTable(b *strings.Builder) {
	b.WriteString("\n## SIP over TLS and SRTP, in process\n\n")
	b.WriteString("REJECT (603 by policy) with 8 raw clients per CPU, one kept-up connection each; CPU is the whole process (trunkd and the thin clients).\n\n")
	b.WriteString("| | calls/s | CPU µs/call |\n|---|---|---|\n")
	for _, p := range []string{"UDP", "TLS"} {
		n := "BenchmarkRejectTLSvsUDP/" + p
		fmt.Fprintf(b, "| %s | %s | %s |\n", p, r.cell(n, "calls/s", "%.0f"), r.cell(n, "cpu-µs/call", "%.1f"))
	}
	fmt.Fprintf(b, "| TLS / UDP | %s | %s |\n\n",
		r.ratio("BenchmarkRejectTLSvsUDP/TLS", "calls/s", "BenchmarkRejectTLSvsUDP/UDP", "calls/s"),
		r.ratio("BenchmarkRejectTLSvsUDP/TLS", "cpu-µs/call", "BenchmarkRejectTLSvsUDP/UDP", "cpu-µs/call"))
	fmt.Fprintf(b, "- Inbound TLS handshakes (ECDSA P-256, TLS 1.3), one at a time: %s per second.\n",
		r.cell("BenchmarkTLSHandshake", "handshakes/s", "%.0f"))
	fmt.Fprintf(b, "- One 20 ms PCMU packet sent and received over loopback: %s ns plain, %s ns with SRTP (AES_CM_128_HMAC_SHA1_80; ratio %s).\n",
		r.cell("BenchmarkSRTPPerPacket/plain", "ns/op", "%.0f"), r.cell("BenchmarkSRTPPerPacket/srtp", "ns/op", "%.0f"),
		r.ratio("BenchmarkSRTPPerPacket/srtp", "ns/op", "BenchmarkSRTPPerPacket/plain", "ns/op"))
}

// aiFigures is the AI bridge section: trunkd's share of the latency per
// direction, concurrency beside the PLAY path, barge-in reaction, agent
// connect while ringing, noise cancellation.
func (r *results) aiFigures(b *strings.Builder) {
	b.WriteString("\n## AI bridge\n\n")
	b.WriteString("Diago callers and the fake agent (WebSocket, echoing) run in the benchmark's process, so CPU, memory and goroutines per call include them on both paths (and the agent on the bridged one). Latency is trunkd's own share: uplink from RTP read to handed to the agent's socket, downlink from agent audio at an idle queue to its first RTP frame (targets: uplink p99 ≤ 5 ms, downlink p99 ≤ 20 ms).\n\n")
	b.WriteString("| Calls | Path | uplink p50 / p99 ms | downlink p50 / p99 ms | frames dropped | CPU % per call | heap KiB per call | goroutines per call |\n|---|---|---|---|---|---|---|---|\n")
	for _, n := range []string{"1", "50", "300"} {
		br, pl := "BenchmarkBridgedCalls/bridge/"+n, "BenchmarkBridgedCalls/play/"+n
		if _, ok := r.get(br, "CPU-%/call"); !ok {
			continue
		}
		fmt.Fprintf(b, "| %s | bridged | %s / %s | %s / %s | %s | %s | %s | %s |\n", n,
			r.cell(br, "up-p50-ms", "%.3f"), r.cell(br, "up-p99-ms", "%.3f"), r.cell(br, "down-p50-ms", "%.1f"), r.cell(br, "down-p99-ms", "%.1f"),
			r.cell(br, "frames-dropped", "%.0f"), r.cell(br, "CPU-%/call", "%.2f"), r.cell(br, "heap-KiB/call", "%.0f"), r.cell(br, "goroutines/call", "%.1f"))
		fmt.Fprintf(b, "| %s | PLAY | — | — | — | %s | %s | %s |\n", n,
			r.cell(pl, "CPU-%/call", "%.2f"), r.cell(pl, "heap-KiB/call", "%.0f"), r.cell(pl, "goroutines/call", "%.1f"))
	}
	b.WriteString("\nBarge-in reaction, caller speech onset to the agent's playback stopped on the wire (ms):\n\n| Mode | 0 | 1 | 2 | 3 |\n|---|---|---|---|---|\n")
	for _, m := range []string{"energy", "vad"} {
		fmt.Fprintf(b, "| %s |", m)
		for a := range 4 {
			fmt.Fprintf(b, " %s |", r.cell(fmt.Sprintf("BenchmarkBargeinReaction/%s/%d", m, a), "reaction-ms", "%.0f"))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(b, "\n- `semantic`: the agent's clear to the next frame on the wire (silence): %s ms mean, %s ms worst.\n",
		r.cell("BenchmarkClearToSilence", "clear-to-silence-ms", "%.1f"), r.cell("BenchmarkClearToSilence", "worst-ms", "%.1f"))
	fmt.Fprintf(b, "- An answer reaching an idle queue to its first frame sent: %s ms mean, %s ms worst.\n",
		r.cell("BenchmarkAnswerStart", "answer-start-ms", "%.2f"), r.cell("BenchmarkAnswerStart", "worst-ms", "%.2f"))
	fmt.Fprintf(b, "- INVITE to 200 OK with a local agent connected while ringing: p50 %s ms, p99 %s ms (PLAY trunk: %s / %s ms).\n",
		r.cell("BenchmarkAgentConnectWhileRinging/handle_ai", "invite-to-200-p50-ms", "%.2f"), r.cell("BenchmarkAgentConnectWhileRinging/handle_ai", "invite-to-200-p99-ms", "%.2f"),
		r.cell("BenchmarkAgentConnectWhileRinging/play", "invite-to-200-p50-ms", "%.2f"), r.cell("BenchmarkAgentConnectWhileRinging/play", "invite-to-200-p99-ms", "%.2f"))
	fmt.Fprintf(b, "- Noise cancellation (speexdsp), espeak-ng speech with white noise: steady noise %s dB quieter; speech frames %s dB quieter at 10 dB SNR, %s dB at 0 dB SNR; %s µs per 20 ms frame.\n",
		r.cell("BenchmarkDenoise", "dB-noise-cut@SNR10", "%.1f"), r.cell("BenchmarkDenoise", "dB-speech-cut@SNR10", "%.1f"),
		r.cell("BenchmarkDenoise", "dB-speech-cut@SNR0", "%.1f"), r.micro("BenchmarkDenoise", "ns/op"))
}

// micro is a ns figure in µs.
func (r *results) micro(name, unit string) string {
	v, ok := r.get(name, unit)
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%.1f", v/1000)
}

func (r *results) scale(b *strings.Builder) {
	n := "BenchmarkScale100k"
	b.WriteString("\n## Scale: 100 000 trunks stored\n\n")
	fmt.Fprintf(b, "Start-up to serving %s ms; GetTrunk p50 %s µs, p99 %s µs; ListTrunks (100 a page) p50 %s µs, p99 %s µs; listing all %s ms; database %s MiB.\n",
		r.cell(n, "startup-ms", "%.0f"), r.cell(n, "get-p50-µs", "%.0f"), r.cell(n, "get-p99-µs", "%.0f"),
		r.cell(n, "list-p50-µs", "%.0f"), r.cell(n, "list-p99-µs", "%.0f"), r.cell(n, "list-all-ms", "%.0f"), r.cell(n, "db-MiB", "%.1f"))
	fmt.Fprintf(b, "Idle after start-up: %s CPU-ms/s over 10 s; a full garbage collection (forced by the runtime at least every 2 minutes) %s CPU-ms.\n",
		r.cell(n, "idle-cpu-ms/s", "%.1f"), r.cell(n, "gc-cpu-ms", "%.0f"))
	fmt.Fprintf(b, "\nThe verdict on one INVITE to a REJECT trunk (match by source address, channel_limit, policy): %s ns with 1 trunk on the bind, %s ns with 100 000 (each its own gateway_ip; ratio %s, goal ≤ 1.1).\n",
		r.cell("BenchmarkRejectDecide/trunks=1", "ns/op", "%.0f"), r.cell("BenchmarkRejectDecide/trunks=100000", "ns/op", "%.0f"),
		r.ratio("BenchmarkRejectDecide/trunks=100000", "ns/op", "BenchmarkRejectDecide/trunks=1", "ns/op"))
}

// clusterTable reports the etcd backend against bbolt and raw clientv3
// (store/etcd BenchmarkBackends) and the cluster figures (cmd/trunkd).
func (r *results) clusterTable(b *strings.Builder) {
	b.WriteString("\n## Several nodes on etcd\n\nStore operations on a 3-member etcd on loopback (trunkd's etcd store; etcd's own clientv3 Get/Put of\nthe same record bytes) and on bbolt, µs per operation with N in flight; the etcd members share the\nmachine with the client.\n\n")
	b.WriteString("| op | in flight | etcd store µs | raw clientv3 µs | bbolt µs | raw / etcd store (throughput ratio) |\n|---|---:|---:|---:|---:|---:|\n")
	for _, op := range []string{"Get", "Update"} {
		for _, n := range []int{1, 16, 64} {
			name := func(backend string) string { return fmt.Sprintf("BenchmarkBackends/%s/%s/inflight-%d", op, backend, n) }
			us := func(backend string) string {
				v, ok := r.get(name(backend), "ns/op")
				if !ok {
					return "—"
				}
				return fmt.Sprintf("%.0f", v/1e3)
			}
			fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s |\n", op, n, us("etcd"), us("raw-etcd"), us("bbolt"),
				r.ratio(name("raw-etcd"), "ns/op", name("etcd"), "ns/op"))
		}
	}
	w := "BenchmarkClusterWriteToLive"
	s := "BenchmarkClusterStartup100k"
	fmt.Fprintf(b, "\nWrite on node 1 → live on node 2 (RPC UpdateTrunk, 2 nodes): from the acknowledgement p50 %s µs, p99 %s µs;\nfrom the start of the write p50 %s µs, p99 %s µs. An idle node watching: %s CPU-ms/s.\nA node starting on 100 000 trunks in etcd: %s ms to serving (then idle: %s CPU-ms/s over 10 s; a full garbage collection %s CPU-ms).\nAn ownership round with nothing changed (100 000 trunks requiring registration, 3 nodes): %s ns.\nRegistration failover after kill -9 of the owner: see `make cluster-test` (FAILOVER line).\n",
		r.cell(w, "ack-to-peer-p50-µs", "%.0f"), r.cell(w, "ack-to-peer-p99-µs", "%.0f"),
		r.cell(w, "write-to-peer-p50-µs", "%.0f"), r.cell(w, "write-to-peer-p99-µs", "%.0f"), r.cell(w, "idle-cpu-ms/s", "%.1f"),
		r.cell(s, "startup-ms", "%.0f"), r.cell(s, "idle-cpu-ms/s", "%.1f"), r.cell(s, "gc-cpu-ms", "%.0f"),
		r.cell("BenchmarkDecideQuiet100k", "ns/op", "%.0f"))
}
