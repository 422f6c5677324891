package bridge

import (
	"fmt"
	"math"
	"testing"
)

func sine(hz float64, rate, n int, amp float64) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(amp * math.Sin(2*math.Pi*hz*float64(i)/float64(rate)))
	}
	return s
}

// rmsDB is the RMS of the second half of s (past the filter's start), in
// dB relative to amp/√2.
func rmsDB(s []int16, amp float64) float64 {
	s = s[len(s)/2:]
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return 10 * math.Log10(sum/float64(len(s))/(amp*amp/2)+1e-12)
}

// TestDownsampleSweep: tones an agent sends at 16 or 24 kHz reach the
// 8 kHz phone side intact in the telephone band and are not folded into
// it from above 4.3 kHz.
func TestDownsampleSweep(t *testing.T) {
	for _, m := range []int{2, 3} {
		rate := Rate * m
		for hz := 200.0; hz < float64(rate)/2; hz += 100 {
			out := NewDownsampler(m).Process(nil, sine(hz, rate, rate/2, 16000))
			got := rmsDB(out, 16000)
			switch {
			case hz <= 3400 && math.Abs(got) > 0.5:
				t.Errorf("÷%d: %v Hz passes at %.2f dB; want within 0.5 dB", m, hz, got)
			case hz >= 4300 && got > -60:
				t.Errorf("÷%d: %v Hz aliases at %.1f dB; want below -60 dB", m, hz, got)
			}
		}
	}
}

// TestUpsampleSweep: the caller's 8 kHz audio upsampled keeps its band
// and has no images above 4.3 kHz.
func TestUpsampleSweep(t *testing.T) {
	for _, l := range []int{2, 3} {
		for hz := 200.0; hz <= 3400; hz += 100 {
			out := NewUpsampler(l).Process(nil, sine(hz, Rate, Rate/2, 16000))
			if got := rmsDB(out, 16000); math.Abs(got) > 0.5 {
				t.Errorf("×%d: %v Hz at %.2f dB; want within 0.5 dB", l, hz, got)
			}
			// The image of hz sits at Rate-hz: measure what is left there.
			if img := toneLevel(out[len(out)/2:], Rate-hz, Rate*l); hz <= 3600 && img > -60 {
				t.Errorf("×%d: image of %v Hz at %.1f dB; want below -60 dB", l, hz, img)
			}
		}
	}
}

// toneLevel is the level of one frequency in s (Goertzel), dB relative to
// a full amplitude-16000 sine.
func toneLevel(s []int16, hz float64, rate int) float64 {
	w := 2 * math.Pi * hz / float64(rate)
	var re, im float64
	for i, v := range s {
		re += float64(v) * math.Cos(w*float64(i))
		im -= float64(v) * math.Sin(w*float64(i))
	}
	a := 2 * math.Hypot(re, im) / float64(len(s))
	return 20 * math.Log10(a/16000+1e-12)
}

// TestResampleChunked: any chunking gives the same output.
func TestResampleChunked(t *testing.T) {
	in := sine(1000, 16000, 1000, 12000)
	whole := NewDownsampler(2).Process(nil, in)
	d := NewDownsampler(2)
	var parts []int16
	for _, n := range []int{1, 37, 320, 3, 639} {
		parts = d.Process(parts, in[:n])
		in = in[n:]
	}
	if fmt.Sprint(parts) != fmt.Sprint(whole) {
		t.Errorf("chunked output differs from whole")
	}
}

func BenchmarkUpsample16k(b *testing.B) {
	u, f := NewUpsampler(2), sine(1000, Rate, FrameSamples, 8000)
	var out []int16
	for b.Loop() {
		out = u.Process(out[:0], f)
	}
}
