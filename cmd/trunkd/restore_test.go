package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/trunk"
)

// TestBackupAndRestore: a backup taken from a running trunkd is refused
// over the live data dir, restored into another with the secret key, and
// the trunkd started there serves the trunks with their secrets.
func TestBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	d := startDaemonArgs(t, dir, "--http-listen", "127.0.0.1:0")
	defer stopDaemon(t, d)
	c := connect(t, d, dir, token(t, dir, "trunks:admin"))
	ctx := context.Background()
	tr := trunk.Defaults()
	tr.TrunkID, tr.GatewayIP, tr.SIPUsername, tr.SIPPassword = "carrier-1", "192.0.2.10", "acme", "s3cret"
	tr.InternalSIPIP, tr.SourcePBXPort = "127.0.0.1", freeSIPPort(t) // not 5060, which another test may hold
	if err := c.AddTrunk(ctx, &tr); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "trunkd.backup")
	var buf bytes.Buffer
	if _, _, err := c.Backup(ctx, &buf); err != nil {
		t.Fatalf("Backup() = %v", err)
	}
	os.WriteFile(backup, buf.Bytes(), 0o600)
	checkRESTBackup(t, d, dir)

	restoreCmd := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := restore(args, &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := restoreCmd("--from", backup, "--data", dir, "--force"); code != 1 || !strings.Contains(out, "in use") {
		t.Errorf("restore over the live data dir = %d, %q; want a refusal (in use)", code, out)
	}
	other := t.TempDir()
	if code, out := restoreCmd("--from", backup, "--data", other); code != 1 || !strings.Contains(out, "secret.key") {
		t.Errorf("restore without secret.key = %d, %q; want a refusal naming secret.key", code, out)
	}
	key, _ := os.ReadFile(filepath.Join(dir, "secret.key"))
	os.WriteFile(filepath.Join(other, "secret.key"), key, 0o600)
	os.WriteFile(backup+".sha256", []byte(strings.Repeat("0", 64)+"  trunkd.backup\n"), 0o600)
	if code, out := restoreCmd("--from", backup, "--data", other); code != 1 || !strings.Contains(out, "damaged") {
		t.Errorf("restore with a wrong .sha256 = %d, %q; want a refusal (damaged)", code, out)
	}
	os.Remove(backup + ".sha256")
	if code, out := restoreCmd("--from", backup, "--data", other); code != 0 {
		t.Fatalf("restore = %d, %q; want 0", code, out)
	}

	for _, f := range []string{"jwt.secret", "tls.crt", "tls.key"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		os.WriteFile(filepath.Join(other, f), b, 0o600)
	}
	d2 := startDaemon(t, other)
	defer stopDaemon(t, d2)
	c2 := connect(t, d2, other, token(t, other, "trunks:admin"))
	got, err := c2.GetTrunkRecord(ctx, "carrier-1")
	if err != nil || !got.Found || !got.Record.SIPPasswordSet {
		t.Errorf("restored GetTrunk = %+v, %v; want carrier-1 with its password", got.Found, err)
	}
}

// checkRESTBackup: GET /v1/backup answers a trunkd store whose SHA-256
// is in Repr-Digest, and refuses a token without trunks:admin.
func checkRESTBackup(t *testing.T, d *Daemon, dir string) {
	t.Helper()
	hc := restClient(t, dir)
	get := func(tok string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", "https://"+d.HTTPAddr().String()+"/v1/backup", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body := get(token(t, dir, "trunks:admin"))
	sum := sha256.Sum256(body)
	want := "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
	if resp.StatusCode != 200 || resp.Header.Get("Repr-Digest") != want || !bytes.HasPrefix(body[16:], []byte{0xed, 0xda, 0x0c, 0xed}) {
		t.Errorf("GET /v1/backup = %d, Repr-Digest %q, %d bytes; want 200, %q and a bbolt file", resp.StatusCode, resp.Header.Get("Repr-Digest"), len(body), want)
	}
	if resp, _ := get(token(t, dir, "trunks:manage")); resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET /v1/backup with trunks:manage = %d; want 403", resp.StatusCode)
	}

	for _, c := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"log_level": "warn"}`, 200, `"log_level":"WARN"`},
		{`{"log_level": "loud"}`, 400, `"field":"log_level"`},
		{`{"colour": "red"}`, 400, `"field":"colour"`},
	} {
		req, _ := http.NewRequest("POST", "https://"+d.HTTPAddr().String()+"/v1/reload", strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+token(t, dir, "trunks:admin"))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.want) {
			t.Errorf("POST /v1/reload %s = %d %s; want %d with %s", c.body, resp.StatusCode, b, c.status, c.want)
		}
	}
}

// restClient speaks HTTPS to the REST face, pinning the daemon's
// certificate in dir.
func restClient(t *testing.T, dir string) *http.Client {
	t.Helper()
	tc, err := rpc.PinnedTLSConfig(filepath.Join(dir, "tls.crt"), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: tc}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// startDaemonArgs is startDaemon with more flags.
func startDaemonArgs(t *testing.T, dir string, extra ...string) *Daemon {
	t.Helper()
	args := append([]string{"--listen", "127.0.0.1:0", "--data", dir, "--log-level", "warn"}, extra...)
	cfg, err := parseConfig(args, func(string) string { return "" }, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Start(cfg, cfg.logger(os.Stderr))
	if err != nil {
		t.Fatal(err)
	}
	return d
}
