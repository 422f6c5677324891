package rtpstats

import (
	"math"
	"sync"
	"testing"
	"time"
)

// PCMU: 20 ms packets of 160 samples at 8000 Hz.
const (
	rate    = 8000
	spacing = 20 * time.Millisecond
	samples = 160
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// sendStream feeds n packets of a PCMU stream starting at seq first,
// skipping those for which drop(i) is true, where i counts from 0. It
// returns the number dropped.
func sendStream(r *Receiver, first uint16, n int, drop func(i int) bool) int {
	dropped := 0
	for i := range n {
		if drop(i) {
			dropped++
			continue
		}
		r.Packet(first+uint16(i), uint32(i*samples), t0.Add(time.Duration(i)*spacing))
	}
	return dropped
}

// checkCounts compares a snapshot's counters with the wanted ones.
func checkCounts(t *testing.T, got Stats, expected, received, lost int64) {
	t.Helper()
	if got.Expected != expected || got.Received != received || got.Lost != lost {
		t.Errorf("Snapshot() = expected %d, received %d, lost %d; want %d, %d, %d",
			got.Expected, got.Received, got.Lost, expected, received, lost)
	}
	want := 0.0
	if expected > 0 {
		want = float64(lost) / float64(expected) * 100
	}
	if math.Abs(got.LossPct-want) > 1e-9 {
		t.Errorf("LossPct = %v; want %v", got.LossPct, want)
	}
}

func TestEmpty(t *testing.T) {
	got := NewReceiver(rate).Snapshot()
	if got != (Stats{}) {
		t.Errorf("Snapshot() of a new Receiver = %+v; want zero", got)
	}
}

func TestProbation(t *testing.T) {
	r := NewReceiver(rate)
	r.Packet(500, 0, t0)
	checkCounts(t, r.Snapshot(), 0, 0, 0)
	r.Packet(501, samples, t0.Add(spacing))
	checkCounts(t, r.Snapshot(), 1, 1, 0)
}

// Every tenth packet lost. The first packet is never counted (probation),
// so 1001 packets make 1000 expected, of which 100 are dropped.
func TestLossEveryTenth(t *testing.T) {
	r := NewReceiver(rate)
	dropped := sendStream(r, 1000, 1001, func(i int) bool { return i%10 == 5 })
	if dropped != 100 {
		t.Fatalf("dropped %d; test wants 100", dropped)
	}
	got := r.Snapshot()
	checkCounts(t, got, 1000, 900, 100)
	if got.LossPct != 10 {
		t.Errorf("LossPct = %v; want 10", got.LossPct)
	}
}

// Loss must stay right when the sequence number wraps, with losses on
// both sides of the wrap and across several wraps.
func TestLossAcrossWrap(t *testing.T) {
	tests := []struct {
		name  string
		first uint16
		n     int
		drop  func(seq uint16, i int) bool
	}{
		{"no loss", 65000, 2000, func(uint16, int) bool { return false }},
		{"burst at wrap", 65000, 2000, func(s uint16, _ int) bool { return s >= 65533 || s <= 2 }},
		{"every 10th and wrap", 65000, 2000, func(s uint16, i int) bool { return i%10 == 3 || s == 65535 || s == 0 }},
		{"wrap is first loss", 65530, 100, func(s uint16, _ int) bool { return s == 0 }},
		{"four wraps, 1% loss", 60000, 4 * 65536, func(_ uint16, i int) bool { return i%100 == 42 }},
		{"gap spans wrap", 65000, 2000, func(s uint16, _ int) bool { return s >= 65400 || s < 500 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReceiver(rate)
			dropped := sendStream(r, tt.first, tt.n, func(i int) bool {
				return i > 1 && i < tt.n-1 && tt.drop(tt.first+uint16(i), i)
			})
			want := int64(tt.n - 1)
			checkCounts(t, r.Snapshot(), want, want-int64(dropped), int64(dropped))
		})
	}
}

// sendSeqs feeds packets in the given order, with timestamps and arrival
// times that follow the sequence numbers.
func sendSeqs(r *Receiver, seqs ...uint16) {
	for i, s := range seqs {
		r.Packet(s, uint32(s)*samples, t0.Add(time.Duration(i)*spacing))
	}
}

func TestReorder(t *testing.T) {
	tests := []struct {
		name               string
		seqs               []uint16
		expected, received int64
	}{
		{"swap", []uint16{0, 1, 2, 4, 3, 5, 6}, 6, 6},
		{"late by many", []uint16{0, 1, 2, 4, 5, 6, 7, 8, 9, 3, 10}, 10, 10},
		{"late across wrap", []uint16{65532, 65533, 65534, 0, 65535, 1, 2}, 6, 6},
		{"several late across wrap", []uint16{65532, 65533, 1, 0, 65535, 65534, 2}, 6, 6},
		{"missing never comes", []uint16{0, 1, 2, 4, 5}, 5, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReceiver(rate)
			sendSeqs(r, tt.seqs...)
			checkCounts(t, r.Snapshot(), tt.expected, tt.received, max(tt.expected-tt.received, 0))
		})
	}
}

// Duplicates count as received (RFC 3550) and never make Lost negative.
func TestDuplicates(t *testing.T) {
	r := NewReceiver(rate)
	sendSeqs(r, 0, 1, 2, 3, 4, 5, 5, 5, 5, 6, 7, 8, 9)
	checkCounts(t, r.Snapshot(), 9, 12, 0)
	sendSeqs(r, 10, 11, 12, 13, 14, 16, 17, 18, 19, 10, 10)
	checkCounts(t, r.Snapshot(), 19, 23, 0)
	sendSeqs(r, 21, 22, 23, 25, 27)
	checkCounts(t, r.Snapshot(), 27, 28, 0)
	sendSeqs(r, 29, 31, 33)
	checkCounts(t, r.Snapshot(), 33, 31, 2)
}

// A lone packet far from the stream is ignored; two in sequence start a
// new run, and the totals cover both runs.
func TestLargeJump(t *testing.T) {
	r := NewReceiver(rate)
	sendStream(r, 0, 51, func(int) bool { return false })
	r.Packet(40000, 0, t0)
	sendStream(r, 51, 50, func(int) bool { return false })
	checkCounts(t, r.Snapshot(), 100, 100, 0)

	sendStream(r, 30000, 100, func(i int) bool { return i == 50 })
	checkCounts(t, r.Snapshot(), 199, 198, 1)
}

func TestJitterConstant(t *testing.T) {
	for _, ts := range []uint32{0, math.MaxUint32 - 1000} {
		r := NewReceiver(rate)
		for i := range 500 {
			r.Packet(uint16(i), ts+uint32(i*samples), t0.Add(time.Duration(i)*spacing))
		}
		if got := r.Snapshot().Jitter; got != 0 {
			t.Errorf("Jitter with constant spacing from ts %d = %v; want 0", ts, got)
		}
	}
}

// Arrivals alternately X early and X late make |D| = 2X for every packet,
// so the estimate climbs towards 2X by J += (|D| - J)/16.
func TestJitterAlternating(t *testing.T) {
	for _, x := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 7500 * time.Microsecond} {
		r := NewReceiver(rate)
		var arrivals []time.Time
		for i := range 500 {
			at := t0.Add(time.Duration(i)*spacing + x)
			if i%2 == 1 {
				at = t0.Add(time.Duration(i)*spacing - x)
			}
			arrivals = append(arrivals, at)
			r.Packet(uint16(i), uint32(i*samples), at)
		}
		want := jitterByRecurrence(arrivals)
		got := r.Snapshot().Jitter
		if diff := got - want; diff < -time.Microsecond || diff > time.Microsecond {
			t.Errorf("Jitter with ±%v = %v; want %v", x, got, want)
		}
		if limit := 2 * x; got < limit*99/100 || got > limit {
			t.Errorf("Jitter with ±%v = %v; want within 1%% below %v", x, got, limit)
		}
	}
}

// jitterByRecurrence runs RFC 3550's estimator over a PCMU stream with
// the given arrival times, the transit time computed from milliseconds.
func jitterByRecurrence(arrivals []time.Time) time.Duration {
	var j float64
	var prev float64
	for i, at := range arrivals {
		ms := float64(at.Sub(t0)) / float64(time.Millisecond)
		transit := ms*rate/1000 - float64(i*samples)
		if i > 0 {
			j += (math.Abs(transit-prev) - j) / 16
		}
		prev = transit
	}
	return time.Duration(j / rate * float64(time.Second))
}

// A timestamp step of hours is a discontinuity, not jitter.
func TestJitterTimestampJump(t *testing.T) {
	r := NewReceiver(rate)
	for i := range 100 {
		ts := uint32(i * samples)
		if i >= 50 {
			ts += 1 << 31
		}
		r.Packet(uint16(i), ts, t0.Add(time.Duration(i)*spacing))
	}
	if got := r.Snapshot().Jitter; got != 0 {
		t.Errorf("Jitter after a timestamp jump = %v; want 0", got)
	}
}

func TestNewReceiverBadRate(t *testing.T) {
	r := NewReceiver(0)
	r.Packet(0, 0, t0)
	r.Packet(1, 160, t0.Add(30*time.Millisecond))
	if got, want := r.Snapshot().Jitter, 10*time.Millisecond/16; got != want {
		t.Errorf("Jitter at rate 0 = %v; want %v (as 8000)", got, want)
	}
}

// One goroutine feeds, others read; run with -race.
func TestConcurrent(t *testing.T) {
	r := NewReceiver(rate)
	var wg sync.WaitGroup
	wg.Go(func() { sendStream(r, 0, 5000, func(i int) bool { return i%7 == 3 }) })
	wg.Go(func() {
		for range 1000 {
			if s := r.Snapshot(); s.Lost < 0 || s.LossPct < 0 || s.LossPct > 100 {
				t.Errorf("Snapshot() = %+v during feeding", s)
				return
			}
		}
	})
	wg.Go(func() {
		for i := range 1000 {
			r.RTCP(receiverReport(NTPMiddle32(t0), 0), t0.Add(time.Duration(i)*time.Millisecond))
		}
	})
	wg.Wait()
}

func BenchmarkPacket(b *testing.B) {
	r := NewReceiver(rate)
	at := t0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.Packet(uint16(i), uint32(i*samples), at)
		at = at.Add(spacing)
	}
}

func BenchmarkSnapshot(b *testing.B) {
	r := NewReceiver(rate)
	sendStream(r, 0, 1000, func(i int) bool { return i%10 == 5 })
	b.ReportAllocs()
	for b.Loop() {
		r.Snapshot()
	}
}

// FuzzPacket feeds arbitrary sequence numbers; the counters must stay
// consistent.
func FuzzPacket(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 2, 0, 4, 0, 3})
	f.Add([]byte{0xff, 0xfe, 0xff, 0xff, 0, 0, 0xff, 0xff, 0, 1})
	f.Add([]byte{0, 0, 0, 1, 0x80, 0, 0x80, 1, 0, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReceiver(rate)
		for i := 0; i+1 < len(b); i += 2 {
			seq := uint16(b[i])<<8 | uint16(b[i+1])
			r.Packet(seq, uint32(seq)*samples, t0.Add(time.Duration(i)*spacing))
		}
		s := r.Snapshot()
		if s.Expected < 0 || s.Received < 0 || s.Lost < 0 || s.Lost > s.Expected ||
			s.LossPct < 0 || s.LossPct > 100 || s.Jitter < 0 {
			t.Fatalf("Snapshot() = %+v", s)
		}
	})
}
