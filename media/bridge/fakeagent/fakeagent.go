// Package fakeagent is an AI agent for tests, benchmarks and first steps:
// a WebSocket server speaking Twilio Media Streams (or a trunkd.ai.v1
// profile) that echoes, plays scripted audio with marks, clears on cue,
// hangs up, reads slowly, sends garbage or disconnects. It records what
// it receives. cmd/fakeagent serves it from the command line.
package fakeagent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/trunkd/trunkd/media/bridge"
	"github.com/trunkd/trunkd/media/bridge/ws"
)

// Script is what the fake agent does on each connection.
type Script struct {
	Echo        bool          // send every caller frame back at once
	Play        []int16       // 8 kHz audio sent after start
	Burst       bool          // send Play at once rather than paced in real time
	Chunk       time.Duration // Play's message size; 40 ms
	Mark        string        // mark name sent after Play (with a -N suffix per chunk when MarkEach)
	MarkEach    bool
	ClearAfter  time.Duration // send clear this long after start; 0 = never
	HangupAfter time.Duration // end the call this long after start: hangup (v1) or close 1000
	DropAfter   time.Duration // drop the TCP connection this long after start
	NoRead      bool          // stop reading after start (a slow, stuck agent)
	DTMF        string        // keys to send after start, 300 ms apart (trunkd.ai.v1 and QUIC)
	Garbage     string        // send this text message after start
	Binary      []byte        // send this binary message after start
	Profile     string        // subprotocol to select if trunkd offers it; "" = Twilio
	Token       string        // the bearer token required; "" = none
	Refuse      int           // answer the upgrade with this HTTP status
}

// Server is the fake agent; it is an http.Handler.
type Server struct {
	Script Script
	Log    *slog.Logger

	mu     sync.Mutex
	calls  []*Call
	notify chan *Call
}

// Call is what one connection saw.
type Call struct {
	Header http.Header
	Proto  string

	mu       sync.Mutex
	start    *ws.Message
	events   []ws.Message // every message but media
	audio    []int16      // the caller's audio, decoded
	started  chan struct{}
	done     chan struct{}
	closeErr error
}

// New returns a fake agent running s.
func New(s Script) *Server {
	return &Server{Script: s, notify: make(chan *Call, 64)}
}

// Next waits for the next call to connect.
func (s *Server) Next(ctx context.Context) (*Call, bool) {
	select {
	case c := <-s.notify:
		return c, true
	case <-ctx.Done():
		return nil, false
	}
}

// Calls lists the calls so far.
func (s *Server) Calls() []*Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// ServeHTTP accepts an agent connection.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sc := s.Script
	if sc.Refuse != 0 {
		http.Error(w, "refused by script", sc.Refuse)
		return
	}
	if sc.Token != "" && r.Header.Get("Authorization") != "Bearer "+sc.Token {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	var protos []string
	if sc.Profile != "" {
		protos = []string{sc.Profile}
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: protos})
	if err != nil {
		return
	}
	c.SetReadLimit(ws.ReadLimit)
	call := s.newCall(r.Header.Clone(), c.Subprotocol())
	s.serve(r.Context(), c, call)
}

func (s *Server) serve(ctx context.Context, c *websocket.Conn, call *Call) {
	defer close(call.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sc := s.Script
	o := &wsOut{c: c, proto: call.Proto}
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			call.mu.Lock()
			call.closeErr = err
			call.mu.Unlock()
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		var m ws.Message
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		switch m.Event {
		case "media":
			pcm := decode(call.Proto, m.Media.Payload)
			call.mu.Lock()
			call.audio = append(call.audio, pcm...)
			call.mu.Unlock()
			if sc.Echo {
				o.media(ctx, pcm)
			}
			continue
		case "start":
			call.mu.Lock()
			call.start = &m
			call.mu.Unlock()
			close(call.started)
			o.stream = m.StreamSID
			go s.script(ctx, o)
			if sc.NoRead {
				<-ctx.Done()
				return
			}
		}
		call.mu.Lock()
		call.events = append(call.events, m)
		call.mu.Unlock()
	}
}

// out is how a script talks to trunkd over one transport.
type out interface {
	media(ctx context.Context, pcm []int16)
	event(ctx context.Context, m ws.Message)
	garbage(ctx context.Context, text string, bin []byte)
	hangup(ctx context.Context)
	drop()
	streamSID() string
}

// script runs the timed parts of the script after start.
func (s *Server) script(ctx context.Context, o out) {
	sc := s.Script
	if sc.Garbage != "" || sc.Binary != nil {
		o.garbage(ctx, sc.Garbage, sc.Binary)
	}
	after := func(d time.Duration, f func()) {
		if d > 0 {
			t := time.AfterFunc(d, f)
			context.AfterFunc(ctx, func() { t.Stop() })
		}
	}
	after(sc.ClearAfter, func() { o.event(ctx, ws.Message{Event: "clear", StreamSID: o.streamSID()}) })
	after(sc.HangupAfter, func() { o.hangup(ctx) })
	after(sc.DropAfter, o.drop)
	for i, k := range sc.DTMF {
		after(time.Duration(i+1)*300*time.Millisecond, func() {
			o.event(ctx, ws.Message{Event: "dtmf", StreamSID: o.streamSID(), DTMF: &ws.DTMFBody{Digit: string(k)}})
		})
	}
	if len(sc.Play) > 0 {
		s.play(ctx, o)
	}
}

// play sends Play in chunks, paced or in a burst, with marks.
func (s *Server) play(ctx context.Context, o out) {
	sc := s.Script
	chunk := sc.Chunk
	if chunk <= 0 {
		chunk = 40 * time.Millisecond
	}
	n := int(chunk / (time.Second / bridge.Rate))
	tick := time.NewTicker(chunk)
	defer tick.Stop()
	for i := 0; i < len(sc.Play); i += n {
		o.media(ctx, sc.Play[i:min(i+n, len(sc.Play))])
		if sc.Mark != "" && sc.MarkEach {
			o.event(ctx, ws.Message{Event: "mark", StreamSID: o.streamSID(), Mark: &ws.MarkBody{Name: sc.Mark + "-" + strconv.Itoa(i/n+1)}})
		}
		if !sc.Burst {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}
	if sc.Mark != "" && !sc.MarkEach {
		o.event(ctx, ws.Message{Event: "mark", StreamSID: o.streamSID(), Mark: &ws.MarkBody{Name: sc.Mark}})
	}
}

// wsOut is out over a WebSocket.
type wsOut struct {
	mu     sync.Mutex
	c      *websocket.Conn
	proto  string
	stream string
}

func (o *wsOut) streamSID() string { return o.stream }

func (o *wsOut) event(ctx context.Context, m ws.Message) {
	b, _ := json.Marshal(m)
	o.mu.Lock()
	defer o.mu.Unlock()
	_ = o.c.Write(ctx, websocket.MessageText, b)
}

func (o *wsOut) media(ctx context.Context, pcm []int16) {
	o.event(ctx, ws.Message{Event: "media", StreamSID: o.stream, Media: &ws.MediaBody{Payload: base64.StdEncoding.EncodeToString(encode(o.proto, pcm))}})
}

func (o *wsOut) garbage(ctx context.Context, text string, bin []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if text != "" {
		_ = o.c.Write(ctx, websocket.MessageText, []byte(text))
	}
	if bin != nil {
		_ = o.c.Write(ctx, websocket.MessageBinary, bin)
	}
}

// hangup is the v1 hangup message, or a normal close for a Twilio agent.
func (o *wsOut) hangup(ctx context.Context) {
	if o.proto != "" {
		o.event(ctx, ws.Message{Event: "hangup", StreamSID: o.stream, Hangup: &ws.HangupBody{Reason: "done"}})
		return
	}
	o.c.Close(websocket.StatusNormalClosure, "done")
}

func (o *wsOut) drop() { o.c.CloseNow() }

// isL16 says whether a profile carries L16 (at its own rate: the fake
// agent keeps samples as they come).
func isL16(proto string) bool { return strings.HasPrefix(proto, "trunkd.ai.v1+l16-") }

func encode(proto string, pcm []int16) []byte {
	if isL16(proto) {
		b := make([]byte, 2*len(pcm))
		for i, s := range pcm {
			b[2*i], b[2*i+1] = byte(s), byte(uint16(s)>>8)
		}
		return b
	}
	return bridge.Encode(bridge.PCMU, nil, pcm)
}

func decode(proto, payload string) []int16 {
	b, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return nil
	}
	if isL16(proto) {
		pcm := make([]int16, len(b)/2)
		for i := range pcm {
			pcm[i] = int16(uint16(b[2*i]) | uint16(b[2*i+1])<<8)
		}
		return pcm
	}
	return bridge.Decode(bridge.PCMU, nil, b)
}

func (s *Server) newCall(h http.Header, proto string) *Call {
	call := &Call{Header: h, Proto: proto, started: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	select {
	case s.notify <- call:
	default:
	}
	return call
}

// record keeps a message received (not media).
func (c *Call) record(m ws.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, m)
}

// hear keeps caller audio received.
func (c *Call) hear(pcm []int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.audio = append(c.audio, pcm...)
}

// begin keeps the start message.
func (c *Call) begin(m ws.Message) {
	c.mu.Lock()
	c.start = &m
	c.mu.Unlock()
	close(c.started)
}

// Started waits for the call's start message.
func (c *Call) Started(ctx context.Context) (ws.Message, bool) {
	select {
	case <-c.started:
		c.mu.Lock()
		defer c.mu.Unlock()
		return *c.start, true
	case <-ctx.Done():
		return ws.Message{}, false
	}
}

// Done waits for the connection to end.
func (c *Call) Done(ctx context.Context) bool {
	select {
	case <-c.done:
		return true
	case <-ctx.Done():
		return false
	}
}

// Events lists the messages received so far, but media.
func (c *Call) Events() []ws.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}

// Audio is the caller audio received so far.
func (c *Call) Audio() []int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.audio)
}
