package media

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/trunkd/trunkd/trunk"
)

// BenchmarkLiveCalls measures what an answered call costs the SIP plane
// while it is up: goroutines and live heap per call, with sipp holding
// the calls from another process (so its goroutines are not counted).
// Each iteration holds 200 calls; the figures are per call.
func BenchmarkLiveCalls(b *testing.B) {
	const n = 200
	for range b.N {
		g, heap := holdCalls(b, n)
		b.ReportMetric(g, "goroutines/call")
		b.ReportMetric(heap, "heap-B/call")
	}
}

func holdCalls(b *testing.B, n int) (goroutines, heap float64) {
	p := newPlane(b, Config{Audio: &fakeAudio{length: time.Minute}})
	port := freePort(b, "127.0.0.1")
	tr := testTrunk("live", port)
	tr.RejectIncomingCalls, tr.InboundRule, tr.InboundAudioURL = false, trunk.RulePlayAndHangup, "file:///prompt.wav"
	tr.ChannelLimit, tr.RTPStartPort, tr.RTPEndPort = uint32(n), 30000, 30000+uint16(4*n)
	apply(b, p, tr)
	g0, h0 := settle()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd, _ := sippCmd(ctx, b, "uac_answer_wait_bye.xml", port, n, 100, 0)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for p.Status("live").ActiveCalls < uint32(n) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d calls up after 30 s", p.Status("live").ActiveCalls, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // every call playing
	g1, h1 := settle()
	cancel()
	_ = cmd.Wait()
	return float64(g1-g0) / float64(n), float64(int64(h1)-int64(h0)) / float64(n)
}

// settle collects garbage and reads the goroutine count and live heap.
func settle() (int, uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return runtime.NumGoroutine(), m.HeapAlloc
}

// BenchmarkInboundReject offers b.N calls from sipp at 800 calls/s to a
// REJECT trunk; ns/op is wall time per call (bounded below by the offered
// rate), and a CPU profile of this benchmark shows the plane's cost per
// rejected call.
func BenchmarkInboundReject(b *testing.B) {
	p := newPlane(b, Config{})
	port := freePort(b, "127.0.0.1")
	apply(b, p, testTrunk("reject", port))
	n := max(b.N, 100)
	b.ResetTimer()
	cmd, stat := sippCmd(context.Background(), b, "uac_reject.xml", port, n, 800, 0)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("sipp: %v\n%s", err, out)
	}
	ok, failed := sippCounts(b, stat)
	if ok != n || failed != 0 {
		b.Fatalf("%d calls: %d ok, %d failed", n, ok, failed)
	}
}
