package denoise

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// speech reads testdata/ai/speech-8k.wav (espeak-ng, 8 kHz mono).
func speech(t testing.TB) []int16 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "ai", "speech-8k.wav"))
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

func rms(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return math.Sqrt(s / float64(len(x)))
}

// cut is what denoising did to speech with white noise inSNR dB below it:
// how much quieter the noise alone became (the second half of a 3 s
// lead-in), the noise in the speech's pauses, and the loud speech frames
// (frames classed by the clean speech), in dB.
type cut struct{ noise, pauses, speech float64 }

func reduce(t testing.TB, inSNR float64) cut {
	clean := speech(t)
	lead := 3 * 8000
	x := make([]float64, lead+len(clean))
	for i, s := range clean {
		x[lead+i] = float64(s)
	}
	r := rand.New(rand.NewPCG(3, 4))
	nrms := rms(x[lead:]) * math.Pow(10, -inSNR/20)
	noisy := make([]int16, len(x))
	for i := range x {
		noisy[i] = int16(max(-32768, min(32767, x[i]+nrms*r.NormFloat64())))
	}
	d, err := New(160, 8000, 25)
	if err != nil {
		t.Skip(err)
	}
	defer d.Close()
	out := append([]int16(nil), noisy...)
	for i := 0; i+160 <= len(out); i += 160 {
		d.Process(out[i : i+160])
	}
	peak := rms(x[lead:])
	var lIn, lOut, nIn, nOut, sIn, sOut []float64
	for i := lead / 2; i+160 <= len(x); i += 160 {
		lv := rms(x[i : i+160])
		for k := i; k < i+160; k++ {
			switch {
			case i < lead:
				lIn, lOut = append(lIn, float64(noisy[k])), append(lOut, float64(out[k]))
			case lv < peak/1000: // clean below -60 dB of the speech: a pause
				nIn, nOut = append(nIn, float64(noisy[k])), append(nOut, float64(out[k]))
			case lv > peak/3: // loud speech
				sIn, sOut = append(sIn, float64(noisy[k])), append(sOut, float64(out[k]))
			}
		}
	}
	db := func(a, b []float64) float64 { return 20 * math.Log10(rms(a)/rms(b)) }
	return cut{noise: db(lIn, lOut), pauses: db(nIn, nOut), speech: db(sIn, sOut)}
}

// TestDenoiseReducesNoise: speech (espeak-ng) with white noise 10 dB
// below it: the noise gets much quieter, the speech barely.
func TestDenoiseReducesNoise(t *testing.T) {
	c := reduce(t, 10)
	t.Logf("noise %.1f dB quieter, pauses %.1f dB, speech %.1f dB", c.noise, c.pauses, c.speech)
	if c.noise < 10 || c.speech > 3 {
		t.Errorf("noise cut by %.1f dB, speech by %.1f dB; want noise at least 10 dB down, speech at most 3 dB", c.noise, c.speech)
	}
}

func BenchmarkDenoise(b *testing.B) {
	d, err := New(160, 8000, 25)
	if err != nil {
		b.Skip(err)
	}
	defer d.Close()
	f := make([]int16, 160)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range f {
		f[i] = int16(r.IntN(2000) - 1000)
	}
	for b.Loop() {
		d.Process(f)
	}
	for _, snr := range []float64{0, 10, 20} {
		c := reduce(b, snr)
		b.ReportMetric(c.noise, "dB-noise-cut@SNR"+itoa(int(snr)))
		b.ReportMetric(c.pauses, "dB-pause-cut@SNR"+itoa(int(snr)))
		b.ReportMetric(c.speech, "dB-speech-cut@SNR"+itoa(int(snr)))
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return string(rune('0'+i/10)) + string(rune('0'+i%10))
}
