package bridge

import (
	"math"
	"slices"
	"testing"
	"time"
)

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestUplinkRechunksAndOrders(t *testing.T) {
	f := newFakePhone()
	f.quiet = true
	a := newChanAgent()
	ctx := Options{}
	// 30 ms packets (as sipp's pcap sends), one late duplicate, DTMF.
	sig := tone(440, -12, 240*4)
	for i := range 4 {
		seq := uint16(i + 1)
		if i == 3 {
			seq = 5 // after the DTMF packet
		}
		f.extra <- Packet{PT: 0, Seq: seq, TS: uint32(240 * i), Payload: Encode(PCMU, nil, sig[240*i:240*(i+1)])}
		if i == 2 {
			f.extra <- Packet{PT: 0, Seq: 2, TS: 240, Payload: Encode(PCMU, nil, sig[240:480])} // late: dropped
			f.extra <- Packet{PT: 101, Seq: 4, TS: 720, Payload: []byte{11, 0x0a, 0, 160}}      // '#'
		}
	}
	// stop the fake's own packets from interleaving: no writes feed pkts
	// before the extra ones are read, so drain order is extra first.
	stop := startRun(t, f, a, ctx)
	var audio []Out
	var dtmf []Out
	waitUntil(t, "the frames", func() bool {
		for {
			select {
			case m := <-a.out:
				switch m.Kind {
				case OutAudio:
					audio = append(audio, m)
				case OutDTMF:
					dtmf = append(dtmf, m)
				}
				continue
			default:
			}
			break
		}
		return len(audio) >= 6
	})
	stop()
	var got []int16
	for i, m := range audio[:6] {
		if len(m.Audio) != FrameSamples || m.TimeMS != int64(20*i) {
			t.Fatalf("frame %d: %d samples at %d ms; want %d at %d ms", i, len(m.Audio), m.TimeMS, FrameSamples, 20*i)
		}
		got = append(got, m.Audio...)
	}
	want := Decode(PCMU, nil, Encode(PCMU, nil, sig))
	if !slices.Equal(got, want[:6*FrameSamples]) {
		t.Errorf("re-chunked audio differs from the 30 ms packets it came from")
	}
	if len(dtmf) != 1 || dtmf[0].Digit != "#" {
		t.Errorf("DTMF = %+v; want one #", dtmf)
	}
}

func TestMarksPlayedClearedAndClearWithinATick(t *testing.T) {
	f := newFakePhone()
	a := newChanAgent()
	stop := startRun(t, f, a, Options{})
	defer stop()
	a.in <- In{Kind: InMark, Name: "empty"} // nothing queued: played at once
	a.in <- In{Kind: InAudio, Audio: tone(300, -12, 1600)}
	a.in <- In{Kind: InMark, Name: "first"}
	a.in <- In{Kind: InAudio, Audio: tone(300, -12, 8*3000)}
	a.in <- In{Kind: InMark, Name: "second"}
	var marks []Out
	waitUntil(t, "the first two marks", func() bool { marks = append(marks, collect(a, OutMark)...); return len(marks) >= 2 })
	time.Sleep(200 * time.Millisecond)
	before := len(f.frames())
	a.in <- In{Kind: InClear}
	waitUntil(t, "the cleared mark", func() bool { marks = append(marks, collect(a, OutMark)...); return len(marks) >= 3 })
	time.Sleep(200 * time.Millisecond)
	fs := f.frames()
	want := []MarkDone{{Name: "empty"}, {Name: "first", PlayedMS: 200}, {Name: "second", Cleared: true}}
	for i, m := range marks {
		w := want[i]
		if m.Mark.Name != w.Name || m.Mark.Cleared != w.Cleared || (w.PlayedMS != 0 && m.Mark.PlayedMS != w.PlayedMS) {
			t.Errorf("mark %d = %+v; want %+v", i, m.Mark, w)
		}
	}
	if c := marks[2].Mark.PlayedMS; c <= 200 || c >= 3200 {
		t.Errorf("cleared mark played_ms = %d; want the ms actually played (past the first mark, 200, and short of the end, 3200)", c)
	}
	// The clear was sent after frame `before`; at most the frame already
	// taken for that tick may still carry audio.
	if n := voicedFrames(fs[before:]); n > 2 {
		t.Errorf("%d voiced frames after clear; want at most 2 (the tick in progress)", n)
	}
}

func TestAudioAnyLengthPlaysInOrder(t *testing.T) {
	f := newFakePhone()
	a := newChanAgent()
	stop := startRun(t, f, a, Options{})
	sig := tone(500, -12, 1000) // 125 ms in odd chunks
	for _, n := range []int{37, 400, 1, 562} {
		a.in <- In{Kind: InAudio, Audio: sig[:n]}
		sig = sig[n:]
	}
	a.in <- In{Kind: InMark, Name: "end"}
	waitUntil(t, "the mark", func() bool { return len(collect(a, OutMark)) == 1 })
	stop()
	var got []int16
	for _, fr := range f.frames() {
		if voicedFrames([][]int16{fr}) > 0 || len(got) > 0 {
			got = append(got, fr...)
		}
	}
	want := Decode(PCMU, nil, Encode(PCMU, nil, tone(500, -12, 1000)))
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Errorf("played audio differs from the agent's chunks")
	}
	if !slices.Equal(got[len(want):len(want)+40], make([]int16, 40)) {
		t.Errorf("the last partial frame is not padded with silence")
	}
}

func TestAgentHangupEndsCall(t *testing.T) {
	f := newFakePhone()
	a := newChanAgent()
	stop := startRun(t, f, a, Options{})
	a.in <- In{Kind: InHangup}
	waitUntil(t, "the close", func() bool {
		select {
		case <-a.closed:
			return true
		default:
			return false
		}
	})
	if e := stop(); e.ByCaller || !a.normal {
		t.Errorf("End = %+v, normal close %v; want the agent's hang-up, closed normally", e, a.normal)
	}
}

func TestCallerHangupSendsStop(t *testing.T) {
	f := newFakePhone()
	a := newChanAgent()
	stop := startRun(t, f, a, Options{})
	time.Sleep(60 * time.Millisecond)
	if e := stop(); !e.ByCaller {
		t.Errorf("End = %+v; want by caller", e)
	}
	if l := collect(a, OutStop); len(l) != 1 {
		t.Errorf("stop messages = %d; want 1", len(l))
	}
}

// TestSlowAgentDropsOldest: an agent that takes nothing never blocks the
// caller's audio; the oldest frames go, counted.
func TestSlowAgentDropsOldest(t *testing.T) {
	f := newFakePhone()
	a := newChanAgent()
	a.out = make(chan Out) // never read
	st := &Stats{}
	stop := startRun(t, f, a, Options{UpQueue: 5, Stats: st})
	waitUntil(t, "drops", func() bool { return st.UpDropped.Load() >= 5 })
	stop()
	if n := len(f.frames()); n < 10 {
		t.Errorf("only %d frames written to the caller; the slow agent stalled the call", n)
	}
}

func TestParamsFor(t *testing.T) {
	for _, tc := range []struct {
		mode string
		a    int
		ok   bool
	}{{"energy", 0, true}, {"energy", 3, true}, {"semantic", 2, true}, {"off", 1, true}, {"vad", 2, true}, {"loud", 2, false}, {"energy", 4, false}} {
		_, err := ParamsFor(tc.mode, tc.a)
		if (err == nil) != tc.ok {
			t.Errorf("ParamsFor(%q, %d) = %v; want ok %v", tc.mode, tc.a, err, tc.ok)
		}
	}
	var prev Params
	for a := range 4 {
		p, _ := ParamsFor("energy", a)
		if a > 0 && (p.K >= prev.K || p.GateDB >= prev.GateDB || p.MarginDB >= prev.MarginDB) {
			t.Errorf("aggressiveness %d = %+v is not more eager than %d = %+v", a, p, a-1, prev)
		}
		prev = p
	}
}

func TestLevelDB(t *testing.T) {
	if got := levelDB(tone(1000, -20, 800)); math.Abs(got+20) > 0.2 {
		t.Errorf("levelDB(-20 dBFS tone) = %.2f", got)
	}
	if got := levelDB(make([]int16, 160)); !math.IsInf(got, -1) {
		t.Errorf("levelDB(silence) = %v; want -Inf", got)
	}
}

// TestSelfPacedStaysAligned: with Phone.Send the bridge paces itself and
// starts each of the agent's answers between ticks; over many answers the
// frames sent still match the time elapsed (the advance is given back in
// silence), so the far end's buffer does not creep.
func TestSelfPacedStaysAligned(t *testing.T) {
	f := newFakePhone()
	f.self, f.quiet = true, true
	a := newChanAgent()
	start := time.Now()
	stop := startRun(t, f, a, Options{})
	for i := range 12 {
		time.Sleep(time.Duration(57+i*13) * time.Millisecond) // odd phases
		a.in <- In{Kind: InAudio, Audio: tone(400, -20, 400)}
	}
	time.Sleep(300 * time.Millisecond)
	elapsed := time.Since(start)
	stop()
	fs := f.frames()
	want := int(elapsed / FrameTime)
	if len(fs) < want-3 || len(fs) > want+3 {
		t.Errorf("%d frames sent in %v; want %d±3 (one per 20 ms)", len(fs), elapsed, want)
	}
	if n := voicedFrames(fs); n != 12*3 {
		t.Errorf("%d voiced frames; want 36 (12 answers of 50 ms, padded to 3 frames)", n)
	}
}

// TestDTMFToCaller: a key from the agent goes to the caller as RFC 4733:
// five 20 ms packets of growing duration from one timestamp (marker on the
// first), three end packets, the last advancing the timestamp by the
// event's span; audio pauses meanwhile. A key that is not one is ignored.
func TestDTMFToCaller(t *testing.T) {
	f := newFakePhone()
	f.self, f.quiet = true, true
	a := newChanAgent()
	st := &Stats{}
	stop := startRun(t, f, a, Options{Stats: st})
	a.in <- In{Kind: InDTMF, Digit: "X"}
	a.in <- In{Kind: InDTMF, Digit: "#"}
	waitUntil(t, "the event", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.events) >= 8 })
	stop()
	f.mu.Lock()
	ev := f.events
	f.mu.Unlock()
	for i, e := range ev[:8] {
		end := i >= 5
		dur := min(i+1, 6) * 160
		var adv uint32
		if i == 7 {
			adv = 960
		}
		if e.payload[0] != 11 || (e.payload[1]&0x80 != 0) != end || int(e.payload[2])<<8|int(e.payload[3]) != dur || e.adv != adv || e.marker != (i == 0) {
			t.Errorf("packet %d = %+v; want event 11 (#), end %v, duration %d, advance %d, marker %v", i, e, end, dur, adv, i == 0)
		}
	}
	if ev[4].frame != ev[0].frame {
		t.Errorf("audio frames were sent during the key (%d then %d)", ev[0].frame, ev[4].frame)
	}
	if st.IgnoredEvents.Load() != 1 {
		t.Errorf("ignored events = %d; want 1 (the X)", st.IgnoredEvents.Load())
	}
}
