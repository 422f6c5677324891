package main

import (
	"bytes"
	"context"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/trunkd/trunkd/media/bridge"
	"github.com/trunkd/trunkd/media/bridge/fakeagent"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/trunk"
)

// These tests run the AI bridge through the whole daemon: the admin RPC,
// the store, the SIP plane, sipp as the phone and the in-repo fake agent.

func startAgent(t *testing.T, s fakeagent.Script) (*fakeagent.Server, string) {
	t.Helper()
	fa := fakeagent.New(s)
	srv := httptest.NewServer(fa)
	t.Cleanup(srv.Close)
	return fa, "ws://" + srv.Listener.Addr().String() + "/agent"
}

// TestDialToAgent: trunkctl dial --ai-url's path. sipp answers and echoes
// the RTP; the agent's greeting comes back to it sample for sample.
func TestDialToAgent(t *testing.T) {
	f := startFarEnd(t, "uas_answer.xml", 1, "-rtp_echo")
	c := startOutbound(t)
	// sipp echoes at 0 dB, which any barge-in rightly takes for the
	// caller talking over the agent.
	addCarrierTrunk(t, c, "carrier", f, func(tr *trunk.Trunk) { tr.AutoBargeinMode = "off" })
	greeting := make([]int16, 8000)
	for i := range greeting {
		greeting[i] = int16(6000 * math.Sin(2*math.Pi*float64(i)*523/8000))
	}
	fa, url := startAgent(t, fakeagent.Script{Play: greeting, Burst: true, Mark: "greeting"})
	res := placeCall(t, c, rpc.DialRequest{TrunkID: "carrier", To: "100", TimeoutSec: 5, AIURL: url, AgentID: "sales"})
	if !res.Answered {
		t.Fatalf("Dial = %+v; want answered", res)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, ok := fa.Next(ctx)
	if !ok {
		t.Fatal("the agent was not connected")
	}
	// μ-law has two zeros; what crosses a decode keeps only 0xFF.
	want := bytes.ReplaceAll(bridge.Encode(bridge.PCMU, nil, greeting), []byte{0x7F}, []byte{0xFF})
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if bytes.Contains(bridge.Encode(bridge.PCMU, nil, call.Audio()), want) {
			break
		}
	}
	if !bytes.Contains(bridge.Encode(bridge.PCMU, nil, call.Audio()), want) {
		t.Errorf("the agent did not hear its greeting echoed back intact by the far end (%d samples heard)", len(call.Audio()))
	}
	hangup(t, c, res.CallID)
	if !call.Done(ctx) {
		t.Fatal("the agent connection stayed open after the hang-up")
	}
	ev := call.Events()
	if len(ev) == 0 || ev[len(ev)-1].Event != "stop" {
		t.Errorf("agent events %v; want stop last", ev)
	}
}

// TestDeployedAgentThroughDaemon: an agent put, published and deployed
// over the RPC answers sipp's call to sip:<agent_id>@host.
func TestDeployedAgentThroughDaemon(t *testing.T) {
	fa, url := startAgent(t, fakeagent.Script{Echo: true})
	c := startOutbound(t, "--agent-sip-host", "127.0.0.1")
	ctx := context.Background()
	port := freeSIPPort(t)
	tr := sipTrunk("carrier", port)
	tr.RejectIncomingCalls = false // inbound_rule REJECT for every other user
	if err := c.AddTrunk(ctx, tr); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutAgent(ctx, trunk.Agent{AgentID: "sales", WebsocketURL: url}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeployAgentAsSip(ctx, "sales"); rpc.ErrorCode(err) != rpc.CodePrecondition {
		t.Fatalf("deploy without a published version = %v; want %s", err, rpc.CodePrecondition)
	}
	if _, err := c.PutAgent(ctx, trunk.Agent{AgentID: "sales", WebsocketURL: url, Published: true}); err != nil {
		t.Fatal(err)
	}
	ep, err := c.DeployAgentAsSip(ctx, "sales")
	if err != nil || ep.URI != "sip:sales@127.0.0.1" || !ep.Deployed {
		t.Fatalf("DeployAgentAsSip = %+v, %v; want sip:sales@127.0.0.1 deployed", ep, err)
	}
	ex, err := c.ExplainMatch(ctx, "127.0.0.1", "127.0.0.1:"+strconv.Itoa(int(port)), "sip:sales@127.0.0.1")
	if err != nil || !ex.Matched || !bytes.Contains([]byte(ex.Reason), []byte(`deployed agent "sales"`)) {
		t.Errorf("ExplainMatch = %+v, %v; want the deployed agent named", ex, err)
	}
	pcap := "/usr/share/sip-tester/g711a.pcap"
	if _, err := os.Stat(pcap); err != nil {
		t.Skipf("no %s: run make deps", pcap)
	}
	xml, err := os.ReadFile(filepath.Join("..", "..", "testdata", "sipp", "uac_ai_pcap.xml"))
	if err != nil {
		t.Fatal(err)
	}
	sf := filepath.Join(t.TempDir(), "uac.xml")
	if err := os.WriteFile(sf, bytes.Replace(xml, []byte(`"PCAP"`), []byte(`"`+pcap+`"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	st, err := siptest.Sipp{Scenario: sf, Port: int(port), Calls: 1, Limit: 1, Rate: 1, Timeout: 30 * time.Second,
		Dir: t.TempDir(), Args: []string{"-s", "sales"}}.Run(rctx)
	if err != nil || st.Exit != 0 || st.Successful != 1 {
		t.Fatalf("sipp to sip:sales@: %v, exit %d\n%s", err, st.Exit, st.Output)
	}
	calls := fa.Calls()
	if len(calls) != 1 || len(calls[0].Audio()) < 6*8000 {
		t.Fatalf("the deployed agent got %d calls; want 1 with about 7 s of the caller's audio", len(calls))
	}
	if cfg := waitTrunk(t, c, "carrier", "the call to end", func(cfg rpc.TrunkConfig) bool { return cfg.ActiveCalls == 0 }); cfg.CurrentACD < 7 {
		t.Errorf("carrier's current_acd = %d; want the agent call counted (about 8 s)", cfg.CurrentACD)
	}
}
