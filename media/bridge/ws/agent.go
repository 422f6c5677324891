package ws

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/trunkd/trunkd/media/bridge"
)

// agent is one WebSocket connection to an agent.
type agent struct {
	c       *websocket.Conn
	proto   string // selected subprotocol; "" = Twilio
	l16     bool
	rate    int                 // the profile's sample rate
	up      *bridge.Upsampler   // 8 kHz to rate, for L16 at 16/24 kHz
	down    *bridge.Downsampler // rate to 8 kHz
	seq     atomic.Int64
	chunk   int64 // only the sender goroutine sends media
	stream  string
	call    string
	account string
	closed  chan struct{}
	once    sync.Once
}

func newAgent(c *websocket.Conn, proto string) *agent {
	a := &agent{c: c, proto: proto, rate: bridge.Rate, closed: make(chan struct{})}
	if r := l16Rate(proto); r != 0 {
		a.l16, a.rate = true, r
		if r > bridge.Rate {
			a.up, a.down = bridge.NewUpsampler(r/bridge.Rate), bridge.NewDownsampler(r/bridge.Rate)
		}
	}
	return a
}

func (a *agent) v1() bool { return a.proto != "" }

// keepalive pings the agent; a ping unanswered for three periods closes
// the connection, which ends the call.
func (a *agent) keepalive(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-a.closed:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*every)
		err := a.c.Ping(ctx)
		cancel()
		if err != nil {
			a.c.CloseNow()
			return
		}
	}
}

func (a *agent) next() string { return strconv.FormatInt(a.seq.Add(1), 10) }

// WriteTimeout bounds one message to the agent: an agent that stops
// reading for this long ends the call. (coder/websocket closes the
// connection when a write's context ends, so the call's own context is
// not used: the stop message must still go out after a hang-up.)
const WriteTimeout = 5 * time.Second

func (a *agent) write(ctx context.Context, m Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), WriteTimeout)
	defer cancel()
	return a.c.Write(ctx, websocket.MessageText, b)
}

// Begin implements bridge.Agent: connected, then start.
func (a *agent) Begin(ctx context.Context, s bridge.Start) error {
	a.stream, a.call, a.account = s.StreamSID, s.CallSID, bridge.SID("AC", s.TrunkID)
	if err := a.write(ctx, Message{Event: "connected", Protocol: "Call", Version: "1.0.0"}); err != nil {
		return err
	}
	f := MediaFormat{Encoding: "audio/x-mulaw", SampleRate: a.rate, Channels: 1}
	if a.l16 {
		f.Encoding = "audio/x-l16"
	}
	params := map[string]string{
		"from_number": s.From, "to_number": s.To, "direction": s.Direction,
		"trunk_id": s.TrunkID, "sip_call_id": s.CallID,
	}
	if s.AgentID != "" {
		params["agent_id"] = s.AgentID
	}
	return a.write(ctx, Message{Event: "start", SequenceNumber: a.next(), StreamSID: a.stream, Start: &StartBody{
		AccountSID: a.account, StreamSID: a.stream, CallSID: a.call, Tracks: []string{"inbound"},
		CustomParameters: params, MediaFormat: f, Profile: a.proto,
	}})
}

// Send implements bridge.Agent.
func (a *agent) Send(ctx context.Context, m bridge.Out) error {
	switch m.Kind {
	case bridge.OutAudio:
		a.chunk++
		return a.write(ctx, Message{Event: "media", SequenceNumber: a.next(), StreamSID: a.stream, Media: &MediaBody{
			Track: "inbound", Chunk: strconv.FormatInt(a.chunk, 10), Timestamp: strconv.FormatInt(m.TimeMS, 10),
			Payload: base64.StdEncoding.EncodeToString(a.encode(m.Audio)),
		}})
	case bridge.OutDTMF:
		return a.write(ctx, Message{Event: "dtmf", SequenceNumber: a.next(), StreamSID: a.stream,
			DTMF: &DTMFBody{Track: "inbound_track", Digit: m.Digit}})
	case bridge.OutMark:
		mb := &MarkBody{Name: m.Mark.Name}
		if a.v1() {
			mb.State = "played"
			if m.Mark.Cleared {
				mb.State = "cleared"
			}
			ms := m.Mark.PlayedMS
			mb.PlayedMS = &ms
		}
		return a.write(ctx, Message{Event: "mark", SequenceNumber: a.next(), StreamSID: a.stream, Mark: mb})
	case bridge.OutBargein:
		if !a.v1() {
			return nil // Twilio agents learn of it from their cleared marks
		}
		b := m.Bargein
		return a.write(ctx, Message{Event: "bargein", SequenceNumber: a.next(), StreamSID: a.stream,
			Bargein: &Bargein{Mode: b.Mode, AtMS: b.AtMS, PlayedMS: b.PlayedMS}})
	case bridge.OutSpeech:
		if !a.v1() {
			return nil
		}
		st := "stopped"
		if m.Speaking {
			st = "started"
		}
		return a.write(ctx, Message{Event: "speech", SequenceNumber: a.next(), StreamSID: a.stream, Speech: &Speech{State: st}})
	case bridge.OutStop:
		return a.write(ctx, Message{Event: "stop", SequenceNumber: a.next(), StreamSID: a.stream,
			Stop: &StopBody{AccountSID: a.account, CallSID: a.call}})
	}
	return fmt.Errorf("unknown message kind %d", m.Kind)
}

func (a *agent) encode(pcm []int16) []byte {
	if a.up != nil {
		pcm = a.up.Process(make([]int16, 0, len(pcm)*a.rate/bridge.Rate), pcm)
	}
	if a.l16 {
		b := make([]byte, 2*len(pcm))
		for i, s := range pcm {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(s))
		}
		return b
	}
	return bridge.Encode(bridge.PCMU, make([]byte, 0, len(pcm)), pcm)
}

func (a *agent) decode(b []byte) ([]int16, error) {
	if !a.l16 {
		return bridge.Decode(bridge.PCMU, make([]int16, 0, len(b)), b), nil
	}
	if len(b)%2 != 0 {
		return nil, errors.New("L16 audio of an odd number of bytes")
	}
	pcm := make([]int16, len(b)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	if a.down != nil {
		pcm = a.down.Process(make([]int16, 0, len(pcm)*bridge.Rate/a.rate+1), pcm)
	}
	return pcm, nil
}

// Recv implements bridge.Agent. A message that cannot be understood ends
// the call with an error: invalid JSON, bad base64, binary on the Twilio
// profile. An unknown event is ignored (InIgnored).
func (a *agent) Recv(ctx context.Context) (bridge.In, error) {
	// Not ctx: coder/websocket closes the connection when a read's context
	// ends, before stop could be sent. Close ends the read.
	typ, b, err := a.c.Read(context.WithoutCancel(ctx))
	if err != nil {
		return bridge.In{}, err
	}
	if typ == websocket.MessageBinary {
		if !a.v1() {
			a.c.Close(websocket.StatusUnsupportedData, "binary message on the Twilio profile")
			return bridge.In{}, errBinary
		}
		pcm, err := a.decode(b)
		if err != nil {
			a.c.Close(websocket.StatusUnsupportedData, err.Error())
			return bridge.In{}, err
		}
		return bridge.In{Kind: bridge.InAudio, Audio: pcm}, nil
	}
	in, err := a.parse(b)
	if err != nil {
		a.c.Close(websocket.StatusInvalidFramePayloadData, truncate(err.Error()))
		return bridge.In{}, fmt.Errorf("agent protocol error: %w", err)
	}
	return in, nil
}

// parse reads one JSON message from the agent.
func (a *agent) parse(b []byte) (bridge.In, error) { return ParseMessage(b, a.decode, a.v1()) }

// ParseMessage reads one JSON message from an agent, decoding a media
// payload with decode. v1 is whether the agent speaks trunkd's own
// protocol, whose hangup and dtmf events are read; from a Twilio-style
// agent they are ignored like any other unknown event.
func ParseMessage(b []byte, decode func([]byte) ([]int16, error), v1 bool) (bridge.In, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return bridge.In{}, fmt.Errorf("invalid JSON: %v", err)
	}
	switch m.Event {
	case "media":
		if m.Media == nil {
			return bridge.In{}, errors.New("media event without media")
		}
		raw, err := base64.StdEncoding.DecodeString(m.Media.Payload)
		if err != nil {
			return bridge.In{}, fmt.Errorf("media payload: %v", err)
		}
		pcm, err := decode(raw)
		if err != nil {
			return bridge.In{}, err
		}
		return bridge.In{Kind: bridge.InAudio, Audio: pcm}, nil
	case "mark":
		if m.Mark == nil {
			return bridge.In{}, errors.New("mark event without mark")
		}
		return bridge.In{Kind: bridge.InMark, Name: m.Mark.Name}, nil
	case "clear":
		return bridge.In{Kind: bridge.InClear}, nil
	case "hangup":
		if v1 {
			return bridge.In{Kind: bridge.InHangup}, nil
		}
	case "dtmf":
		if v1 && m.DTMF != nil {
			return bridge.In{Kind: bridge.InDTMF, Digit: m.DTMF.Digit}, nil
		}
	}
	return bridge.In{Kind: bridge.InIgnored, Name: m.Event}, nil
}

func truncate(s string) string {
	if len(s) > 120 {
		return s[:120]
	}
	return s
}

// Close implements bridge.Agent.
func (a *agent) Close(normal bool, reason string) error {
	a.once.Do(func() { close(a.closed) })
	code := websocket.StatusNormalClosure
	if !normal {
		code = websocket.StatusGoingAway
	}
	done := make(chan error, 1)
	go func() { done <- a.c.Close(code, truncate(reason)) }()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		a.c.CloseNow() // an agent that does not read never completes the handshake
		return errors.New("agent did not complete the close handshake")
	}
}

// closeWait bounds the close handshake.
const closeWait = time.Second
