package api

import (
	"math"
	"time"

	"github.com/trunkd/trunkd/trunk"
)

// Request and response DTOs. The json tags are the wire names (MessagePack
// map keys); docs/protocol.md is the contract they implement.

// Empty is the response of methods that return nothing: an empty map.
type Empty struct{}

// PingRequest asks the server to answer; it needs no token.
type PingRequest struct{}

// TrunkRequest is the body of AddTrunk and UpdateTrunk: the whole trunk
// record plus the caller's token and the write's options.
type TrunkRequest struct {
	AdminToken  string `json:"admin_token"`
	Org         string `json:"org,omitempty"`          // the organization acted for (personal tokens, trunks:admin); "" for the token's own
	IfRevision  uint64 `json:"if_revision,omitempty"`  // 0, or the revision the stored record must have (else ERR_CONFLICT)
	KeepSecrets bool   `json:"keep_secrets,omitempty"` // absent or empty secrets keep their stored values
	trunk.Trunk

	// Read-only fields of a GetTrunk record, accepted and ignored so that
	// a record read can be sent back as it is.
	SIPPasswordSet    bool `json:"sip_password_set,omitempty"`
	APIBearerTokenSet bool `json:"api_bearer_token_set,omitempty"`
}

// TrunkIDRequest is the body of GetTrunk and RemoveTrunk.
type TrunkIDRequest struct {
	AdminToken string `json:"admin_token"`
	Org        string `json:"org,omitempty"` // the organization acted for (personal tokens, trunks:admin); "" for the token's own
	TrunkID    string `json:"trunk_id"`
	IfRevision uint64 `json:"if_revision,omitempty"` // RemoveTrunk only: 0, or the revision the stored record must have
}

// ListTrunksRequest is the body of ListTrunks.
type ListTrunksRequest struct {
	AdminToken string `json:"admin_token"`
	Org        string `json:"org,omitempty"` // the organization acted for (personal tokens, trunks:admin); "" for the token's own
	Limit      uint32 `json:"limit"`
	Cursor     string `json:"cursor"`

	// Filters (optional): exact name, name prefix, and exclusive RFC 3339
	// time bounds.
	Name          string `json:"name,omitempty"`
	NamePrefix    string `json:"name_prefix,omitempty"`
	CreatedAfter  string `json:"created_after,omitempty"`
	CreatedBefore string `json:"created_before,omitempty"`
	UpdatedAfter  string `json:"updated_after,omitempty"`
	UpdatedBefore string `json:"updated_before,omitempty"`

	// Records asks for each trunk's record too (ListTrunksResponse.Records).
	Records bool `json:"records,omitempty"`
}

// ListTrunks page sizes.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// TrunkConfig is the sanitised view of a trunk (ApiTrunkConfig on the
// wire): never a credential. Live figures are zero until the SIP plane
// reports them.
type TrunkConfig struct {
	TrunkID      string  `json:"trunk_id"`
	ChannelLimit uint32  `json:"channel_limit"`
	DisplayName  string  `json:"display_name"`
	Domain       string  `json:"domain"`
	IsCBTripped  bool    `json:"is_cb_tripped"`
	CurrentASR   float64 `json:"current_asr"`
	CurrentACD   uint32  `json:"current_acd"`
	CurrentMOS   float64 `json:"current_mos"`

	CallsAttempted uint64  `json:"calls_attempted"` // outbound setups ended in the quality window
	CallsAnswered  uint64  `json:"calls_answered"`  // of which answered
	CurrentPDDms   float64 `json:"current_pdd_ms"`  // mean INVITE -> first 180/183
	BreakerState   string  `json:"breaker_state"`   // closed, open, half-open; "" when unknown

	SIPState          string `json:"sip_state"` // off, active, degraded
	SIPError          string `json:"sip_error"` // why degraded
	RegistrationState string `json:"registration_state"`
	RegistrationError string `json:"registration_error"`
	ActiveCalls       uint32 `json:"active_calls"`

	// Added in 1.1: who owns the trunk and its bookkeeping.
	Name             string `json:"name,omitempty"`
	OrganizationID   string `json:"organization_id,omitempty"`
	ManagedAccountID string `json:"managed_account_id,omitempty"`
	Revision         uint64 `json:"revision,omitempty"`
	CreatedAt        string `json:"created_at,omitempty"`
	UpdatedAt        string `json:"updated_at,omitempty"`
	// Security settings, omitted when at their defaults (UDP, no TLS
	// listener, DISABLE). SRTPWithoutTLS flags SRTP keys sent in SDP over
	// unencrypted SIP (trunk.Trunk.SRTPWithoutTLS).
	Transport               int32  `json:"transport,omitempty"`
	SIPTLSPort              uint16 `json:"sip_tls_port,omitempty"`
	InboundMediaEncryption  int32  `json:"inbound_media_encryption,omitempty"`
	OutboundMediaEncryption int32  `json:"outbound_media_encryption,omitempty"`
	SRTPWithoutTLS          bool   `json:"srtp_without_tls,omitempty"`
}

// GetTrunkResponse answers GetTrunk. An unknown id is Found=false with a
// zero Config and a nil Record, not an error.
type GetTrunkResponse struct {
	Found  bool         `json:"found"`
	Config TrunkConfig  `json:"config"`
	Record *TrunkRecord `json:"record,omitempty"` // the stored record under the request's field names

	// Absent when not found. The timestamps are also absent when unknown
	// (a record stored before trunkd kept them).
	Revision  uint64 `json:"revision,omitempty"`   // changes on every write; if_revision compares with it
	CreatedAt string `json:"created_at,omitempty"` // RFC 3339 UTC
	UpdatedAt string `json:"updated_at,omitempty"` // RFC 3339 UTC

	Name           string `json:"name,omitempty"`            // the record's name, for the BYOC face
	OrganizationID string `json:"organization_id,omitempty"` // the owning organization
}

// TrunkRecord is a stored trunk under the field names AddTrunk and
// UpdateTrunk take, without its secrets' values: SIPPasswordSet and
// APIBearerTokenSet say whether each is set. Sending it back to
// UpdateTrunk with keep_secrets keeps them.
type TrunkRecord struct {
	// These shadow the trunk's secrets and are always empty, so the
	// encoders (omitempty) leave both keys out. "inline" makes msgpack
	// flatten the trunk despite the shadowed names, as encoding/json does.
	SIPPassword       string `json:"sip_password,omitempty"`
	APIBearerToken    string `json:"api_bearer_token,omitempty"`
	trunk.Trunk       `json:",inline"`
	SIPPasswordSet    bool `json:"sip_password_set"`
	APIBearerTokenSet bool `json:"api_bearer_token_set"`
}

// NewTrunkRecord returns the record of t without its secrets.
func NewTrunkRecord(t *trunk.Trunk) *TrunkRecord {
	r := &TrunkRecord{Trunk: *t.Clone(), SIPPasswordSet: t.SIPPassword != "", APIBearerTokenSet: t.APIBearerToken != ""}
	r.Trunk.SIPPassword, r.Trunk.APIBearerToken = "", ""
	return r
}

// Timestamp is the wire form of a record time: RFC 3339 UTC, "" for zero.
func Timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// ListTrunksResponse answers ListTrunks. NextCursor is "" at the end.
type ListTrunksResponse struct {
	Trunks     []TrunkConfig `json:"trunks"`
	NextCursor string        `json:"next_cursor"`
	// Records holds, when the request asked for them, the record of each
	// trunk of Trunks, in the same order (secrets never included).
	Records []*TrunkRecord `json:"records,omitempty"`

	// Page is set instead of Trunks and Records for a caller that builds
	// them itself (WithLazyPages); it is never encoded.
	Page *TrunkPage `json:"-" msgpack:"-"`
}

// TrunkPage is a ListTrunks page before its DTOs are built: the records
// on it, in trunk_id order, and the cursor after it. Its trunks are the
// store's own records: read them, never modify them.
type TrunkPage struct {
	Trunks     []*trunk.Trunk
	NextCursor string
	Records    bool // the request asked for each trunk's record too
	// Statuses sets out[i] to the live status of trunk ids[i].
	Statuses func(ids []string, out []trunk.Status)

	status []trunk.Status // the page's, read together at the first Config
}

// Config is the TrunkConfig of the page's i-th trunk, with its status as
// of the page's first Config: the statuses of a page are read together
// (see control.Service.TrunkStatuses).
func (p *TrunkPage) Config(i int) TrunkConfig {
	if p.status == nil {
		ids := make([]string, len(p.Trunks))
		for j, t := range p.Trunks {
			ids[j] = t.TrunkID
		}
		p.status = make([]trunk.Status, len(p.Trunks))
		p.Statuses(ids, p.status)
	}
	return NewTrunkConfig(p.Trunks[i], p.status[i])
}

// Response builds the whole answer.
func (p *TrunkPage) Response() ListTrunksResponse {
	r := ListTrunksResponse{Trunks: make([]TrunkConfig, len(p.Trunks)), NextCursor: p.NextCursor}
	for i, t := range p.Trunks {
		r.Trunks[i] = p.Config(i)
		if p.Records {
			r.Records = append(r.Records, NewTrunkRecord(t))
		}
	}
	return r
}

// NewTrunkConfig builds the sanitised view of t with its live status.
func NewTrunkConfig(t *trunk.Trunk, st trunk.Status) TrunkConfig {
	return TrunkConfig{
		TrunkID:      t.TrunkID,
		ChannelLimit: t.ChannelLimit,
		DisplayName:  t.DisplayName,
		Domain:       t.Domain,
		IsCBTripped:  st.CircuitOpen(),
		CurrentASR:   st.ASR,
		CurrentACD:   uint32(math.Round(st.ACD)),
		CurrentMOS:   st.MOS,

		CallsAttempted: st.Attempted,
		CallsAnswered:  st.Answered,
		CurrentPDDms:   st.PDDms,
		BreakerState:   string(st.Breaker),

		SIPState:          string(st.SIP.State),
		SIPError:          st.SIP.Error,
		RegistrationState: string(st.SIP.RegistrationState),
		RegistrationError: st.SIP.RegistrationError,
		ActiveCalls:       st.SIP.ActiveCalls,

		Name:                    t.Name,
		OrganizationID:          t.Org(),
		ManagedAccountID:        t.ManagedAccountID,
		Revision:                t.Meta.Revision,
		CreatedAt:               Timestamp(t.Meta.CreatedAt),
		UpdatedAt:               Timestamp(t.Meta.UpdatedAt),
		Transport:               int32(t.Transport),
		SIPTLSPort:              t.SIPTLSPort,
		InboundMediaEncryption:  int32(t.InboundMediaEncryption),
		OutboundMediaEncryption: int32(t.OutboundMediaEncryption),
		SRTPWithoutTLS:          t.SRTPWithoutTLS(),
	}
}

// ExplainMatchRequest asks which trunk a call would belong to.
type ExplainMatchRequest struct {
	AdminToken string `json:"admin_token"`
	Org        string `json:"org,omitempty"` // the organization acted for (personal tokens, trunks:admin); "" for the token's own
	SourceIP   string `json:"source_ip"`     // the INVITE's packet source address
	Listener   string `json:"listener"`      // the bind it arrives on, "ip:port" (":5060" for all addresses)
	RequestURI string `json:"request_uri"`   // optional, for the domain tie-break
}

func (r *ExplainMatchRequest) token() string { return r.AdminToken }

// ExplainMatchResponse is the answer: the trunk, or why none.
type ExplainMatchResponse struct {
	Matched bool   `json:"matched"`
	TrunkID string `json:"trunk_id"`
	Reason  string `json:"reason"`
}

func (r *TrunkRequest) org() string        { return r.Org }
func (r *TrunkIDRequest) org() string      { return r.Org }
func (r *ListTrunksRequest) org() string   { return r.Org }
func (r *ExplainMatchRequest) org() string { return r.Org }
func (r *DialRequest) org() string         { return r.Org }
func (r *CallIDRequest) org() string       { return r.Org }
func (r *ListCallsRequest) org() string    { return r.Org }

func (r *TrunkRequest) token() string      { return r.AdminToken }
func (r *TrunkIDRequest) token() string    { return r.AdminToken }
func (r *ListTrunksRequest) token() string { return r.AdminToken }

func (r *TrunkRequest) id() string   { return r.TrunkID }
func (r *TrunkIDRequest) id() string { return r.TrunkID }

// Dial limits, in seconds.
const (
	DefaultDialTimeoutSec = 30  // timeout_sec when absent or 0
	MaxDialTimeoutSec     = 300 // timeout_sec above this is refused
)

// DialDeadlineMargin is how long past its timeout_sec a Dial may run on the
// server: time to fetch audio_url and to settle a final response. The
// server answers a Dial within timeout_sec + DialDeadlineMargin.
const DialDeadlineMargin = 10 * time.Second

// maxDialText bounds the to and from of a Dial, in bytes.
const maxDialText = 256

// DialRequest is the body of Dial: an outbound call through a trunk.
type DialRequest struct {
	AdminToken     string `json:"admin_token"`
	Org            string `json:"org,omitempty"` // the organization acted for (personal tokens, trunks:admin); "" for the token's own
	TrunkID        string `json:"trunk_id"`
	To             string `json:"to"`               // number, SIP user or sip: URI of the callee
	From           string `json:"from"`             // caller user part; "" for the trunk's sip_username
	TimeoutSec     uint32 `json:"timeout_sec"`      // ring time; 0 for DefaultDialTimeoutSec
	AudioURL       string `json:"audio_url"`        // played once answered, then hang up; "" to stay up
	MaxDurationSec uint32 `json:"max_duration_sec"` // hang up after this long answered; 0 for no limit
	// AIURL bridges the answered call to this agent (ws:// or wss://)
	// instead of the trunk's ai_websocket_url; exclusive with AudioURL.
	// Left out when empty, so older clients and servers are unaffected.
	AIURL   string `json:"ai_url,omitempty"`
	AgentID string `json:"agent_id,omitempty"` // told to the agent in start; "" for the trunk's agent_id
}

// DialResponse is the final outcome of a Dial's INVITE. A call the carrier
// refused or did not answer is a response with Answered false, not an
// error.
type DialResponse struct {
	CallID   string `json:"call_id"`
	Answered bool   `json:"answered"`
	SIPCode  uint16 `json:"sip_code"` // final response code; 0 when none arrived
	Reason   string `json:"reason"`   // reason phrase, or why no response arrived
	SetupMs  uint32 `json:"setup_ms"` // INVITE sent to final outcome
}

// CallIDRequest is the body of Hangup.
type CallIDRequest struct {
	AdminToken string `json:"admin_token"`
	Org        string `json:"org,omitempty"` // the organization acted for (personal tokens, trunks:admin); "" for the token's own
	CallID     string `json:"call_id"`
}

// ListCallsRequest is the body of ListCalls; TrunkID "" lists every trunk.
type ListCallsRequest struct {
	AdminToken string `json:"admin_token"`
	Org        string `json:"org,omitempty"` // the organization acted for (personal tokens, trunks:admin); "" for the token's own
	TrunkID    string `json:"trunk_id"`
}

// CallInfo is a call in flight (ApiCall on the wire).
type CallInfo struct {
	CallID    string `json:"call_id"`
	TrunkID   string `json:"trunk_id"`
	Direction string `json:"direction"` // inbound, outbound
	From      string `json:"from"`
	To        string `json:"to"`
	State     string `json:"state"` // ringing, answered
	Start     int64  `json:"start"` // unix milliseconds; 0 when unknown
}

// ListCallsResponse answers ListCalls, oldest call first.
type ListCallsResponse struct {
	Calls []CallInfo `json:"calls"`
}

// NewCallInfo is the wire view of c.
func NewCallInfo(c trunk.Call) CallInfo {
	var start int64
	if !c.Start.IsZero() {
		start = c.Start.UnixMilli()
	}
	return CallInfo{CallID: c.CallID, TrunkID: c.TrunkID, Direction: c.Direction, From: c.From, To: c.To, State: c.State, Start: start}
}

func (r *DialRequest) token() string      { return r.AdminToken }
func (r *CallIDRequest) token() string    { return r.AdminToken }
func (r *ListCallsRequest) token() string { return r.AdminToken }
