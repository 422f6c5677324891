package rpc

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/trunkd/trunkd/trunk"
)

// call serves frame and decodes the response into resp, returning the
// *Error of an Err response.
func call(t *testing.T, h *testHandler, frame []byte, resp any) *Error {
	t.Helper()
	out, _ := h.serve(context.Background(), frame)
	err := decodeResponse(out, resp)
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if err != nil {
		t.Fatalf("decode response % x: %v", out, err)
	}
	return nil
}

const manage = ScopeManage

// addBody is a valid AddTrunk body with extra pairs appended.
func addBody(id string, extra ...[]byte) []byte {
	pairs := append([][]byte{mpStr("admin_token"), mpStr(manage), mpStr("trunk_id"), mpStr(id)}, extra...)
	return mpMap(pairs...)
}

// errorCase is a request the server must refuse with wantCode, naming
// wantField.
type errorCase struct {
	name      string
	frame     []byte
	wantCode  string
	wantField string
}

// runErrorCases serves each case on a new handler and checks its refusal;
// then, when set, after looks into the handler.
func runErrorCases(t *testing.T, tests []errorCase, after func(t *testing.T, h *testHandler, tt errorCase)) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler()
			e := call(t, h, tt.frame, nil)
			if e == nil {
				t.Fatalf("serve(% x) = Ok; want %s", tt.frame, tt.wantCode)
			}
			if e.Code != tt.wantCode || e.Field != tt.wantField {
				t.Errorf("serve(% x) = %s field %q (%s); want %s field %q", tt.frame, e.Code, e.Field, e.Message, tt.wantCode, tt.wantField)
			}
			if after != nil {
				after(t, h, tt)
			}
		})
	}
}

func TestDecodeStrict(t *testing.T) {
	tests := []errorCase{
		{"unknown field", env("AddTrunk", addBody("t1", mpStr("colour"), mpStr("red"))), CodeInvalidArgument, "colour"},
		{"wrong type string for uint32", env("AddTrunk", addBody("t1", mpStr("channel_limit"), mpStr("10"))), CodeInvalidArgument, "channel_limit"},
		{"uint16 overflow", env("AddTrunk", addBody("t1", mpStr("source_pbx_port"), mpU32(70000))), CodeInvalidArgument, "source_pbx_port"},
		{"negative uint", env("AddTrunk", addBody("t1", mpStr("channel_limit"), mpNegFix(-1))), CodeInvalidArgument, "channel_limit"},
		{"uint32 overflow", env("AddTrunk", addBody("t1", mpStr("channel_limit"), mpU64(1<<32))), CodeInvalidArgument, "channel_limit"},
		{"int32 overflow", env("AddTrunk", addBody("t1", mpStr("inbound_rule"), mpI64(1<<31))), CodeInvalidArgument, "inbound_rule"},
		{"int32 underflow", env("AddTrunk", addBody("t1", mpStr("inbound_rule"), mpI64(-1<<31-1))), CodeInvalidArgument, "inbound_rule"},
		{"float for int", env("AddTrunk", addBody("t1", mpStr("channel_limit"), mpF64(2))), CodeInvalidArgument, "channel_limit"},
		{"int for bool", env("AddTrunk", addBody("t1", mpStr("reject_incoming_calls"), mpFix(1))), CodeInvalidArgument, "reject_incoming_calls"},
		{"string for list", env("AddTrunk", addBody("t1", mpStr("codec_preferences"), mpStr("PCMU"))), CodeInvalidArgument, "codec_preferences"},
		{"nil in list", env("AddTrunk", addBody("t1", mpStr("codec_preferences"), mpArr(mpNil()))), CodeInvalidArgument, "codec_preferences[0]"},
		{"field twice", env("AddTrunk", addBody("t1", mpStr("trunk_id"), mpStr("t2"))), CodeInvalidArgument, "trunk_id"},
		{"late field twice", env("AddTrunk", addBody("t1", mpStr("api_bearer_token_set"), []byte{0xc2}, mpStr("api_bearer_token_set"), []byte{0xc2})), CodeInvalidArgument, "api_bearer_token_set"},
		{"validation names field", env("AddTrunk", addBody("t1", mpStr("reject_sip_code"), mpU16(200))), CodeInvalidArgument, "reject_sip_code"},
		{"unknown method", env("DropTables", mpMap()), CodeUnknownMethod, ""},
		{"envelope two entries", mpMap(mpStr("Ping"), mpMap(), mpStr("Ping"), mpMap()), CodeMalformed, ""},
		{"envelope empty map", mpMap(), CodeMalformed, ""},
		{"envelope is array", mpArr(mpStr("Ping")), CodeMalformed, ""},
		{"envelope is int", mpFix(7), CodeMalformed, ""},
		{"empty frame", nil, CodeMalformed, ""},
		{"body is array", env("GetTrunk", mpArr()), CodeMalformed, ""},
		{"trailing bytes", append(env("Ping", mpMap()), 0xc0), CodeMalformed, ""},
		{"truncated body", env("GetTrunk", mpMap(mpStr("trunk_id")))[:8], CodeMalformed, ""},
		{"non-string key", env("GetTrunk", mpMap(mpFix(1), mpStr("x"))), CodeMalformed, ""},
		{"array bomb", env("AddTrunk", mpMap(mpStr("codec_preferences"), []byte{0xdd, 0xff, 0xff, 0xff, 0xff})), CodeMalformed, ""},
		{"map bomb", env("AddTrunk", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}), CodeMalformed, ""},
		{"string bomb", env("AddTrunk", mpMap(mpStr("trunk_id"), []byte{0xdb, 0xff, 0xff, 0xff, 0xff})), CodeMalformed, ""},
		{"envelope map bomb", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, CodeMalformed, ""},
		{"no token", env("GetTrunk", mpMap(mpStr("trunk_id"), mpStr("t1"))), CodeUnauthenticated, ""},
		{"read scope writing", env("RemoveTrunk", mpMap(mpStr("admin_token"), mpStr(ScopeRead), mpStr("trunk_id"), mpStr("t1"))), CodePermissionDenied, ""},
		{"limit above max", env("ListTrunks", mpMap(mpStr("admin_token"), mpStr(ScopeRead), mpStr("limit"), mpU16(1001))), CodeInvalidArgument, "limit"},
		{"remove unknown", env("RemoveTrunk", mpMap(mpStr("admin_token"), mpStr(manage), mpStr("trunk_id"), mpStr("nope"))), CodeInvalidTrunk, ""},
		{"update unknown", env("UpdateTrunk", addBody("nope")), CodeInvalidTrunk, ""},
	}
	runErrorCases(t, tests, func(t *testing.T, h *testHandler, _ errorCase) {
		if n := h.store.Len(); n != 0 {
			t.Errorf("store holds %d trunks after a refused request; want 0", n)
		}
	})
}

// TestDecodeIntegerWidths checks that every MessagePack integer width is
// accepted where the value fits the declared type.
func TestDecodeIntegerWidths(t *testing.T) {
	widths := map[string][]byte{
		"fixint": mpFix(100), "uint8": mpU8(100), "uint16": mpU16(100), "uint32": mpU32(100),
		"uint64": mpU64(100), "int8": mpI8(100), "int16": mpI16(100), "int32": mpI32(100), "int64": mpI64(100),
	}
	for name, v := range widths {
		t.Run(name, func(t *testing.T) {
			h := newTestHandler()
			if e := call(t, h, env("AddTrunk", addBody("t1", mpStr("channel_limit"), v)), nil); e != nil {
				t.Fatalf("AddTrunk with channel_limit as %s: %v", name, e)
			}
			if got := h.store.Trunk("t1").ChannelLimit; got != 100 {
				t.Errorf("channel_limit = %d; want 100", got)
			}
		})
	}
}

// TestDecodeDefaults checks that absent and nil fields take their defaults.
func TestDecodeDefaults(t *testing.T) {
	h := newTestHandler()
	frame := env("AddTrunk", addBody("t1", mpStr("channel_limit"), mpNil(), mpStr("codec_preferences"), mpNil(), mpStr("display_name"), mpNil()))
	if e := call(t, h, frame, nil); e != nil {
		t.Fatalf("AddTrunk: %v", e)
	}
	got := h.store.Trunk("t1")
	want := trunk.Defaults()
	want.TrunkID = "t1"
	if got.String() != want.String() || got.ChannelLimit != 50 || strings.Join(got.CodecPreferences, ",") != "PCMU,PCMA,OPUS" ||
		got.RejectSIPCode != 603 || !got.RejectIncomingCalls || got.AutoBargeinMode != "energy" || got.RTPEndPort != 32768 {
		t.Errorf("stored %+v; want the defaults %+v", got, want)
	}
}

func TestBareStringEnvelope(t *testing.T) {
	if e := call(t, newTestHandler(), mpStr("Ping"), nil); e != nil {
		t.Fatalf(`serve("Ping") = %v; want Ok`, e)
	}
}

func TestMethodsRoundTrip(t *testing.T) {
	h := newTestHandler()
	for _, id := range []string{"b", "a", "c"} {
		if e := call(t, h, env("AddTrunk", addBody(id, mpStr("display_name"), mpStr("Trunk "+id))), nil); e != nil {
			t.Fatalf("AddTrunk %s: %v", id, e)
		}
	}
	if e := call(t, h, env("AddTrunk", addBody("a")), nil); e == nil || e.Code != CodeTrunkExists {
		t.Errorf("AddTrunk of an existing id = %v; want %s", e, CodeTrunkExists)
	}
	var got GetTrunkResponse
	if e := call(t, h, env("GetTrunk", mpMap(mpStr("admin_token"), mpStr(ScopeRead), mpStr("trunk_id"), mpStr("b"))), &got); e != nil {
		t.Fatalf("GetTrunk: %v", e)
	}
	if !got.Found || got.Config.DisplayName != "Trunk b" || got.Config.ChannelLimit != 50 {
		t.Errorf("GetTrunk b = %+v; want found, display name %q", got, "Trunk b")
	}
	var missing GetTrunkResponse
	if e := call(t, h, env("GetTrunk", mpMap(mpStr("admin_token"), mpStr(ScopeRead), mpStr("trunk_id"), mpStr("zz"))), &missing); e != nil || missing.Found {
		t.Errorf("GetTrunk zz = %+v, %v; want found=false and no error", missing, e)
	}
	var page ListTrunksResponse
	if e := call(t, h, env("ListTrunks", mpMap(mpStr("admin_token"), mpStr(ScopeRead), mpStr("limit"), mpFix(2))), &page); e != nil {
		t.Fatalf("ListTrunks: %v", e)
	}
	if len(page.Trunks) != 2 || page.Trunks[0].TrunkID != "a" || page.Trunks[1].TrunkID != "b" || page.NextCursor != "b" {
		t.Errorf("ListTrunks limit 2 = %+v; want a, b and a cursor", page)
	}
	var rest ListTrunksResponse
	if e := call(t, h, env("ListTrunks", mpMap(mpStr("admin_token"), mpStr(ScopeRead), mpStr("cursor"), mpStr(page.NextCursor))), &rest); e != nil {
		t.Fatalf("ListTrunks page 2: %v", e)
	}
	if len(rest.Trunks) != 1 || rest.Trunks[0].TrunkID != "c" || rest.NextCursor != "" {
		t.Errorf("ListTrunks page 2 = %+v; want c and the end", rest)
	}
}

// TestLogsWritesNotSecrets checks that a write is logged at info by trunk
// id, every request at debug, and that no secret reaches the log.
func TestLogsWritesNotSecrets(t *testing.T) {
	var buf strings.Builder
	h := newTestHandlerWith(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), true)
	frame := env("AddTrunk", addBody("t1",
		mpStr("sip_password"), mpStr("hunter2-secret"),
		mpStr("api_bearer_token"), mpStr("bearer-secret")))
	out, o := h.serve(context.Background(), frame)
	h.logRequest(context.Background(), o, time.Millisecond)
	if err := decodeResponse(out, &Empty{}); err != nil {
		t.Fatal(err)
	}
	h.logRequest(context.Background(), outcome{method: "AddTrunk", code: CodeTrunkExists, change: "added", trunkID: "t1"}, time.Millisecond)
	log := buf.String()
	if got := strings.Count(log, "trunk added"); got != 1 {
		t.Errorf("want one 'trunk added' line (the failed add is not one), got %d:\n%s", got, log)
	}
	for _, want := range []string{"trunk_id=t1", "method=AddTrunk code=OK", "code=" + CodeTrunkExists} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	for _, secret := range []string{"hunter2-secret", "bearer-secret", manage} {
		if strings.Contains(log, secret) {
			t.Errorf("log leaks %q:\n%s", secret, log)
		}
	}
}

// TestCauseLoggedNotSent checks that the cause a domain error keeps (here
// the disk's error under the store's EUNAVAILABLE) reaches the operator's
// log and never the client.
func TestCauseLoggedNotSent(t *testing.T) {
	const marker = "disk-marker: no space left on device"
	var buf strings.Builder
	h := newTestHandlerWith(slog.New(slog.NewTextHandler(&buf, nil)), true)
	h.store.FailWrites(trunk.Wrap(trunk.EUNAVAILABLE, errors.New(marker), "store unavailable: cannot write to disk"))
	out, _ := h.serve(context.Background(), env("AddTrunk", addBody("t1")))
	if bytes.Contains(out, []byte("disk-marker")) {
		t.Errorf("response % x carries the cause %q", out, marker)
	}
	e := call(t, h, env("AddTrunk", addBody("t1")), nil)
	if e == nil || e.Code != CodeUnavailable || e.Message != "store unavailable: cannot write to disk" {
		t.Errorf("AddTrunk = %v; want %s with the domain message only", e, CodeUnavailable)
	}
	if !strings.Contains(buf.String(), marker) {
		t.Errorf("log lacks the cause %q:\n%s", marker, buf.String())
	}
}

// TestDecodeShadowedField decodes a DTO whose embedded struct repeats an
// outer field's wire name: every other field keeps a seen-bit of its
// own, so giving each once is not "more than once".
func TestDecodeShadowedField(t *testing.T) {
	type inner struct {
		A string `json:"a"`
		B string `json:"b"`
	}
	type dto struct {
		B string `json:"b"`
		inner
		C string `json:"c"`
	}
	var d dto
	body := mpMap(mpStr("a"), mpStr("1"), mpStr("b"), mpStr("2"), mpStr("c"), mpStr("3"))
	if err := decodeDTO(&reader{b: body}, &d); err != nil {
		t.Fatalf("decodeDTO: %v", err)
	}
	twice := mpMap(mpStr("c"), mpStr("3"), mpStr("c"), mpStr("4"))
	if err := decodeDTO(&reader{b: twice}, &d); err == nil {
		t.Fatal("a field given twice was accepted")
	}
}
