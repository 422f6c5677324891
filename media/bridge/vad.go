package bridge

import (
	"math"
	"math/cmplx"
)

// vad decides, per 20 ms frame at 8 kHz, whether it holds speech. It is a
// statistical-model detector (Sohn, Kim and Sung, "A statistical model-
// based voice activity detection", IEEE SPL 1999) over the six sub-bands
// WebRTC's VAD uses (80-250, 250-500, 500-1000, 1000-2000, 2000-3000,
// 3000-4000 Hz): each band's noise power is tracked while the frame is
// judged noise, the a-priori SNR is estimated decision-directed, and the
// frame is speech when the mean log likelihood ratio of the bands is
// above eta. Unlike an energy threshold it tells speech from a steady
// noise of the same level. It is not WebRTC's code (whose fixed-point GMM
// tables are not available here as a Go module).
type vad struct {
	eta    float64
	noise  [6]float64 // per-band noise power
	clean  [6]float64 // last frame's clean power estimate, for the decision-directed SNR
	frames int
	win    [fftSize]float64
	buf    [fftSize]complex128
}

const fftSize = 256

// bandEdges in FFT bins (31.25 Hz each) of the six sub-bands.
var bandEdges = [7]int{3, 8, 16, 32, 64, 96, 128}

// vadEta is eta per aggressiveness (higher aggressiveness, lower eta:
// speech is found sooner).
var vadEta = [4]float64{0.9, 0.6, 0.4, 0.25}

func newVAD(aggressiveness int) *vad {
	v := &vad{eta: vadEta[max(0, min(3, aggressiveness))]}
	for i := range FrameSamples {
		v.win[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(FrameSamples-1))
	}
	return v
}

// speech reports whether the frame (160 samples) holds speech.
func (v *vad) speech(pcm []int16) bool {
	var e [6]float64
	v.bands(pcm, &e)
	if v.frames < 5 { // the first 100 ms teach the noise model
		for k := range e {
			v.noise[k] = (v.noise[k]*float64(v.frames) + e[k]) / float64(v.frames+1)
		}
		v.frames++
		return false
	}
	v.frames++
	var llr float64
	var gamma [6]float64
	for k := range e {
		n := max(v.noise[k], 1e-3)
		gamma[k] = min(e[k]/n, 1e4)
		xi := 0.98*v.clean[k]/n + 0.02*max(gamma[k]-1, 0)
		xi = max(xi, 1e-3)
		llr += gamma[k]*xi/(1+xi) - math.Log1p(xi)
	}
	llr /= 6
	isSpeech := llr > v.eta
	for k := range e {
		n := max(v.noise[k], 1e-3)
		xi := max(gamma[k]-1, 0)
		v.clean[k] = xi * n
		switch {
		case e[k] < v.noise[k]:
			v.noise[k] = 0.8*v.noise[k] + 0.2*e[k] // noise falls: follow fast
		case !isSpeech:
			v.noise[k] = 0.95*v.noise[k] + 0.05*e[k]
		default:
			v.noise[k] *= 1.002 // a floor stuck low under long speech creeps up
		}
	}
	return isSpeech
}

// bands computes the power of each sub-band of a frame.
func (v *vad) bands(pcm []int16, e *[6]float64) {
	for i := range v.buf {
		v.buf[i] = 0
	}
	for i, s := range pcm[:min(len(pcm), FrameSamples)] {
		v.buf[i] = complex(float64(s)/32768*v.win[i], 0)
	}
	fft(v.buf[:])
	for k := range 6 {
		var p float64
		for b := bandEdges[k]; b < bandEdges[k+1]; b++ {
			a := cmplx.Abs(v.buf[b])
			p += a * a
		}
		e[k] = p / float64(bandEdges[k+1]-bandEdges[k])
	}
}

// fft is an in-place radix-2 FFT; len(x) is a power of two.
func fft(x []complex128) {
	n := len(x)
	for i, j := 1, 0; i < n; i++ {
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j ^= bit
		if i < j {
			x[i], x[j] = x[j], x[i]
		}
	}
	for size := 2; size <= n; size <<= 1 {
		w := cmplx.Exp(complex(0, -2*math.Pi/float64(size)))
		for start := 0; start < n; start += size {
			wk := complex(1, 0)
			for k := range size / 2 {
				a, b := x[start+k], x[start+k+size/2]*wk
				x[start+k], x[start+k+size/2] = a+b, a-b
				wk *= w
			}
		}
	}
}
