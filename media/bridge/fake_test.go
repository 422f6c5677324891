package bridge

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// chanAgent is an in-process agent: what the bridge sends arrives on out,
// what the test puts on in goes to the bridge.
type chanAgent struct {
	in     chan In
	out    chan Out
	closed chan struct{}
	once   sync.Once
	normal bool
}

func newChanAgent() *chanAgent {
	return &chanAgent{in: make(chan In, 256), out: make(chan Out, 4096), closed: make(chan struct{})}
}

func (a *chanAgent) Begin(context.Context, Start) error { return nil }

func (a *chanAgent) Send(ctx context.Context, m Out) error {
	select {
	case a.out <- m:
		return nil
	case <-a.closed:
		return errors.New("closed")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *chanAgent) Recv(ctx context.Context) (In, error) {
	select {
	case m := <-a.in:
		return m, nil
	case <-a.closed:
		return In{}, errors.New("closed")
	}
}

func (a *chanAgent) Close(normal bool, _ string) error {
	a.once.Do(func() { a.normal = normal; close(a.closed) })
	return nil
}

// fakePhone paces like an RTP writer and makes one caller packet per tick:
// speech(i) for tick i plus, when echoDB is set, the frame written delay
// ticks earlier attenuated by echoDB.
type fakePhone struct {
	law    Law
	tick   time.Duration
	speech func(i int) []int16
	echoDB float64
	delay  int
	extra  chan Packet // packets injected by the test (DTMF)
	quiet  bool        // make no caller packets of its own
	self   bool        // offer Send: the bridge paces itself

	mu      sync.Mutex
	events  []sentEvent // telephone-event packets sent
	written [][]int16   // decoded frames written
	at      []time.Time // when each was written
	pkts    chan Packet
	seq     uint16
	ts      uint32
	done    chan struct{}
	dOnce   sync.Once
}

func newFakePhone() *fakePhone {
	return &fakePhone{law: PCMU, tick: FrameTime, delay: 5, pkts: make(chan Packet, 1024), extra: make(chan Packet, 16), done: make(chan struct{})}
}

func (f *fakePhone) phone() Phone {
	if f.self {
		return Phone{Law: f.law, Read: f.read, Send: f.send, Event: f.event}
	}
	return Phone{Law: f.law, Read: f.read, Write: f.write}
}

// sentEvent is one RFC 4733 packet the bridge sent.
type sentEvent struct {
	payload []byte
	adv     uint32
	marker  bool
	frame   int // audio frames written before it
}

func (f *fakePhone) event(p []byte, adv uint32, marker bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, sentEvent{payload: append([]byte(nil), p...), adv: adv, marker: marker, frame: len(f.written)})
	return nil
}

// write is a pacing writer: send, then wait for the tick.
func (f *fakePhone) write(b []byte) error {
	if err := f.send(b); err != nil {
		return err
	}
	time.Sleep(f.tick)
	return nil
}

func (f *fakePhone) hangup() { f.dOnce.Do(func() { close(f.done) }) }

func (f *fakePhone) read() (Packet, error) {
	select {
	case p := <-f.extra:
		return p, nil
	case p := <-f.pkts:
		return p, nil
	case <-f.done:
		return Packet{}, errors.New("media closed")
	}
}

// send records a frame and makes the caller's packet for it.
func (f *fakePhone) send(b []byte) error {
	select {
	case <-f.done:
		return errors.New("media closed")
	default:
	}
	frame := Decode(f.law, nil, b)
	f.mu.Lock()
	f.written = append(f.written, frame)
	f.at = append(f.at, time.Now())
	i := len(f.written) - 1
	caller := make([]int16, FrameSamples)
	if f.speech != nil {
		copy(caller, f.speech(i))
	}
	if f.echoDB != 0 && i >= f.delay {
		g := math.Pow(10, -f.echoDB/20)
		for k, s := range f.written[i-f.delay] {
			caller[k] = clamp(float64(caller[k]) + g*float64(s))
		}
	}
	f.seq++
	f.ts += FrameSamples
	f.mu.Unlock()
	if !f.quiet {
		f.pkts <- Packet{PT: uint8(f.law), Seq: f.seq, TS: f.ts, Payload: Encode(f.law, nil, caller)}
	}
	return nil
}

// firstVoicedAfter is when the first voiced frame after t was written,
// or zero.
func (f *fakePhone) firstVoicedAfter(t time.Time) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, at := range f.at {
		if at.After(t) && !math.IsInf(levelDB(f.written[i]), -1) {
			return at
		}
	}
	return time.Time{}
}

// firstSilentAfter is when the first silent frame after t was written,
// or zero.
func (f *fakePhone) firstSilentAfter(t time.Time) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, at := range f.at {
		if at.After(t) && math.IsInf(levelDB(f.written[i]), -1) {
			return at
		}
	}
	return time.Time{}
}

func (f *fakePhone) frames() [][]int16 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]int16(nil), f.written...)
}

func clamp(v float64) int16 {
	return int16(max(-32768, min(32767, math.Round(v))))
}

// tone is n samples of hz at dBFS (RMS).
func tone(hz, dbfs float64, n int) []int16 {
	a := 32768 * math.Sqrt2 * math.Pow(10, dbfs/20)
	s := make([]int16, n)
	for i := range s {
		s[i] = clamp(a * math.Sin(2*math.Pi*hz*float64(i)/Rate))
	}
	return s
}

// babble is speech-like noise at dBFS (RMS), syllables of 100 ms.
func babble(seed uint64, dbfs float64) func(i int) []int16 {
	r := rand.New(rand.NewPCG(seed, seed))
	a := 32768 * math.Pow(10, dbfs/20)
	return func(int) []int16 {
		s := make([]int16, FrameSamples)
		for k := range s {
			s[k] = clamp(a * r.NormFloat64())
		}
		return s
	}
}

// startRun runs a bridge in the background; stop hangs the caller up and
// waits for the end.
func startRun(t testing.TB, f *fakePhone, a *chanAgent, o Options) (stop func() End) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan End, 1)
	go func() { res <- Run(ctx, f.phone(), a, o) }()
	return func() End {
		cancel()
		f.hangup()
		select {
		case e := <-res:
			return e
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after the caller hung up")
			return End{}
		}
	}
}

// collect drains the agent's messages of a kind seen so far.
func collect(a *chanAgent, kind OutKind) []Out {
	var l []Out
	for {
		select {
		case m := <-a.out:
			if m.Kind == kind {
				l = append(l, m)
			}
		default:
			return l
		}
	}
}

func voicedFrames(fs [][]int16) int {
	n := 0
	for _, f := range fs {
		if !math.IsInf(levelDB(f), -1) {
			n++
		}
	}
	return n
}
