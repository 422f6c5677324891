package bridge

import (
	"fmt"
	"math"
)

// Barge-in modes, as auto_bargein_mode names them.
const (
	ModeEnergy   = "energy"   // trunkd cuts on sustained caller energy
	ModeVAD      = "vad"      // trunkd cuts on sustained speech as its VAD hears it (not on noise)
	ModeSemantic = "semantic" // the agent decides; trunkd only reports speech
	ModeOff      = "off"      // no local action
)

// Params are the barge-in thresholds of one aggressiveness (0-3, higher
// cuts sooner), for 20 ms frames.
type Params struct {
	Mode     string
	Aggr     int     // the aggressiveness these come from (the VAD's own threshold follows it)
	MarginDB float64 // a speech frame is this far above the noise floor...
	GateDB   float64 // ...and above this absolute level (dBFS)
	EchoDB   float64 // ...and above the agent's recent output level minus this
	K, W     int     // fire when K of the last W frames are speech
	H        int     // frames of non-speech after which the caller is silent again
}

// ParamsFor returns the documented thresholds of a mode and
// aggressiveness (docs/ai-bridge.md, "Barge-in").
func ParamsFor(mode string, aggressiveness int) (Params, error) {
	if aggressiveness < 0 || aggressiveness > 3 {
		return Params{}, fmt.Errorf("aggressiveness %d is outside 0-3", aggressiveness)
	}
	switch mode {
	case ModeEnergy, ModeSemantic, ModeOff, ModeVAD:
	default:
		return Params{}, fmt.Errorf("unknown barge-in mode %q", mode)
	}
	t := [4]Params{
		{MarginDB: 18, GateDB: -30, EchoDB: 6, K: 15, W: 20, H: 10},
		{MarginDB: 15, GateDB: -35, EchoDB: 8, K: 10, W: 14, H: 8},
		{MarginDB: 12, GateDB: -40, EchoDB: 9, K: 6, W: 9, H: 6},
		{MarginDB: 9, GateDB: -45, EchoDB: 12, K: 3, W: 5, H: 4},
	}[aggressiveness]
	t.Mode, t.Aggr = mode, aggressiveness
	return t, nil
}

// detector finds the onset of caller speech, once per utterance.
type detector struct {
	p       Params
	vad     *vad // mode vad: the per-frame decision; else the level against floor and margin
	floor   float64
	win     []bool
	i, n    int // next slot, speech frames in the window
	talking bool
	quiet   int
}

func newDetector(p Params) *detector {
	d := &detector{p: p, floor: -70, win: make([]bool, max(p.W, 1))}
	if p.Mode == ModeVAD {
		d.vad = newVAD(p.Aggr)
	}
	return d
}

// frame takes one frame, its level and the agent's recent output level
// (or -inf when it is not playing) and reports whether an utterance
// starts or, after the hangover, ends.
func (d *detector) frame(pcm []int16, level, ref float64) (start, stop bool) {
	level = max(level, -90) // digital silence must not drag the floor to -Inf
	var speech bool
	if d.vad != nil {
		// The VAD tells speech from noise; the gate and the echo guard
		// still apply (the agent's echo is speech too).
		speech = d.vad.speech(pcm) && level > max(d.p.GateDB, ref-d.p.EchoDB)
	} else {
		speech = level > max(d.p.GateDB, d.floor+d.p.MarginDB, ref-d.p.EchoDB)
	}
	if level < d.floor {
		d.floor = 0.9*d.floor + 0.1*level
	} else if !speech {
		d.floor = 0.995*d.floor + 0.005*level
	}
	if d.win[d.i] {
		d.n--
	}
	d.win[d.i] = speech
	if speech {
		d.n++
	}
	d.i = (d.i + 1) % len(d.win)
	if d.talking {
		if speech {
			d.quiet = 0
		} else if d.quiet++; d.quiet >= d.p.H {
			d.talking = false
			return false, true
		}
		return false, false
	}
	if d.n >= d.p.K {
		d.talking, d.quiet = true, 0
		return true, false
	}
	return false, false
}

// levelDB is the RMS level of pcm in dBFS (-inf for digital silence).
func levelDB(pcm []int16) float64 {
	var sum float64
	for _, s := range pcm {
		f := float64(s)
		sum += f * f
	}
	if sum == 0 || len(pcm) == 0 {
		return math.Inf(-1)
	}
	return 10*math.Log10(sum/float64(len(pcm))) - 10*math.Log10(32768*32768)
}
