package trunk

import (
	"fmt"
	"log/slog"
	"slices"
	"time"
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

	// Name is a label for people (the BYOC face's name); it need not be
	// unique.
	Name string `json:"name"`
	// OrganizationID is the organization that owns the trunk. A write
	// that leaves it "" gets the organization the request acts for;
	// Normalize makes a stored "" DefaultOrg.
	OrganizationID string `json:"organization_id"`
	// ManagedAccountID, when set, marks a trunk the platform manages:
	// read-only to trunks:manage, changed only with trunks:admin.
	ManagedAccountID string `json:"managed_account_id"`
	// AllowedAddresses are the IPv4/IPv6 addresses and CIDRs allowed to
	// send calls to the trunk, beside gateway_ip and sbc_ip. nil (the
	// normal form of an empty list) adds none.
	AllowedAddresses []string `json:"allowed_addresses"`

	// Security fields (added in 1.1) are omitted when zero (their default),
	// so a client that does not set them encodes the same bytes as before.
	Transport               Transport       `json:"transport,omitempty"`
	SIPTLSPort              uint16          `json:"sip_tls_port,omitempty"`
	InboundMediaEncryption  MediaEncryption `json:"inbound_media_encryption,omitempty"`
	OutboundMediaEncryption MediaEncryption `json:"outbound_media_encryption,omitempty"`

	// AI bridge (added in 1.1), omitted when false.
	EnableNoiseCancellation bool `json:"enable_noise_cancellation,omitempty"` // denoise caller audio sent to the agent

	// Meta is what the store keeps about the record. It is not a request
	// field: the store sets it on every write.
	Meta Meta `json:"-"`
}

// Meta is the bookkeeping a store keeps with a trunk record.
type Meta struct {
	// Revision changes on every write of the record and never repeats
	// within a store, not even after a remove and re-add of the same id.
	// Compare revisions for equality only.
	Revision  uint64
	CreatedAt time.Time // UTC; zero for a record written before trunkd kept it
	UpdatedAt time.Time // UTC; zero for a record written before trunkd kept it
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

// DefaultOrg is the organization of trunks written with a token that names
// none, and of trunks stored before organizations existed: a single-tenant
// trunkd lives in it without knowing.
const DefaultOrg = "default"

// Clone returns a deep copy of t.
func (t *Trunk) Clone() *Trunk {
	c := *t
	c.CodecPreferences = slices.Clone(t.CodecPreferences)
	c.MediaIPCIDRs = slices.Clone(t.MediaIPCIDRs)
	c.AllowedAddresses = slices.Clone(t.AllowedAddresses)
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
	// AIUnavailable counts inbound callers answered 503 because the
	// trunk's AI agent could not be reached, since the trunk was added
	// on this node.
	AIUnavailable uint64
	SIP           SIPStatus
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
	ChannelLimit      uint32 // of the live configuration; 0 when not active
}

// Match says which trunk an inbound call belongs to, and why; it answers
// operators asking why a call matched or not.
type Match struct {
	Matched bool
	TrunkID string
	Reason  string
}
