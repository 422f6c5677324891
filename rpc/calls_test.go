package rpc

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/trunkd/trunkd/trunk"
)

// dialBody is a Dial body for token through trunk id to number, with extra
// pairs appended.
func dialBody(token, id, to string, extra ...[]byte) []byte {
	pairs := append([][]byte{mpStr("admin_token"), mpStr(token), mpStr("trunk_id"), mpStr(id), mpStr("to"), mpStr(to)}, extra...)
	return mpMap(pairs...)
}

func hangupBody(token, callID string) []byte {
	return mpMap(mpStr("admin_token"), mpStr(token), mpStr("call_id"), mpStr(callID))
}

func listCallsBody(token, id string) []byte {
	return mpMap(mpStr("admin_token"), mpStr(token), mpStr("trunk_id"), mpStr(id))
}

func TestCallScopes(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		body     func(token string) []byte
		token    string
		wantCode string // "" for Ok
	}{
		{"dial read", "Dial", func(tok string) []byte { return dialBody(tok, "carrier-1", "100") }, ScopeRead, CodePermissionDenied},
		{"dial calls", "Dial", func(tok string) []byte { return dialBody(tok, "carrier-1", "100") }, ScopeCalls, ""},
		{"dial manage", "Dial", func(tok string) []byte { return dialBody(tok, "carrier-1", "100") }, ScopeManage, ""},
		{"dial no token", "Dial", func(tok string) []byte { return dialBody(tok, "carrier-1", "100") }, "", CodeUnauthenticated},
		{"hangup read", "Hangup", func(tok string) []byte { return hangupBody(tok, "in-1") }, ScopeRead, CodePermissionDenied},
		{"hangup calls", "Hangup", func(tok string) []byte { return hangupBody(tok, "in-1") }, ScopeCalls, ""},
		{"hangup manage", "Hangup", func(tok string) []byte { return hangupBody(tok, "in-1") }, ScopeManage, ""},
		{"list read", "ListCalls", func(tok string) []byte { return listCallsBody(tok, "") }, ScopeRead, ""},
		{"list manage", "ListCalls", func(tok string) []byte { return listCallsBody(tok, "") }, ScopeManage, ""},
		{"list calls scope alone", "ListCalls", func(tok string) []byte { return listCallsBody(tok, "") }, ScopeCalls, CodePermissionDenied},
		{"list bad token", "ListCalls", func(tok string) []byte { return listCallsBody(tok, "") }, "bad", CodeUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler()
			frame := env(tt.method, tt.body(tt.token))
			e := call(t, h, frame, nil)
			if got := codeOf(e); got != tt.wantCode {
				t.Errorf("%s with scope %q = %v; want %q", tt.method, tt.token, e, tt.wantCode)
			}
			if n, in := h.calls.Placed(), len(h.calls.ListCalls("")); tt.wantCode != "" && (n != 0 || in != 1) {
				t.Errorf("refused %s reached the SIP plane: %d dialled, %d calls in flight", tt.method, n, in)
			}
		})
	}
}

func codeOf(e *Error) string {
	if e == nil {
		return ""
	}
	return e.Code
}

func TestCallErrors(t *testing.T) {
	tests := []errorCase{
		{"circuit open", env("Dial", dialBody(ScopeCalls, "carrier-2", "100")), CodeCircuitOpen, ""},
		{"channel limit", env("Dial", dialBody(ScopeCalls, "full", "100")), CodeChannelLimit, ""},
		{"unknown trunk", env("Dial", dialBody(ScopeCalls, "nope", "100")), CodeInvalidTrunk, ""},
		{"hangup unknown call", env("Hangup", hangupBody(ScopeCalls, "call-99")), CodeUnknownCall, ""},

		{"no trunk_id", env("Dial", mpMap(mpStr("admin_token"), mpStr(ScopeCalls), mpStr("to"), mpStr("100"))), CodeInvalidArgument, "trunk_id"},
		{"bad trunk_id", env("Dial", dialBody(ScopeCalls, "a b", "100")), CodeInvalidArgument, "trunk_id"},
		{"no to", env("Dial", mpMap(mpStr("admin_token"), mpStr(ScopeCalls), mpStr("trunk_id"), mpStr("carrier-1"))), CodeInvalidArgument, "to"},
		{"empty to", env("Dial", dialBody(ScopeCalls, "carrier-1", "")), CodeInvalidArgument, "to"},
		{"to with CRLF", env("Dial", dialBody(ScopeCalls, "carrier-1", "100\r\nX-Evil: 1")), CodeInvalidArgument, "to"},
		{"to too long", env("Dial", dialBody(ScopeCalls, "carrier-1", strings.Repeat("1", 257))), CodeInvalidArgument, "to"},
		{"from invalid UTF-8", env("Dial", dialBody(ScopeCalls, "carrier-1", "100", mpStr("from"), mpStr("\xff"))), CodeInvalidArgument, "from"},
		{"timeout above max", env("Dial", dialBody(ScopeCalls, "carrier-1", "100", mpStr("timeout_sec"), mpU16(301))), CodeInvalidArgument, "timeout_sec"},
		{"timeout negative", env("Dial", dialBody(ScopeCalls, "carrier-1", "100", mpStr("timeout_sec"), mpNegFix(-1))), CodeInvalidArgument, "timeout_sec"},
		{"timeout as string", env("Dial", dialBody(ScopeCalls, "carrier-1", "100", mpStr("timeout_sec"), mpStr("30"))), CodeInvalidArgument, "timeout_sec"},
		{"max duration as float", env("Dial", dialBody(ScopeCalls, "carrier-1", "100", mpStr("max_duration_sec"), mpF64(60))), CodeInvalidArgument, "max_duration_sec"},
		{"audio_url with NUL", env("Dial", dialBody(ScopeCalls, "carrier-1", "100", mpStr("audio_url"), mpStr("http://x/\x00"))), CodeInvalidArgument, "audio_url"},
		{"unknown dial field", env("Dial", dialBody(ScopeCalls, "carrier-1", "100", mpStr("video"), mpStr("yes"))), CodeInvalidArgument, "video"},
		{"hangup no call_id", env("Hangup", mpMap(mpStr("admin_token"), mpStr(ScopeCalls))), CodeInvalidArgument, "call_id"},
		{"hangup call_id with LF", env("Hangup", hangupBody(ScopeCalls, "in-1\n")), CodeInvalidArgument, "call_id"},
		{"list bad trunk_id", env("ListCalls", listCallsBody(ScopeRead, "a/b")), CodeInvalidArgument, "trunk_id"},
	}
	runErrorCases(t, tests, func(t *testing.T, h *testHandler, tt errorCase) {
		if last, _ := h.calls.Last(); tt.wantCode == CodeInvalidArgument && last.TrunkID != "" {
			t.Errorf("an invalid request reached the SIP plane: %+v", last)
		}
	})
}

func TestDialOutcomes(t *testing.T) {
	tests := []struct {
		name string
		to   string
		want DialResponse
	}{
		{"answered", "+15551234567", DialResponse{CallID: "call-1", Answered: true, SIPCode: 200, Reason: "OK", SetupMs: 2345}},
		{"busy", "486", DialResponse{CallID: "call-1", SIPCode: 486, Reason: "Busy Here", SetupMs: 120}},
		{"no response", "0", DialResponse{CallID: "call-1", Reason: "no response from the carrier within timeout", SetupMs: 30000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler()
			var got DialResponse
			if e := call(t, h, env("Dial", dialBody(ScopeCalls, "carrier-1", tt.to)), &got); e != nil {
				t.Fatalf("Dial to %s = %v; want a response", tt.to, e)
			}
			if got != tt.want {
				t.Errorf("Dial to %s = %+v; want %+v", tt.to, got, tt.want)
			}
		})
	}
}

// TestDialRequestReachesPlane checks the mapping of the wire fields to
// trunk.DialRequest, the default ring time and the deadline the SIP plane
// gets.
func TestDialRequestReachesPlane(t *testing.T) {
	tests := []struct {
		name         string
		extra        [][]byte
		wantTimeout  time.Duration
		wantDuration time.Duration
	}{
		{"defaults", nil, 30 * time.Second, 0},
		{"zero is the default", [][]byte{mpStr("timeout_sec"), mpFix(0), mpStr("max_duration_sec"), mpNil()}, 30 * time.Second, 0},
		{"maximum", [][]byte{mpStr("timeout_sec"), mpU16(300), mpStr("max_duration_sec"), mpU32(86400)}, 300 * time.Second, 24 * time.Hour},
		{"short", [][]byte{mpStr("timeout_sec"), mpFix(5), mpStr("max_duration_sec"), mpFix(60)}, 5 * time.Second, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler()
			extra := append([][]byte{mpStr("from"), mpStr("+15557654321"), mpStr("audio_url"), mpStr("https://media.example.com/a.wav")}, tt.extra...)
			if e := call(t, h, env("Dial", dialBody(ScopeCalls, "carrier-1", "100", extra...)), nil); e != nil {
				t.Fatalf("Dial: %v", e)
			}
			last, deadline := h.calls.Last()
			want := trunk.DialRequest{TrunkID: "carrier-1", To: "100", From: "+15557654321", Timeout: tt.wantTimeout,
				AudioURL: "https://media.example.com/a.wav", MaxDuration: tt.wantDuration}
			if last != want {
				t.Errorf("SIP plane got %+v; want %+v", last, want)
			}
			wantDeadline := tt.wantTimeout + DialDeadlineMargin
			if deadline > wantDeadline || deadline < wantDeadline-5*time.Second {
				t.Errorf("Dial ctx deadline in %v; want %v (timeout_sec + DialDeadlineMargin)", deadline, wantDeadline)
			}
		})
	}
}

func TestNoSIPPlane(t *testing.T) {
	for name, frame := range map[string][]byte{
		"Dial":      env("Dial", dialBody(ScopeCalls, "carrier-1", "100")),
		"Hangup":    env("Hangup", hangupBody(ScopeCalls, "in-1")),
		"ListCalls": env("ListCalls", listCallsBody(ScopeRead, "")),
	} {
		h := newTestHandlerWith(nil, false)
		e := call(t, h, frame, nil)
		if codeOf(e) != CodeUnavailable || !strings.Contains(e.Message, "no SIP plane") {
			t.Errorf("%s without a SIP plane = %v; want %s", name, e, CodeUnavailable)
		}
	}
}

func TestListAndHangup(t *testing.T) {
	h := newTestHandler()
	for _, to := range []string{"200", "201"} {
		if e := call(t, h, env("Dial", dialBody(ScopeCalls, "carrier-1", to)), nil); e != nil {
			t.Fatalf("Dial %s: %v", to, e)
		}
	}
	h.calls.AddCall(trunk.Call{CallID: "other-1", TrunkID: "b", Direction: trunk.Inbound, State: trunk.CallAnswered})

	var all ListCallsResponse
	if e := call(t, h, env("ListCalls", listCallsBody(ScopeRead, "")), &all); e != nil {
		t.Fatalf("ListCalls: %v", e)
	}
	var ids []string
	for _, c := range all.Calls {
		ids = append(ids, c.CallID)
	}
	// Oldest first, then by call_id; an unknown start is 0.
	if got, want := strings.Join(ids, " "), "other-1 in-1 call-1 call-2"; got != want {
		t.Errorf("ListCalls ids = %s; want %s", got, want)
	}
	wantIn := CallInfo{CallID: "in-1", TrunkID: "carrier-1", Direction: "inbound", From: "+15550001111", To: "+15552223333",
		State: "ringing", Start: fakeNow.Add(-5 * time.Second).UnixMilli()}
	if len(all.Calls) == 4 && all.Calls[1] != wantIn {
		t.Errorf("ListCalls in-1 = %+v; want %+v", all.Calls[1], wantIn)
	}
	if len(all.Calls) == 4 && (all.Calls[2].Direction != "outbound" || all.Calls[2].State != "answered" || all.Calls[2].From != "acme") {
		t.Errorf("ListCalls call-1 = %+v; want an answered outbound call from acme", all.Calls[2])
	}

	var one ListCallsResponse
	if e := call(t, h, env("ListCalls", listCallsBody(ScopeRead, "b")), &one); e != nil || len(one.Calls) != 1 || one.Calls[0].CallID != "other-1" {
		t.Errorf("ListCalls b = %+v, %v; want other-1 only", one, e)
	}

	if e := call(t, h, env("Hangup", hangupBody(ScopeCalls, "call-1")), nil); e != nil {
		t.Fatalf("Hangup call-1: %v", e)
	}
	if e := call(t, h, env("Hangup", hangupBody(ScopeCalls, "call-1")), nil); codeOf(e) != CodeUnknownCall {
		t.Errorf("Hangup call-1 again = %v; want %s", e, CodeUnknownCall)
	}

	// No calls is an empty array, never nil.
	out, _ := h.serve(t.Context(), env("ListCalls", listCallsBody(ScopeRead, "nope")))
	if want := cat(mpMap(mpStr("Ok"), mpMap(mpStr("calls"), mpArr()))); !bytes.Equal(out, want) {
		t.Errorf("ListCalls of a trunk without calls = % x; want % x", out, want)
	}
}

// TestCallsLogNoToken checks that the call methods keep the token out of
// the log like every other method.
func TestCallsLogNoToken(t *testing.T) {
	var buf strings.Builder
	h := newTestHandlerWith(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), true)
	const tok = "calls:manage secret-marker"
	for _, frame := range [][]byte{env("Dial", dialBody(tok, "carrier-1", "100")), env("Hangup", hangupBody(tok, "call-1"))} {
		_, o := h.serve(t.Context(), frame)
		h.logRequest(t.Context(), o, time.Millisecond)
	}
	if log := buf.String(); strings.Contains(log, "secret-marker") || !strings.Contains(log, "method=Dial code=OK") {
		t.Errorf("log = %s; want Dial logged without its token", log)
	}
}
