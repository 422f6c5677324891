package rest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/trunkd/trunkd/rpc/api"
	"github.com/trunkd/trunkd/trunk"
)

// The BYOC face (/core/trunks): the shapes and enum names of the
// bring-your-own-carrier API, mapped onto the trunk record.
//
//	name                                  -> name
//	inbound_config.allowed_addresses      -> allowed_addresses
//	outbound_config.address ("host[:port]") -> gateway_ip, destination_sbc_port
//	outbound_config.auth_username/password -> sip_username, sip_password
//
//	outbound_config.transport             -> transport (UDP, TCP, TLS; TLS also
//	                                         opens sip_tls_port 5061 unless set)
//	inbound_config.media_encryption       -> inbound_media_encryption
//	outbound_config.media_encryption      -> outbound_media_encryption
//
//	inbound_config.enable_noise_cancellation -> enable_noise_cancellation

// CoreTrunk is a trunk as the BYOC face shows it.
type CoreTrunk struct {
	ID               string        `json:"id"`
	Name             string        `json:"name"`
	OrganizationID   string        `json:"organization_id"`
	ManagedAccountID *string       `json:"managed_account_id"` // null when not managed
	InboundConfig    CoreInbound   `json:"inbound_config"`
	OutboundConfig   *CoreOutbound `json:"outbound_config"` // null when the trunk has no outbound address
	CreatedAt        string        `json:"created_at,omitempty"`
	UpdatedAt        string        `json:"updated_at,omitempty"`
}

// CoreInbound is a BYOC inbound_config.
type CoreInbound struct {
	EnableNoiseCancellation bool     `json:"enable_noise_cancellation"`
	MediaEncryption         string   `json:"media_encryption,omitempty"` // DISABLE, ALLOW, REQUIRE
	AllowedAddresses        []string `json:"allowed_addresses"`
}

// CoreOutbound is a BYOC outbound_config. AuthPassword is write-only.
type CoreOutbound struct {
	Address         string `json:"address"`
	AuthUsername    string `json:"auth_username"`
	AuthPassword    string `json:"auth_password,omitempty"`
	Transport       string `json:"transport,omitempty"`        // UDP, TCP, TLS
	MediaEncryption string `json:"media_encryption,omitempty"` // DISABLE, ALLOW, REQUIRE
}

// coreBody is the body of POST and PUT /core/trunks.
type coreBody struct {
	Name           string        `json:"name"`
	InboundConfig  *CoreInbound  `json:"inbound_config"`
	OutboundConfig *CoreOutbound `json:"outbound_config"`
}

// CoreList is the answer of GET /core/trunks.
type CoreList struct {
	Trunks     []CoreTrunk `json:"trunks"`
	NextCursor string      `json:"next_cursor"`
}

// Enum names of the BYOC face, in the order of the trunk's numbers.
var (
	transports  = []string{trunk.TransportUDP.String(), trunk.TransportTCP.String(), trunk.TransportTLS.String()}
	encryptions = []string{trunk.EncryptDisable.String(), trunk.EncryptAllow.String(), trunk.EncryptRequire.String()}
)

func newCoreTrunk(rec *api.TrunkRecord, createdAt, updatedAt string) CoreTrunk {
	c := CoreTrunk{ID: rec.TrunkID, Name: rec.Name, OrganizationID: rec.Org(), CreatedAt: createdAt, UpdatedAt: updatedAt,
		InboundConfig: CoreInbound{EnableNoiseCancellation: rec.EnableNoiseCancellation,
			MediaEncryption: rec.InboundMediaEncryption.String(), AllowedAddresses: rec.AllowedAddresses}}
	if rec.ManagedAccountID != "" {
		c.ManagedAccountID = &rec.ManagedAccountID
	}
	if rec.GatewayIP != "" {
		addr := rec.GatewayIP
		if rec.DestinationSBCPort != 5060 {
			addr = net.JoinHostPort(addr, strconv.Itoa(int(rec.DestinationSBCPort)))
		}
		c.OutboundConfig = &CoreOutbound{Address: addr, AuthUsername: rec.SIPUsername,
			Transport: rec.Transport.String(), MediaEncryption: rec.OutboundMediaEncryption.String()}
	}
	return c
}

// apply sets the BYOC fields of b on t. The rest of t stays.
func (b *coreBody) apply(t *trunk.Trunk) error {
	if strings.TrimSpace(b.Name) == "" {
		return trunk.FieldErrorf("name", "is required")
	}
	t.Name = b.Name
	in := b.InboundConfig
	if in == nil {
		in = &CoreInbound{}
	}
	t.EnableNoiseCancellation = in.EnableNoiseCancellation
	enc, err := enumValue("inbound_config.media_encryption", in.MediaEncryption, encryptions)
	if err != nil {
		return err
	}
	t.InboundMediaEncryption = trunk.MediaEncryption(enc)
	t.AllowedAddresses = in.AllowedAddresses
	return b.applyOutbound(t)
}

func (b *coreBody) applyOutbound(t *trunk.Trunk) error {
	out := b.OutboundConfig
	if out == nil {
		t.GatewayIP, t.DestinationSBCPort, t.SIPUsername, t.SIPPassword = "", 5060, "", ""
		t.Transport, t.OutboundMediaEncryption = trunk.TransportUDP, trunk.EncryptDisable
		return nil
	}
	for _, f := range []struct{ name, value string }{
		{"outbound_config.address", out.Address},
		{"outbound_config.auth_username", out.AuthUsername},
		{"outbound_config.auth_password", out.AuthPassword},
	} {
		if f.value == "" {
			return trunk.FieldErrorf(f.name, "is required with an outbound_config (address, auth_username and auth_password go together)")
		}
	}
	tr, err := enumValue("outbound_config.transport", out.Transport, transports)
	if err != nil {
		return err
	}
	enc, err := enumValue("outbound_config.media_encryption", out.MediaEncryption, encryptions)
	if err != nil {
		return err
	}
	t.Transport, t.OutboundMediaEncryption = trunk.Transport(tr), trunk.MediaEncryption(enc)
	if t.Transport == trunk.TransportTLS && t.SIPTLSPort == 0 {
		t.SIPTLSPort = trunk.DefaultSIPTLSPort // the carrier's BYE comes back over TLS
	}
	host, port := out.Address, uint16(5060)
	if h, p, err := net.SplitHostPort(out.Address); err == nil {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return trunk.FieldErrorf("outbound_config.address", "%q: bad port", out.Address)
		}
		host, port = h, uint16(n)
	}
	if !trunk.IsHost(host) {
		return trunk.FieldErrorf("outbound_config.address", "%q is not a host, IP address or host:port (not a SIP URI)", out.Address)
	}
	t.GatewayIP, t.DestinationSBCPort, t.SIPUsername, t.SIPPassword = host, port, out.AuthUsername, out.AuthPassword
	return nil
}

// enumValue is the number of name v among known ("" is the first, the
// default); an unknown name is refused naming field.
func enumValue(field, v string, known []string) (int32, error) {
	if v == "" {
		return 0, nil
	}
	i := slices.Index(known, v)
	if i < 0 {
		return 0, trunk.FieldErrorf(field, "%q is not one of %s", v, strings.Join(known, ", "))
	}
	return int32(i), nil
}

// coreFields are the BYOC names of the trunk fields the BYOC face sets.
var coreFields = map[string]string{
	"allowed_addresses":         "inbound_config.allowed_addresses",
	"gateway_ip":                "outbound_config.address",
	"destination_sbc_port":      "outbound_config.address",
	"sip_username":              "outbound_config.auth_username",
	"sip_password":              "outbound_config.auth_password",
	"transport":                 "outbound_config.transport",
	"inbound_media_encryption":  "inbound_config.media_encryption",
	"outbound_media_encryption": "outbound_config.media_encryption",
	"enable_noise_cancellation": "inbound_config.enable_noise_cancellation",
}

// coreField renames the field of a validation error to its BYOC name.
func coreField(err error) error {
	var te *trunk.Error
	if errors.As(err, &te) && coreFields[te.Field] != "" {
		c := *te
		c.Field = coreFields[te.Field]
		return &c
	}
	return err
}

// newID returns a server-generated trunk id.
func newID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return "trk_" + hex.EncodeToString(b)
}

func (s *Server) listCore(w http.ResponseWriter, r *http.Request, c caller) (any, error) {
	req, err := listQuery(r, c)
	if err == nil {
		req.Records = true
	}
	return req, err
}

func coreList(w http.ResponseWriter, _, resp any) error {
	l := resp.(api.ListTrunksResponse)
	out := CoreList{Trunks: make([]CoreTrunk, 0, len(l.Records)), NextCursor: l.NextCursor}
	for i, rec := range l.Records {
		out.Trunks = append(out.Trunks, newCoreTrunk(rec, l.Trunks[i].CreatedAt, l.Trunks[i].UpdatedAt))
	}
	return writeJSON(w, http.StatusOK, out)
}

func coreFound(w http.ResponseWriter, req, resp any) error {
	g, err := found(req, resp)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newCoreTrunk(g.Record, g.CreatedAt, g.UpdatedAt))
}

// addCore is POST /core/trunks: a new trunk with a server-generated id,
// answered 201 with the trunk.
func (s *Server) addCore(w http.ResponseWriter, r *http.Request, c caller) error {
	var body coreBody
	if err := s.decodeBody(w, r, &body); err != nil {
		return err
	}
	req := api.NewTrunkRequest()
	req.AdminToken, req.Org = c.token, c.org
	req.TrunkID = newID()
	if err := body.apply(&req.Trunk); err != nil {
		return err
	}
	if _, err := s.call(r.Context(), method("AddTrunk"), req); err != nil {
		return coreField(err)
	}
	g, err := s.get(r.Context(), c, req.TrunkID)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/core/trunks/"+req.TrunkID)
	return writeJSON(w, http.StatusCreated, newCoreTrunk(g.Record, g.CreatedAt, g.UpdatedAt))
}

// coreAttempts bounds PUT /core/trunks/{id}'s read-modify-write retries.
const coreAttempts = 3

// updateCore is PUT /core/trunks/{id}: the BYOC fields replaced, every
// other field of the trunk kept (a read-modify-write with if_revision,
// retried when another write lands in between); 200 with the trunk.
func (s *Server) updateCore(w http.ResponseWriter, r *http.Request, c caller) error {
	var body coreBody
	if err := s.decodeBody(w, r, &body); err != nil {
		return err
	}
	id := r.PathValue("id")
	var err error
	for range coreAttempts {
		var g api.GetTrunkResponse
		if g, err = s.get(r.Context(), c, id); err != nil {
			return err
		}
		req := &api.TrunkRequest{AdminToken: c.token, Org: c.org, Trunk: g.Record.Trunk, IfRevision: g.Revision,
			KeepSecrets: body.OutboundConfig != nil || g.Record.APIBearerTokenSet}
		if err := body.apply(&req.Trunk); err != nil {
			return err
		}
		_, err = s.call(r.Context(), method("UpdateTrunk"), req)
		if trunk.ErrorCode(err) != trunk.ECONFLICT {
			break
		}
	}
	if err != nil {
		return coreField(err)
	}
	g, err := s.get(r.Context(), c, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newCoreTrunk(g.Record, g.CreatedAt, g.UpdatedAt))
}
