package bridge

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// onsetFrame is when the caller starts talking in the barge-in tests;
// agentDB is the agent's level, callerDB a caller's (ITU-T P.56 active
// speech is about -26 dBov; TTS is often normalised near -20 dBFS).
const (
	onsetFrame = 25
	agentDB    = -20
	callerDB   = -24
)

// bargeinRun plays 3 s of agent audio to a caller who talks from
// onsetFrame (speech at speechDB, or none) over an echo of the agent
// (echoDB of loss, or none), and returns the barge-in messages and the
// frames written.
func bargeinRun(t *testing.T, mode string, aggr int, speechDB, echoDB float64) ([]Out, []Out, [][]int16) {
	var caller func(int) []int16
	if speechDB != 0 {
		talk := babble(uint64(aggr+1), speechDB)
		caller = func(i int) []int16 {
			if i < onsetFrame {
				return nil
			}
			return talk(i)
		}
	}
	return bargeinWith(t, mode, aggr, caller, echoDB, 30)
}

// bargeinWith is bargeinRun with the caller's frames given, running for
// after frames past the onset.
func bargeinWith(t testing.TB, mode string, aggr int, caller func(int) []int16, echoDB float64, after int) ([]Out, []Out, [][]int16) {
	p, err := ParamsFor(mode, aggr)
	if err != nil {
		t.Fatal(err)
	}
	f := newFakePhone()
	f.echoDB = echoDB
	f.speech = caller
	a := newChanAgent()
	stop := startRun(t, f, a, Options{Bargein: p})
	a.in <- In{Kind: InAudio, Audio: tone(350, agentDB, 3*Rate)}
	a.in <- In{Kind: InMark, Name: "answer"}
	time.Sleep(time.Duration(onsetFrame+after) * FrameTime)
	stop()
	var barge, speech []Out
	for {
		select {
		case m := <-a.out:
			switch m.Kind {
			case OutBargein:
				barge = append(barge, m)
			case OutSpeech:
				speech = append(speech, m)
			}
			continue
		default:
		}
		break
	}
	return barge, speech, f.frames()
}

func TestBargeinCutsAtEveryAggressiveness(t *testing.T) {
	for _, tc := range []struct {
		mode string
		aggr int
	}{{ModeEnergy, 0}, {ModeEnergy, 1}, {ModeEnergy, 2}, {ModeEnergy, 3}, {ModeVAD, 0}, {ModeVAD, 1}, {ModeVAD, 2}, {ModeVAD, 3}} {
		mode, aggr := tc.mode, tc.aggr
		t.Run(fmt.Sprint(mode, aggr), func(t *testing.T) {
			t.Parallel()
			barge, _, fs := bargeinRun(t, mode, aggr, callerDB, 0)
			if len(barge) != 1 {
				t.Fatalf("%d barge-ins; want 1", len(barge))
			}
			// Playback stops: after the onset plus the detection window and
			// a tick, nothing more is played.
			p, _ := ParamsFor(mode, aggr)
			cut := onsetFrame + p.W + 3
			if cut < len(fs) {
				if n := voicedFrames(fs[cut:]); n > 0 {
					t.Errorf("%d voiced frames after the cut; want none", n)
				}
			}
			if n := voicedFrames(fs[:onsetFrame+p.K-1]); n < onsetFrame {
				t.Errorf("playback cut before %d frames of speech (%d voiced)", p.K, n)
			}
		})
	}
}

// TestEchoDoesNotBargeIn: the agent's own voice coming back 12 dB down
// and 100 ms late must not cut it at aggressiveness 0-2 (the default is 2).
func TestEchoDoesNotBargeIn(t *testing.T) {
	for _, mode := range []string{ModeEnergy, ModeVAD} {
		for aggr := range 3 {
			t.Run(fmt.Sprint(mode, aggr), func(t *testing.T) {
				t.Parallel()
				barge, _, _ := bargeinRun(t, mode, aggr, 0, 12)
				if len(barge) != 0 {
					t.Errorf("echo at -12 dB caused %d barge-ins", len(barge))
				}
			})
		}
	}
}

// TestSpeechOverEchoBargesIn: a caller who talks over that echo still cuts.
func TestSpeechOverEchoBargesIn(t *testing.T) {
	barge, _, _ := bargeinRun(t, ModeEnergy, 2, callerDB+4, 12)
	if len(barge) != 1 {
		t.Errorf("%d barge-ins with speech over echo; want 1", len(barge))
	}
}

func TestSemanticAndOffDoNotCut(t *testing.T) {
	for _, mode := range []string{ModeSemantic, ModeOff} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			barge, speech, fs := bargeinRun(t, mode, 3, callerDB, 0)
			if len(barge) != 0 {
				t.Errorf("%s: %d barge-ins; want none", mode, len(barge))
			}
			if n := voicedFrames(fs); n < len(fs)-2 {
				t.Errorf("%s: playback was cut (%d of %d frames voiced)", mode, n, len(fs))
			}
			if wantHint := mode == ModeSemantic; (len(speech) > 0) != wantHint || (wantHint && !speech[0].Speaking) {
				t.Errorf("%s: speech hints %+v; want started hint %v", mode, speech, wantHint)
			}
		})
	}
}

// steadyNoisePlusSpeech is a caller with a steady noise at noiseDB from
// the first frame and, when talk, the speech fixture at callerDB from
// onsetFrame.
func steadyNoisePlusSpeech(t testing.TB, noiseDB float64, talk bool) func(int) []int16 {
	noise := babble(42, noiseDB)
	sp := speechFixture(t)
	g := 32768 * math.Pow(10, callerDB/20) / rmsOf(sp)
	return func(i int) []int16 {
		f := noise(i)
		if k := (i - onsetFrame) * FrameSamples; talk && k >= 0 && k+FrameSamples <= len(sp) {
			for j := range f {
				f[j] = clamp(float64(f[j]) + g*float64(sp[k+j]))
			}
		}
		return f
	}
}

func rmsOf(pcm []int16) float64 {
	var s float64
	for _, v := range pcm {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(pcm)))
}

// TestVADIgnoresSteadyNoise: a caller in steady noise as loud as speech
// (a car, a fan) cuts the agent in energy mode, not in vad mode; speech
// over that noise cuts in vad mode.
func TestVADIgnoresSteadyNoise(t *testing.T) {
	if barge, _, _ := bargeinWith(t, ModeEnergy, 2, steadyNoisePlusSpeech(t, -26, false), 0, 30); len(barge) == 0 {
		t.Log("energy mode did not cut on the steady noise (expected it to: it has no spectral model)")
	}
	if barge, _, _ := bargeinWith(t, ModeVAD, 2, steadyNoisePlusSpeech(t, -26, false), 0, 30); len(barge) != 0 {
		t.Errorf("vad mode cut %d times on steady noise alone", len(barge))
	}
	if barge, _, _ := bargeinWith(t, ModeVAD, 2, steadyNoisePlusSpeech(t, -26, true), 0, 30); len(barge) != 1 {
		t.Errorf("vad mode cut %d times for speech over the steady noise; want 1", len(barge))
	}
}
