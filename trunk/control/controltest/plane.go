package controltest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
)

// Plane is an in-memory control.Plane. Its call operations are Calls',
// its figures Status', and ExplainMatch is Match. It records what it was
// asked in Events ("prepare t1", "commit t1", "abort t1", "remove t1",
// "load 3").
type Plane struct {
	Calls  *FakeCalls // nil: Dial and Hangup answer ENOTFOUND, ListCalls nothing
	Status FakeStatus
	Match  func(source, listener, requestURI string) (trunk.Match, error) // nil: no trunk matches

	// OnPrepare, when set, runs at the start of every Prepare; an error
	// refuses it, as a trunk the SIP stack cannot run is refused.
	OnPrepare func(ctx context.Context, t *trunk.Trunk) error

	mu     sync.Mutex
	events []string
}

// Events returns what the plane was asked, in order.
func (p *Plane) Events() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.events...)
}

func (p *Plane) record(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, fmt.Sprintf(format, args...))
}

// Prepare records "prepare <id>" and returns a change that records its
// commit or abort.
func (p *Plane) Prepare(ctx context.Context, t *trunk.Trunk) (control.Change, error) {
	p.record("prepare %s", t.TrunkID)
	if p.OnPrepare != nil {
		if err := p.OnPrepare(ctx, t); err != nil {
			return nil, err
		}
	}
	return change{p, t.TrunkID}, nil
}

type change struct {
	p  *Plane
	id string
}

func (c change) Commit() { c.p.record("commit %s", c.id) }
func (c change) Abort()  { c.p.record("abort %s", c.id) }

// Remove records "remove <id>".
func (p *Plane) Remove(id string) { p.record("remove %s", id) }

// LoadAll records "load <n>".
func (p *Plane) LoadAll(ctx context.Context, ts []*trunk.Trunk) { p.record("load %d", len(ts)) }

// TrunkStatus returns Status' figures for id.
func (p *Plane) TrunkStatus(id string) trunk.Status { return p.Status.TrunkStatus(id) }

// Explain returns Match's answer.
func (p *Plane) Explain(source, listener, requestURI string) (trunk.Match, error) {
	if p.Match == nil {
		return trunk.Match{Reason: "no trunk matches"}, nil
	}
	return p.Match(source, listener, requestURI)
}

// Dial is Calls.Dial.
func (p *Plane) Dial(ctx context.Context, r trunk.DialRequest) (trunk.DialResult, error) {
	if p.Calls == nil {
		return trunk.DialResult{}, trunk.Errorf(trunk.ENOTFOUND, "no trunk %q", r.TrunkID)
	}
	return p.Calls.Dial(ctx, r)
}

// Hangup is Calls.Hangup.
func (p *Plane) Hangup(ctx context.Context, callID string) error {
	if p.Calls == nil {
		return trunk.Errorf(trunk.ENOCALL, "no call %q in flight", callID)
	}
	return p.Calls.Hangup(ctx, callID)
}

// ListCalls is Calls.ListCalls.
func (p *Plane) ListCalls(trunkID string) []trunk.Call {
	if p.Calls == nil {
		return nil
	}
	return p.Calls.ListCalls(trunkID)
}

// FakeStatus holds live figures by trunk id; any other trunk is off.
type FakeStatus map[string]trunk.Status

// TrunkStatus returns id's figures, or SIP state off.
func (s FakeStatus) TrunkStatus(id string) trunk.Status {
	if st, ok := s[id]; ok {
		return st
	}
	return trunk.Status{SIP: trunk.SIPStatus{State: trunk.SIPOff, RegistrationState: trunk.RegOff}}
}

// Trunk states for NewFakeCalls.
const (
	TrunkOK      = "ok"      // places calls
	TrunkTripped = "tripped" // its circuit breaker is open
	TrunkFull    = "full"    // at its channel limit
)

// FakeCalls is an in-memory call side of a SIP plane. Trunks answer by
// their state (TrunkOK, TrunkTripped, TrunkFull); any other trunk is
// unknown. A placed call's outcome follows the number dialled: "486" is
// busy, "0" gets no response, "slow" answers after SlowAnswer unless ctx
// ends first, anything else answers at once.
type FakeCalls struct {
	Now        func() time.Time // the clock of a call's start; nil for time.Now
	From       string           // the caller of a Dial without from
	SlowAnswer time.Duration    // how long "slow" rings

	mu       sync.Mutex
	trunks   map[string]string
	calls    map[string]trunk.Call
	n        int
	dialled  map[string]trunk.DialRequest // by call_id
	last     trunk.DialRequest
	deadline time.Duration
}

// NewFakeCalls returns a FakeCalls over trunks (id -> state) with calls in
// flight from the start.
func NewFakeCalls(trunks map[string]string, inFlight ...trunk.Call) *FakeCalls {
	f := &FakeCalls{trunks: trunks, calls: map[string]trunk.Call{}, dialled: map[string]trunk.DialRequest{},
		SlowAnswer: 1500 * time.Millisecond}
	for _, c := range inFlight {
		f.calls[c.CallID] = c
	}
	return f
}

// AddCall puts c in flight.
func (f *FakeCalls) AddCall(c trunk.Call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[c.CallID] = c
}

// Last returns the last Dial's request, and how long its ctx had until
// its deadline (0 without one).
func (f *FakeCalls) Last() (trunk.DialRequest, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last, f.deadline
}

// Placed returns how many calls Dial placed (answered or not).
func (f *FakeCalls) Placed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// Dialled returns the request of the call placed as callID.
func (f *FakeCalls) Dialled(callID string) trunk.DialRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dialled[callID]
}

func (f *FakeCalls) now() time.Time {
	if f.Now == nil {
		return time.Now()
	}
	return f.Now()
}

// Dial places a call as described on FakeCalls.
func (f *FakeCalls) Dial(ctx context.Context, r trunk.DialRequest) (trunk.DialResult, error) {
	f.mu.Lock()
	f.last = r
	f.deadline = 0
	if d, ok := ctx.Deadline(); ok {
		f.deadline = time.Until(d)
	}
	state := f.trunks[r.TrunkID]
	f.mu.Unlock()
	switch state {
	case TrunkOK:
	case TrunkTripped:
		return trunk.DialResult{}, trunk.Errorf(trunk.ECIRCUITOPEN, "trunk %q: circuit breaker is open", r.TrunkID)
	case TrunkFull:
		return trunk.DialResult{}, trunk.Errorf(trunk.ECHANNELLIMIT, "trunk %q has 1 calls in flight (channel_limit)", r.TrunkID)
	default:
		return trunk.DialResult{}, trunk.Errorf(trunk.ENOTFOUND, "no trunk %q", r.TrunkID)
	}
	if r.To == "slow" {
		select {
		case <-time.After(f.SlowAnswer):
		case <-ctx.Done():
			return trunk.DialResult{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	id := fmt.Sprintf("call-%d", f.n)
	f.dialled[id] = r
	switch r.To {
	case "486":
		return trunk.DialResult{CallID: id, SIPCode: 486, Reason: "Busy Here", Setup: 120 * time.Millisecond}, nil
	case "0":
		return trunk.DialResult{CallID: id, Reason: "no response from the carrier within timeout", Setup: r.Timeout}, nil
	}
	from := r.From
	if from == "" {
		from = f.From
	}
	f.calls[id] = trunk.Call{CallID: id, TrunkID: r.TrunkID, Direction: trunk.Outbound, From: from, To: r.To, State: trunk.CallAnswered, Start: f.now()}
	return trunk.DialResult{CallID: id, Answered: true, SIPCode: 200, Reason: "OK", Setup: 2345 * time.Millisecond}, nil
}

// Hangup ends a call in flight, or returns ENOCALL.
func (f *FakeCalls) Hangup(ctx context.Context, callID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.calls[callID]; !ok {
		return trunk.Errorf(trunk.ENOCALL, "no call %q in flight", callID)
	}
	delete(f.calls, callID)
	return nil
}

// ListCalls returns the calls in flight in map order: callers sort.
func (f *FakeCalls) ListCalls(trunkID string) []trunk.Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []trunk.Call
	for _, c := range f.calls {
		if trunkID == "" || c.TrunkID == trunkID {
			out = append(out, c)
		}
	}
	return out
}
