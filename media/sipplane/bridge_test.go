package sipplane

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/diago"
	"github.com/pion/rtp"
	"github.com/trunkd/trunkd/media/bridge"
	"github.com/trunkd/trunkd/media/bridge/denoise"
	"github.com/trunkd/trunkd/media/bridge/fakeagent"
	aiquic "github.com/trunkd/trunkd/media/bridge/quic"
	"github.com/trunkd/trunkd/media/bridge/ws"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/trunk"
)

// agentFor serves a fake agent running s and returns its ws:// URL.
func agentFor(t *testing.T, s fakeagent.Script) (*fakeagent.Server, string) {
	t.Helper()
	fa := fakeagent.New(s)
	srv := httptest.NewServer(fa)
	t.Cleanup(srv.Close)
	return fa, "ws://" + srv.Listener.Addr().String() + "/agent"
}

// aiTrunk is a HANDLE_AI trunk on a free port whose agent is at url.
func aiTrunk(t *testing.T, id, url string) *trunk.Trunk {
	tr := testTrunk(id, siptest.FreePort(t, "127.0.0.1"))
	tr.RejectIncomingCalls = false
	tr.InboundRule = trunk.RuleHandleAI
	tr.InboundAIWebsocketURL = url
	tr.APIBearerToken = "agent-secret"
	tr.AgentID = "agent-7"
	return tr
}

// aiPlane is a plane with the WebSocket bridge and the default connect
// timeout (3 s: a loaded CI machine can take over a second to accept).
func aiPlane(t *testing.T) *Plane {
	return newPlane(t, Config{Bridger: &ws.Dialer{}})
}

// signal is n bytes of μ-law: random but never 0x7F (negative zero, which
// re-encodes as 0xFF), so that decode→encode round trips are exact.
func signal(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		for b[i] = byte(r.UintN(256)); b[i] == 0x7F; b[i] = byte(r.UintN(256)) {
		}
	}
	return b
}

// sendFrames writes sig as 20 ms frames from the caller.
func sendFrames(t *testing.T, d *diago.DialogClientSession, sig []byte) {
	t.Helper()
	if err := writeFrames(d, sig); err != nil {
		t.Fatal(err)
	}
}

func writeFrames(d *diago.DialogClientSession, sig []byte) error {
	w, err := d.AudioWriter()
	if err != nil {
		return err
	}
	for i := 0; i+160 <= len(sig); i += 160 {
		if _, err := w.Write(sig[i : i+160]); err != nil {
			return err
		}
	}
	return nil
}

// collect reads the caller's audio in the background until the call ends.
func collect(d *diago.DialogClientSession) func() []byte {
	r, err := d.AudioReader()
	var mu sync.Mutex
	var got []byte
	if err == nil {
		go func() {
			buf := make([]byte, 1500)
			for {
				n, err := r.Read(buf)
				mu.Lock()
				got = append(got, buf[:n]...)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	return func() []byte { mu.Lock(); defer mu.Unlock(); return bytes.Clone(got) }
}

func TestBridgeInboundEcho(t *testing.T) {
	fa, url := agentFor(t, fakeagent.Script{Echo: true, Token: "agent-secret"})
	p := aiPlane(t)
	tr := aiTrunk(t, "ai-echo", url)
	tr.AutoBargeinMode = "off" // the caller talks over its own echo
	apply(t, p, tr)
	u := newUAC(t, "127.0.0.1")
	d, code := u.call(t, tr.SourcePBXPort, diago.InviteOptions{})
	if code != 200 {
		t.Fatalf("INVITE got %d; want 200", code)
	}
	defer d.Close()
	got := collect(d)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	call, ok := fa.Next(ctx)
	if !ok {
		t.Fatal("the agent was never connected")
	}
	start, ok := call.Started(ctx)
	if !ok {
		t.Fatal("no start message")
	}
	sig := signal(75 * 160) // 1.5 s
	sendFrames(t, d, sig)
	time.Sleep(300 * time.Millisecond)

	// The agent heard the caller sample for sample...
	heard := bridge.Encode(bridge.PCMU, nil, call.Audio())
	if _, ok := intact(heard, sig); !ok {
		t.Errorf("the agent did not receive the caller's audio intact (%d bytes heard)", len(heard))
	}
	// ...and the caller heard the agent's echo sample for sample.
	back := voiced(got())
	if i, ok := intact(back, sig); !ok {
		t.Errorf("the caller did not receive the echo intact (%d bytes, first frame at %d, %s)", len(back), i, diffAt(back[max(i, 0):], sig))
	}
	checkStart(t, start, call, tr)

	d.Hangup(context.Background())
	if !call.Done(ctx) {
		t.Fatal("the agent connection stayed open after the caller hung up")
	}
	ev := call.Events()
	if len(ev) == 0 || ev[len(ev)-1].Event != "stop" || ev[len(ev)-1].Stop == nil || ev[len(ev)-1].Stop.CallSID != start.Start.CallSID {
		t.Errorf("last agent event = %+v; want stop with the callSid", ev[len(ev)-1])
	}
	waitFor(t, "the call to end", func() bool { return len(p.ListCalls("")) == 0 })
	if c, _ := p.Counters("ai-echo"); c.Calls[[2]string{trunk.Inbound, string(outAnswered)}] != 1 {
		t.Errorf("calls = %v; want the bridged call counted answered", c.Calls)
	}
	if st := p.TrunkStatus("ai-echo"); st.MOS <= 0 {
		t.Errorf("status = %+v; want a MOS from the bridge's RTP tap", st)
	}
}

// checkStart checks the connection's credentials and the start message
// against Twilio's shapes.
func checkStart(t *testing.T, start ws.Message, call *fakeagent.Call, tr *trunk.Trunk) {
	t.Helper()
	s := start.Start
	if s == nil || !strings.HasPrefix(s.StreamSID, "MZ") || len(s.StreamSID) != 34 || !strings.HasPrefix(s.CallSID, "CA") ||
		!strings.HasPrefix(s.AccountSID, "AC") || start.StreamSID != s.StreamSID || start.SequenceNumber != "1" {
		t.Fatalf("start = %+v; want Twilio-shaped ids and sequenceNumber \"1\"", start)
	}
	if s.MediaFormat != (ws.MediaFormat{Encoding: "audio/x-mulaw", SampleRate: 8000, Channels: 1}) {
		t.Errorf("mediaFormat = %+v; want μ-law 8000 mono", s.MediaFormat)
	}
	cp := s.CustomParameters
	if cp["trunk_id"] != tr.TrunkID || cp["agent_id"] != tr.AgentID || cp["direction"] != "inbound" || cp["sip_call_id"] == "" {
		t.Errorf("customParameters = %v; want trunk_id, agent_id, direction, sip_call_id", cp)
	}
	h := call.Header
	ts := h.Get(ws.HeaderTimestamp)
	if h.Get(ws.HeaderSignature) != ws.Sign(tr.APIBearerToken, ts, h.Get(ws.HeaderCallID)) || h.Get(ws.HeaderCallID) != cp["sip_call_id"] {
		t.Errorf("signature %q does not verify for timestamp %q and call %q", h.Get(ws.HeaderSignature), ts, h.Get(ws.HeaderCallID))
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		t.Errorf("timestamp %q is not Unix seconds", ts)
	}
}

func TestBridgeAgentUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "ws://" + l.Addr().String() + "/agent"
	l.Close()
	p := aiPlane(t)
	tr := aiTrunk(t, "ai-down", url)
	apply(t, p, tr)
	u := newUAC(t, "127.0.0.1")
	if code := u.code(t, tr.SourcePBXPort); code != 503 {
		t.Fatalf("INVITE to a trunk whose agent is down got %d; want 503", code)
	}
	if c, _ := p.Counters("ai-down"); c.Calls[[2]string{trunk.Inbound, string(outAIUnavailable)}] != 1 {
		t.Errorf("ai_unavailable count = %v; want 1", c.Calls)
	}
	if n := p.TrunkStatus("ai-down").AIUnavailable; n != 1 {
		t.Errorf("TrunkStatus(ai-down).AIUnavailable = %d; want 1", n)
	}
	_, url2 := agentFor(t, fakeagent.Script{Token: "another-token"})
	tr2 := aiTrunk(t, "ai-refused", url2)
	apply(t, p, tr2)
	if code := u.code(t, tr2.SourcePBXPort); code != 503 {
		t.Fatalf("INVITE to a trunk whose agent refuses the token got %d; want 503", code)
	}
}

// TestBridgeAgentEndsCall: an agent that disconnects, hangs up, or breaks
// the protocol gets the caller a BYE.
func TestBridgeAgentEndsCall(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    fakeagent.Script
	}{
		{"drop", fakeagent.Script{DropAfter: 200 * time.Millisecond}},
		{"close", fakeagent.Script{HangupAfter: 200 * time.Millisecond}},
		{"hangup-v1", fakeagent.Script{Profile: ws.ProtoPCMU, HangupAfter: 200 * time.Millisecond}},
		{"invalid-json", fakeagent.Script{Garbage: "{not json"}},
		{"binary-on-twilio", fakeagent.Script{Binary: []byte{1, 2, 3}}},
		{"huge", fakeagent.Script{Garbage: `{"event":"media","media":{"payload":"` + strings.Repeat("A", ws.ReadLimit) + `"}}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, url := agentFor(t, tc.s)
			p := aiPlane(t)
			tr := aiTrunk(t, "ai-"+tc.name, url)
			tr.APIBearerToken = ""
			apply(t, p, tr)
			u := newUAC(t, "127.0.0.1")
			d, code := u.call(t, tr.SourcePBXPort, diago.InviteOptions{})
			if code != 200 {
				t.Fatalf("INVITE got %d; want 200", code)
			}
			defer d.Close()
			readUntilHangup(t, d)
			waitFor(t, "the call to end", func() bool { return len(p.ListCalls("")) == 0 })
		})
	}
}

// TestBridgeSlowAgentDoesNotStall: an agent that stops reading neither
// blocks the caller's audio nor another call.
func TestBridgeSlowAgentDoesNotStall(t *testing.T) {
	_, slowURL := agentFor(t, fakeagent.Script{NoRead: true})
	fa, echoURL := agentFor(t, fakeagent.Script{Echo: true})
	p := aiPlane(t)
	slow := aiTrunk(t, "ai-slow", slowURL)
	echo := aiTrunk(t, "ai-fast", echoURL)
	apply(t, p, slow)
	apply(t, p, echo)
	u := newUAC(t, "127.0.0.1")
	ds, code := u.call(t, slow.SourcePBXPort, diago.InviteOptions{})
	if code != 200 {
		t.Fatalf("INVITE (slow agent) got %d; want 200", code)
	}
	defer ds.Close()
	go func() { _ = writeFrames(ds, signal(100*160)) }()
	de, code := u.call(t, echo.SourcePBXPort, diago.InviteOptions{})
	if code != 200 {
		t.Fatalf("INVITE (echo agent) got %d; want 200", code)
	}
	defer de.Close()
	got := collect(de)
	sig := signal(25 * 160)
	sendFrames(t, de, sig)
	time.Sleep(300 * time.Millisecond)
	if back := got(); !bytes.Contains(back, sig[:160]) {
		t.Errorf("the second call's echo did not come back while the first agent was stuck")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, ok := fa.Next(ctx); !ok {
		t.Fatal("the echo agent was not connected")
	}
	ds.Hangup(ctx)
	de.Hangup(ctx)
	waitFor(t, "both calls to end", func() bool { return len(p.ListCalls("")) == 0 })
}

func TestBridgeOutbound(t *testing.T) {
	c := newCarrier(t, answer)
	p := newDialPlane(t, Config{Bridger: &ws.Dialer{}})
	tr := dialTrunkFor(t, "ai-out", c)
	apply(t, p, tr)
	tone := make([]int16, 8000) // 1 s, 440 Hz
	for i := range tone {
		tone[i] = int16(8000 * sinTable(i))
	}
	fa, url := agentFor(t, fakeagent.Script{Play: tone, Burst: true, Mark: "greeting", HangupAfter: 1500 * time.Millisecond})
	if _, err := p.Dial(context.Background(), trunk.DialRequest{TrunkID: "ai-out", To: "1555", AIURL: url, AudioURL: "file:///x.wav"}); trunk.ErrorCode(err) != trunk.EINVALID {
		t.Errorf("Dial with audio_url and ai_url = %v; want EINVALID", err)
	}
	res := dial(t, p, trunk.DialRequest{TrunkID: "ai-out", To: "1555", AIURL: url, AgentID: "sales", Timeout: 5 * time.Second})
	if !res.Answered {
		t.Fatalf("Dial = %+v; want answered", res)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	call, ok := fa.Next(ctx)
	if !ok {
		t.Fatal("no agent connection")
	}
	start, ok := call.Started(ctx)
	if !ok || start.Start.CustomParameters["direction"] != "outbound" || start.Start.CustomParameters["agent_id"] != "sales" {
		t.Fatalf("start = %+v; want direction outbound, agent_id sales", start.Start)
	}
	// The carrier hears the agent's tone, sample for sample.
	want := bridge.Encode(bridge.PCMU, nil, tone)
	var heard []byte
	buf := make([]byte, 1500)
	_ = c.rtp.SetReadDeadline(time.Now().Add(3 * time.Second))
	for len(heard) < len(want)+20*160 {
		n, err := c.rtp.Read(buf)
		if err != nil {
			break
		}
		var pkt rtp.Packet
		if pkt.Unmarshal(buf[:n]) == nil && pkt.PayloadType == 0 {
			heard = append(heard, pkt.Payload...)
		}
	}
	if _, ok := intact(heard, want); !ok {
		t.Errorf("the carrier did not hear the agent's audio intact (%d bytes)", len(heard))
	}
	waitFor(t, "the played mark", func() bool {
		for _, e := range call.Events() {
			if e.Event == "mark" && e.Mark.Name == "greeting" {
				return true
			}
		}
		return false
	})
	waitFor(t, "BYE at the carrier after the agent hung up", func() bool { _, _, b := c.counts(); return b == 1 })
}

func sinTable(i int) float64 {
	return math.Sin(2 * math.Pi * float64(i) * 440 / 8000)
}

// voiced drops the silence frames the bridge plays while its queue is
// empty: a live echo arrives with jitter against the 20 ms tick, and no
// jitter buffer hides it.
func voiced(b []byte) []byte {
	var out []byte
	silence := bytes.Repeat([]byte{0xFF}, 160)
	for i := 0; i+160 <= len(b); i += 160 {
		if !bytes.Equal(b[i:i+160], silence) {
			out = append(out, b[i:i+160]...)
		}
	}
	return out
}

func diffAt(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return "first difference at byte " + strconv.Itoa(i)
		}
	}
	return "got " + strconv.Itoa(len(got)) + " of " + strconv.Itoa(len(want))
}

// g711aPcap is the PCMA recording Debian's sip-tester ships.
const g711aPcap = "/usr/share/sip-tester/g711a.pcap"

// pcapPayloads reads the RTP payloads of a pcap of Ethernet/IPv4/UDP/RTP.
func pcapPayloads(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no %s (make deps installs sip-tester): %v", path, err)
	}
	var out []byte
	for off := 24; off+16 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off+8:]))
		pkt := b[off+16 : off+16+n]
		off += 16 + n
		const hdr = 14 + 20 + 8
		var r rtp.Packet
		if len(pkt) > hdr && r.Unmarshal(pkt[hdr:]) == nil && r.PayloadType == 8 {
			out = append(out, r.Payload...)
		}
	}
	return out
}

// TestSippPcapReachesAgent: sipp plays a real PCMA recording in 30 ms
// packets; the agent (on the L16 profile, so nothing is re-quantized)
// receives it decoded sample for sample, in 20 ms chunks.
func TestSippPcapReachesAgent(t *testing.T) {
	alaw := pcapPayloads(t, g711aPcap)
	fa, url := agentFor(t, fakeagent.Script{Profile: ws.ProtoL16_8k})
	p := aiPlane(t)
	tr := aiTrunk(t, "ai-sipp", url)
	tr.APIBearerToken = ""
	tr.CodecPreferences = []string{"PCMA", "PCMU"}
	apply(t, p, tr)
	xml, err := os.ReadFile(filepath.Join("..", "..", "testdata", "sipp", "uac_ai_pcap.xml"))
	if err != nil {
		t.Fatal(err)
	}
	sf := filepath.Join(t.TempDir(), "uac_ai_pcap.xml")
	if err := os.WriteFile(sf, bytes.Replace(xml, []byte(`"PCAP"`), []byte(`"`+g711aPcap+`"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := siptest.Sipp{Scenario: sf, Port: int(tr.SourcePBXPort), Calls: 1, Limit: 1, Rate: 1, Timeout: 30 * time.Second, Dir: t.TempDir()}
	st, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Exit != 0 || st.Successful != 1 {
		t.Fatalf("sipp: exit %d, %d successful\n%s", st.Exit, st.Successful, st.Output)
	}
	calls := fa.Calls()
	if len(calls) != 1 || !calls[0].Done(ctx) {
		t.Fatal("the agent call did not end with the caller's BYE")
	}
	got := calls[0].Audio()
	want := bridge.Decode(bridge.PCMA, nil, alaw)
	if len(got) < len(want)-bridge.FrameSamples || !slices.Equal(got, want[:len(got)]) {
		t.Errorf("the agent received %d samples; want the pcap's %d samples in order, exactly", len(got), len(want))
	}
	if !slices.ContainsFunc(calls[0].Events(), func(e ws.Message) bool { return e.Event == "stop" }) {
		t.Errorf("no stop after sipp's BYE")
	}
}

// TestDeployedAgentRouting: a Request-URI naming a deployed agent reaches
// it through the trunk that admits the source, whatever its inbound_rule;
// other users get the trunk's policy; an undeployed agent is gone.
func TestDeployedAgentRouting(t *testing.T) {
	fa, url := agentFor(t, fakeagent.Script{Echo: true})
	p := aiPlane(t)
	tr := testTrunk("carrier", siptest.FreePort(t, "127.0.0.1"))
	tr.RejectIncomingCalls = false // inbound_rule REJECT (603) for everyone else
	tr.AgentID = "not-this-one"
	apply(t, p, tr)
	p.SetAgent(&trunk.Agent{AgentID: "sales", WebsocketURL: url, Published: true, SIPDeployed: true})
	u := newUAC(t, "127.0.0.1")
	d, code := u.callUser(t, "sales", tr.SourcePBXPort, diago.InviteOptions{})
	if code != 200 {
		t.Fatalf("INVITE sip:sales@ got %d; want 200 from the deployed agent", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	call, ok := fa.Next(ctx)
	if !ok {
		t.Fatal("the agent was not connected")
	}
	st, _ := call.Started(ctx)
	if got := st.Start.CustomParameters; got["agent_id"] != "sales" || got["trunk_id"] != "carrier" {
		t.Errorf("customParameters = %v; want agent_id sales, trunk_id carrier", got)
	}
	d.Hangup(ctx)
	d.Close()
	m, err := p.Explain("127.0.0.1", "127.0.0.1:"+strconv.Itoa(int(tr.SourcePBXPort)), "sip:sales@127.0.0.1")
	if err != nil || !m.Matched || !strings.Contains(m.Reason, `deployed agent "sales"`) || !strings.Contains(m.Reason, `trunk "carrier"`) {
		t.Errorf("Explain = %+v, %v; want it to name the deployed agent and the trunk whose policy applies", m, err)
	}
	if code := u.code(t, tr.SourcePBXPort); code != 603 {
		t.Errorf("INVITE to another user got %d; want the trunk's 603", code)
	}
	// an agent of another organization is not reached through this
	// organization's trunk, nor named by its explanation
	p.SetAgent(&trunk.Agent{AgentID: "sales", WebsocketURL: url, Published: true, SIPDeployed: true, OrganizationID: "globex"})
	d3, code := u.callUser(t, "sales", tr.SourcePBXPort, diago.InviteOptions{})
	if d3 != nil {
		d3.Close()
	}
	if code != 603 {
		t.Errorf("INVITE to another organization's agent got %d; want the trunk's 603", code)
	}
	m, _ = p.Explain("127.0.0.1", "127.0.0.1:"+strconv.Itoa(int(tr.SourcePBXPort)), "sip:sales@127.0.0.1")
	if strings.Contains(m.Reason, "sales") {
		t.Errorf("Explain = %+v; it names another organization's agent", m)
	}
	p.DropAgent("sales")
	d2, code := u.callUser(t, "sales", tr.SourcePBXPort, diago.InviteOptions{})
	if d2 != nil {
		d2.Close()
	}
	if code != 603 {
		t.Errorf("INVITE to an undeployed agent got %d; want the trunk's 603", code)
	}
}

// TestBridgeInboundQUIC: the same echo over a QUIC agent: caller audio in
// datagrams, the agent's on the stream, stop when the caller hangs up.
func TestBridgeInboundQUIC(t *testing.T) {
	fa := fakeagent.New(fakeagent.Script{Echo: true, Token: "agent-secret"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ql, err := fa.ListenQUIC(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ql.Close()
	p := newPlane(t, Config{Bridger: bridge.Schemes{"quic": &aiquic.Dialer{RootCAs: ql.RootCAs}}})
	tr := aiTrunk(t, "ai-quic", "")
	tr.InboundAIWebsocketURL, tr.InboundAIQUICURL = "", ql.URL
	tr.AutoBargeinMode = "off"
	apply(t, p, tr)
	u := newUAC(t, "127.0.0.1")
	d, code := u.call(t, tr.SourcePBXPort, diago.InviteOptions{})
	if code != 200 {
		t.Fatalf("INVITE got %d; want 200", code)
	}
	defer d.Close()
	got := collect(d)
	call, ok := fa.Next(ctx)
	if !ok {
		t.Fatal("the agent was not connected")
	}
	start, ok := call.Started(ctx)
	if !ok || start.Start.MediaFormat.Encoding != "audio/x-l16" || call.Header.Get("Authorization") != "Bearer agent-secret" {
		t.Fatalf("start = %+v, authorization %q; want L16 and the bearer token", start.Start, call.Header.Get("Authorization"))
	}
	sig := signal(50 * 160)
	sendFrames(t, d, sig)
	time.Sleep(300 * time.Millisecond)
	heard := bridge.Encode(bridge.PCMU, nil, call.Audio())
	if _, ok := intact(heard, sig); !ok {
		t.Errorf("the agent did not receive the caller's audio intact over datagrams (%d bytes)", len(heard))
	}
	back := voiced(got())
	if _, ok := intact(back, sig); !ok {
		t.Errorf("the caller did not receive the echo intact over the stream (%d bytes)", len(back))
	}
	d.Hangup(ctx)
	if !call.Done(ctx) {
		t.Fatal("the agent connection stayed open after the caller hung up")
	}
	if ev := call.Events(); len(ev) == 0 || ev[len(ev)-1].Event != "stop" {
		t.Errorf("agent events = %v; want stop last", ev)
	}
}

// TestBridgeNoiseCancellation: with enable_noise_cancellation, steady
// noise from the caller reaches the agent much quieter; a trunkd built
// without libspeexdsp refuses the setting instead.
func TestBridgeNoiseCancellation(t *testing.T) {
	fa, url := agentFor(t, fakeagent.Script{})
	p := aiPlane(t)
	tr := aiTrunk(t, "ai-nc", url)
	tr.EnableNoiseCancellation = true
	if !denoise.Built {
		_, err := p.Prepare(context.Background(), tr)
		if trunk.ErrorCode(err) != trunk.EINVALID || !strings.Contains(err.Error(), "libspeexdsp") {
			t.Fatalf("Prepare with noise cancellation in a build without it = %v; want a clear refusal", err)
		}
		return
	}
	apply(t, p, tr)
	u := newUAC(t, "127.0.0.1")
	d, code := u.call(t, tr.SourcePBXPort, diago.InviteOptions{})
	if code != 200 {
		t.Fatalf("INVITE got %d; want 200", code)
	}
	defer d.Close()
	r := rand.New(rand.NewPCG(5, 6))
	noise := make([]int16, 3*8000)
	for i := range noise {
		noise[i] = int16(1000 * r.NormFloat64()) // about -30 dBFS
	}
	sendFrames(t, d, bridge.Encode(bridge.PCMU, nil, noise))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	call, ok := fa.Next(ctx)
	if !ok {
		t.Fatal("no agent call")
	}
	time.Sleep(200 * time.Millisecond)
	heard := call.Audio()
	if len(heard) < len(noise)-1600 {
		t.Fatalf("the agent heard %d samples; want about %d", len(heard), len(noise))
	}
	tail := heard[len(heard)-12000:] // the last 1.5 s: the estimator has learnt the noise
	if cut := level(noise[len(noise)-12000:]) - level(tail); cut < 10 {
		t.Errorf("noise reached the agent only %.1f dB quieter; want at least 10 dB", cut)
	}
	d.Hangup(ctx)
}

func level(pcm []int16) float64 {
	var s float64
	for _, v := range pcm {
		s += float64(v) * float64(v)
	}
	return 10 * math.Log10(s/float64(len(pcm))+1e-9)
}

// TestBridgeL16At16k: an agent on trunkd.ai.v1+l16-16000 gets the
// caller's audio resampled to 16 kHz and its echo comes back to the 8 kHz
// caller as the same tone, without images or aliases.
func TestBridgeL16At16k(t *testing.T) {
	fa, url := agentFor(t, fakeagent.Script{Echo: true, Profile: ws.ProtoL16_16k})
	p := aiPlane(t)
	tr := aiTrunk(t, "ai-16k", url)
	tr.APIBearerToken, tr.AutoBargeinMode = "", "off"
	apply(t, p, tr)
	u := newUAC(t, "127.0.0.1")
	d, code := u.call(t, tr.SourcePBXPort, diago.InviteOptions{})
	if code != 200 {
		t.Fatalf("INVITE got %d; want 200", code)
	}
	defer d.Close()
	got := collect(d)
	tone := make([]int16, 8000)
	for i := range tone {
		tone[i] = int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/8000))
	}
	sendFrames(t, d, bridge.Encode(bridge.PCMU, nil, tone))
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	call, ok := fa.Next(ctx)
	if !ok {
		t.Fatal("no agent call")
	}
	if st, _ := call.Started(ctx); st.Start.MediaFormat.SampleRate != 16000 {
		t.Errorf("start mediaFormat = %+v; want 16000 Hz", st.Start.MediaFormat)
	}
	if n := len(call.Audio()); n < 15000 {
		t.Errorf("the agent got %d samples; want about 16000 (1 s at 16 kHz)", n)
	}
	back := bridge.Decode(bridge.PCMU, nil, voiced(got()))
	if len(back) < 4000 {
		t.Fatalf("the caller got %d samples of echo back", len(back))
	}
	mid := back[len(back)/4 : 3*len(back)/4]
	sig, rest := toneAndRest(mid, 1000)
	if sig < -2.5 || rest > sig-30 {
		t.Errorf("echo through 16 kHz: 1 kHz at %.1f dB, everything else at %.1f dB; want the tone near 0 dB and the rest 30 dB below", sig, rest)
	}
	d.Hangup(ctx)
}

// toneAndRest splits s into the level of the tone hz (dB re the 8000
// amplitude sent) and the level of everything else.
func toneAndRest(s []int16, hz float64) (float64, float64) {
	w := 2 * math.Pi * hz / 8000
	var re, im, tot float64
	for i, v := range s {
		re += float64(v) * math.Cos(w*float64(i))
		im -= float64(v) * math.Sin(w*float64(i))
		tot += float64(v) * float64(v)
	}
	a := 2 * math.Hypot(re, im) / float64(len(s))
	tonePow := a * a / 2
	restPow := max(tot/float64(len(s))-tonePow, 1e-9)
	ref := 8000.0 * 8000 / 2
	return 10 * math.Log10(tonePow/ref), 10 * math.Log10(restPow/ref)
}

// TestAgentDTMFReachesCaller: keys a trunkd.ai.v1 agent sends arrive at a
// diago caller as RFC 4733 events.
func TestAgentDTMFReachesCaller(t *testing.T) {
	_, url := agentFor(t, fakeagent.Script{Profile: ws.ProtoPCMU, DTMF: "5#"})
	p := aiPlane(t)
	tr := aiTrunk(t, "ai-dtmf", url)
	tr.APIBearerToken = ""
	apply(t, p, tr)
	u := newUAC(t, "127.0.0.1")
	d, code := u.call(t, tr.SourcePBXPort, diago.InviteOptions{})
	if code != 200 {
		t.Fatalf("INVITE got %d; want 200", code)
	}
	defer d.Close()
	dr, err := d.AudioReaderDTMF()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var keys []rune
	dr.OnDTMF(func(k rune) error { mu.Lock(); keys = append(keys, k); mu.Unlock(); return nil })
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := dr.Read(buf); err != nil {
				return
			}
		}
	}()
	waitFor(t, "two keys at the caller", func() bool { mu.Lock(); defer mu.Unlock(); return len(keys) >= 2 })
	mu.Lock()
	if string(keys) != "5#" {
		t.Errorf("keys at the caller = %q; want \"5#\"", string(keys))
	}
	mu.Unlock()
	d.Hangup(context.Background())
}

// intact reports whether got holds sig whole from where sig's first 20 ms
// frame appears in it; i is that position, -1 when it never does.
func intact(got, sig []byte) (i int, ok bool) {
	i = bytes.Index(got, sig[:160])
	return i, i >= 0 && bytes.HasPrefix(got[i:], sig)
}
