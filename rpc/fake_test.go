package rpc

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/trunkd/trunkd/rpc/api"
	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
	"github.com/trunkd/trunkd/trunk/control/controltest"
)

// testHandler is a handler over a real control.Service, so requests are
// validated as in production, with an in-memory store and a fake SIP
// plane that tests look into.
type testHandler struct {
	*handler
	store *controltest.MemStore
	calls *controltest.FakeCalls
}

func newTestHandler() *testHandler { return newTestHandlerWith(nil, true) }

// newTestHandlerWith logs to log (nil for nowhere) and, without withPlane,
// has no SIP plane.
func newTestHandlerWith(log *slog.Logger, withPlane bool) *testHandler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	store := controltest.NewMemStore()
	store.Now = func() time.Time { return time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC) } // golden envelopes
	calls := newFakeCalls()
	var plane control.Plane
	if withPlane {
		plane = newFakePlane(calls)
	}
	svc := control.New(store, plane)
	if err := svc.UseAgents(context.Background(), controltest.NewMemAgents(), &controltest.AgentPlane{Host: "sip.example.com"}); err != nil {
		panic(err)
	}
	h := &handler{api: api.NewHandler(svc, scopeAuth{}, log), log: log}
	return &testHandler{handler: h, store: store, calls: calls}
}

// newFakePlane is the SIP plane of this package's tests: calls, live
// figures for carrier-1, and sourceMatch.
func newFakePlane(calls *controltest.FakeCalls) *controltest.Plane {
	return &controltest.Plane{Calls: calls, Status: fakeStatus, Match: sourceMatch}
}

// scopeAuth is a fake Authorizer: the token is the space-separated list of
// scopes it grants, or "bad" for an invalid one; "org=X" and "orgs=X,Y"
// stand for those claims.
type scopeAuth struct{}

func (scopeAuth) Authenticate(token, scope string) (auth.Principal, error) {
	if token == "" || token == "bad" {
		return auth.Principal{}, &auth.Error{Kind: auth.ErrUnauthenticated, Message: "invalid token"}
	}
	granted := strings.Fields(token)
	var p auth.Principal
	for _, g := range granted {
		if v, ok := strings.CutPrefix(g, "org="); ok {
			p.Org = v
		}
		if v, ok := strings.CutPrefix(g, "orgs="); ok {
			p.Orgs = strings.Split(v, ",")
		}
	}
	p.Admin = slices.Contains(granted, auth.ScopeAdmin)
	if slices.Contains(granted, scope) || slices.Contains(granted, ScopeManage) || p.Admin {
		return p, nil
	}
	return auth.Principal{}, &auth.Error{Kind: auth.ErrPermissionDenied, Message: "token lacks scope " + scope}
}

// fakeNow is the fake's clock: 2027-01-15T08:00:00Z.
var fakeNow = time.UnixMilli(1_800_000_000_000).UTC()

// newFakeCalls places calls through carrier-1; carrier-2 has its breaker
// open, full is at its channel limit, any other trunk is unknown. in-1 is
// ringing on carrier-1 from the start; a call without from is from acme.
func newFakeCalls() *controltest.FakeCalls {
	f := controltest.NewFakeCalls(
		map[string]string{"carrier-1": controltest.TrunkOK, "carrier-2": controltest.TrunkTripped, "full": controltest.TrunkFull},
		trunk.Call{CallID: "in-1", TrunkID: "carrier-1", Direction: trunk.Inbound,
			From: "+15550001111", To: "+15552223333", State: trunk.CallRinging, Start: fakeNow.Add(-5 * time.Second)})
	f.Now = func() time.Time { return fakeNow }
	f.From = "acme"
	return f
}

// fakeStatus reports live figures for carrier-1 and nothing for others.
var fakeStatus = controltest.FakeStatus{"carrier-1": {
	Quality: trunk.Quality{Attempted: 16, Answered: 10, ASR: 62.5, ACD: 94.6, MOS: 4.21, PDDms: 1830.5},
	Breaker: trunk.BreakerClosed,
	SIP:     trunk.SIPStatus{State: trunk.SIPActive, RegistrationState: trunk.RegOff, ActiveCalls: 2},
}}

// sourceMatch matches a call to a trunk named after its source address.
func sourceMatch(src, listener, ruri string) (trunk.Match, error) {
	if src == "" {
		return trunk.Match{}, trunk.FieldErrorf("source_ip", "required")
	}
	return trunk.Match{Matched: true, TrunkID: "from-" + src, Reason: "source " + src + " on " + listener}, nil
}
