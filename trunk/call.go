package trunk

import "time"

// Call directions.
const (
	Inbound  = "inbound"
	Outbound = "outbound"
)

// Call states, as ListCalls shows them.
const (
	CallRinging  = "ringing"  // INVITE sent or received, no answer yet
	CallAnswered = "answered" // 200 OK, media flowing
)

// DialRequest asks for an outbound call through a trunk.
type DialRequest struct {
	TrunkID     string
	To          string // user part or full SIP URI of the callee
	From        string // caller user part; sip_username when empty
	Timeout     time.Duration
	AudioURL    string        // played once answered, then hang up; empty: stay up
	MaxDuration time.Duration // 0: no limit
	AIURL       string        // bridge the answered call to this agent (ws:// or wss://); exclusive with AudioURL
	AgentID     string        // the agent_id told to the agent; the trunk's when empty
}

// DialResult is the final outcome of an outbound INVITE.
type DialResult struct {
	CallID   string
	Answered bool
	SIPCode  int    // final response code; 0 when none arrived (timeout, transport error)
	Reason   string // reason phrase or why no response arrived
	Setup    time.Duration
}

// Call is a call in flight, as ListCalls shows it.
type Call struct {
	CallID    string
	TrunkID   string
	Direction string // Inbound or Outbound
	From, To  string
	State     string // CallRinging or CallAnswered
	Start     time.Time
}

// Quality is a trunk's live call figures over the quality window.
type Quality struct {
	Attempted, Answered uint64  // outbound calls that ended their setup in the window
	ASR                 float64 // answered / attempted × 100; 0 when nothing was attempted
	ACD                 float64 // mean seconds of answered calls that ended in the window
	MOS                 float64 // mean per-call MOS in the window; 0 when no call had enough packets
	PDDms               float64 // mean INVITE → first 180/183, ms
}
