package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"time"
)

// Audio frames: 20 ms of 8 kHz mono 16-bit PCM, the phone side's unit.
const (
	Rate         = 8000
	FrameSamples = Rate / 50 // 160
	FrameTime    = 20 * time.Millisecond
)

// Law is the G.711 law of a call's audio.
type Law int

// The laws the bridge speaks to the phone.
const (
	PCMU Law = 0 // RTP payload type 0
	PCMA Law = 8 // RTP payload type 8
)

// Packet is one RTP packet as the phone side read it.
type Packet struct {
	PT      uint8
	Seq     uint16
	TS      uint32
	Payload []byte
}

// Phone is the call side of a bridge.
type Phone struct {
	Law     Law
	EventPT uint8 // RFC 4733 telephone-event payload type; 0 = 101

	// Read blocks for the next RTP packet of the caller; an error ends the
	// uplink (the call's media closed).
	Read func() (Packet, error)
	// Send, if set, sends one 20 ms frame of encoded audio at once, its
	// RTP timestamp one frame after the last; the bridge then paces the
	// frames itself and can start the agent's speech between ticks.
	Send func(payload []byte) error
	// Write sends one 20 ms frame of encoded audio and returns when the
	// next one is due (it paces); used when Send is nil.
	Write func(payload []byte) error
	// Event, if set (with Send), sends an RFC 4733 telephone-event packet
	// at once: its RTP timestamp stays that of the event's start, then
	// advances by adv samples after it (the last packet of an event
	// passes the event's whole span). Without it, DTMF from the agent is
	// not sent to the caller.
	Event func(payload []byte, adv uint32, marker bool) error
	// Tap, if set, sees every packet read, with its arrival time.
	Tap func(p Packet, at time.Time)
}

// Target is where and on whose behalf an agent connection goes.
type Target struct {
	URL       string
	Token     string // api_bearer_token; "" sends no credentials
	TrunkID   string
	AgentID   string
	CallID    string // SIP Call-ID
	From      string
	To        string
	Direction string // inbound or outbound
}

// Connector opens an agent connection; transports implement it.
type Connector interface {
	Connect(ctx context.Context, t Target) (Agent, error)
}

// Schemes routes a Target to the Connector of its URL scheme.
type Schemes map[string]Connector

// Supports reports whether a URL's scheme has a Connector.
func (s Schemes) Supports(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	_, ok := s[strings.ToLower(u.Scheme)]
	return ok
}

// Connect implements Connector.
func (s Schemes) Connect(ctx context.Context, t Target) (Agent, error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, err
	}
	c, ok := s[strings.ToLower(u.Scheme)]
	if !ok {
		return nil, errors.New("no agent transport for scheme " + u.Scheme + " in this trunkd")
	}
	return c.Connect(ctx, t)
}

// OutKind is what the bridge sends the agent.
type OutKind int

// What goes to the agent.
const (
	OutAudio   OutKind = iota // Audio: 20 ms of the caller, TimeMS from stream start
	OutDTMF                   // Digit
	OutMark                   // Mark: a mark played or cleared
	OutBargein                // Bargein: the caller spoke over the agent; playback was cut
	OutSpeech                 // Speaking: caller speech started (true) or stopped
	OutStop                   // the caller hung up
)

// Out is one message to the agent.
type Out struct {
	Kind     OutKind
	Audio    []int16
	TimeMS   int64
	Digit    string
	Mark     MarkDone
	Bargein  BargeinInfo
	Speaking bool

	at time.Time // when the audio was read, for the uplink latency
}

// MarkDone reports a mark: played (the audio before it went out) or
// cleared (dropped by clear or barge-in), with the ms of the agent's audio
// actually played since the stream started.
type MarkDone struct {
	Name     string
	Cleared  bool
	PlayedMS int64
}

// BargeinInfo describes a cut made by trunkd.
type BargeinInfo struct {
	Mode     string
	AtMS     int64 // stream time of the cut
	PlayedMS int64
}

// InKind is what the agent sends.
type InKind int

// What comes from the agent.
const (
	InAudio   InKind = iota // Audio: agent speech at 8 kHz, any length
	InMark                  // Name: report when the audio before it has played
	InClear                 // drop queued audio, report pending marks cleared
	InHangup                // end the call
	InDTMF                  // Digit: send to the caller (RFC 4733)
	InIgnored               // a well-formed message the bridge does not act on
)

// In is one message from the agent.
type In struct {
	Kind  InKind
	Audio []int16
	Name  string
	Digit string
}

// Start is what the agent is told when the stream starts.
type Start struct {
	Target
	StreamSID string
	CallSID   string
}

// Agent is one connection to an AI agent. Send and Recv may run
// concurrently with each other; Close ends both.
type Agent interface {
	// Begin tells the agent the stream starts (Twilio's connected and start).
	Begin(ctx context.Context, s Start) error
	Send(ctx context.Context, m Out) error
	Recv(ctx context.Context) (In, error)
	// Close ends the connection; normal says the call ended as it should.
	Close(normal bool, reason string) error
}

// SID derives a Twilio-shaped id: prefix and 32 hex digits of a hash of
// key, stable for one call ("MZ" stream, "CA" call, "AC" account).
func SID(prefix, key string) string {
	h := sha256.Sum256([]byte(prefix + ":" + key))
	return prefix + hex.EncodeToString(h[:16])
}
