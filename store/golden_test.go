package store

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/trunkd/trunkd/trunk"
)

var update = flag.Bool("update", false, "rewrite current-nosecrets.bin (the v1 files are frozen)")

// The golden records pin the at-rest format. A stored record is the wire's
// JSON of trunk.Trunk (plus sealed secrets) behind SchemaVersion, so a field
// renamed on the wire would silently change the file; these tests make that
// a failure. Any other store (etcd) must read the same bytes.
const recordsDir = "../testdata/records"

// goldenKey is the test-only key the golden records are sealed with; it is
// in testdata/records/v1.key and protects nothing.
func goldenKey(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(recordsDir, "v1.key"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func goldenDB(t *testing.T) *DB {
	t.Helper()
	s, err := newSealer(goldenKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return &DB{crypt: s}
}

// v1Trunk is what the frozen v1 files hold: the fields a version 1 record
// had, each off its default. A field added since decodes to its default,
// so v1Trunk starts from trunk.Defaults. Never change these values: they
// describe files already on operators' disks.
func v1Trunk() *trunk.Trunk {
	t := trunk.Defaults()
	v1 := trunk.Trunk{
		TrunkID:                   "golden-1",
		ChannelLimit:              12,
		InternalSIPIP:             "10.0.0.5",
		ExternalSIPIP:             "198.51.100.5",
		InternalRTPIP:             "10.0.0.6",
		ExternalRTPIP:             "198.51.100.6",
		GatewayIP:                 "192.0.2.10",
		SBCIP:                     "192.0.2.11",
		SourcePBXPort:             5070,
		DestinationSBCPort:        5080,
		DisplayName:               "Golden Carrier",
		Domain:                    "sip.example.com",
		Proxy:                     "proxy.example.com:5061",
		RequireRegistration:       true,
		SIPUsername:               "golden",
		SIPPassword:               "s3cret",
		RegisterExpiresSec:        600,
		CodecPreferences:          []string{"PCMA", "PCMU"},
		RTPStartPort:              20000,
		RTPEndPort:                20100,
		MediaIPCIDRs:              []string{"192.0.2.0/24"},
		RejectIncomingCalls:       false, // the default is true
		RejectSIPCode:             486,
		RejectAudioFile:           "https://audio.example.com/busy.wav",
		IgnoreEarlyMedia:          true,
		TerminateOnHold:           true,
		InboundRule:               trunk.RuleNotifyAndHangup,
		InboundAudioURL:           "https://audio.example.com/hello.wav",
		InboundWebhookURL:         "https://hooks.example.com/inbound",
		InboundAIWebsocketURL:     "wss://agent.example.com/in",
		InboundAIQUICURL:          "quic://agent.example.com:4433/in",
		APIBearerToken:            "bearer-token",
		AIWebsocketURL:            "wss://agent.example.com/out",
		AIQUICURL:                 "quic://agent.example.com:4433/out",
		AutoBargeinMode:           "vad",
		AutoBargeinAggressiveness: 3,
		AgentID:                   "agent-7",
	}
	for i := range reflect.TypeFor[trunk.Trunk]().NumField() {
		if name := trunk.JSONName(reflect.TypeFor[trunk.Trunk]().Field(i)); v1Fields[name] {
			reflect.ValueOf(&t).Elem().Field(i).Set(reflect.ValueOf(v1).Field(i))
		}
	}
	return &t
}

// v1Fields are the fields of a version 1 record, by JSON name.
var v1Fields = map[string]bool{}

func init() {
	for _, f := range strings.Fields(`trunk_id channel_limit internal_sip_ip external_sip_ip
		internal_rtp_ip external_rtp_ip gateway_ip sbc_ip source_pbx_port destination_sbc_port
		display_name domain proxy require_registration sip_username sip_password
		register_expires_sec codec_preferences rtp_start_port rtp_end_port media_ip_cidrs
		reject_incoming_calls reject_sip_code reject_audio_file ignore_early_media
		terminate_on_hold inbound_rule inbound_audio_url inbound_webhook_url
		inbound_ai_websocket_url inbound_ai_quic_url api_bearer_token ai_websocket_url
		ai_quic_url auto_bargein_mode auto_bargein_aggressiveness agent_id`) {
		v1Fields[f] = true
	}
}

// goldenTrunk is v1Trunk with every field added since also set off its
// default, so that a rename of any field changes the current golden bytes.
// A field added to trunk.Trunk is set here (TestGoldenTrunkSetsEveryField
// fails until it is) and current-nosecrets.bin is rewritten with -update.
func goldenTrunk() *trunk.Trunk {
	t := v1Trunk()
	t.EnableNoiseCancellation = true
	return t
}

// TestGoldenTrunkSetsEveryField keeps goldenTrunk complete: a field added
// to trunk.Trunk must be added to it (and the golden files rewritten).
func TestGoldenTrunkSetsEveryField(t *testing.T) {
	v := reflect.ValueOf(goldenTrunk()).Elem()
	d := reflect.ValueOf(trunk.Defaults())
	for i := range v.NumField() {
		name := trunk.JSONName(v.Type().Field(i))
		if reflect.DeepEqual(v.Field(i).Interface(), d.Field(i).Interface()) {
			t.Errorf("goldenTrunk leaves %s at its default value", name)
		}
	}
}

// TestGoldenRecordDecodes decodes the frozen v1.bin (secrets sealed with
// the test key) into exactly v1Trunk: version 1 records stay readable.
func TestGoldenRecordDecodes(t *testing.T) {
	db := goldenDB(t)
	b, err := os.ReadFile(filepath.Join(recordsDir, "v1.bin"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.decode("golden-1", b)
	if err != nil {
		t.Fatalf("decode(v1.bin) = %v", err)
	}
	if want := v1Trunk(); !reflect.DeepEqual(got, want) {
		t.Errorf("decode(v1.bin) =\n%+v\nwant\n%+v", got, want)
	}
}

// TestGoldenRecordEncodes encodes goldenTrunk without secrets (sealing is
// randomised) and wants current-nosecrets.bin byte for byte.
func TestGoldenRecordEncodes(t *testing.T) {
	db := goldenDB(t)
	tr := goldenTrunk()
	tr.SIPPassword, tr.APIBearerToken = "", ""
	got, err := db.encode(tr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(recordsDir, "current-nosecrets.bin")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encode(goldenTrunk) =\n%q\nwant (current-nosecrets.bin)\n%q", got, want)
	}
	back, err := db.decode("golden-1", want)
	if err != nil || !reflect.DeepEqual(back, tr) {
		t.Errorf("decode(current-nosecrets.bin) = %+v, %v; want %+v", back, err, tr)
	}
}

// TestGoldenV1NoSecretsDecodes reads the frozen v1-nosecrets.bin.
func TestGoldenV1NoSecretsDecodes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(recordsDir, "v1-nosecrets.bin"))
	if err != nil {
		t.Fatal(err)
	}
	want := v1Trunk()
	want.SIPPassword, want.APIBearerToken = "", ""
	got, err := goldenDB(t).decode("golden-1", b)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("decode(v1-nosecrets.bin) = %+v, %v; want %+v", got, err, want)
	}
}
