package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a bridge. Zero values take the defaults shown.
type Options struct {
	Bargein Params // the trunk's barge-in; the zero value is mode off
	Log     *slog.Logger
	UpQueue int    // caller frames queued for a slow agent before the oldest is dropped; 50 (1 s)
	Stats   *Stats // counters, shared by many calls; nil keeps none
	// StopTimeout bounds sending stop to the agent when the caller hangs up; 1 s.
	StopTimeout time.Duration
	// Denoise, if set, cleans each 20 ms caller frame before barge-in
	// detection and the agent (enable_noise_cancellation). Run closes it
	// once the uplink has stopped using it.
	Denoise Denoiser
}

// Denoiser cleans caller audio in place, one 20 ms frame at a time.
type Denoiser interface {
	Process(pcm []int16)
	Close()
}

// Stats are a bridge's counters and latency observations.
type Stats struct {
	UpFrames      atomic.Int64 // caller frames sent to agents
	UpDropped     atomic.Int64 // caller frames dropped for slow agents
	DownFrames    atomic.Int64 // agent frames played
	DownDropped   atomic.Int64 // agent samples dropped past MaxQueue
	Bargeins      atomic.Int64
	MarksPlayed   atomic.Int64
	MarksCleared  atomic.Int64
	IgnoredEvents atomic.Int64 // agent messages not acted on (DTMF to the caller, unknown)

	// Uplink, if set, gets each caller frame's time from RTP read to
	// handed to the transport; Downlink the time from agent audio arriving
	// at an idle queue to its first frame written.
	Uplink   func(time.Duration)
	Downlink func(time.Duration)
}

// End says why a bridged call ended.
type End struct {
	ByCaller bool   // the caller hung up (or its media closed)
	Reason   string // for the log and the BYE's Reason header
}

// Reasons a bridge ends.
var (
	errCaller     = errors.New("caller hung up")
	errHangup     = errors.New("agent hung up")
	errMediaWrite = errors.New("caller media closed")
)

// run is one bridged call.
type run struct {
	ph     Phone
	ag     Agent
	o      Options
	st     *Stats
	q      playout
	out    outq
	cancel context.CancelCauseFunc

	ref       atomic.Uint64 // float64 bits: the agent's recent output level, dBFS
	lastVoice atomic.Int64  // unix ns of the last non-silent frame played
	discard   atomic.Int64  // unix ns until which agent audio is dropped after a barge-in
	lastAudio atomic.Int64  // unix ns of the agent's last audio while discarding
	idleAt    atomic.Int64  // unix ns agent audio reached an idle queue; 0 = none pending
	wake      chan struct{} // agent audio reached an idle queue: the self-paced player may send at once
	digits    chan byte     // DTMF events from the agent for the caller
}

func (r *run) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run bridges ph and ag until the caller hangs up (ctx ends or the
// phone's media closes) or the agent ends the call. The agent has been
// told Begin. On a caller hang-up the agent gets stop and a normal close;
// otherwise the caller is to be hung up by the caller of Run.
func Run(ctx context.Context, ph Phone, ag Agent, o Options) End {
	if o.UpQueue <= 0 {
		o.UpQueue = 50
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Bargein.Mode == "" {
		o.Bargein.Mode = ModeOff
	}
	st := o.Stats
	if st == nil {
		st = &Stats{}
	}
	if ph.EventPT == 0 {
		ph.EventPT = 101
	}
	rctx, cancel := context.WithCancelCause(ctx)
	r := &run{ph: ph, ag: ag, o: o, st: st, cancel: cancel, wake: make(chan struct{}, 1), digits: make(chan byte, 16)}
	r.out.init(o.UpQueue)
	r.ref.Store(math.Float64bits(math.Inf(-1)))
	var wg sync.WaitGroup
	go r.uplink(rctx) // ends when the media closes, which the caller of Run does
	wg.Go(func() { r.sender(rctx) })
	wg.Go(func() { r.receiver(rctx) })
	wg.Go(func() { r.player(rctx) })
	<-rctx.Done()
	cause := context.Cause(rctx)
	byCaller := ctx.Err() != nil || errors.Is(cause, errCaller) || errors.Is(cause, errMediaWrite)
	if byCaller {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), o.StopTimeout)
		_ = ag.Send(sctx, Out{Kind: OutStop})
		scancel()
		_ = ag.Close(true, "caller hung up")
	} else {
		_ = ag.Close(errors.Is(cause, errHangup), cause.Error())
	}
	wg.Wait()
	if byCaller {
		return End{ByCaller: true, Reason: "caller hung up"}
	}
	return End{Reason: cause.Error()}
}

// uplink reads the caller's RTP until the media closes.
func (r *run) uplink(ctx context.Context) {
	if r.o.Denoise != nil {
		defer r.o.Denoise.Close()
	}
	defer func() {
		if p := recover(); p != nil {
			r.cancel(fmt.Errorf("%w: uplink panic: %v", errCaller, p))
		}
	}()
	law := PCMU
	if r.ph.Law == PCMA {
		law = PCMA
	}
	var (
		pcm      = make([]int16, 0, 4*FrameSamples)
		ts0      uint32
		startTS  uint32 // RTP timestamp of pcm[0]
		lastSeq  uint16
		started  bool
		lastDTMF uint32
		sawDTMF  bool
		det      = newDetector(r.o.Bargein)
	)
	for {
		p, err := r.ph.Read()
		if err != nil {
			r.cancel(fmt.Errorf("%w: %v", errCaller, err))
			return
		}
		now := time.Now()
		if r.ph.Tap != nil {
			r.ph.Tap(p, now)
		}
		if started && int16(p.Seq-lastSeq) <= 0 {
			continue // late or duplicate: the agent needs order, not every packet
		}
		if !started {
			ts0, started = p.TS, true
		}
		lastSeq = p.Seq
		switch {
		case p.PT == r.ph.EventPT:
			if d, ok := dtmfDigit(p.Payload); ok && (!sawDTMF || p.TS != lastDTMF) {
				lastDTMF, sawDTMF = p.TS, true
				r.out.ctrl(Out{Kind: OutDTMF, Digit: d})
			}
			continue
		case p.PT != uint8(law):
			continue // comfort noise or a codec we did not negotiate
		}
		if len(pcm) == 0 {
			startTS = p.TS
		}
		pcm = Decode(law, pcm, p.Payload)
		for len(pcm) >= FrameSamples {
			f := make([]int16, FrameSamples)
			copy(f, pcm)
			pcm = append(pcm[:0], pcm[FrameSamples:]...)
			if r.o.Denoise != nil {
				r.o.Denoise.Process(f)
			}
			r.detect(det, f, now)
			ms := int64(startTS-ts0) / (Rate / 1000)
			startTS += FrameSamples
			if r.out.audio(Out{Kind: OutAudio, Audio: f, TimeMS: ms, at: now}) {
				r.st.UpDropped.Add(1)
			}
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// detect runs barge-in on one caller frame.
func (r *run) detect(det *detector, f []int16, now time.Time) {
	mode := r.o.Bargein.Mode
	if mode == ModeOff {
		return
	}
	ref := math.Inf(-1)
	active := r.q.busy() || now.UnixNano()-r.lastVoice.Load() < int64(300*time.Millisecond)
	if active {
		ref = math.Float64frombits(r.ref.Load())
	}
	start, stop := det.frame(f, levelDB(f), ref)
	switch {
	case mode == ModeSemantic && (start || stop):
		r.out.ctrl(Out{Kind: OutSpeech, Speaking: start})
	case (mode == ModeEnergy || mode == ModeVAD) && start && active:
		r.bargein(now)
	}
}

// bargein cuts the agent's playback: the queue is emptied at once (the
// player writes silence from its next tick), the agent is told, and its
// audio still arriving for the interrupted answer is dropped until it
// sends clear or a mark, pauses 300 ms, or 2 s pass.
func (r *run) bargein(now time.Time) {
	cleared := r.q.clear()
	r.st.Bargeins.Add(1)
	r.discard.Store(now.Add(2 * time.Second).UnixNano())
	r.lastAudio.Store(now.UnixNano())
	played := r.q.playedMS()
	r.out.ctrl(Out{Kind: OutBargein, Bargein: BargeinInfo{Mode: r.o.Bargein.Mode, PlayedMS: played, AtMS: played}})
	r.reportMarks(cleared)
}

func (r *run) reportMarks(l []MarkDone) {
	for _, m := range l {
		if m.Cleared {
			r.st.MarksCleared.Add(1)
		} else {
			r.st.MarksPlayed.Add(1)
		}
		r.out.ctrl(Out{Kind: OutMark, Mark: m})
	}
}

// sender hands queued messages to the agent, control first.
func (r *run) sender(ctx context.Context) {
	for {
		m, ok := r.out.pop(ctx)
		if !ok {
			return
		}
		if err := r.ag.Send(ctx, m); err != nil {
			r.cancel(fmt.Errorf("agent write failed: %w", err))
			return
		}
		if m.Kind == OutAudio {
			r.st.UpFrames.Add(1)
			if r.st.Uplink != nil {
				r.st.Uplink(time.Since(m.at))
			}
		}
	}
}

// receiver carries out what the agent sends.
func (r *run) receiver(ctx context.Context) {
	for {
		m, err := r.ag.Recv(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.cancel(fmt.Errorf("agent connection ended: %w", err))
			}
			return
		}
		now := time.Now().UnixNano()
		switch m.Kind {
		case InAudio:
			if d := r.discard.Load(); d != 0 {
				if now < d && now-r.lastAudio.Load() < int64(300*time.Millisecond) {
					r.lastAudio.Store(now)
					continue
				}
				r.discard.Store(0)
			}
			idle := !r.q.busy()
			if idle {
				r.idleAt.CompareAndSwap(0, now)
			}
			if n := r.q.push(m.Audio); n > 0 {
				r.st.DownDropped.Add(int64(n))
			}
			if idle {
				r.signal()
			}
		case InMark:
			r.discard.Store(0)
			if d, now := r.q.mark(m.Name); now {
				r.reportMarks([]MarkDone{d})
			}
		case InClear:
			r.discard.Store(0)
			r.reportMarks(r.q.clear())
		case InHangup:
			r.cancel(errHangup)
			return
		case InDTMF:
			r.queueDigit(m.Digit)
		default:
			r.st.IgnoredEvents.Add(1)
		}
	}
}

// player sends one frame per 20 ms until the call ends: the agent's
// audio, or silence when the queue is empty.
func (r *run) player(ctx context.Context) {
	p := newPlayState()
	if r.ph.Send == nil {
		for ctx.Err() == nil {
			if !r.playOne(p, r.ph.Write) {
				return
			}
		}
		return
	}
	r.selfPaced(ctx, p)
}

// playState is the player's own state.
type playState struct {
	frame  []int16
	enc    []byte
	levels [16]float64 // the last 320 ms of output, for the echo guard
	i      int
	silent bool // the last frame sent was silence
}

func newPlayState() *playState {
	p := &playState{frame: make([]int16, FrameSamples), enc: make([]byte, 0, FrameSamples), silent: true}
	for i := range p.levels {
		p.levels[i] = math.Inf(-1)
	}
	return p
}

// selfPaced paces the frames itself and sends each with Phone.Send. When
// the agent's audio reaches an idle queue during silence, its first frame
// goes out at once instead of at the next tick, and the schedule moves
// to that moment: the stream's timestamps then run ahead of the wall
// clock by at most one frame, given back by delaying one silence frame
// once the agent is quiet again, so the far end's buffer does not creep.
func (r *run) selfPaced(ctx context.Context, p *playState) {
	due := time.Now()
	var ahead time.Duration
	var dtmf dtmfState
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			case <-r.wake:
				timer.Stop()
				if !p.silent || !r.q.busy() {
					continue
				}
				ahead += time.Until(due) // send now: this much ahead of the clock
				due = time.Now()
			}
		}
		if ctx.Err() != nil {
			return
		}
		if ahead > 0 && p.silent && !r.q.busy() {
			due, ahead = due.Add(ahead), 0 // silence again: give the advance back
			continue
		}
		sent, err := r.playDTMF(&dtmf)
		if err != nil {
			r.cancel(fmt.Errorf("%w: %v", errMediaWrite, err))
			return
		}
		if !sent && !r.playOne(p, r.ph.Send) {
			return
		}
		due = due.Add(FrameTime)
		if time.Until(due) < -5*FrameTime {
			due = time.Now() // stalled (a GC, a descheduled thread): resume from now
		}
	}
}

// playOne takes the next frame (or silence), sends it with send and
// reports the marks it completes; false when the phone's media is gone.
func (r *run) playOne(p *playState, send func([]byte) error) bool {
	done, ok := r.q.next(p.frame)
	lvl := math.Inf(-1)
	if ok {
		lvl = levelDB(p.frame)
		if !math.IsInf(lvl, -1) {
			r.lastVoice.Store(time.Now().UnixNano())
		}
	}
	p.levels[p.i%len(p.levels)] = lvl
	p.i++
	r.ref.Store(math.Float64bits(maxOf(p.levels[:])))
	p.enc = Encode(r.ph.Law, p.enc[:0], p.frame)
	if at := r.idleAt.Swap(0); at != 0 && r.st.Downlink != nil && ok {
		r.st.Downlink(time.Duration(time.Now().UnixNano() - at))
	}
	if err := send(p.enc); err != nil {
		r.cancel(fmt.Errorf("%w: %v", errMediaWrite, err))
		return false
	}
	p.silent = !ok
	if ok {
		r.st.DownFrames.Add(1)
	}
	r.reportMarks(done)
	return true
}

func maxOf(l []float64) float64 {
	m := math.Inf(-1)
	for _, v := range l {
		m = max(m, v)
	}
	return m
}

// queueDigit queues one DTMF key from the agent for the caller; a key
// that is not one, a phone that cannot send events or a full queue
// counts as ignored.
func (r *run) queueDigit(d string) {
	i := -1
	if len(d) == 1 {
		i = strings.IndexByte("0123456789*#ABCD", d[0])
	}
	if i < 0 || r.ph.Event == nil || r.ph.Send == nil {
		r.st.IgnoredEvents.Add(1)
		return
	}
	select {
	case r.digits <- byte(i):
	default:
		r.st.IgnoredEvents.Add(1)
	}
}

// A DTMF key to the caller lasts dtmfTicks frames, then its end packet
// goes out three times (RFC 4733 2.5.1.4), in one more tick.
const dtmfTicks = 5

// dtmfState is the key being sent, if any.
type dtmfState struct {
	on    bool
	event byte
	tick  int
}

// playDTMF sends the next packet of the key in progress (starting one if
// queued) in place of an audio frame, and reports whether it did.
func (r *run) playDTMF(d *dtmfState) (bool, error) {
	if !d.on {
		select {
		case e := <-r.digits:
			*d = dtmfState{on: true, event: e}
		default:
			return false, nil
		}
	}
	d.tick++
	dur := uint16(d.tick * FrameSamples)
	pay := []byte{d.event, 10, byte(dur >> 8), byte(dur)}
	if d.tick <= dtmfTicks {
		return true, r.ph.Event(pay, 0, d.tick == 1)
	}
	pay[1] |= 0x80 // end
	for i := range 3 {
		adv := uint32(0)
		if i == 2 {
			adv = uint32(d.tick * FrameSamples) // the audio resumes after the event's span
		}
		if err := r.ph.Event(pay, adv, false); err != nil {
			return true, err
		}
	}
	d.on = false
	return true, nil
}

// dtmfDigit reads an RFC 4733 event payload.
func dtmfDigit(p []byte) (string, bool) {
	if len(p) < 4 || p[0] > 15 {
		return "", false
	}
	return string("0123456789*#ABCD"[p[0]]), true
}
