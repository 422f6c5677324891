package sipplane

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/diago"
	"github.com/trunkd/trunkd/media/bridge"
	"github.com/trunkd/trunkd/media/bridge/fakeagent"
	"github.com/trunkd/trunkd/media/bridge/ws"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/trunk"
)

// samples collects durations from many goroutines.
type samples struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *samples) add(d time.Duration) { s.mu.Lock(); s.d = append(s.d, d); s.mu.Unlock() }

func (s *samples) pct(p float64) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.d) == 0 {
		return 0
	}
	slices.Sort(s.d)
	return float64(s.d[min(len(s.d)-1, int(p*float64(len(s.d))))]) / 1e6
}

// benchCalls is how many concurrent calls BenchmarkBridgedCalls holds:
// TRUNKD_BENCH_AI_CALLS (a comma-separated list), default "1,50".
func benchCalls() []int {
	s := os.Getenv("TRUNKD_BENCH_AI_CALLS")
	if s == "" {
		s = "1,50"
	}
	var l []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			l = append(l, n)
		}
	}
	return l
}

// BenchmarkBridgedCalls holds N calls for 5 s each way: bridged to an
// echoing agent (WebSocket), and, as the in-run anchor, the same calls on
// a PLAY trunk. It reports trunkd's share of the latency per direction
// (uplink: RTP read to handed to the agent's socket; downlink: agent
// audio at an idle queue to its first RTP frame), frames lost, and CPU
// and memory per call (RSS and live heap after a GC, sampled 3/4 into the
// hold), and goroutines per call. Callers (diago) and agents run in this
// process, so the CPU, memory and goroutine figures include them (and the
// bridge's include its agent), for both paths.
func BenchmarkBridgedCalls(b *testing.B) {
	for _, n := range benchCalls() {
		for _, path := range []string{"bridge", "play"} {
			b.Run(fmt.Sprintf("%s/%d", path, n), func(b *testing.B) {
				for range b.N {
					holdBridged(b, path, n, 5*time.Second)
				}
			})
		}
	}
}

func holdBridged(b *testing.B, path string, n int, hold time.Duration) {
	up, down := &samples{}, &samples{}
	st := &bridge.Stats{Uplink: up.add, Downlink: down.add}
	fa := fakeagent.New(fakeagent.Script{Echo: true})
	srv := httptest.NewServer(fa)
	defer srv.Close()
	p := newPlane(b, Config{Bridger: &ws.Dialer{}, AIStats: st, Audio: &fakeAudio{length: time.Minute}})
	port := siptest.FreePort(b, "127.0.0.1")
	tr := testTrunk("bench", port)
	tr.RejectIncomingCalls, tr.ChannelLimit = false, uint32(n)
	tr.RTPStartPort, tr.RTPEndPort = 32000, 32000+uint16(4*n)
	tr.AutoBargeinMode = "off" // the agent echoes the caller back at 0 dB
	if path == "bridge" {
		tr.InboundRule, tr.InboundAIWebsocketURL = trunk.RuleHandleAI, "ws://"+srv.Listener.Addr().String()+"/agent"
	} else {
		tr.InboundRule, tr.InboundAudioURL = trunk.RulePlayAndHangup, "file:///prompt.wav"
	}
	apply(b, p, tr)
	u := newUAC(b, "127.0.0.1")
	g0, h0 := settle()
	rss0 := rss()
	var ru0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	var received, sent atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int32
	start := time.Now()
	for range n {
		wg.Go(func() {
			d, code := u.call(b, port, diago.InviteOptions{})
			if code != 200 {
				failed.Add(1)
				return
			}
			defer d.Close()
			r, _ := d.AudioReader()
			go func() {
				buf := make([]byte, 1500)
				for {
					if _, err := r.Read(buf); err != nil {
						return
					}
					received.Add(1)
				}
			}()
			w, _ := d.AudioWriter()
			frame := make([]byte, 160)
			for i := range frame {
				frame[i] = byte(i) | 1 // a voiced μ-law frame
			}
			for end := time.Now().Add(hold); time.Now().Before(end); {
				if _, err := w.Write(frame); err != nil {
					return
				}
				sent.Add(1)
			}
			_ = d.Hangup(context.Background())
		})
	}
	time.Sleep(hold * 3 / 4)
	rss1 := rss()
	g1, h1 := settle()
	wg.Wait()
	wall := time.Since(start)
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	if failed.Load() > 0 {
		b.Fatalf("%d of %d calls not answered", failed.Load(), n)
	}
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds()/float64(n), "CPU-%/call")
	b.ReportMetric(float64(rss1-rss0)/float64(n)/1024, "RSS-KiB/call")
	b.ReportMetric(float64(int64(h1)-int64(h0))/float64(n)/1024, "heap-KiB/call")
	b.ReportMetric(float64(g1-g0)/float64(n), "goroutines/call")
	if path == "bridge" {
		b.ReportMetric(up.pct(0.5), "up-p50-ms")
		b.ReportMetric(up.pct(0.99), "up-p99-ms")
		b.ReportMetric(down.pct(0.5), "down-p50-ms")
		b.ReportMetric(down.pct(0.99), "down-p99-ms")
		b.ReportMetric(float64(st.UpDropped.Load()+st.DownDropped.Load()/bridge.FrameSamples), "frames-dropped")
		// Every frame the callers sent should have come back (less the
		// echo still in flight when they hung up).
		b.ReportMetric(100*float64(st.UpFrames.Load())/float64(max(sent.Load(), 1)), "up-delivered-%")
	} else {
		b.ReportMetric(100*float64(received.Load())/float64(max(sent.Load(), 1)), "play-received-%")
	}
}

// rss is the process's resident set, in bytes.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// BenchmarkAgentConnectWhileRinging measures INVITE to 200 OK on a
// HANDLE_AI trunk with a local agent (trunkd connects it while the call
// rings and answers once it is connected), beside a PLAY trunk's.
func BenchmarkAgentConnectWhileRinging(b *testing.B) {
	fa := fakeagent.New(fakeagent.Script{})
	srv := httptest.NewServer(fa)
	defer srv.Close()
	p := newPlane(b, Config{Bridger: &ws.Dialer{}, Audio: &fakeAudio{length: time.Minute}})
	u := newUAC(b, "127.0.0.1")
	for _, path := range []string{"handle_ai", "play"} {
		b.Run(path, func(b *testing.B) {
			port := siptest.FreePort(b, "127.0.0.1")
			tr := testTrunk("ring-"+path, port)
			tr.RejectIncomingCalls = false
			if path == "handle_ai" {
				tr.InboundRule, tr.InboundAIWebsocketURL = trunk.RuleHandleAI, "ws://"+srv.Listener.Addr().String()+"/agent"
			} else {
				tr.InboundRule, tr.InboundAudioURL = trunk.RulePlayAndHangup, "file:///prompt.wav"
			}
			apply(b, p, tr)
			s := &samples{}
			for range b.N {
				t0 := time.Now()
				d, code := u.call(b, port, diago.InviteOptions{})
				if code != 200 {
					b.Fatalf("INVITE got %d", code)
				}
				s.add(time.Since(t0))
				_ = d.Hangup(context.Background())
				d.Close()
			}
			b.ReportMetric(s.pct(0.5), "invite-to-200-p50-ms")
			b.ReportMetric(s.pct(0.99), "invite-to-200-p99-ms")
		})
	}
}
