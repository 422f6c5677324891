package bridge

import "math"

// Resamplers between the phone side's 8 kHz and an agent's 16 or 24 kHz:
// integer ratios L = 2 or 3 through one windowed-sinc low-pass (Blackman
// window, 48·L taps, cut-off 3.8 kHz), polyphase so that no zero or
// discarded sample is computed. Its stop band (above about 4.3 kHz) is
// over 70 dB down: upsampling leaves no images of the caller's audio
// above 4 kHz, and downsampling folds nothing an agent sends above
// 4.3 kHz into the telephone band (a tone sweep tests both). Group delay:
// 3 ms. Each keeps its history across calls, so audio may come in any
// length.

// lowpass returns the filter taps for ratio l at 8000·l Hz.
func lowpass(l int) []float64 {
	n := 48 * l
	fs := float64(Rate * l)
	fc := 3800 / fs
	h := make([]float64, n)
	mid := float64(n-1) / 2
	var sum float64
	for i := range h {
		x := float64(i) - mid
		sinc := 2 * fc
		if x != 0 {
			sinc = math.Sin(2*math.Pi*fc*x) / (math.Pi * x)
		}
		w := 0.42 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n-1)) + 0.08*math.Cos(4*math.Pi*float64(i)/float64(n-1))
		h[i] = sinc * w
		sum += h[i]
	}
	for i := range h {
		h[i] /= sum // unity gain at DC
	}
	return h
}

// Upsampler turns 8 kHz audio into 8·L kHz.
type Upsampler struct {
	l    int
	h    []float64
	hist []float64 // the last len(h)/l input samples, newest last
}

// NewUpsampler returns an upsampler by l (2 or 3).
func NewUpsampler(l int) *Upsampler {
	h := lowpass(l)
	return &Upsampler{l: l, h: h, hist: make([]float64, len(h)/l)}
}

// Process appends the upsampled in to dst.
func (u *Upsampler) Process(dst []int16, in []int16) []int16 {
	taps := len(u.hist)
	for _, s := range in {
		copy(u.hist, u.hist[1:])
		u.hist[taps-1] = float64(s)
		for p := range u.l {
			var acc float64
			for k := range taps {
				acc += u.h[k*u.l+p] * u.hist[taps-1-k]
			}
			dst = append(dst, sat(acc*float64(u.l)))
		}
	}
	return dst
}

// Downsampler turns 8·M kHz audio into 8 kHz.
type Downsampler struct {
	m     int
	h     []float64
	hist  []float64 // the last len(h) input samples, newest last
	phase int       // input samples since the last output
}

// NewDownsampler returns a downsampler by m (2 or 3).
func NewDownsampler(m int) *Downsampler {
	h := lowpass(m)
	return &Downsampler{m: m, h: h, hist: make([]float64, len(h))}
}

// Process appends the downsampled in to dst.
func (d *Downsampler) Process(dst []int16, in []int16) []int16 {
	n := len(d.hist)
	for _, s := range in {
		copy(d.hist, d.hist[1:])
		d.hist[n-1] = float64(s)
		if d.phase++; d.phase < d.m {
			continue
		}
		d.phase = 0
		var acc float64
		for k := range n {
			acc += d.h[k] * d.hist[n-1-k]
		}
		dst = append(dst, sat(acc))
	}
	return dst
}

func sat(v float64) int16 {
	return int16(max(-32768, min(32767, math.Round(v))))
}
