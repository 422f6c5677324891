package rpc

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trunkd/trunkd/trunk"
)

var update = flag.Bool("update", false, "rewrite golden files")

const goldenDir = "../testdata/envelopes"

// sampleTrunk is the trunk the golden envelopes carry.
func sampleTrunk() trunk.Trunk {
	t := trunk.Defaults()
	t.TrunkID = "carrier-1"
	t.DisplayName = "Acme Carrier"
	t.Domain = "sip.example.com"
	t.GatewayIP = "192.0.2.10"
	t.ChannelLimit = 30
	t.SIPUsername = "acme"
	t.SIPPassword = "s3cret"
	return t
}

type goldenCase struct {
	name   string
	method string
	req    any
}

func goldenCases() []goldenCase {
	tok := ScopeManage
	return []goldenCase{
		{"ping", "Ping", PingRequest{}},
		{"add_trunk", "AddTrunk", TrunkRequest{AdminToken: tok, Trunk: sampleTrunk()}},
		{"add_trunk_exists", "AddTrunk", TrunkRequest{AdminToken: tok, Trunk: sampleTrunk()}},
		{"update_trunk", "UpdateTrunk", TrunkRequest{AdminToken: tok, Trunk: sampleTrunk()}},
		{"get_trunk", "GetTrunk", TrunkIDRequest{AdminToken: tok, TrunkID: "carrier-1"}},
		{"get_trunk_missing", "GetTrunk", TrunkIDRequest{AdminToken: tok, TrunkID: "nope"}},
		{"list_trunks", "ListTrunks", ListTrunksRequest{AdminToken: tok, Limit: 10}},
		{"dial", "Dial", DialRequest{AdminToken: ScopeCalls, TrunkID: "carrier-1", To: "+15551234567", From: "+15557654321",
			TimeoutSec: 30, AudioURL: "https://media.example.com/hello.wav", MaxDurationSec: 120}},
		{"dial_circuit_open", "Dial", DialRequest{AdminToken: ScopeCalls, TrunkID: "carrier-2", To: "+15551234567"}},
		{"list_calls", "ListCalls", ListCallsRequest{AdminToken: tok}},
		{"hangup", "Hangup", CallIDRequest{AdminToken: ScopeCalls, CallID: "call-1"}},
		{"remove_trunk", "RemoveTrunk", TrunkIDRequest{AdminToken: tok, TrunkID: "carrier-1"}},
		{"remove_trunk_missing", "RemoveTrunk", TrunkIDRequest{AdminToken: tok, TrunkID: "carrier-1"}},
		{"get_trunk_unauthenticated", "GetTrunk", TrunkIDRequest{AdminToken: "bad", TrunkID: "carrier-1"}},
		{"explain_match", "ExplainMatch", ExplainMatchRequest{AdminToken: tok, SourceIP: "192.0.2.10", Listener: ":5060", RequestURI: "sip:100@sip.example.com"}},
		{"dial_ai", "Dial", DialRequest{AdminToken: ScopeCalls, TrunkID: "carrier-1", To: "+15551234567", AIURL: "wss://agents.example.com/sales", AgentID: "sales"}},
		{"put_agent", "PutAgent", AgentRequest{AdminToken: ScopeAgentsManage, Agent: trunk.Agent{AgentID: "sales", WebsocketURL: "wss://agents.example.com/sales", Published: true}}},
		{"deploy_agent", "DeployAgentAsSip", AgentIDRequest{AdminToken: ScopeAgentsManage, AgentID: "sales"}},
		{"get_agent", "GetAgent", AgentIDRequest{AdminToken: ScopeAgentsRead, AgentID: "sales"}},
		{"list_agents", "ListAgents", ListAgentsRequest{AdminToken: ScopeAgentsRead}},
		{"undeploy_agent", "UndeployAgentAsSip", AgentIDRequest{AdminToken: ScopeAgentsManage, AgentID: "sales"}},
		{"remove_agent", "RemoveAgent", AgentIDRequest{AdminToken: ScopeAgentsManage, AgentID: "sales"}},
		{"get_agent_missing", "GetAgent", AgentIDRequest{AdminToken: ScopeAgentsRead, AgentID: "sales"}},
	}
}

// TestGoldenEnvelopes pins the bytes of a request of every method as the Go
// client encodes it, and of the server's response, run in sequence against
// one store. Run with -update to rewrite them after a deliberate change.
func TestGoldenEnvelopes(t *testing.T) {
	h := newTestHandler()
	for _, c := range goldenCases() {
		req, err := encodeRequest(c.method, c.req)
		if err != nil {
			t.Fatalf("%s: encode: %v", c.name, err)
		}
		resp, _ := h.serve(context.Background(), req)
		checkGolden(t, c.name+".request.msgpack", req)
		checkGolden(t, c.name+".response.msgpack", resp)
		checkGolden(t, c.name+".hex.txt", []byte(hexDump(c, req, resp)))
	}
}

func hexDump(c goldenCase, req, resp []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: %s request and its response (see docs/protocol.md)\n", c.name, c.method)
	fmt.Fprintf(&b, "request  (%d bytes):\n%s", len(req), hex.Dump(req))
	fmt.Fprintf(&b, "response (%d bytes):\n%s", len(resp), hex.Dump(resp))
	return b.String()
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./rpc -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden:\ngot  % x\nwant % x", name, got, want)
	}
}

// goldenFrames returns every golden request and response, as fuzz seeds.
func goldenFrames(t testing.TB) [][]byte {
	paths, _ := filepath.Glob(filepath.Join(goldenDir, "*.msgpack"))
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestV10RequestsStillServed: the request envelopes a 1.0 client sent
// (testdata/envelopes/v1.0, frozen) are still accepted: every field added
// since is optional.
func TestV10RequestsStillServed(t *testing.T) {
	h := newTestHandler()
	for _, name := range []string{"add_trunk", "get_trunk", "update_trunk", "list_trunks", "dial", "list_calls", "explain_match", "hangup", "remove_trunk"} {
		req, err := os.ReadFile(filepath.Join(goldenDir, "v1.0", name+".request.msgpack"))
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := h.serve(context.Background(), req)
		if bytes.Contains(resp, []byte("Err")) {
			t.Errorf("1.0 %s request = %q; want it served", name, resp)
		}
	}
}

// TestRequestFrameNotKept: the server reads requests into pooled buffers,
// so nothing may keep a reference into a request frame once it is
// answered. Every golden request is served twice, on two handlers, and
// one handler's frames are overwritten after each answer: both must give
// the same answers all along.
func TestRequestFrameNotKept(t *testing.T) {
	kept, scribbled := newTestHandler(), newTestHandler()
	for _, c := range goldenCases() {
		req, err := encodeRequest(c.method, c.req)
		if err != nil {
			t.Fatalf("%s: encode: %v", c.name, err)
		}
		want, _ := kept.serve(context.Background(), bytes.Clone(req))
		got, _ := scribbled.serve(context.Background(), req)
		for i := range req {
			req[i] = 0xff
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: answer differs once earlier request frames were overwritten:\n%x\nwant\n%x", c.name, got, want)
		}
	}
}
