package ws

// The messages on the wire, as Twilio Media Streams shapes them: every
// number a string except mediaFormat's. trunkd.ai.v1 adds fields and
// events; a Twilio agent ignores them.

// Message is any message of the stream, both directions. Only the fields
// of its event are set.
type Message struct {
	Event          string      `json:"event"`
	SequenceNumber string      `json:"sequenceNumber,omitempty"`
	Protocol       string      `json:"protocol,omitempty"` // connected
	Version        string      `json:"version,omitempty"`  // connected
	Start          *StartBody  `json:"start,omitempty"`
	Media          *MediaBody  `json:"media,omitempty"`
	DTMF           *DTMFBody   `json:"dtmf,omitempty"`
	Mark           *MarkBody   `json:"mark,omitempty"`
	Stop           *StopBody   `json:"stop,omitempty"`
	Bargein        *Bargein    `json:"bargein,omitempty"`
	Speech         *Speech     `json:"speech,omitempty"`
	Hangup         *HangupBody `json:"hangup,omitempty"`
	StreamSID      string      `json:"streamSid,omitempty"`
}

// StartBody is the start event's body.
type StartBody struct {
	AccountSID       string            `json:"accountSid"`
	StreamSID        string            `json:"streamSid"`
	CallSID          string            `json:"callSid"`
	Tracks           []string          `json:"tracks"`
	CustomParameters map[string]string `json:"customParameters"`
	MediaFormat      MediaFormat       `json:"mediaFormat"`
	Profile          string            `json:"profile,omitempty"` // trunkd.ai.v1: the subprotocol in use
}

// MediaFormat says how media payloads are encoded.
type MediaFormat struct {
	Encoding   string `json:"encoding"` // audio/x-mulaw or audio/x-l16
	SampleRate int    `json:"sampleRate"`
	Channels   int    `json:"channels"`
}

// MediaBody carries audio: base64 of the profile's encoding.
type MediaBody struct {
	Track     string `json:"track,omitempty"`
	Chunk     string `json:"chunk,omitempty"`
	Timestamp string `json:"timestamp,omitempty"`
	Payload   string `json:"payload"`
}

// DTMFBody is one digit.
type DTMFBody struct {
	Track string `json:"track,omitempty"`
	Digit string `json:"digit"`
}

// MarkBody names a mark; trunkd.ai.v1 adds its state and the played ms.
type MarkBody struct {
	Name     string `json:"name"`
	State    string `json:"state,omitempty"` // played or cleared
	PlayedMS *int64 `json:"played_ms,omitempty"`
}

// StopBody ends the stream.
type StopBody struct {
	AccountSID string `json:"accountSid"`
	CallSID    string `json:"callSid"`
}

// Bargein reports a cut of the agent's playback by trunkd (trunkd.ai.v1).
type Bargein struct {
	Mode     string `json:"mode"`
	AtMS     int64  `json:"at_ms"`
	PlayedMS int64  `json:"played_ms"`
}

// Speech is a caller speech hint in semantic mode (trunkd.ai.v1).
type Speech struct {
	State string `json:"state"` // started or stopped
}

// HangupBody is the agent's request to end the call (trunkd.ai.v1).
type HangupBody struct {
	Reason string `json:"reason,omitempty"`
}
