package ws

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/trunkd/trunkd/media/bridge"
)

var update = flag.Bool("update", false, "rewrite the golden conversations in testdata/ai")

// peer is a scripted agent server: it selects proto, records every
// message trunkd sends and sends what the test queues.
type peer struct {
	proto string
	got   chan []byte
	send  chan []byte
	bin   chan []byte
	hdr   chan http.Header
}

func newPeer(t *testing.T, proto string) (*peer, string) {
	p := &peer{proto: proto, got: make(chan []byte, 64), send: make(chan []byte, 64), bin: make(chan []byte, 8), hdr: make(chan http.Header, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.hdr <- r.Header.Clone()
		var protos []string
		if p.proto != "" {
			protos = []string{p.proto}
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: protos})
		if err != nil {
			return
		}
		ctx := r.Context()
		go func() {
			for {
				select {
				case b := <-p.send:
					_ = c.Write(ctx, websocket.MessageText, b)
				case b := <-p.bin:
					_ = c.Write(ctx, websocket.MessageBinary, b)
				case <-ctx.Done():
					return
				}
			}
		}()
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			p.got <- b
		}
	}))
	t.Cleanup(srv.Close)
	return p, "ws://" + srv.Listener.Addr().String() + "/media"
}

func (p *peer) next(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-p.got:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("no message from trunkd")
		return nil
	}
}

var target = bridge.Target{Token: "12345", TrunkID: "carrier-1", AgentID: "agent-7", CallID: "call-1@host",
	From: "+15550001111", To: "+15550002222", Direction: "inbound"}

func connect(t *testing.T, url string) bridge.Agent {
	t.Helper()
	tg := target
	tg.URL = url
	a, err := (&Dialer{}).Connect(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(true, "") })
	st := bridge.Start{Target: tg, StreamSID: bridge.SID("MZ", tg.CallID), CallSID: bridge.SID("CA", tg.CallID)}
	if err := a.Begin(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	return a
}

// golden compares trunkd's side of a conversation with testdata/ai/name.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "..", "..", "testdata", "ai", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

// TestTwilioConversation: what trunkd sends a plain Twilio agent, byte for
// byte, and what it makes of the messages Twilio's docs show agents send.
func TestTwilioConversation(t *testing.T) {
	p, url := newPeer(t, "")
	a := connect(t, url)
	ctx := context.Background()
	frame := bridge.Decode(bridge.PCMU, nil, bytes.Repeat([]byte{0x7E, 0xFE}, 80))
	for _, m := range []bridge.Out{
		{Kind: bridge.OutAudio, Audio: frame, TimeMS: 0},
		{Kind: bridge.OutAudio, Audio: frame, TimeMS: 20},
		{Kind: bridge.OutDTMF, Digit: "1"},
		{Kind: bridge.OutMark, Mark: bridge.MarkDone{Name: "utt-1", PlayedMS: 1200}},
		{Kind: bridge.OutBargein, Bargein: bridge.BargeinInfo{Mode: "energy"}}, // not for Twilio agents
		{Kind: bridge.OutStop},
	} {
		if err := a.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	var conv []byte
	for range 7 {
		conv = append(append(conv, p.next(t)...), '\n')
	}
	golden(t, "twilio-to-agent.jsonl", conv)
	h := <-p.hdr
	if h.Get("Authorization") != "Bearer 12345" || h.Get(HeaderTwilioSig) != TwilioSignature("12345", url) || h.Get(HeaderCallID) != "call-1@host" {
		t.Errorf("upgrade headers = %v", h)
	}

	payload := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x7E}, 400))
	for _, s := range []string{
		`{"event":"media","streamSid":"MZ18ad3ab5a668481ce02b83e7d29dc3b5","media":{"payload":"` + payload + `"}}`,
		`{"event":"mark","streamSid":"MZ18ad3ab5a668481ce02b83e7d29dc3b5","mark":{"name":"my label"}}`,
		`{"event":"clear","streamSid":"MZ18ad3ab5a668481ce02b83e7d29dc3b5"}`,
		`{"event":"hangup"}`, // a trunkd.ai.v1 message: ignored on the Twilio profile
		`{"event":"somethingNew","x":1}`,
	} {
		p.send <- []byte(s)
	}
	want := []bridge.In{
		{Kind: bridge.InAudio, Audio: bridge.Decode(bridge.PCMU, nil, bytes.Repeat([]byte{0x7E}, 400))},
		{Kind: bridge.InMark, Name: "my label"},
		{Kind: bridge.InClear},
		{Kind: bridge.InIgnored, Name: "hangup"},
		{Kind: bridge.InIgnored, Name: "somethingNew"},
	}
	for i, w := range want {
		got, err := a.Recv(ctx)
		if err != nil || got.Kind != w.Kind || got.Name != w.Name || !slices.Equal(got.Audio, w.Audio) {
			t.Errorf("message %d = %+v, %v; want %+v", i, got.Kind, err, w.Kind)
		}
	}
}

// TestV1Profile: an agent selecting trunkd.ai.v1+l16-8000 gets L16 in
// start, marks with their state and played ms, barge-in events, and may
// send binary L16 and hang up.
func TestV1Profile(t *testing.T) {
	p, url := newPeer(t, ProtoL16_8k)
	a := connect(t, url)
	ctx := context.Background()
	for _, m := range []bridge.Out{
		{Kind: bridge.OutAudio, Audio: []int16{1, -2, 300, -400}, TimeMS: 0},
		{Kind: bridge.OutBargein, Bargein: bridge.BargeinInfo{Mode: "energy", AtMS: 5120, PlayedMS: 1840}},
		{Kind: bridge.OutMark, Mark: bridge.MarkDone{Name: "utt-1", Cleared: true, PlayedMS: 1840}},
		{Kind: bridge.OutSpeech, Speaking: true},
	} {
		if err := a.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	var conv []byte
	for range 6 {
		conv = append(append(conv, p.next(t)...), '\n')
	}
	golden(t, "v1-l16-to-agent.jsonl", conv)

	pcm := make([]byte, 8)
	for i, s := range []int16{5, -6, 7000, -8000} {
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(s))
	}
	p.bin <- pcm
	if got, err := a.Recv(ctx); err != nil || got.Kind != bridge.InAudio || !slices.Equal(got.Audio, []int16{5, -6, 7000, -8000}) {
		t.Errorf("binary L16 = %+v, %v; want the samples", got, err)
	}
	p.send <- []byte(`{"event":"hangup","hangup":{"reason":"done"}}`)
	if got, err := a.Recv(ctx); err != nil || got.Kind != bridge.InHangup {
		t.Errorf("hangup = %+v, %v; want InHangup", got, err)
	}
}

// TestHostileMessagesEndTheStream: what cannot be understood ends the
// stream with an error (and so the call), never a crash or a stall.
func TestHostileMessagesEndTheStream(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		bin  []byte
	}{
		{"invalid json", "{nope", nil},
		{"bad base64", `{"event":"media","media":{"payload":"!!"}}`, nil},
		{"media without body", `{"event":"media"}`, nil},
		{"binary on twilio", "", []byte{1, 2}},
		{"over the read limit", `{"event":"media","media":{"payload":"` + strings.Repeat("A", ReadLimit) + `"}}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, url := newPeer(t, "")
			a := connect(t, url)
			if tc.bin != nil {
				p.bin <- tc.bin
			} else {
				p.send <- []byte(tc.text)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if got, err := a.Recv(ctx); err == nil {
				t.Errorf("Recv = %+v; want an error", got)
			}
		})
	}
}

func TestSignatures(t *testing.T) {
	// Known vectors, computed with Python's hmac module.
	if got := TwilioSignature("12345", "wss://agent.example.com/media?x=1"); got != "+Xn/SDBpiVjw8bdBCjeerJJJafc=" {
		t.Errorf("TwilioSignature = %q", got)
	}
	if got := Sign("12345", "1700000000", "call-1@host"); got != "v1=ae6ab117673141925f76275f9e7719e12d5f0a11c0d760c586e5f29c6fd5569c" {
		t.Errorf("Sign = %q", got)
	}
}

func TestUnreachableAndRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) }))
	defer srv.Close()
	tg := target
	tg.URL = "ws://" + srv.Listener.Addr().String() + "/"
	_, err := (&Dialer{}).Connect(context.Background(), tg)
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") {
		t.Errorf("Connect to a refusing agent = %v; want HTTP 403", err)
	}
}

// TestShapesMatchTwilioDocs: every message trunkd sends a Twilio agent has
// the keys and JSON types of the same event in Twilio's documentation
// (testdata/ai/twilio-docs.jsonl, transcribed from the Media Streams
// "WebSocket messages" page); customParameters are the caller's own.
func TestShapesMatchTwilioDocs(t *testing.T) {
	docs := map[string]any{}
	for _, l := range readLines(t, "twilio-docs.jsonl") {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		docs[m["event"].(string)] = m
	}
	for _, l := range readLines(t, "twilio-to-agent.jsonl") {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		ev := m["event"].(string)
		if got, want := shape(m), shape(docs[ev]); got != want {
			t.Errorf("%s: shape\n%s\nwant (Twilio docs)\n%s", ev, got, want)
		}
	}
}

func readLines(t *testing.T, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "ai", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSpace(b), []byte("\n"))
}

// shape lists the key paths of a JSON value with their types.
func shape(v any) string {
	var l []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if strings.HasSuffix(path, "customParameters") {
				l = append(l, path+": object")
				return
			}
			for k, e := range x {
				walk(path+"."+k, e)
			}
		case []any:
			l = append(l, path+": array")
		default:
			l = append(l, fmt.Sprintf("%s: %T", path, x))
		}
	}
	walk("", v)
	slices.Sort(l)
	return strings.Join(l, "\n")
}
