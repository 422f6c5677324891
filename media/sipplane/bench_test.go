package sipplane

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/trunkd/trunkd/media/rtpstats"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
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
	port := siptest.FreePort(b, "127.0.0.1")
	tr := testTrunk("live", port)
	tr.RejectIncomingCalls, tr.InboundRule, tr.InboundAudioURL = false, trunk.RulePlayAndHangup, "file:///prompt.wav"
	tr.ChannelLimit, tr.RTPStartPort, tr.RTPEndPort = uint32(n), 30000, 30000+uint16(4*n)
	apply(b, p, tr)
	g0, h0 := settle()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd, err := sipp(b, "uac_answer_wait_bye.xml", port, n, 100, 0).Start(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for p.status("live").ActiveCalls < uint32(n) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d calls up after 30 s", p.status("live").ActiveCalls, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // every call playing
	if s := os.Getenv("TRUNKD_BENCH_HOLD"); s != "" {
		d, _ := time.ParseDuration(s)
		time.Sleep(d)
	}
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
	port := siptest.FreePort(b, "127.0.0.1")
	apply(b, p, testTrunk("reject", port))
	n := max(b.N, 100)
	b.ResetTimer()
	st, err := sipp(b, "uac_reject.xml", port, n, 800, 0).Run(context.Background())
	if err != nil || st.Exit != 0 {
		b.Fatalf("sipp: exit %d, %v\n%s", st.Exit, err, st.Output)
	}
	if st.Successful != n || st.Failed != 0 {
		b.Fatalf("%d calls: %d ok, %d failed", n, st.Successful, st.Failed)
	}
}

// BenchmarkQualityTracking is the CPU cost per received RTP packet of
// reading it (socket read and RTP header parse, as diago does) with and
// without trunkd's quality tracking (rtpstats) on top; a call receives 50
// packets a second.
func BenchmarkQualityTracking(b *testing.B) {
	for _, track := range []bool{false, true} {
		name := "off"
		if track {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			rx, tx := udpPair(b)
			rs := rtpstats.NewReceiver(8000)
			go blast(tx, rx.LocalAddr().(*net.UDPAddr))
			buf := make([]byte, 1500)
			var h rtp.Header
			b.ResetTimer()
			for range b.N {
				n, err := rx.Read(buf)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := h.Unmarshal(buf[:n]); err != nil {
					b.Fatal(err)
				}
				if track {
					rs.Packet(h.SequenceNumber, h.Timestamp, time.Now())
				}
			}
			b.StopTimer()
			tx.Close()
			rx.Close()
		})
	}
}

func udpPair(b *testing.B) (rx, tx *net.UDPConn) {
	rx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	_ = rx.SetReadBuffer(4 << 20)
	tx, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	return rx, tx
}

// blast sends PCMU packets to to until tx is closed.
func blast(tx *net.UDPConn, to *net.UDPAddr) {
	pkt := make([]byte, 12+160)
	pkt[0] = 0x80
	for i := 0; ; i++ {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], uint32(i*160))
		if _, err := tx.WriteToUDP(pkt, to); err != nil {
			return
		}
	}
}

// BenchmarkBreakerReaction counts the calls a dead carrier (it never
// answers) receives before its trunk's breaker opens, with Dials arriving
// one after another and 10 at a time, at the default breaker settings.
func BenchmarkBreakerReaction(b *testing.B) {
	for _, par := range []int{1, 10} {
		b.Run(fmt.Sprintf("parallel=%d", par), func(b *testing.B) {
			for range b.N {
				b.ReportMetric(float64(callsBeforeOpen(b, par)), "calls-before-open")
			}
		})
	}
}

func callsBeforeOpen(b *testing.B, par int) int {
	c := newCarrier(b, silent)
	p := newPlane(b, Config{})
	tr := testTrunk("dead", siptest.FreePort(b, "127.0.0.1"))
	tr.DestinationSBCPort = c.port
	apply(b, p, tr)
	for !p.TrunkStatus("dead").CircuitOpen() {
		var wg sync.WaitGroup
		for range par {
			wg.Go(func() {
				_, _ = p.Dial(context.Background(), trunk.DialRequest{TrunkID: "dead", To: "100", Timeout: 200 * time.Millisecond})
			})
		}
		wg.Wait()
	}
	n, _, _ := c.counts()
	return n
}
