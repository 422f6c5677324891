package trunk

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func valid() Trunk {
	t := Defaults()
	t.TrunkID = "carrier-1"
	return t
}

func TestDefaults(t *testing.T) {
	d := Defaults()
	checks := []struct {
		name      string
		got, want any
	}{
		{"channel_limit", d.ChannelLimit, uint32(50)},
		{"source_pbx_port", d.SourcePBXPort, uint16(5060)},
		{"destination_sbc_port", d.DestinationSBCPort, uint16(5060)},
		{"require_registration", d.RequireRegistration, false},
		{"register_expires_sec", d.RegisterExpiresSec, uint32(3600)},
		{"codec_preferences", strings.Join(d.CodecPreferences, ","), "PCMU,PCMA,OPUS"},
		{"rtp_start_port", d.RTPStartPort, uint16(16384)},
		{"rtp_end_port", d.RTPEndPort, uint16(32768)},
		{"media_ip_cidrs", len(d.MediaIPCIDRs), 0},
		{"media_ip_cidrs not nil", d.MediaIPCIDRs != nil, true},
		{"reject_incoming_calls", d.RejectIncomingCalls, true},
		{"reject_sip_code", d.RejectSIPCode, uint16(603)},
		{"ignore_early_media", d.IgnoreEarlyMedia, false},
		{"terminate_on_hold", d.TerminateOnHold, false},
		{"inbound_rule", d.InboundRule, RuleReject},
		{"auto_bargein_mode", d.AutoBargeinMode, "energy"},
		{"auto_bargein_aggressiveness", d.AutoBargeinAggressiveness, int32(2)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("Defaults().%s = %v; want %v", c.name, c.got, c.want)
		}
	}
	v := valid()
	if err := v.Validate(); err != nil {
		t.Errorf("Defaults() with an id: Validate() = %v; want nil", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Trunk)
		field string // "" = valid
	}{
		{"id empty", func(t *Trunk) { t.TrunkID = "" }, "trunk_id"},
		{"id 128", func(t *Trunk) { t.TrunkID = strings.Repeat("a", 128) }, ""},
		{"id 129", func(t *Trunk) { t.TrunkID = strings.Repeat("a", 129) }, "trunk_id"},
		{"id charset ok", func(t *Trunk) { t.TrunkID = "A-z_0.9:x" }, ""},
		{"id space", func(t *Trunk) { t.TrunkID = "a b" }, "trunk_id"},
		{"id slash", func(t *Trunk) { t.TrunkID = "a/b" }, "trunk_id"},
		{"id unicode", func(t *Trunk) { t.TrunkID = "tränk" }, "trunk_id"},
		{"internal ip v4", func(t *Trunk) { t.InternalSIPIP = "10.0.0.5" }, ""},
		{"internal ip v6", func(t *Trunk) { t.InternalRTPIP = "2001:db8::1" }, ""},
		{"internal ip name", func(t *Trunk) { t.InternalSIPIP = "host.example" }, "internal_sip_ip"},
		{"external sip ip bad", func(t *Trunk) { t.ExternalSIPIP = "1.2.3" }, "external_sip_ip"},
		{"external rtp ip bad", func(t *Trunk) { t.ExternalRTPIP = "x" }, "external_rtp_ip"},
		{"internal rtp ip bad", func(t *Trunk) { t.InternalRTPIP = "300.1.1.1" }, "internal_rtp_ip"},
		{"gateway dns", func(t *Trunk) { t.GatewayIP = "sip.carrier.example" }, ""},
		{"gateway ip", func(t *Trunk) { t.GatewayIP = "192.0.2.1" }, ""},
		{"gateway bad", func(t *Trunk) { t.GatewayIP = "bad_host!" }, "gateway_ip"},
		{"gateway label dash", func(t *Trunk) { t.GatewayIP = "-a.example" }, "gateway_ip"},
		{"sbc bad", func(t *Trunk) { t.SBCIP = "a..b" }, "sbc_ip"},
		{"domain bad", func(t *Trunk) { t.Domain = "a b" }, "domain"},
		{"proxy host", func(t *Trunk) { t.Proxy = "proxy.example" }, ""},
		{"proxy hostport", func(t *Trunk) { t.Proxy = "proxy.example:5070" }, ""},
		{"proxy uri", func(t *Trunk) { t.Proxy = "sip:proxy.example:5070;lr" }, ""},
		{"proxy v6", func(t *Trunk) { t.Proxy = "[2001:db8::1]:5060" }, ""},
		{"proxy bad port", func(t *Trunk) { t.Proxy = "proxy.example:99999" }, "proxy"},
		{"proxy bad host", func(t *Trunk) { t.Proxy = "sip:bad host" }, "proxy"},
		{"CR in display name", func(t *Trunk) { t.DisplayName = "a\r\nVia: x" }, "display_name"},
		{"LF in username", func(t *Trunk) { t.SIPUsername = "a\nb" }, "sip_username"},
		{"NUL in agent", func(t *Trunk) { t.AgentID = "a\x00" }, "agent_id"},
		{"DEL in password", func(t *Trunk) { t.SIPPassword = "a\x7f" }, "sip_password"},
		{"C1 control", func(t *Trunk) { t.DisplayName = "a\u0085" }, "display_name"},
		{"invalid utf8", func(t *Trunk) { t.DisplayName = "a\xff" }, "display_name"},
		{"control in list", func(t *Trunk) { t.MediaIPCIDRs = []string{"10.0.0.0/8\n"} }, "media_ip_cidrs"},
		{"unicode display ok", func(t *Trunk) { t.DisplayName = "Zürich Büro" }, ""},
		{"source port 0", func(t *Trunk) { t.SourcePBXPort = 0 }, "source_pbx_port"},
		{"dest port 0", func(t *Trunk) { t.DestinationSBCPort = 0 }, "destination_sbc_port"},
		{"rtp start 0", func(t *Trunk) { t.RTPStartPort = 0 }, "rtp_start_port"},
		{"rtp end 0", func(t *Trunk) { t.RTPEndPort = 0 }, "rtp_end_port"},
		{"rtp start odd", func(t *Trunk) { t.RTPStartPort = 20001 }, "rtp_start_port"},
		{"rtp start >= end", func(t *Trunk) { t.RTPStartPort, t.RTPEndPort = 30000, 30000 }, "rtp_start_port"},
		{"rtp range too small", func(t *Trunk) { t.RTPStartPort, t.RTPEndPort = 30000, 30099 }, "rtp_end_port"},
		{"rtp range exact", func(t *Trunk) { t.RTPStartPort, t.RTPEndPort = 30000, 30100 }, ""},
		{"channel limit 0", func(t *Trunk) { t.ChannelLimit = 0 }, "channel_limit"},
		{"channel limit huge", func(t *Trunk) { t.ChannelLimit = 1 << 31 }, "rtp_end_port"},
		{"no codecs", func(t *Trunk) { t.CodecPreferences = nil }, "codec_preferences"},
		{"unknown codec", func(t *Trunk) { t.CodecPreferences = []string{"G729"} }, "codec_preferences"},
		{"duplicate codec", func(t *Trunk) { t.CodecPreferences = []string{"PCMU", "pcmu"} }, "codec_preferences"},
		{"lower-case codec", func(t *Trunk) { t.CodecPreferences = []string{"pcma"} }, ""},
		{"cidr ok", func(t *Trunk) { t.MediaIPCIDRs = []string{"192.0.2.0/24", "2001:db8::/32"} }, ""},
		{"cidr bad", func(t *Trunk) { t.MediaIPCIDRs = []string{"192.0.2.0"} }, "media_ip_cidrs"},
		{"reject 399", func(t *Trunk) { t.RejectSIPCode = 399 }, "reject_sip_code"},
		{"reject 400", func(t *Trunk) { t.RejectSIPCode = 400 }, ""},
		{"reject 699", func(t *Trunk) { t.RejectSIPCode = 699 }, ""},
		{"reject 700", func(t *Trunk) { t.RejectSIPCode = 700 }, "reject_sip_code"},
		{"expires 59", func(t *Trunk) { t.RegisterExpiresSec = 59 }, "register_expires_sec"},
		{"expires 60", func(t *Trunk) { t.RegisterExpiresSec = 60 }, ""},
		{"expires 86400", func(t *Trunk) { t.RegisterExpiresSec = 86400 }, ""},
		{"expires 86401", func(t *Trunk) { t.RegisterExpiresSec = 86401 }, "register_expires_sec"},
		{"registration no user", func(t *Trunk) { t.RequireRegistration = true }, "sip_username"},
		{"registration no password", func(t *Trunk) { t.RequireRegistration, t.SIPUsername = true, "u" }, "sip_password"},
		{"registration no target", func(t *Trunk) { t.RequireRegistration, t.SIPUsername, t.SIPPassword = true, "u", "p" }, "gateway_ip"},
		{"registration via proxy", func(t *Trunk) {
			t.RequireRegistration, t.SIPUsername, t.SIPPassword, t.Proxy = true, "u", "p", "proxy.example"
		}, ""},
		{"rule out of range", func(t *Trunk) { t.InboundRule = 4 }, "inbound_rule"},
		{"rule negative", func(t *Trunk) { t.InboundRule = -1 }, "inbound_rule"},
		{"play needs url", func(t *Trunk) { t.RejectIncomingCalls, t.InboundRule = false, RulePlayAndHangup }, "inbound_audio_url"},
		{"play with url", func(t *Trunk) {
			t.RejectIncomingCalls, t.InboundRule, t.InboundAudioURL = false, RulePlayAndHangup, "https://cdn.example/a.wav"
		}, ""},
		{"play rule ignored while rejecting", func(t *Trunk) { t.InboundRule = RulePlayAndHangup }, ""},
		{"notify needs url", func(t *Trunk) { t.RejectIncomingCalls, t.InboundRule = false, RuleNotifyAndHangup }, "inbound_webhook_url"},
		{"notify ws url", func(t *Trunk) {
			t.RejectIncomingCalls, t.InboundRule, t.InboundWebhookURL = false, RuleNotifyAndHangup, "ws://x.example/"
		}, "inbound_webhook_url"},
		{"notify https", func(t *Trunk) {
			t.RejectIncomingCalls, t.InboundRule, t.InboundWebhookURL = false, RuleNotifyAndHangup, "https://hooks.example/in"
		}, ""},
		{"ai needs url", func(t *Trunk) { t.RejectIncomingCalls, t.InboundRule = false, RuleHandleAI }, "inbound_ai_websocket_url"},
		{"ai quic", func(t *Trunk) {
			t.RejectIncomingCalls, t.InboundRule, t.InboundAIQUICURL = false, RuleHandleAI, "quic://ai.example:4433/agent"
		}, ""},
		{"ai ws wrong scheme", func(t *Trunk) { t.InboundAIWebsocketURL = "http://ai.example/" }, "inbound_ai_websocket_url"},
		{"ai quic wrong scheme", func(t *Trunk) { t.InboundAIQUICURL = "https://ai.example/" }, "inbound_ai_quic_url"},
		{"audio file path", func(t *Trunk) { t.RejectAudioFile = "/var/lib/trunkd/closed.wav" }, ""},
		{"audio file url", func(t *Trunk) { t.RejectAudioFile = "file:///var/lib/trunkd/closed.wav" }, ""},
		{"audio relative path", func(t *Trunk) { t.RejectAudioFile = "closed.wav" }, "reject_audio_file"},
		{"audio ftp", func(t *Trunk) { t.InboundAudioURL = "ftp://x.example/a.wav" }, "inbound_audio_url"},
		{"url without host", func(t *Trunk) { t.InboundWebhookURL = "https:///x" }, "inbound_webhook_url"},
		{"ai_websocket_url bad", func(t *Trunk) { t.AIWebsocketURL = "tcp://x" }, "ai_websocket_url"},
		{"ai_quic_url bad", func(t *Trunk) { t.AIQUICURL = "x" }, "ai_quic_url"},
		{"bargein modes", func(t *Trunk) { t.AutoBargeinMode = "vad" }, ""},
		{"bargein bad", func(t *Trunk) { t.AutoBargeinMode = "loud" }, "auto_bargein_mode"},
		{"bargein empty", func(t *Trunk) { t.AutoBargeinMode = "" }, "auto_bargein_mode"},
		{"aggressiveness 3", func(t *Trunk) { t.AutoBargeinAggressiveness = 3 }, ""},
		{"aggressiveness 4", func(t *Trunk) { t.AutoBargeinAggressiveness = 4 }, "auto_bargein_aggressiveness"},
		{"aggressiveness -1", func(t *Trunk) { t.AutoBargeinAggressiveness = -1 }, "auto_bargein_aggressiveness"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := valid()
			tt.edit(&tr)
			tr.Normalize()
			wantFieldError(t, tr.Validate(), tt.field)
		})
	}
}

func TestNormalizeUppercasesCodecs(t *testing.T) {
	tr := valid()
	tr.CodecPreferences = []string{"opus", "Pcmu"}
	tr.Normalize()
	if got := strings.Join(tr.CodecPreferences, ","); got != "OPUS,PCMU" {
		t.Errorf("Normalize() codecs = %s; want OPUS,PCMU", got)
	}
}

func TestSecretsStayOutOfText(t *testing.T) {
	tr := valid()
	tr.SIPPassword = "hunter2-secret"
	tr.APIBearerToken = "tok-secret"
	for _, s := range []string{tr.String(), tr.LogValue().String(), tr.Redacted().SIPPassword, tr.Redacted().APIBearerToken} {
		if strings.Contains(s, "secret") {
			t.Errorf("%q shows a secret", s)
		}
	}
	if tr.SIPPassword != "hunter2-secret" {
		t.Error("Redacted changed the original")
	}
}

func TestImportsOnlyStdlib(t *testing.T) {
	// Enforced by go list in the Makefile's lint target too; here as a test
	// so that go test alone catches a forbidden import.
	out := goListImports(t)
	for _, imp := range out {
		if strings.Contains(imp, ".") {
			t.Errorf("package trunk imports %s; the domain imports only the standard library", imp)
		}
	}
}

// wantFieldError fails t unless err is nil and field is "", or err is an
// EINVALID *Error naming field.
func wantFieldError(t *testing.T, err error, field string) {
	t.Helper()
	got := ""
	if err != nil {
		got = err.(*Error).Field
		if ErrorCode(err) != EINVALID {
			t.Errorf("Validate() code = %s; want %s", ErrorCode(err), EINVALID)
		}
	}
	if got != field {
		t.Errorf("Validate() = %v; want error on field %q", err, field)
	}
}

// TestEveryTextFieldRefusesControlCharacters puts a NUL into each string
// and []string field of an otherwise valid record in turn.
func TestEveryTextFieldRefusesControlCharacters(t *testing.T) {
	typ := reflect.TypeFor[Trunk]()
	checked := 0
	for i := range typ.NumField() {
		f := typ.Field(i)
		tr := valid()
		v := reflect.ValueOf(&tr).Elem().Field(i)
		switch {
		case f.Type.Kind() == reflect.String:
			v.SetString("a\x00b")
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.String:
			v.Set(reflect.ValueOf([]string{"x", "a\x00b"}).Convert(f.Type))
		default:
			continue
		}
		checked++
		err := tr.Validate()
		var e *Error
		if !errors.As(err, &e) || e.Field != JSONName(f) || !strings.Contains(e.Error(), "control character") {
			t.Errorf("%s with a NUL: got %v, want a control-character error naming it", JSONName(f), err)
		}
	}
	if checked < 20 {
		t.Fatalf("only %d text fields found", checked)
	}
}
