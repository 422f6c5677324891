package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/store"
	"github.com/trunkd/trunkd/trunk"
)

// server starts a real store and RPC server in dir and returns its address.
func server(t *testing.T, dir string) string {
	t.Helper()
	secret := []byte("0123456789abcdef0123456789abcdef")
	if err := os.WriteFile(filepath.Join(dir, "jwt.secret"), append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{7}, 32)
	db, err := store.Open(filepath.Join(dir, "trunkd.db"), key)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := rpc.NewAuthenticator(rpc.AuthConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := rpc.LoadOrCreateCert(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	s := rpc.NewServer(rpc.Config{Trunks: db, Auth: auth, Match: fakeMatcher{}})
	if err := s.Listen("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}}); err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() {
		s.Close()
		db.Close()
	})
	return s.Addr().String()
}

// fakeMatcher matches 192.0.2.10 on :5060 to c1 and nothing else.
type fakeMatcher struct{}

func (fakeMatcher) ExplainMatch(_ context.Context, src, listener, ruri string) (trunk.Match, error) {
	if src == "192.0.2.10" && listener == ":5060" {
		return trunk.Match{Matched: true, TrunkID: "c1", Reason: "source 192.0.2.10 is its gateway_ip"}, nil
	}
	return trunk.Match{Reason: "source " + src + " is not the gateway_ip or sbc_ip of any trunk"}, nil
}

// ctl runs trunkctl in-process and returns its exit code and output.
func ctl(t *testing.T, vars map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := env{getenv: func(k string) string { return vars[k] }, stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, args, e)
	return code, out.String(), errb.String()
}

func TestTrunkctlLifecycle(t *testing.T) {
	dir := t.TempDir()
	addr := server(t, dir)
	code, tok, stderr := ctl(t, nil, "", "token", "--secret-file", filepath.Join(dir, "jwt.secret"), "--scope", "trunks:manage", "--ttl", "10m")
	if code != 0 {
		t.Fatalf("token: exit %d: %s", code, stderr)
	}
	vars := map[string]string{"TRUNKD_ADDR": addr, "TRUNKD_TOKEN": strings.TrimSpace(tok), "TRUNKD_CA": filepath.Join(dir, "tls.crt")}

	steps := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stdout string // substring expected in stdout
		stderr string // substring expected in stderr
	}{
		{"add by flags", "", []string{"add", "--trunk-id", "c1", "--display-name", "Carrier One", "--codec-preferences", "pcma,pcmu", "--inbound-rule", "reject"}, 0, "trunk c1 added", ""},
		{"add again", "", []string{"add", "--trunk-id", "c1"}, 1, "", "ERR_TRUNK_EXISTS"},
		{"add bad field", "", []string{"add", "--trunk-id", "c2", "--rtp-start-port", "101"}, 1, "", "rtp_start_port"},
		{"add from yaml", "", []string{"add", "-f", "../../testdata/trunks/carrier-1.yaml"}, 0, "trunk carrier-1 added", ""},
		{"add from stdin json", `{"trunk_id": "c3", "channel_limit": 5}`, []string{"add", "-f", "-"}, 0, "trunk c3 added", ""},
		{"file with unknown field", `{"trunk_id": "c4", "colour": "red"}`, []string{"add", "-f", "-"}, 2, "", "colour"},
		{"flag overrides file", `{"trunk_id": "c3", "display_name": "from file"}`, []string{"update", "-f", "-", "--display-name", "from flag"}, 0, "trunk c3 updated", ""},
		{"get table", "", []string{"get", "c3"}, 0, "from flag", ""},
		{"get json after id", "", []string{"get", "c1", "-o", "json"}, 0, `"display_name": "Carrier One"`, ""},
		{"get yaml", "", []string{"get", "-o", "yaml", "carrier-1"}, 0, "channel_limit: 30", ""},
		{"get missing", "", []string{"get", "nope"}, 1, "", "not found"},
		{"list table", "", []string{"list"}, 0, "carrier-1", ""},
		{"list one page", "", []string{"list", "--limit", "1"}, 0, "c1", "--cursor c1"},
		{"update missing", "", []string{"update", "--trunk-id", "nope"}, 1, "", "ERR_INVALID_TRUNK"},
		{"rm", "", []string{"rm", "c1"}, 0, "trunk c1 removed", ""},
		{"rm again", "", []string{"rm", "c1"}, 1, "", "ERR_INVALID_TRUNK"},
		{"no id", "", []string{"add", "--display-name", "x"}, 2, "", "trunk_id"},
		{"unknown command", "", []string{"frobnicate"}, 2, "", "unknown command"},
		{"explain matched", "", []string{"explain", "--source", "192.0.2.10", "--listener", ":5060"}, 0, "matched c1: source 192.0.2.10 is its gateway_ip", ""},
		{"explain unmatched", "", []string{"explain", "--source", "192.0.2.99", "--listener", ":5060"}, 0, "no match (the call would get 403)", ""},
		{"explain json", "", []string{"explain", "--source", "192.0.2.10", "--listener", ":5060", "-o", "json"}, 0, `"trunk_id": "c1"`, ""},
		{"explain without listener", "", []string{"explain", "--source", "192.0.2.10"}, 2, "", "--listener"},
		{"bad output", "", []string{"get", "c3", "-o", "xml"}, 2, "", "xml"},
	}
	for _, s := range steps {
		code, out, errOut := ctl(t, vars, s.stdin, s.args...)
		if code != s.code || !strings.Contains(out, s.stdout) || !strings.Contains(errOut, s.stderr) {
			t.Errorf("%s: trunkctl %s = exit %d, stdout %q, stderr %q; want exit %d, stdout ~%q, stderr ~%q",
				s.name, strings.Join(s.args, " "), code, out, errOut, s.code, s.stdout, s.stderr)
		}
	}

	code, out, _ := ctl(t, vars, "", "list", "-o", "json")
	var list []rpc.TrunkConfig
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 {
		t.Errorf("list -o json = exit %d, %q; want the two remaining trunks", code, out)
	}
}

func TestTrunkctlAuthErrors(t *testing.T) {
	dir := t.TempDir()
	addr := server(t, dir)
	_, readTok, _ := ctl(t, nil, "", "token", "--secret-file", filepath.Join(dir, "jwt.secret"), "--scope", "trunks:read")
	base := map[string]string{"TRUNKD_ADDR": addr, "TRUNKD_CA": filepath.Join(dir, "tls.crt")}

	vars := map[string]string{"TRUNKD_TOKEN": strings.TrimSpace(readTok)}
	for k, v := range base {
		vars[k] = v
	}
	if code, _, errOut := ctl(t, vars, "", "add", "--trunk-id", "x"); code != 1 || !strings.Contains(errOut, "ERR_PERMISSION_DENIED") {
		t.Errorf("add with a read token = exit %d, %q; want ERR_PERMISSION_DENIED", code, errOut)
	}
	if code, _, errOut := ctl(t, base, "", "--token", "garbage", "list"); code != 1 || !strings.Contains(errOut, "ERR_UNAUTHENTICATED") {
		t.Errorf("list with a garbage token = exit %d, %q; want ERR_UNAUTHENTICATED", code, errOut)
	}
	delete(base, "TRUNKD_CA")
	if code, _, errOut := ctl(t, base, "", "list"); code != 2 || !strings.Contains(errOut, "--ca") {
		t.Errorf("list without --ca or --insecure = exit %d, %q; want a usage error naming --ca", code, errOut)
	}
}
