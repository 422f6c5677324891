package trunk

import (
	"fmt"
	"log/slog"
	"slices"
)

// InboundRule says what a trunk does with an inbound call when
// RejectIncomingCalls is false.
type InboundRule int32

// Inbound rules. The numbers are part of the wire contract.
const (
	RuleReject          InboundRule = 0
	RulePlayAndHangup   InboundRule = 1
	RuleNotifyAndHangup InboundRule = 2
	RuleHandleAI        InboundRule = 3
)

func (r InboundRule) String() string {
	switch r {
	case RuleReject:
		return "REJECT"
	case RulePlayAndHangup:
		return "PLAY_AND_HANGUP"
	case RuleNotifyAndHangup:
		return "NOTIFY_AND_HANGUP"
	case RuleHandleAI:
		return "HANDLE_AI"
	}
	return fmt.Sprintf("InboundRule(%d)", int32(r))
}

// KnownCodecs lists the codecs trunkd knows, by the names used in
// CodecPreferences. Read it; do not modify it.
var KnownCodecs = []string{"PCMU", "PCMA", "OPUS"}

// BargeinModes lists the barge-in modes accepted in AutoBargeinMode. Read
// it; do not modify it.
var BargeinModes = []string{"energy", "vad", "semantic", "off"}

// Trunk is the full record of one SIP trunk. The json names are the wire and
// file names of the fields (snake_case); the rpc and store packages use them.
//
// SIPPassword and APIBearerToken are secrets: they are never returned by the
// API, are encrypted at rest, and are left out of String and LogValue.
type Trunk struct {
	TrunkID string `json:"trunk_id"`

	ChannelLimit uint32 `json:"channel_limit"`

	InternalSIPIP string `json:"internal_sip_ip"`
	ExternalSIPIP string `json:"external_sip_ip"`
	InternalRTPIP string `json:"internal_rtp_ip"`
	ExternalRTPIP string `json:"external_rtp_ip"`
	GatewayIP     string `json:"gateway_ip"`
	SBCIP         string `json:"sbc_ip"`

	SourcePBXPort      uint16 `json:"source_pbx_port"`
	DestinationSBCPort uint16 `json:"destination_sbc_port"`

	DisplayName string `json:"display_name"`
	Domain      string `json:"domain"`
	Proxy       string `json:"proxy"`

	RequireRegistration bool   `json:"require_registration"`
	SIPUsername         string `json:"sip_username"`
	SIPPassword         string `json:"sip_password"`
	RegisterExpiresSec  uint32 `json:"register_expires_sec"`

	CodecPreferences []string `json:"codec_preferences"`
	RTPStartPort     uint16   `json:"rtp_start_port"`
	RTPEndPort       uint16   `json:"rtp_end_port"`
	MediaIPCIDRs     []string `json:"media_ip_cidrs"`

	RejectIncomingCalls bool   `json:"reject_incoming_calls"`
	RejectSIPCode       uint16 `json:"reject_sip_code"`
	RejectAudioFile     string `json:"reject_audio_file"`
	IgnoreEarlyMedia    bool   `json:"ignore_early_media"`
	TerminateOnHold     bool   `json:"terminate_on_hold"`

	InboundRule           InboundRule `json:"inbound_rule"`
	InboundAudioURL       string      `json:"inbound_audio_url"`
	InboundWebhookURL     string      `json:"inbound_webhook_url"`
	InboundAIWebsocketURL string      `json:"inbound_ai_websocket_url"`
	InboundAIQUICURL      string      `json:"inbound_ai_quic_url"`
	APIBearerToken        string      `json:"api_bearer_token"`
	AIWebsocketURL        string      `json:"ai_websocket_url"`
	AIQUICURL             string      `json:"ai_quic_url"`

	AutoBargeinMode           string `json:"auto_bargein_mode"`
	AutoBargeinAggressiveness int32  `json:"auto_bargein_aggressiveness"`
	AgentID                   string `json:"agent_id"`
	EnableNoiseCancellation   bool   `json:"enable_noise_cancellation,omitempty"` // denoise caller audio sent to the agent
}

// Defaults returns a Trunk holding every default of the record. Decoders
// start from it so that absent fields take their defaults.
func Defaults() Trunk {
	return Trunk{
		ChannelLimit:              50,
		SourcePBXPort:             5060,
		DestinationSBCPort:        5060,
		RegisterExpiresSec:        3600,
		CodecPreferences:          []string{"PCMU", "PCMA", "OPUS"},
		RTPStartPort:              16384,
		RTPEndPort:                32768,
		MediaIPCIDRs:              []string{},
		RejectIncomingCalls:       true,
		RejectSIPCode:             603,
		InboundRule:               RuleReject,
		AutoBargeinMode:           "energy",
		AutoBargeinAggressiveness: 2,
	}
}

// Clone returns a deep copy of t.
func (t *Trunk) Clone() *Trunk {
	c := *t
	c.CodecPreferences = slices.Clone(t.CodecPreferences)
	c.MediaIPCIDRs = slices.Clone(t.MediaIPCIDRs)
	return &c
}

// Redacted returns a copy of t with its secrets replaced by a marker when
// set, for logs and diagnostics.
func (t *Trunk) Redacted() *Trunk {
	c := t.Clone()
	if c.SIPPassword != "" {
		c.SIPPassword = "[redacted]"
	}
	if c.APIBearerToken != "" {
		c.APIBearerToken = "[redacted]"
	}
	return c
}

// String describes the trunk without its secrets.
func (t *Trunk) String() string {
	return fmt.Sprintf("trunk %q (gateway %q, sbc %q, domain %q)", t.TrunkID, t.GatewayIP, t.SBCIP, t.Domain)
}

// LogValue keeps secrets out of structured logs.
func (t *Trunk) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("trunk_id", t.TrunkID),
		slog.String("gateway_ip", t.GatewayIP),
		slog.String("sbc_ip", t.SBCIP),
		slog.String("domain", t.Domain),
	)
}

// Status is the live, per-trunk state the SIP plane reports. Its zero value
// is what a trunk shows before the SIP plane has anything to say.
type Status struct {
	Quality              // ASR, ACD, MOS, PDD over the quality window
	Breaker BreakerState // "" when the SIP plane has no breaker for the trunk
	SIP     SIPStatus
}

// CircuitOpen reports whether the trunk's circuit breaker is not closed
// (open or half-open).
func (s Status) CircuitOpen() bool { return s.Breaker.Tripped() }

// SIPState is a trunk's state on the SIP plane.
type SIPState string

// SIP plane states of a trunk.
const (
	SIPOff      SIPState = "off"      // not on the SIP plane (no SIP plane, or not applied)
	SIPActive   SIPState = "active"   // listening and taking calls
	SIPDegraded SIPState = "degraded" // stored but could not be applied; see SIPStatus.Error
)

// RegState is the state of a trunk's registration with its carrier.
type RegState string

// Registration states of a trunk.
const (
	RegOff         RegState = "off"         // the trunk does not register
	RegRegistering RegState = "registering" // a REGISTER is in flight
	RegRegistered  RegState = "registered"  // the carrier accepted the binding
	RegFailed      RegState = "failed"      // the last attempt failed; see RegistrationError
)

// SIPStatus is a trunk's state on the SIP plane.
type SIPStatus struct {
	State             SIPState
	Error             string // why it is degraded
	RegistrationState RegState
	RegistrationError string
	ActiveCalls       uint32
}

// Match says which trunk an inbound call belongs to, and why; it answers
// operators asking why a call matched or not.
type Match struct {
	Matched bool
	TrunkID string
	Reason  string
}
