package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestTrunkctlAgents(t *testing.T) {
	dir := t.TempDir()
	addr := server(t, dir)
	tokenFor := func(scope string) map[string]string {
		code, tok, stderr := ctl(t, nil, "", "token", "--secret-file", filepath.Join(dir, "jwt.secret"), "--scope", scope, "--ttl", "10m")
		if code != 0 {
			t.Fatalf("token %q: exit %d: %s", scope, code, stderr)
		}
		return map[string]string{"TRUNKD_ADDR": addr, "TRUNKD_TOKEN": strings.TrimSpace(tok), "TRUNKD_CA": filepath.Join(dir, "tls.crt")}
	}
	manage := tokenFor("agents:manage")
	read := tokenFor("agents:read")
	trunks := tokenFor("trunks:read")
	for _, s := range []struct {
		name   string
		vars   map[string]string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"put unpublished", manage, []string{"agent", "put", "sales", "--websocket-url", "wss://agents.example.com/sales"}, 0, "sip:sales@sip.example.com (deployed: false)", ""},
		{"deploy unpublished", manage, []string{"agent", "deploy", "sales"}, 1, "", "ERR_FAILED_PRECONDITION"},
		{"deploy unknown", manage, []string{"agent", "deploy", "nobody"}, 1, "", "ERR_UNKNOWN_AGENT"},
		{"put bad url", manage, []string{"agent", "put", "x", "--websocket-url", "http://a/"}, 1, "", "websocket_url"},
		{"put bad id", manage, []string{"agent", "put", "a:b", "--websocket-url", "ws://a/"}, 1, "", "agent_id"},
		{"publish", manage, []string{"agent", "put", "sales", "--websocket-url", "wss://agents.example.com/sales", "--published"}, 0, "published:      true", ""},
		{"deploy", manage, []string{"agent", "deploy", "sales"}, 0, "agent sales deployed at sip:sales@sip.example.com", ""},
		{"deploy again", manage, []string{"agent", "deploy", "sales", "-o", "json"}, 0, `"deployed": true`, ""},
		{"unpublish while deployed", manage, []string{"agent", "put", "sales", "--websocket-url", "wss://agents.example.com/sales"}, 1, "", "ERR_FAILED_PRECONDITION"},
		{"get", read, []string{"agent", "get", "sales", "-o", "json"}, 0, `"uri": "sip:sales@sip.example.com"`, ""},
		{"list", read, []string{"agent", "list"}, 0, "sip:sales@sip.example.com", ""},
		{"put read only", read, []string{"agent", "put", "y", "--websocket-url", "ws://a/"}, 1, "", "ERR_PERMISSION_DENIED"},
		{"trunks:read cannot read agents", trunks, []string{"agent", "list"}, 1, "", "ERR_PERMISSION_DENIED"},
		{"undeploy", manage, []string{"agent", "undeploy", "sales"}, 0, "agent sales not deployed", ""},
		{"undeploy again", manage, []string{"agent", "undeploy", "sales"}, 0, "not deployed", ""},
		{"get unknown", read, []string{"agent", "get", "nobody"}, 1, "", "ERR_UNKNOWN_AGENT"},
		{"rm", manage, []string{"agent", "rm", "sales"}, 0, "agent sales removed", ""},
		{"rm again", manage, []string{"agent", "rm", "sales"}, 1, "", "ERR_UNKNOWN_AGENT"},
		{"list empty", read, []string{"agent", "list", "-o", "json"}, 0, "[]", ""},
		{"no subcommand", manage, []string{"agent"}, 2, "", "subcommand"},
	} {
		code, out, errOut := ctl(t, s.vars, "", s.args...)
		if code != s.code || !strings.Contains(out, s.stdout) || !strings.Contains(errOut, s.stderr) {
			t.Errorf("%s: trunkctl %s = exit %d, stdout %q, stderr %q; want exit %d, stdout ~%q, stderr ~%q",
				s.name, strings.Join(s.args, " "), code, out, errOut, s.code, s.stdout, s.stderr)
		}
	}
}

// TestTrunkctlAgentsByOrganization: an organization sees, deploys and
// removes only its own agents; another's agent is not found, its id is
// taken; the operator sees every organization's.
func TestTrunkctlAgentsByOrganization(t *testing.T) {
	dir := t.TempDir()
	addr := server(t, dir)
	tokenFor := func(scope, org string) map[string]string {
		args := []string{"token", "--secret-file", filepath.Join(dir, "jwt.secret"), "--scope", scope, "--ttl", "10m"}
		if org != "" {
			args = append(args, "--token-org", org)
		}
		code, tok, stderr := ctl(t, nil, "", args...)
		if code != 0 {
			t.Fatalf("token %q %q: exit %d: %s", scope, org, code, stderr)
		}
		return map[string]string{"TRUNKD_ADDR": addr, "TRUNKD_TOKEN": strings.TrimSpace(tok), "TRUNKD_CA": filepath.Join(dir, "tls.crt")}
	}
	acme, globex, operator := tokenFor("agents:manage", "acme"), tokenFor("agents:manage", "globex"), tokenFor("trunks:admin", "")
	for _, s := range []struct {
		name   string
		vars   map[string]string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"acme puts", acme, []string{"agent", "put", "sales", "--websocket-url", "wss://agents.example.com/sales", "--published"}, 0, "sip:sales@", ""},
		{"acme deploys", acme, []string{"agent", "deploy", "sales"}, 0, "deployed", ""},
		{"globex cannot get it", globex, []string{"agent", "get", "sales"}, 1, "", "ERR_UNKNOWN_AGENT"},
		{"globex lists none", globex, []string{"agent", "list", "-o", "json"}, 0, "[]", ""},
		{"globex cannot undeploy it", globex, []string{"agent", "undeploy", "sales"}, 1, "", "ERR_UNKNOWN_AGENT"},
		{"globex cannot remove it", globex, []string{"agent", "rm", "sales"}, 1, "", "ERR_UNKNOWN_AGENT"},
		{"globex cannot take its id", globex, []string{"agent", "put", "sales", "--websocket-url", "wss://evil.example.com/"}, 1, "", "taken"},
		{"acme still has it", acme, []string{"agent", "get", "sales", "-o", "json"}, 0, "wss://agents.example.com/sales", ""},
		{"the operator sees it", operator, []string{"agent", "list"}, 0, "sales", ""},
	} {
		code, out, errOut := ctl(t, s.vars, "", s.args...)
		if code != s.code || !strings.Contains(out, s.stdout) || !strings.Contains(errOut, s.stderr) {
			t.Errorf("%s: trunkctl %s = exit %d, stdout %q, stderr %q; want exit %d, stdout ~%q, stderr ~%q",
				s.name, strings.Join(s.args, " "), code, out, errOut, s.code, s.stdout, s.stderr)
		}
	}
}
