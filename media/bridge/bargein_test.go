package bridge

import (
	"fmt"
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
	p, err := ParamsFor(mode, aggr)
	if err != nil {
		t.Fatal(err)
	}
	f := newFakePhone()
	f.echoDB = echoDB
	if speechDB != 0 {
		talk := babble(uint64(aggr+1), speechDB)
		f.speech = func(i int) []int16 {
			if i < onsetFrame {
				return nil
			}
			return talk(i)
		}
	}
	a := newChanAgent()
	stop := startRun(t, f, a, Options{Bargein: p})
	a.in <- In{Kind: InAudio, Audio: tone(350, agentDB, 3*Rate)}
	a.in <- In{Kind: InMark, Name: "answer"}
	time.Sleep(time.Duration(onsetFrame+30) * FrameTime)
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

func TestBargeinEnergyCutsAtEveryAggressiveness(t *testing.T) {
	for aggr := range 4 {
		t.Run(fmt.Sprint(aggr), func(t *testing.T) {
			t.Parallel()
			barge, _, fs := bargeinRun(t, ModeEnergy, aggr, callerDB, 0)
			if len(barge) != 1 {
				t.Fatalf("%d barge-ins; want 1", len(barge))
			}
			// Playback stops: after the onset plus the detection window and
			// a tick, nothing more is played.
			p, _ := ParamsFor(ModeEnergy, aggr)
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
	for aggr := range 3 {
		t.Run(fmt.Sprint(aggr), func(t *testing.T) {
			t.Parallel()
			barge, _, _ := bargeinRun(t, ModeEnergy, aggr, 0, 12)
			if len(barge) != 0 {
				t.Errorf("echo at -12 dB caused %d barge-ins", len(barge))
			}
		})
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
