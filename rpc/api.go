package rpc

import (
	"github.com/trunkd/trunkd/trunk"
	"math"
)

// Request and response DTOs. The json tags are the wire names (MessagePack
// map keys); docs/protocol.md is the contract they implement.

// Empty is the response of methods that return nothing: an empty map.
type Empty struct{}

// PingRequest asks the server to answer; it needs no token.
type PingRequest struct{}

// TrunkRequest is the body of AddTrunk and UpdateTrunk: the whole trunk
// record plus the caller's token.
type TrunkRequest struct {
	AdminToken string `json:"admin_token"`
	trunk.Trunk
}

// TrunkIDRequest is the body of GetTrunk and RemoveTrunk.
type TrunkIDRequest struct {
	AdminToken string `json:"admin_token"`
	TrunkID    string `json:"trunk_id"`
}

// ListTrunksRequest is the body of ListTrunks.
type ListTrunksRequest struct {
	AdminToken string `json:"admin_token"`
	Limit      uint32 `json:"limit"`
	Cursor     string `json:"cursor"`
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

	SIPState          string `json:"sip_state"` // off, active, degraded
	SIPError          string `json:"sip_error"` // why degraded
	RegistrationState string `json:"registration_state"`
	RegistrationError string `json:"registration_error"`
	ActiveCalls       uint32 `json:"active_calls"`
}

// GetTrunkResponse answers GetTrunk. An unknown id is Found=false with a
// zero Config, not an error.
type GetTrunkResponse struct {
	Found  bool        `json:"found"`
	Config TrunkConfig `json:"config"`
}

// ListTrunksResponse answers ListTrunks. NextCursor is "" at the end.
type ListTrunksResponse struct {
	Trunks     []TrunkConfig `json:"trunks"`
	NextCursor string        `json:"next_cursor"`
}

// NewTrunkConfig builds the sanitised view of t with its live status.
func NewTrunkConfig(t *trunk.Trunk, st trunk.Status) TrunkConfig {
	return TrunkConfig{
		TrunkID:      t.TrunkID,
		ChannelLimit: t.ChannelLimit,
		DisplayName:  t.DisplayName,
		Domain:       t.Domain,
		IsCBTripped:  st.CircuitOpen,
		CurrentASR:   st.ASR,
		CurrentACD:   uint32(math.Round(st.ACD)),
		CurrentMOS:   st.MOS,

		SIPState:          st.SIP.State,
		SIPError:          st.SIP.Error,
		RegistrationState: st.SIP.RegistrationState,
		RegistrationError: st.SIP.RegistrationError,
		ActiveCalls:       st.SIP.ActiveCalls,
	}
}

// ExplainMatchRequest asks which trunk a call would belong to.
type ExplainMatchRequest struct {
	AdminToken string `json:"admin_token"`
	SourceIP   string `json:"source_ip"`   // the INVITE's packet source address
	Listener   string `json:"listener"`    // the bind it arrives on, "ip:port" (":5060" for all addresses)
	RequestURI string `json:"request_uri"` // optional, for the domain tie-break
}

func (r *ExplainMatchRequest) token() string { return r.AdminToken }

// ExplainMatchResponse is the answer: the trunk, or why none.
type ExplainMatchResponse struct {
	Matched bool   `json:"matched"`
	TrunkID string `json:"trunk_id"`
	Reason  string `json:"reason"`
}

func (r *TrunkRequest) token() string      { return r.AdminToken }
func (r *TrunkIDRequest) token() string    { return r.AdminToken }
func (r *ListTrunksRequest) token() string { return r.AdminToken }

func (r *TrunkRequest) id() string   { return r.TrunkID }
func (r *TrunkIDRequest) id() string { return r.TrunkID }
