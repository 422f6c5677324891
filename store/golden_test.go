package store

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trunkd/trunkd/store/record"
	"github.com/trunkd/trunkd/trunk"
	bolt "go.etcd.io/bbolt"
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

func goldenDB(t *testing.T) *record.Codec {
	t.Helper()
	c, err := record.NewCodec(goldenKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
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
	t.OrganizationID = trunk.DefaultOrg // what a record without one reads as
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
	t.Name = "Golden trunk"
	t.OrganizationID = "org-golden"
	t.ManagedAccountID = "acct-7"
	t.AllowedAddresses = []string{"192.0.2.0/24", "2001:db8::1"}
	t.Meta = trunk.Meta{
		Revision:  7,
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		UpdatedAt: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC),
	}
	t.Transport = trunk.TransportTLS
	t.SIPTLSPort = 5071
	t.InboundMediaEncryption = trunk.EncryptAllow
	t.OutboundMediaEncryption = trunk.EncryptRequire
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
	got, err := db.Decode("golden-1", b)
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
	got, err := db.Encode(tr)
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
	back, err := db.Decode("golden-1", want)
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
	got, err := goldenDB(t).Decode("golden-1", b)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("decode(v1-nosecrets.bin) = %+v, %v; want %+v", got, err, want)
	}
}

// TestGoldenV1FileMigrates opens a version 1 database holding the frozen
// v1.bin record: Open migrates it to SchemaVersion, the trunk reads back as
// v1Trunk with a revision and unknown timestamps, and it can be updated
// with that revision as if_revision.
func TestGoldenV1FileMigrates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	v1, err := os.ReadFile(filepath.Join(recordsDir, "v1.bin"))
	if err != nil {
		t.Fatal(err)
	}
	writeV1File(t, path, map[string][]byte{"golden-1": v1})
	db, err := Open(path, goldenKey(t))
	if err != nil {
		t.Fatalf("Open(v1 file) = %v", err)
	}
	defer db.Close()
	got, err := db.GetTrunk(ctx, "golden-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Meta.Revision == 0 || !got.Meta.CreatedAt.IsZero() || !got.Meta.UpdatedAt.IsZero() {
		t.Errorf("migrated Meta = %+v; want a revision and zero timestamps", got.Meta)
	}
	want := v1Trunk()
	want.Meta = got.Meta
	if !reflect.DeepEqual(got, want) {
		t.Errorf("migrated trunk =\n%+v\nwant\n%+v", got, want)
	}
	db.bolt.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyVersion); !bytes.Equal(v, []byte{SchemaVersion}) {
			t.Errorf("schema version after migration = %v; want %d", v, SchemaVersion)
		}
		if v := tx.Bucket(bucketTrunks).Get([]byte("golden-1")); record.VersionOf(v) != SchemaVersion {
			t.Errorf("record version after migration = %d; want %d", record.VersionOf(v), SchemaVersion)
		}
		return nil
	})
	if err := db.UpdateTrunk(ctx, got, got.Meta.Revision); err != nil {
		t.Errorf("UpdateTrunk(if_revision=migrated revision) = %v", err)
	}
}

// TestV1FileWithCorruptRecordIsLeftAlone: a migration that cannot read a
// record fails Open and leaves the file at version 1.
func TestV1FileWithCorruptRecordIsLeftAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	writeV1File(t, path, map[string][]byte{"bad": []byte("\x01{not json")})
	if db, err := Open(path, goldenKey(t)); err == nil {
		db.Close()
		t.Fatal("Open migrated a corrupt record")
	}
	b, _ := bolt.Open(path, 0o600, nil)
	defer b.Close()
	b.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyVersion); !bytes.Equal(v, []byte{1}) {
			t.Errorf("schema version after failed migration = %v; want 1", v)
		}
		return nil
	})
}

// writeV1File writes a database as trunkd with schema version 1 left it.
func writeV1File(t *testing.T, path string, records map[string][]byte) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	check, err := goldenDB(t).SealCheck(marker)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket(bucketMeta)
		trunks, _ := tx.CreateBucket(bucketTrunks)
		for k, v := range records {
			trunks.Put([]byte(k), v)
		}
		return errors.Join(meta.Put(keyMarker, marker), meta.Put(keyVersion, []byte{1}), meta.Put(keyCheck, check))
	})
	if err != nil {
		t.Fatal(err)
	}
}
