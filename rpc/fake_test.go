package rpc

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/trunk"
)

// memTrunks is an in-memory Trunks for this package's unit tests.
type memTrunks struct {
	mu sync.Mutex
	m  map[string]*trunk.Trunk
}

func newMemTrunks() *memTrunks { return &memTrunks{m: map[string]*trunk.Trunk{}} }

func (s *memTrunks) AddTrunk(ctx context.Context, t *trunk.Trunk) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[t.TrunkID]; ok {
		return trunk.Errorf(trunk.EEXISTS, "trunk %q already exists", t.TrunkID)
	}
	s.m[t.TrunkID] = t.Clone()
	return nil
}

func (s *memTrunks) UpdateTrunk(ctx context.Context, t *trunk.Trunk) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[t.TrunkID]; !ok {
		return trunk.Errorf(trunk.ENOTFOUND, "trunk %q not found", t.TrunkID)
	}
	s.m[t.TrunkID] = t.Clone()
	return nil
}

func (s *memTrunks) RemoveTrunk(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; !ok {
		return trunk.Errorf(trunk.ENOTFOUND, "trunk %q not found", id)
	}
	delete(s.m, id)
	return nil
}

func (s *memTrunks) GetTrunk(ctx context.Context, id string) (*trunk.Trunk, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[id]
	if !ok {
		return nil, trunk.Errorf(trunk.ENOTFOUND, "trunk %q not found", id)
	}
	return t.Clone(), nil
}

func (s *memTrunks) ListTrunks(ctx context.Context, after string, limit int) ([]*trunk.Trunk, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.m {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var out []*trunk.Trunk
	for _, id := range ids[:min(limit, len(ids))] {
		out = append(out, s.m[id].Clone())
	}
	return out, nil
}

// scopeAuth is a fake Authorizer: the token is the space-separated list of
// scopes it grants, or "bad" for an invalid one.
type scopeAuth struct{}

func (scopeAuth) Authorize(token, scope string) error {
	if token == "" || token == "bad" {
		return &auth.Error{Kind: auth.ErrUnauthenticated, Message: "invalid token"}
	}
	granted := strings.Fields(token)
	if slices.Contains(granted, scope) || slices.Contains(granted, ScopeManage) {
		return nil
	}
	return &auth.Error{Kind: auth.ErrPermissionDenied, Message: "token lacks scope " + scope}
}

// fakeCalls is an in-memory Calls. Trunks answer by their state: carrier-1
// places calls, carrier-2 has its breaker open, full is at its channel
// limit, any other is unknown. A placed call's outcome follows the number
// dialled: "486" is busy, "0" gets no response, anything else answers.
type fakeCalls struct {
	mu       sync.Mutex
	trunks   map[string]string // id -> "ok", "tripped", "full"
	calls    map[string]trunk.Call
	n        int
	now      time.Time
	last     trunk.DialRequest // the last Dial's request
	deadline time.Duration     // how long the last Dial's ctx had
}

// fakeNow is the fake's clock: 2027-01-15T08:00:00Z.
var fakeNow = time.UnixMilli(1_800_000_000_000).UTC()

func newFakeCalls() *fakeCalls {
	return &fakeCalls{
		trunks: map[string]string{"carrier-1": "ok", "carrier-2": "tripped", "full": "full"},
		calls: map[string]trunk.Call{"in-1": {CallID: "in-1", TrunkID: "carrier-1", Direction: trunk.Inbound,
			From: "+15550001111", To: "+15552223333", State: trunk.CallRinging, Start: fakeNow.Add(-5 * time.Second)}},
		now: fakeNow,
	}
}

func (f *fakeCalls) Dial(ctx context.Context, r trunk.DialRequest) (trunk.DialResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = r
	if d, ok := ctx.Deadline(); ok {
		f.deadline = time.Until(d)
	}
	switch f.trunks[r.TrunkID] {
	case "":
		return trunk.DialResult{}, trunk.Errorf(trunk.ENOTFOUND, "no trunk %q", r.TrunkID)
	case "tripped":
		return trunk.DialResult{}, trunk.Errorf(trunk.ECIRCUITOPEN, "trunk %q: circuit breaker is open", r.TrunkID)
	case "full":
		return trunk.DialResult{}, trunk.Errorf(trunk.ECHANNELLIMIT, "trunk %q has 1 calls in flight (channel_limit)", r.TrunkID)
	}
	f.n++
	id := fmt.Sprintf("call-%d", f.n)
	switch r.To {
	case "486":
		return trunk.DialResult{CallID: id, SIPCode: 486, Reason: "Busy Here", Setup: 120 * time.Millisecond}, nil
	case "0":
		return trunk.DialResult{CallID: id, Reason: "no response from the carrier within timeout", Setup: r.Timeout}, nil
	}
	from := r.From
	if from == "" {
		from = "acme"
	}
	f.calls[id] = trunk.Call{CallID: id, TrunkID: r.TrunkID, Direction: trunk.Outbound, From: from, To: r.To, State: trunk.CallAnswered, Start: f.now}
	return trunk.DialResult{CallID: id, Answered: true, SIPCode: 200, Reason: "OK", Setup: 2345 * time.Millisecond}, nil
}

func (f *fakeCalls) Hangup(ctx context.Context, callID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.calls[callID]; !ok {
		return trunk.Errorf(trunk.ENOCALL, "no call %q in flight", callID)
	}
	delete(f.calls, callID)
	return nil
}

// ListCalls returns the calls in map order: the handler sorts them.
func (f *fakeCalls) ListCalls(trunkID string) []trunk.Call {
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

// fakeStatus reports live figures for carrier-1 and nothing for others.
type fakeStatus struct{}

func (fakeStatus) TrunkStatus(id string) trunk.Status {
	if id != "carrier-1" {
		return trunk.Status{SIP: trunk.SIPStatus{State: trunk.SIPOff, RegistrationState: trunk.RegOff}}
	}
	return trunk.Status{
		Quality: trunk.Quality{Attempted: 16, Answered: 10, ASR: 62.5, ACD: 94.6, MOS: 4.21, PDDms: 1830.5},
		Breaker: trunk.BreakerClosed,
		SIP:     trunk.SIPStatus{State: trunk.SIPActive, RegistrationState: trunk.RegOff, ActiveCalls: 2},
	}
}
