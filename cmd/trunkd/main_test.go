package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/trunk"
	"github.com/vmihailenco/msgpack/v5"
)

// startDaemon starts trunkd on a random loopback port with data in dir.
func startDaemon(t *testing.T, dir string) *Daemon {
	t.Helper()
	cfg, err := parseConfig([]string{"--listen", "127.0.0.1:0", "--data", dir, "--log-level", "warn"}, func(string) string { return "" }, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Start(cfg, cfg.logger(os.Stderr))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func stopDaemon(t *testing.T, d *Daemon) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// freeSIPPort returns a loopback port free for both UDP and TCP.
func freeSIPPort(t testing.TB) uint16 { return siptest.FreePort(t, "127.0.0.1") }

func token(t *testing.T, dir, scope string) string {
	t.Helper()
	secret, err := auth.LoadSecretFile(filepath.Join(dir, "jwt.secret"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.MintToken(secret, scope, time.Hour, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func connect(t *testing.T, d *Daemon, dir, tok string) *rpc.Client {
	t.Helper()
	tc, err := rpc.PinnedTLSConfig(filepath.Join(dir, "tls.crt"), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := rpc.Dial(ctx, d.Addr().String(), tc, tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestEmbeddedDefaultsCreateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	d := startDaemon(t, dir)
	defer stopDaemon(t, d)
	for name, mode := range map[string]os.FileMode{"jwt.secret": 0o600, "secret.key": 0o600, "tls.key": 0o600, "trunkd.db": 0o600, "tls.crt": 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("%s mode = %o; want %o", name, got, mode)
		}
	}
}

// TestRestartKeepsTrunks adds trunks, restarts trunkd on the same data dir
// and finds every one, with its secrets still usable and never returned.
func TestRestartKeepsTrunks(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir)
	tok := token(t, dir, "trunks:manage")
	c := connect(t, d, dir, tok)
	ctx := context.Background()
	port := freeSIPPort(t)
	for i := range 50 {
		tr := trunk.Defaults()
		tr.InternalSIPIP, tr.SourcePBXPort = "127.0.0.1", port // all on one listener
		tr.TrunkID = fmt.Sprintf("carrier-%02d", i)
		tr.DisplayName = fmt.Sprintf("Carrier %d", i)
		tr.SIPPassword = "pw-" + tr.TrunkID
		if err := c.AddTrunk(ctx, &tr); err != nil {
			t.Fatalf("AddTrunk %s: %v", tr.TrunkID, err)
		}
	}
	if err := c.RemoveTrunk(ctx, "carrier-07"); err != nil {
		t.Fatal(err)
	}
	stopDaemon(t, d)

	secretBefore, _ := os.ReadFile(filepath.Join(dir, "jwt.secret"))
	d = startDaemon(t, dir)
	defer stopDaemon(t, d)
	secretAfter, _ := os.ReadFile(filepath.Join(dir, "jwt.secret"))
	if !bytes.Equal(secretBefore, secretAfter) {
		t.Error("restart regenerated jwt.secret; want it reused")
	}
	c = connect(t, d, dir, tok) // the old token and the pinned certificate still work
	var ids []string
	for cursor := ""; ; {
		page, next, err := c.ListTrunks(ctx, cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page {
			ids = append(ids, p.TrunkID)
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	if len(ids) != 49 || !sort.StringsAreSorted(ids) || contains(ids, "carrier-07") {
		t.Errorf("after restart ListTrunks = %d ids %v; want 49 sorted, without carrier-07", len(ids), ids)
	}
	got, found, err := c.GetTrunk(ctx, "carrier-42")
	if err != nil || !found || got.DisplayName != "Carrier 42" {
		t.Errorf("GetTrunk carrier-42 after restart = %+v, %v, %v", got, found, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestRawEnvelopes drives trunkd with envelopes built here by hand, as a
// client in another language would, and checks the raw responses.
func TestRawEnvelopes(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir)
	defer stopDaemon(t, d)
	tok := token(t, dir, "trunks:manage")
	c := connect(t, d, dir, "")
	ctx := context.Background()

	add := enc(omap{"AddTrunk", omap{
		"admin_token", tok, "trunk_id", "raw-1", "channel_limit", uint64(10), "inbound_rule", int8(0), // uint64, int8, int32 on the wire
		"source_pbx_port", int32(freeSIPPort(t)), "internal_sip_ip", "127.0.0.1", "codec_preferences", []any{"pcma"}, "display_name", nil,
	}})
	if resp := rawCall(t, c, ctx, add); !bytes.Equal(resp, enc(omap{"Ok", omap{}})) {
		t.Fatalf("AddTrunk response = % x; want {\"Ok\": {}}", resp)
	}
	get := enc(omap{"GetTrunk", omap{"admin_token", tok, "trunk_id", "raw-1"}})
	resp := rawCall(t, c, ctx, get)
	var got struct {
		Ok struct {
			Found  bool           `msgpack:"found"`
			Config map[string]any `msgpack:"config"`
		} `msgpack:"Ok"`
	}
	if err := msgpack.Unmarshal(resp, &got); err != nil {
		t.Fatalf("GetTrunk response % x: %v", resp, err)
	}
	if !got.Ok.Found || got.Ok.Config["trunk_id"] != "raw-1" || fmt.Sprint(got.Ok.Config["channel_limit"]) != "10" ||
		got.Ok.Config["display_name"] != "" {
		t.Errorf("GetTrunk = %+v", got.Ok)
	}
	for _, k := range []string{"sip_password", "api_bearer_token", "sip_username"} {
		if _, ok := got.Ok.Config[k]; ok {
			t.Errorf("GetTrunk returned %s", k)
		}
	}

	bad := enc(omap{"UpdateTrunk", omap{"admin_token", tok, "trunk_id", "raw-1", "source_pbx_port", uint64(70000)}})
	resp = rawCall(t, c, ctx, bad)
	want := enc(omap{"Err", omap{"code", "ERR_INVALID_ARGUMENT", "message", "source_pbx_port: 70000 is out of range for uint16", "field", "source_pbx_port"}})
	if !bytes.Equal(resp, want) {
		t.Errorf("UpdateTrunk with 70000 for a uint16:\ngot  % x\nwant % x", resp, want)
	}

	readTok := token(t, dir, "trunks:read")
	rm := enc(omap{"RemoveTrunk", omap{"admin_token", readTok, "trunk_id", "raw-1"}})
	if resp := rawCall(t, c, ctx, rm); !bytes.Contains(resp, []byte("ERR_PERMISSION_DENIED")) {
		t.Errorf("RemoveTrunk with a read-only token = % x; want ERR_PERMISSION_DENIED", resp)
	}
	forged := tok[:strings.LastIndex(tok, ".")+1] + "AAAA"
	rm = enc(omap{"RemoveTrunk", omap{"admin_token", forged, "trunk_id", "raw-1"}})
	if resp := rawCall(t, c, ctx, rm); !bytes.Contains(resp, []byte("ERR_UNAUTHENTICATED")) {
		t.Errorf("RemoveTrunk with a forged token = % x; want ERR_UNAUTHENTICATED", resp)
	}
	if _, found, _ := connect(t, d, dir, tok).GetTrunk(ctx, "raw-1"); !found {
		t.Error("raw-1 is gone after refused removals")
	}
}

func rawCall(t *testing.T, c *rpc.Client, ctx context.Context, frame []byte) []byte {
	t.Helper()
	resp, err := c.CallRaw(ctx, frame)
	if err != nil {
		t.Fatalf("CallRaw: %v", err)
	}
	return resp
}

// omap is an ordered map: key, value, key, value…
type omap []any

// enc is a small MessagePack encoder written for this test, independent of
// the server's codec. It encodes integers in the width given.
func enc(v any) []byte {
	var b []byte
	switch x := v.(type) {
	case nil:
		b = []byte{0xc0}
	case bool:
		b = []byte{map[bool]byte{false: 0xc2, true: 0xc3}[x]}
	case string:
		b = encStr(x)
	case int8:
		b = []byte{0xd0, byte(x)}
	case int32:
		b = binary.BigEndian.AppendUint32([]byte{0xd2}, uint32(x))
	case uint64:
		b = binary.BigEndian.AppendUint64([]byte{0xcf}, x)
	case []any:
		b = []byte{0x90 | byte(len(x))}
		for _, e := range x {
			b = append(b, enc(e)...)
		}
	case omap:
		b = []byte{0x80 | byte(len(x)/2)}
		if len(x)/2 > 15 {
			b = []byte{0xde, 0, byte(len(x) / 2)}
		}
		for _, e := range x {
			b = append(b, enc(e)...)
		}
	default:
		panic(fmt.Sprintf("enc: %T", v))
	}
	return b
}

func encStr(s string) []byte {
	switch n := len(s); {
	case n < 32:
		return append([]byte{0xa0 | byte(n)}, s...)
	case n < 256:
		return append([]byte{0xd9, byte(n)}, s...)
	default:
		return append(binary.BigEndian.AppendUint16([]byte{0xda}, uint16(n)), s...)
	}
}
