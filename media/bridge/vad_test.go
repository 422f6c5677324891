package bridge

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func speechFixture(t testing.TB) []int16 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "ai", "speech-8k.wav"))
	if err != nil {
		t.Fatal(err)
	}
	b = b[44:]
	pcm := make([]int16, len(b)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return pcm
}

// vadScore runs the VAD over 1 s of noise then the speech fixture mixed
// with white noise at snr dB below it, and returns the share of loud
// speech frames found and of noise-only frames taken for speech.
func vadScore(t testing.TB, aggr int, snr float64) (hit, false_ float64) {
	sp := speechFixture(t)
	lead := 8000
	x := make([]float64, lead+len(sp))
	var s2 float64
	for i, s := range sp {
		x[lead+i] = float64(s)
		s2 += float64(s) * float64(s)
	}
	srms := math.Sqrt(s2 / float64(len(sp)))
	r := rand.New(rand.NewPCG(9, 9))
	n := srms * math.Pow(10, -snr/20)
	v := newVAD(aggr)
	var hits, loud, fa, quiet int
	for i := 0; i+FrameSamples <= len(x); i += FrameSamples {
		f := make([]int16, FrameSamples)
		var c2 float64
		for k := range f {
			c2 += x[i+k] * x[i+k]
			f[k] = clamp(x[i+k] + n*r.NormFloat64())
		}
		got := v.speech(f)
		crms := math.Sqrt(c2 / FrameSamples)
		switch {
		case i < lead/2:
		case crms > srms/2:
			loud++
			if got {
				hits++
			}
		case crms < srms/1000:
			quiet++
			if got {
				fa++
			}
		}
	}
	return float64(hits) / float64(loud), float64(fa) / float64(quiet)
}

// TestVADSpeechInNoise: at every aggressiveness the VAD finds most loud
// speech frames in white noise 10 dB down and rarely takes the noise for
// speech.
func TestVADSpeechInNoise(t *testing.T) {
	for aggr := range 4 {
		hit, fa := vadScore(t, aggr, 10)
		t.Logf("aggressiveness %d: %.0f%% of speech frames found, %.0f%% of noise frames taken for speech", aggr, 100*hit, 100*fa)
		if hit < 0.7 || fa > 0.15 {
			t.Errorf("aggressiveness %d: speech found %.0f%%, noise taken %.0f%%; want at least 70%% and at most 15%%", aggr, 100*hit, 100*fa)
		}
	}
}

func TestFFT(t *testing.T) {
	x := make([]complex128, 256)
	for i := range x {
		x[i] = complex(math.Cos(2*math.Pi*10*float64(i)/256), 0)
	}
	fft(x)
	for k, v := range x {
		want := 0.0
		if k == 10 || k == 246 {
			want = 128
		}
		if math.Abs(real(v)-want) > 1e-9 || math.Abs(imag(v)) > 1e-9 {
			t.Fatalf("bin %d = %v; want %v", k, v, want)
		}
	}
}
