package trunk

import (
	"fmt"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// MaxTrunkIDLen is the longest trunk_id accepted.
const MaxTrunkIDLen = 128

// Normalize puts t into canonical form before validation: codec names are
// upper-cased and nil lists become empty ones.
func (t *Trunk) Normalize() {
	for i, c := range t.CodecPreferences {
		t.CodecPreferences[i] = strings.ToUpper(c)
	}
	if t.CodecPreferences == nil {
		t.CodecPreferences = []string{}
	}
	if t.MediaIPCIDRs == nil {
		t.MediaIPCIDRs = []string{}
	}
	if t.OrganizationID == "" {
		t.OrganizationID = DefaultOrg
	}
	for i, a := range t.AllowedAddresses {
		t.AllowedAddresses[i] = strings.TrimSpace(a)
	}
	t.AllowedAddresses = slices.DeleteFunc(t.AllowedAddresses, func(s string) bool { return s == "" })
	if len(t.AllowedAddresses) == 0 {
		t.AllowedAddresses = nil
	}
}

// Validate checks every rule of the record and returns an EINVALID *Error
// naming the first field that breaks one, or nil.
func (t *Trunk) Validate() error {
	checks := []func() *Error{
		t.validateStrings,
		t.validateID,
		t.validateAddresses,
		t.validatePorts,
		t.validateMedia,
		t.validateInbound,
		t.validateRegistration,
		t.validateAI,
		t.validateOwnership,
		t.validateSecurity,
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// ValidateID checks a trunk_id on its own, for requests that carry only an id.
func ValidateID(id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	return nil
}

func validateID(id string) *Error {
	if id == "" {
		return FieldErrorf("trunk_id", "is required")
	}
	if len(id) > MaxTrunkIDLen {
		return FieldErrorf("trunk_id", "is %d bytes long; at most %d are allowed", len(id), MaxTrunkIDLen)
	}
	for _, r := range id {
		if !isIDRune(r) {
			return FieldErrorf("trunk_id", "contains %q; only A-Z a-z 0-9 . _ : - are allowed", r)
		}
	}
	return nil
}

func isIDRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '.' || r == '_' || r == ':' || r == '-'
}

func (t *Trunk) validateID() *Error { return validateID(t.TrunkID) }

// validateStrings refuses control characters and invalid UTF-8 in every
// string field: they end up in SIP headers.
func (t *Trunk) validateStrings() *Error {
	v := reflect.ValueOf(t).Elem()
	for _, f := range textFields() {
		fv := v.Field(f.index)
		if fv.Kind() == reflect.String {
			if err := CheckText(f.name, fv.String()); err != nil {
				return err
			}
			continue
		}
		for j := range fv.Len() {
			if err := CheckText(f.name, fv.Index(j).String()); err != nil {
				return err
			}
		}
	}
	return nil
}

// textField is a string or []string field of Trunk, by position.
type textField struct {
	index int
	name  string
}

// textFields lists Trunk's text fields, found once: walking the struct
// tags on every Validate was a twentieth of an UpdateTrunk's CPU.
var textFields = sync.OnceValue(func() []textField {
	var fs []textField
	typ := reflect.TypeFor[Trunk]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		k := f.Type.Kind()
		if k == reflect.String || k == reflect.Slice && f.Type.Elem().Kind() == reflect.String {
			fs = append(fs, textField{i, JSONName(f)})
		}
	}
	return fs
})

// JSONName returns the name f has in JSON: its json tag up to the first
// comma. Trunk fields are named so on the wire, in field errors and in
// trunkctl's flags.
func JSONName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// CheckText refuses what must not reach a SIP header or a log line: invalid
// UTF-8 and control characters. The error is an EINVALID naming field.
func CheckText(field, s string) *Error {
	if !utf8.ValidString(s) {
		return FieldErrorf(field, "is not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return FieldErrorf(field, "contains control character %U", r)
		}
	}
	return nil
}

func (t *Trunk) validateAddresses() *Error {
	ips := []struct{ field, value string }{
		{"internal_sip_ip", t.InternalSIPIP},
		{"external_sip_ip", t.ExternalSIPIP},
		{"internal_rtp_ip", t.InternalRTPIP},
		{"external_rtp_ip", t.ExternalRTPIP},
	}
	for _, ip := range ips {
		if ip.value == "" {
			continue
		}
		if _, err := netip.ParseAddr(ip.value); err != nil {
			return FieldErrorf(ip.field, "%q is not an IP address", ip.value)
		}
	}
	hosts := []struct{ field, value string }{
		{"gateway_ip", t.GatewayIP},
		{"sbc_ip", t.SBCIP},
		{"domain", t.Domain},
	}
	for _, h := range hosts {
		if h.value != "" && !IsHost(h.value) {
			return FieldErrorf(h.field, "%q is neither an IP address nor a DNS name", h.value)
		}
	}
	if t.Proxy != "" {
		if err := validateProxy(t.Proxy); err != nil {
			return err
		}
	}
	return t.validateAllowed()
}

// MaxAllowedAddresses bounds allowed_addresses.
const MaxAllowedAddresses = 256

// validateAllowed accepts IP addresses and CIDRs only: a host name would
// be matched against something the caller controls, or need DNS on the
// INVITE path.
func (t *Trunk) validateAllowed() *Error {
	if len(t.AllowedAddresses) > MaxAllowedAddresses {
		return FieldErrorf("allowed_addresses", "has %d entries; at most %d are allowed", len(t.AllowedAddresses), MaxAllowedAddresses)
	}
	for _, a := range t.AllowedAddresses {
		if _, err := ParseAllowed(a); err != nil {
			return FieldErrorf("allowed_addresses", "%q is not an IPv4/IPv6 address or CIDR", a)
		}
	}
	return nil
}

// ParseAllowed parses an allowed_addresses entry: an address is the
// prefix of its full length, a CIDR is masked (10.1.2.3/8 is 10.0.0.0/8).
func ParseAllowed(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("zoned address")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// ValidateOrg checks an organization id: what a trunk_id may hold.
func ValidateOrg(field, org string) error {
	if err := validateID(org); err != nil {
		err.Field = field
		return err
	}
	return nil
}

// maxLabel bounds name and managed_account_id, in bytes.
const maxLabel = 256

func (t *Trunk) validateOwnership() *Error {
	if t.OrganizationID != "" {
		if err := validateID(t.OrganizationID); err != nil {
			err.Field = "organization_id"
			return err
		}
	}
	for _, f := range []struct{ name, value string }{{"name", t.Name}, {"managed_account_id", t.ManagedAccountID}} {
		if len(f.value) > maxLabel {
			return FieldErrorf(f.name, "is %d bytes long; at most %d are allowed", len(f.value), maxLabel)
		}
	}
	return nil
}

// IsHost reports whether s is an IP literal or a syntactically valid DNS name.
func IsHost(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	return isDNSName(s)
}

func isDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// validateProxy accepts what ParseProxy parses.
func validateProxy(p string) *Error {
	if _, err := ParseProxy(p); err != nil {
		return FieldErrorf("proxy", "%v", err)
	}
	return nil
}

func splitHostPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 || !strings.HasPrefix(s[end+1:], ":") {
			return "", "", strconv.ErrSyntax
		}
		return s[1:end], s[end+2:], nil
	}
	if strings.Count(s, ":") != 1 {
		return "", "", strconv.ErrSyntax
	}
	host, port, _ = strings.Cut(s, ":")
	return host, port, nil
}

func (t *Trunk) validatePorts() *Error {
	ports := []struct {
		field string
		value uint16
	}{
		{"source_pbx_port", t.SourcePBXPort},
		{"destination_sbc_port", t.DestinationSBCPort},
		{"rtp_start_port", t.RTPStartPort},
		{"rtp_end_port", t.RTPEndPort},
	}
	for _, p := range ports {
		if p.value == 0 {
			return FieldErrorf(p.field, "must not be 0")
		}
	}
	if t.ChannelLimit == 0 {
		return FieldErrorf("channel_limit", "must be at least 1")
	}
	if t.RTPStartPort%2 != 0 {
		return FieldErrorf("rtp_start_port", "must be even (RTP on even ports, RTCP on the next odd one)")
	}
	if t.RTPStartPort >= t.RTPEndPort {
		return FieldErrorf("rtp_start_port", "must be below rtp_end_port (%d)", t.RTPEndPort)
	}
	if span, need := uint64(t.RTPEndPort-t.RTPStartPort), 2*uint64(t.ChannelLimit); span < need {
		return FieldErrorf("rtp_end_port", "range %d-%d holds %d ports; channel_limit %d needs at least %d (2 per channel)",
			t.RTPStartPort, t.RTPEndPort, span, t.ChannelLimit, need)
	}
	return nil
}

func (t *Trunk) validateMedia() *Error {
	if len(t.CodecPreferences) == 0 {
		return FieldErrorf("codec_preferences", "must name at least one codec (%s)", strings.Join(KnownCodecs, ", "))
	}
	for i, c := range t.CodecPreferences {
		if !slices.Contains(KnownCodecs, strings.ToUpper(c)) {
			return FieldErrorf("codec_preferences", "unknown codec %q; known: %s", c, strings.Join(KnownCodecs, ", "))
		}
		if slices.ContainsFunc(t.CodecPreferences[:i], func(p string) bool { return strings.EqualFold(p, c) }) {
			return FieldErrorf("codec_preferences", "codec %q is listed twice", c)
		}
	}
	for _, c := range t.MediaIPCIDRs {
		if _, err := netip.ParsePrefix(c); err != nil {
			return FieldErrorf("media_ip_cidrs", "%q is not a CIDR prefix such as 192.0.2.0/24", c)
		}
	}
	return nil
}

func (t *Trunk) validateInbound() *Error {
	if t.RejectSIPCode < 400 || t.RejectSIPCode > 699 {
		return FieldErrorf("reject_sip_code", "%d is not a SIP failure code (400-699)", t.RejectSIPCode)
	}
	if t.InboundRule < RuleReject || t.InboundRule > RuleHandleAI {
		return FieldErrorf("inbound_rule", "%d is not a rule (0 REJECT, 1 PLAY_AND_HANGUP, 2 NOTIFY_AND_HANGUP, 3 HANDLE_AI)", t.InboundRule)
	}
	urls := []struct {
		field, value string
		schemes      []string
	}{
		{"reject_audio_file", t.RejectAudioFile, audioSchemes},
		{"inbound_audio_url", t.InboundAudioURL, audioSchemes},
		{"inbound_webhook_url", t.InboundWebhookURL, httpSchemes},
		{"inbound_ai_websocket_url", t.InboundAIWebsocketURL, wsSchemes},
		{"inbound_ai_quic_url", t.InboundAIQUICURL, quicSchemes},
	}
	for _, u := range urls {
		if err := checkURL(u.field, u.value, u.schemes); err != nil {
			return err
		}
	}
	if t.RejectIncomingCalls {
		return nil
	}
	switch t.InboundRule {
	case RulePlayAndHangup:
		if t.InboundAudioURL == "" {
			return FieldErrorf("inbound_audio_url", "is required by inbound_rule PLAY_AND_HANGUP")
		}
	case RuleNotifyAndHangup:
		if t.InboundWebhookURL == "" {
			return FieldErrorf("inbound_webhook_url", "is required by inbound_rule NOTIFY_AND_HANGUP")
		}
	case RuleHandleAI:
		if t.InboundAIWebsocketURL == "" && t.InboundAIQUICURL == "" {
			return FieldErrorf("inbound_ai_websocket_url", "inbound_rule HANDLE_AI needs inbound_ai_websocket_url or inbound_ai_quic_url")
		}
	}
	return nil
}

var (
	audioSchemes = []string{"file", "http", "https"}
	httpSchemes  = []string{"http", "https"}
	wsSchemes    = []string{"ws", "wss"}
	quicSchemes  = []string{"quic"}
)

// checkURL accepts "" or an absolute URL with one of schemes. When "file" is
// among them, a bare absolute path is accepted as well.
func checkURL(field, value string, schemes []string) *Error {
	if value == "" {
		return nil
	}
	if slices.Contains(schemes, "file") && strings.HasPrefix(value, "/") {
		return nil
	}
	u, err := url.Parse(value)
	if err != nil || !slices.Contains(schemes, strings.ToLower(u.Scheme)) {
		return FieldErrorf(field, "%q is not a %s URL", value, strings.Join(schemes, "/"))
	}
	if u.Scheme == "file" {
		if u.Path == "" || u.Host != "" && u.Host != "localhost" {
			return FieldErrorf(field, "%q is not a file:///absolute/path URL", value)
		}
		return nil
	}
	if u.Host == "" {
		return FieldErrorf(field, "%q has no host", value)
	}
	return nil
}

func (t *Trunk) validateRegistration() *Error {
	if t.RegisterExpiresSec < 60 || t.RegisterExpiresSec > 86400 {
		return FieldErrorf("register_expires_sec", "%d is outside 60-86400", t.RegisterExpiresSec)
	}
	if !t.RequireRegistration {
		return nil
	}
	switch {
	case t.SIPUsername == "":
		return FieldErrorf("sip_username", "is required by require_registration")
	case t.SIPPassword == "":
		return FieldErrorf("sip_password", "is required by require_registration")
	case t.GatewayIP == "" && t.Proxy == "":
		return FieldErrorf("gateway_ip", "require_registration needs gateway_ip or proxy to register with")
	}
	return nil
}

func (t *Trunk) validateAI() *Error {
	if err := checkURL("ai_websocket_url", t.AIWebsocketURL, wsSchemes); err != nil {
		return err
	}
	if err := checkURL("ai_quic_url", t.AIQUICURL, quicSchemes); err != nil {
		return err
	}
	if !slices.Contains(BargeinModes, t.AutoBargeinMode) {
		return FieldErrorf("auto_bargein_mode", "%q is not one of %s", t.AutoBargeinMode, strings.Join(BargeinModes, ", "))
	}
	if t.AutoBargeinAggressiveness < 0 || t.AutoBargeinAggressiveness > 3 {
		return FieldErrorf("auto_bargein_aggressiveness", "%d is outside 0-3", t.AutoBargeinAggressiveness)
	}
	return nil
}

// validateSecurity checks transport, sip_tls_port and the SRTP policies.
func (t *Trunk) validateSecurity() *Error {
	if t.Transport < TransportUDP || t.Transport > TransportTLS {
		return FieldErrorf("transport", "%d is not a transport (0 UDP, 1 TCP, 2 TLS)", t.Transport)
	}
	for _, m := range []struct {
		field string
		v     MediaEncryption
	}{{"inbound_media_encryption", t.InboundMediaEncryption}, {"outbound_media_encryption", t.OutboundMediaEncryption}} {
		if m.v < EncryptDisable || m.v > EncryptRequire {
			return FieldErrorf(m.field, "%d is not a policy (0 DISABLE, 1 ALLOW, 2 REQUIRE)", m.v)
		}
	}
	if t.SIPTLSPort != 0 && t.SIPTLSPort == t.SourcePBXPort {
		return FieldErrorf("sip_tls_port", "%d is source_pbx_port, which already serves UDP and TCP", t.SIPTLSPort)
	}
	if t.Transport == TransportTLS && t.SIPTLSPort == 0 {
		return FieldErrorf("sip_tls_port", "transport TLS needs a TLS listener: the carrier sends in-dialog requests (BYE) to our sips: Contact; set sip_tls_port (usually 5061)")
	}
	if t.Proxy != "" {
		if p, _ := ParseProxy(t.Proxy); p.Secure && t.Transport != TransportTLS {
			return FieldErrorf("proxy", "%q is a sips: URI, which needs transport TLS", t.Proxy)
		}
	}
	return nil
}
