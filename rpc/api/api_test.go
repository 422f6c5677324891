package api

import (
	"testing"

	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/trunk"
)

// TestWireErrorCodes checks the mapping of every domain code to its wire
// code, with the message kept.
func TestWireErrorCodes(t *testing.T) {
	tests := []struct {
		code trunk.Code
		want string
	}{
		{trunk.EINVALID, CodeInvalidArgument},
		{trunk.EEXISTS, CodeTrunkExists},
		{trunk.ENOTFOUND, CodeInvalidTrunk},
		{trunk.ECONFLICT, CodeConflict},
		{trunk.EMANAGED, CodeManagedTrunk},
		{trunk.EUNAVAILABLE, CodeUnavailable},
		{trunk.ECHANNELLIMIT, CodeChannelLimit},
		{trunk.ECIRCUITOPEN, CodeCircuitOpen},
		{trunk.ENOCALL, CodeUnknownCall},
		{trunk.EINTERNAL, CodeInternal},
	}
	for _, tt := range tests {
		e, internal := WireError(trunk.Errorf(tt.code, "details"))
		if e.Code != tt.want || internal != (tt.want == CodeInternal) {
			t.Errorf("WireError(%s) = %s, internal %v; want %s", tt.code, e.Code, internal, tt.want)
		}
		if tt.want != CodeInternal && e.Message != "details" {
			t.Errorf("WireError(%s) message = %q; want %q", tt.code, e.Message, "details")
		}
	}
	for kind, want := range map[error]string{auth.ErrUnauthenticated: CodeUnauthenticated, auth.ErrPermissionDenied: CodePermissionDenied} {
		e, internal := WireError(&auth.Error{Kind: kind, Message: "details"})
		if e.Code != want || internal || e.Message != "details" {
			t.Errorf("WireError(auth %v) = %+v, internal %v; want %s with the message", kind, e, internal, want)
		}
	}
}

func TestTrunkConfigLiveFigures(t *testing.T) {
	tr := trunk.Defaults()
	tr.TrunkID = "carrier-1"
	tr.DisplayName = "Acme Carrier"
	tr.Domain = "sip.example.com"
	tr.ChannelLimit = 30
	st := trunk.Status{
		Quality: trunk.Quality{Attempted: 40, Answered: 9, ASR: 22.5, ACD: 61.5, MOS: 3.9, PDDms: 2500.25},
		Breaker: trunk.BreakerHalfOpen,
		SIP:     trunk.SIPStatus{State: trunk.SIPActive, RegistrationState: trunk.RegRegistered, ActiveCalls: 3},
	}
	got := NewTrunkConfig(&tr, st)
	want := TrunkConfig{
		TrunkID: "carrier-1", ChannelLimit: 30, DisplayName: "Acme Carrier", Domain: "sip.example.com",
		IsCBTripped: true, CurrentASR: 22.5, CurrentACD: 62, CurrentMOS: 3.9,
		CallsAttempted: 40, CallsAnswered: 9, CurrentPDDms: 2500.25, BreakerState: "half-open",
		SIPState: "active", RegistrationState: "registered", ActiveCalls: 3,
		OrganizationID: "default",
	}
	if got != want {
		t.Errorf("NewTrunkConfig() = %+v; want %+v", got, want)
	}
	if got := NewTrunkConfig(&tr, trunk.Status{}); got.BreakerState != "" || got.CallsAttempted != 0 {
		t.Errorf("NewTrunkConfig(zero status) = %+v; want no breaker state and zero counts", got)
	}
}
