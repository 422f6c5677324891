package bridge

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// BenchmarkBargeinReaction measures, per mode and aggressiveness, the
// time from the caller's speech onset to the agent's playback stopped on
// the wire (the first silent frame written), in ms, with the fake phone
// pacing real 20 ms ticks: K frames of speech plus up to one tick. energy
// hears noise-like babble at -24 dBFS from silence; vad hears the
// espeak-ng speech fixture at -24 dBFS over noise at -50 dBFS (speech has
// gaps, so it takes longer than K frames).
func BenchmarkBargeinReaction(b *testing.B) {
	for _, mode := range []string{ModeEnergy, ModeVAD} {
		for aggr := range 4 {
			b.Run(fmt.Sprintf("%s/%d", mode, aggr), func(b *testing.B) {
				var total float64
				for range b.N {
					var caller func(int) []int16
					if mode == ModeVAD {
						caller = steadyNoisePlusSpeech(b, -50, true)
					} else {
						talk := babble(7, callerDB)
						caller = func(i int) []int16 {
							if i < onsetFrame {
								return nil
							}
							return talk(i)
						}
					}
					_, _, fs := bargeinWith(b, mode, aggr, caller, 0, 80)
					total += reactionMS(b, fs)
				}
				b.ReportMetric(total/float64(b.N), "reaction-ms")
			})
		}
	}
}

// reactionMS is the time from onsetFrame to the first silent frame after
// it.
func reactionMS(b *testing.B, fs [][]int16) float64 {
	for i := onsetFrame; i < len(fs); i++ {
		if math.IsInf(levelDB(fs[i]), -1) {
			return float64(i-onsetFrame) * 20
		}
	}
	b.Fatal("playback never stopped")
	return 0
}

// BenchmarkClearToSilence measures the time from the agent's clear
// reaching the bridge to the first silent frame written (semantic mode's
// cut), in ms: at most one 20 ms tick.
func BenchmarkClearToSilence(b *testing.B) {
	var worst, total float64
	for range b.N {
		f := newFakePhone()
		f.quiet, f.self = true, true // as the SIP plane runs it
		a := newChanAgent()
		p, _ := ParamsFor(ModeSemantic, 2)
		stop := startRun(b, f, a, Options{Bargein: p})
		a.in <- In{Kind: InAudio, Audio: tone(300, -20, 3*Rate)}
		time.Sleep(200 * time.Millisecond)
		sent := time.Now()
		a.in <- In{Kind: InClear}
		var at time.Time
		for end := time.Now().Add(time.Second); time.Now().Before(end) && at.IsZero(); time.Sleep(time.Millisecond) {
			at = f.firstSilentAfter(sent)
		}
		stop()
		if at.IsZero() {
			b.Fatal("no silence after clear")
		}
		ms := float64(at.Sub(sent)) / 1e6
		total += ms
		worst = max(worst, ms)
	}
	b.ReportMetric(total/float64(b.N), "clear-to-silence-ms")
	b.ReportMetric(worst, "worst-ms")
}

// BenchmarkAnswerStart measures, with the self-paced player, the time
// from an agent's answer reaching the idle queue (during silence) to its
// first frame sent, in ms: the downlink's own share, with no tick to wait
// for.
func BenchmarkAnswerStart(b *testing.B) {
	f := newFakePhone()
	f.self, f.quiet = true, true
	a := newChanAgent()
	stop := startRun(b, f, a, Options{})
	defer stop()
	var total, worst float64
	for i := range b.N {
		time.Sleep(time.Duration(47+7*(i%5)) * time.Millisecond) // back to silence, at varied phases
		sent := time.Now()
		a.in <- In{Kind: InAudio, Audio: tone(400, -20, 160)}
		var at time.Time
		for end := time.Now().Add(time.Second); time.Now().Before(end) && at.IsZero(); time.Sleep(200 * time.Microsecond) {
			at = f.firstVoicedAfter(sent)
		}
		if at.IsZero() {
			b.Fatal("the answer was never sent")
		}
		ms := float64(at.Sub(sent)) / 1e6
		total += ms
		worst = max(worst, ms)
	}
	b.ReportMetric(total/float64(b.N), "answer-start-ms")
	b.ReportMetric(worst, "worst-ms")
}
