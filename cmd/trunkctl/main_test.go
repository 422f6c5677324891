package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/rpc/rpctest"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control/controltest"
)

// server starts an RPC server with its files in dir and returns its
// address.
func server(t *testing.T, dir string) string {
	t.Helper()
	return serverWith(t, dir, newFakeCalls())
}

// serverWith is server with calls on its SIP plane, which matches
// 192.0.2.10 on :5060 to c1 and gives c1 live figures.
func serverWith(t *testing.T, dir string, calls *controltest.FakeCalls) string {
	t.Helper()
	plane := &controltest.Plane{Calls: calls, Status: fakeStatus, Match: fakeMatch}
	return rpctest.NewServer(t, rpctest.Options{Dir: dir, Plane: plane}).Addr
}

func fakeMatch(src, listener, ruri string) (trunk.Match, error) {
	if src == "192.0.2.10" && listener == ":5060" {
		return trunk.Match{Matched: true, TrunkID: "c1", Reason: "source 192.0.2.10 is its gateway_ip"}, nil
	}
	return trunk.Match{Reason: "source " + src + " is not the gateway_ip or sbc_ip of any trunk"}, nil
}

// fakeStatus gives c1 live figures and nothing to the other trunks.
var fakeStatus = controltest.FakeStatus{"c1": {
	Quality: trunk.Quality{Attempted: 16, Answered: 10, ASR: 62.5, ACD: 94.6, MOS: 4.21, PDDms: 1830.5},
	Breaker: trunk.BreakerHalfOpen,
	SIP:     trunk.SIPStatus{State: trunk.SIPActive, RegistrationState: trunk.RegOff, ActiveCalls: 2},
}}

// newFakeCalls places calls through c1 (tripped's breaker is open, any
// other trunk is unknown): "486" is busy, "slow" answers after 1.5 s,
// anything else answers at once. in-1 is an inbound call on c1 from the
// start.
func newFakeCalls() *controltest.FakeCalls {
	return controltest.NewFakeCalls(map[string]string{"c1": controltest.TrunkOK, "tripped": controltest.TrunkTripped},
		trunk.Call{CallID: "in-1", TrunkID: "c1", Direction: trunk.Inbound, From: "+15550001111", To: "+15552223333",
			State: trunk.CallRinging, Start: time.Now()})
}

// ctl runs trunkctl in-process and returns its exit code and output.
func ctl(t *testing.T, vars map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := env{getenv: func(k string) string { return vars[k] }, stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, args, e)
	return code, out.String(), errb.String()
}

func TestTrunkctlLifecycle(t *testing.T) {
	dir := t.TempDir()
	addr := server(t, dir)
	code, tok, stderr := ctl(t, nil, "", "token", "--secret-file", filepath.Join(dir, "jwt.secret"), "--scope", "trunks:manage", "--ttl", "10m")
	if code != 0 {
		t.Fatalf("token: exit %d: %s", code, stderr)
	}
	vars := map[string]string{"TRUNKD_ADDR": addr, "TRUNKD_TOKEN": strings.TrimSpace(tok), "TRUNKD_CA": filepath.Join(dir, "tls.crt")}

	steps := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stdout string // substring expected in stdout
		stderr string // substring expected in stderr
	}{
		{"add by flags", "", []string{"add", "--trunk-id", "c1", "--display-name", "Carrier One", "--codec-preferences", "pcma,pcmu", "--inbound-rule", "reject"}, 0, "trunk c1 added", ""},
		{"add again", "", []string{"add", "--trunk-id", "c1"}, 1, "", "ERR_TRUNK_EXISTS"},
		{"add bad field", "", []string{"add", "--trunk-id", "c2", "--rtp-start-port", "101"}, 1, "", "rtp_start_port"},
		{"add from yaml", "", []string{"add", "-f", "../../testdata/trunks/carrier-1.yaml"}, 0, "trunk carrier-1 added", ""},
		{"add from stdin json", `{"trunk_id": "c3", "channel_limit": 5}`, []string{"add", "-f", "-"}, 0, "trunk c3 added", ""},
		{"file with unknown field", `{"trunk_id": "c4", "colour": "red"}`, []string{"add", "-f", "-"}, 2, "", "colour"},
		{"flag overrides file", `{"trunk_id": "c3", "display_name": "from file"}`, []string{"update", "--replace", "-f", "-", "--display-name", "from flag"}, 0, "trunk c3 updated", ""},
		{"get table", "", []string{"get", "c3"}, 0, "from flag", ""},
		{"get json after id", "", []string{"get", "c1", "-o", "json"}, 0, `"display_name": "Carrier One"`, ""},
		{"get yaml", "", []string{"get", "-o", "yaml", "carrier-1"}, 0, "channel_limit: 30", ""},
		{"get missing", "", []string{"get", "nope"}, 1, "", "not found"},
		{"add SRTP over UDP by names", "", []string{"add", "--trunk-id", "c5", "--outbound-media-encryption", "require"}, 0, "trunk c5 added", ""},
		{"get shows the SRTP risk", "", []string{"get", "c5"}, 0, "SRTP keys travel in the SDP over unencrypted SIP", ""},
		{"add TLS by names", "", []string{"add", "--trunk-id", "c6", "--transport", "TLS", "--sip-tls-port", "5061", "--inbound-media-encryption", "allow", "--outbound-media-encryption", "2"}, 0, "trunk c6 added", ""},
		{"get TLS", "", []string{"get", "c6"}, 0, "TLS (TLS listener on 5061)", ""},
		{"TLS without a listener", "", []string{"add", "--trunk-id", "c7", "--transport", "tls"}, 1, "", "sip_tls_port"},
		{"remove c5", "", []string{"rm", "c5"}, 0, "", ""},
		{"remove c6", "", []string{"rm", "c6"}, 0, "", ""},
		{"list table", "", []string{"list"}, 0, "carrier-1", ""},
		{"list one page", "", []string{"list", "--limit", "1"}, 0, "c1", "--cursor c1"},
		{"update missing", "", []string{"update", "--trunk-id", "nope"}, 1, "", "ERR_INVALID_TRUNK"},
		{"rm", "", []string{"rm", "c1"}, 0, "trunk c1 removed", ""},
		{"rm again", "", []string{"rm", "c1"}, 1, "", "ERR_INVALID_TRUNK"},
		{"no id", "", []string{"add", "--display-name", "x"}, 2, "", "trunk_id"},
		{"unknown command", "", []string{"frobnicate"}, 2, "", "unknown command"},
		{"explain matched", "", []string{"explain", "--source", "192.0.2.10", "--listener", ":5060"}, 0, "matched c1: source 192.0.2.10 is its gateway_ip", ""},
		{"explain unmatched", "", []string{"explain", "--source", "192.0.2.99", "--listener", ":5060"}, 0, "no match (the call would get 403)", ""},
		{"explain json", "", []string{"explain", "--source", "192.0.2.10", "--listener", ":5060", "-o", "json"}, 0, `"trunk_id": "c1"`, ""},
		{"explain without listener", "", []string{"explain", "--source", "192.0.2.10"}, 2, "", "--listener"},
		{"bad output", "", []string{"get", "c3", "-o", "xml"}, 2, "", "xml"},
	}
	for _, s := range steps {
		code, out, errOut := ctl(t, vars, s.stdin, s.args...)
		if code != s.code || !strings.Contains(out, s.stdout) || !strings.Contains(errOut, s.stderr) {
			t.Errorf("%s: trunkctl %s = exit %d, stdout %q, stderr %q; want exit %d, stdout ~%q, stderr ~%q",
				s.name, strings.Join(s.args, " "), code, out, errOut, s.code, s.stdout, s.stderr)
		}
	}

	code, out, _ := ctl(t, vars, "", "list", "-o", "json")
	var list []rpc.TrunkConfig
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 {
		t.Errorf("list -o json = exit %d, %q; want the two remaining trunks", code, out)
	}
}

func TestTrunkctlAuthErrors(t *testing.T) {
	dir := t.TempDir()
	addr := server(t, dir)
	_, readTok, _ := ctl(t, nil, "", "token", "--secret-file", filepath.Join(dir, "jwt.secret"), "--scope", "trunks:read")
	base := map[string]string{"TRUNKD_ADDR": addr, "TRUNKD_CA": filepath.Join(dir, "tls.crt")}

	vars := map[string]string{"TRUNKD_TOKEN": strings.TrimSpace(readTok)}
	for k, v := range base {
		vars[k] = v
	}
	if code, _, errOut := ctl(t, vars, "", "add", "--trunk-id", "x"); code != 1 || !strings.Contains(errOut, "ERR_PERMISSION_DENIED") {
		t.Errorf("add with a read token = exit %d, %q; want ERR_PERMISSION_DENIED", code, errOut)
	}
	if code, _, errOut := ctl(t, base, "", "--token", "garbage", "list"); code != 1 || !strings.Contains(errOut, "ERR_UNAUTHENTICATED") {
		t.Errorf("list with a garbage token = exit %d, %q; want ERR_UNAUTHENTICATED", code, errOut)
	}
	delete(base, "TRUNKD_CA")
	if code, _, errOut := ctl(t, base, "", "list"); code != 2 || !strings.Contains(errOut, "--ca") {
		t.Errorf("list without --ca or --insecure = exit %d, %q; want a usage error naming --ca", code, errOut)
	}
}

func TestTrunkctlCalls(t *testing.T) {
	dir := t.TempDir()
	fake := newFakeCalls()
	addr := serverWith(t, dir, fake)
	secret := filepath.Join(dir, "jwt.secret")
	tokenFor := func(scope string) map[string]string {
		code, tok, stderr := ctl(t, nil, "", "token", "--secret-file", secret, "--scope", scope, "--ttl", "10m")
		if code != 0 {
			t.Fatalf("token %q: exit %d: %s", scope, code, stderr)
		}
		return map[string]string{"TRUNKD_ADDR": addr, "TRUNKD_TOKEN": strings.TrimSpace(tok), "TRUNKD_CA": filepath.Join(dir, "tls.crt")}
	}
	calls := tokenFor("calls:manage trunks:read")
	manage := tokenFor("trunks:manage")
	read := tokenFor("trunks:read")

	steps := []struct {
		name   string
		vars   map[string]string
		args   []string
		code   int
		stdout string // substring expected in stdout
		stderr string // substring expected in stderr
	}{
		{"dial answered", calls, []string{"dial", "--trunk", "c1", "--to", "+15551234567", "--from", "+15557654321"}, 0, "call call-1 answered after 2345 ms", ""},
		{"dial with trunks:manage", manage, []string{"dial", "--trunk", "c1", "--to", "200"}, 0, "call call-2 answered", ""},
		{"dial busy", calls, []string{"dial", "--trunk", "c1", "--to", "486"}, 1, "", "call call-3 not answered: 486 Busy Here"},
		{"dial circuit open", calls, []string{"dial", "--trunk", "tripped", "--to", "200"}, 1, "", "ERR_CIRCUIT_OPEN"},
		{"dial unknown trunk", calls, []string{"dial", "--trunk", "nope", "--to", "200"}, 1, "", "ERR_INVALID_TRUNK"},
		{"dial read only", read, []string{"dial", "--trunk", "c1", "--to", "200"}, 1, "", "ERR_PERMISSION_DENIED"},
		{"dial json", calls, []string{"dial", "--trunk", "c1", "--to", "201", "-o", "json"}, 0, `"call_id": "call-4"`, ""},
		{"dial busy json", calls, []string{"dial", "--trunk", "c1", "--to", "486", "-o", "json"}, 1, `"sip_code": 486`, "486 Busy Here"},
		{"dial every flag", calls, []string{"dial", "--trunk", "c1", "--to", "202", "--from", "100", "--audio-url", "https://media.example.com/a.wav",
			"--timeout", "45", "--max-duration", "90"}, 0, "call call-6 answered", ""},
		{"dial without --to", calls, []string{"dial", "--trunk", "c1"}, 2, "", "--to"},
		{"dial ring too long", calls, []string{"dial", "--trunk", "c1", "--to", "1", "--timeout", "301"}, 2, "", "--timeout"},
		// The global --timeout bounds the command on top of the ring time.
		{"dial rings past --timeout", calls, []string{"--timeout", "1s", "dial", "--trunk", "c1", "--to", "slow", "--timeout", "5"}, 0, "answered", ""},
		{"calls table", read, []string{"calls"}, 0, "in-1", ""},
		{"calls of a trunk", read, []string{"calls", "--trunk", "c1"}, 0, "call-1", ""},
		{"calls none json", read, []string{"calls", "--trunk", "c2", "-o", "json"}, 0, "[]", ""},
		{"calls with calls:manage alone", tokenFor("calls:manage"), []string{"calls"}, 1, "", "ERR_PERMISSION_DENIED"},
		{"hangup read only", read, []string{"hangup", "call-1"}, 1, "", "ERR_PERMISSION_DENIED"},
		{"hangup", calls, []string{"hangup", "call-1"}, 0, "call call-1 hung up", ""},
		{"hangup again", calls, []string{"hangup", "call-1"}, 1, "", "ERR_UNKNOWN_CALL"},
		{"hangup without id", calls, []string{"hangup"}, 2, "", "argument"},
		{"dial an agent", calls, []string{"dial", "--trunk", "c1", "--to", "203", "--ai-url", "ws://127.0.0.1:8765/agent", "--agent-id", "sales"}, 0, "answered", ""},
	}
	for _, s := range steps {
		code, out, errOut := ctl(t, s.vars, "", s.args...)
		if code != s.code || !strings.Contains(out, s.stdout) || !strings.Contains(errOut, s.stderr) {
			t.Errorf("%s: trunkctl %s = exit %d, stdout %q, stderr %q; want exit %d, stdout ~%q, stderr ~%q",
				s.name, strings.Join(s.args, " "), code, out, errOut, s.code, s.stdout, s.stderr)
		}
	}

	want := trunk.DialRequest{TrunkID: "c1", To: "202", From: "100", AudioURL: "https://media.example.com/a.wav", Timeout: 45 * time.Second, MaxDuration: 90 * time.Second}
	if fake.Dialled("call-6") != want {
		t.Errorf("dial with every flag sent %+v; want %+v", fake.Dialled("call-6"), want)
	}
	var toAgent bool
	for i := range 20 {
		if d := fake.Dialled(fmt.Sprintf("call-%d", i)); d.AIURL != "" {
			toAgent = d.AIURL == "ws://127.0.0.1:8765/agent" && d.AgentID == "sales" && d.To == "203"
		}
	}
	if !toAgent {
		t.Errorf("dial --ai-url --agent-id did not reach the service as ai_url and agent_id")
	}
	if got := fake.Dialled("call-1").Timeout; got != 30*time.Second {
		t.Errorf("dial without --timeout rang for %v; want 30s", got)
	}

	code, out, _ := ctl(t, read, "", "calls", "-o", "json")
	var list []rpc.CallInfo
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil {
		t.Fatalf("calls -o json = exit %d, %q (%v); want a JSON list", code, out, err)
	}
	var ids []string
	for _, c := range list {
		ids = append(ids, c.CallID)
		if c.Start == 0 || c.TrunkID != "c1" {
			t.Errorf("calls -o json: %+v; want a start time and trunk c1", c)
		}
	}
	slices.Sort(ids)
	if want := []string{"call-2", "call-4", "call-6", "call-7", "call-8", "in-1"}; !slices.Equal(ids, want) {
		t.Errorf("calls after hanging up call-1 = %v; want %v", ids, want)
	}
	code, out, _ = ctl(t, read, "", "calls")
	for _, want := range []string{"CALL_ID", "TRUNK", "DIRECTION", "FROM", "TO", "STATE", "START", "inbound", "outbound", "ringing", "answered", "+15550001111"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("calls = exit %d, %q; want %q in the table", code, out, want)
		}
	}
}

// TestTrunkctlGetShowsLiveFigures checks that get shows every field of
// GetTrunk: all of them as JSON, the live ones in the table.
func TestTrunkctlGetShowsLiveFigures(t *testing.T) {
	dir := t.TempDir()
	addr := server(t, dir)
	_, tok, _ := ctl(t, nil, "", "token", "--secret-file", filepath.Join(dir, "jwt.secret"))
	vars := map[string]string{"TRUNKD_ADDR": addr, "TRUNKD_TOKEN": strings.TrimSpace(tok), "TRUNKD_CA": filepath.Join(dir, "tls.crt")}
	// Off their defaults, so that the fields omitted when at their
	// defaults show too.
	if code, _, errOut := ctl(t, vars, "", "add", "--trunk-id", "c1", "--transport", "tcp", "--sip-tls-port", "5061",
		"--inbound-media-encryption", "allow", "--outbound-media-encryption", "require"); code != 0 {
		t.Fatalf("add: %s", errOut)
	}

	code, out, errOut := ctl(t, vars, "", "get", "c1", "-o", "json")
	var doc struct {
		Status map[string]any `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil {
		t.Fatalf("get -o json = exit %d, %q, %q (%v)", code, out, errOut, err)
	}
	got := doc.Status
	typ := reflect.TypeFor[rpc.TrunkConfig]()
	for i := range typ.NumField() {
		name, opts, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if _, ok := got[name]; !ok && opts != "omitempty" {
			t.Errorf("get -o json lacks %q: %s", name, out)
		}
	}
	for name, want := range map[string]any{"calls_attempted": 16.0, "calls_answered": 10.0, "current_pdd_ms": 1830.5, "breaker_state": "half-open", "is_cb_tripped": true, "current_acd": 95.0} {
		if got[name] != want {
			t.Errorf("get -o json: %s = %v; want %v", name, got[name], want)
		}
	}

	code, out, _ = ctl(t, vars, "", "get", "c1")
	for _, want := range []string{"circuit_breaker:  half-open", "calls_attempted:  16", "calls_answered:   10", "asr:              62.5%",
		"acd:              95s", "mos:              4.21", "pdd:              1830 ms", "active_calls:     2"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("get c1 = exit %d:\n%s\nwant a line %q", code, out, want)
		}
	}
}
