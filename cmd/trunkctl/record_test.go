package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/trunkd/trunkd/rpc"
)

// manageVars returns the environment of a trunkctl holding a
// trunks:manage token for a new test server.
func manageVars(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	addr := server(t, dir)
	_, tok, _ := ctl(t, nil, "", "token", "--secret-file", filepath.Join(dir, "jwt.secret"))
	return map[string]string{"TRUNKD_ADDR": addr, "TRUNKD_TOKEN": strings.TrimSpace(tok), "TRUNKD_CA": filepath.Join(dir, "tls.crt")}
}

func mustCtl(t *testing.T, vars map[string]string, stdin string, args ...string) string {
	t.Helper()
	code, out, errOut := ctl(t, vars, stdin, args...)
	if code != 0 {
		t.Fatalf("trunkctl %s = exit %d: %s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// volatile are the lines of a record document that every write changes.
var volatile = regexp.MustCompile(`(?m)^\s*"?(revision|updated_at)"?:.*\n`)

func addCarrier(t *testing.T, vars map[string]string) {
	t.Helper()
	mustCtl(t, vars, "", "add", "--trunk-id", "c1", "--domain", "sip.example.com", "--gateway-ip", "192.0.2.10",
		"--channel-limit", "7", "--media-ip-cidrs", "192.0.2.0/24", "--sip-username", "acme", "--sip-password", "s3cret")
}

// TestGetUpdateRoundTrip: what get -o yaml|json prints, update -f takes
// back unchanged, secrets included (kept, never shown), and the output is
// byte-stable.
func TestGetUpdateRoundTrip(t *testing.T) {
	vars := manageVars(t)
	addCarrier(t, vars)
	for _, format := range []string{"yaml", "json"} {
		before := mustCtl(t, vars, "", "get", "c1", "-o", format)
		if strings.Contains(before, "s3cret") || !strings.Contains(before, "sip_password_set") {
			t.Fatalf("get -o %s shows the secret or not whether it is set:\n%s", format, before)
		}
		if again := mustCtl(t, vars, "", "get", "c1", "-o", format); again != before {
			t.Errorf("get -o %s is not stable:\n%s\nthen\n%s", format, before, again)
		}
		mustCtl(t, vars, before, "update", "-f", "-")
		after := mustCtl(t, vars, "", "get", "c1", "-o", format)
		if volatile.ReplaceAllString(after, "") != volatile.ReplaceAllString(before, "") {
			t.Errorf("get -o %s | update -f - changed the record:\n%s\nthen\n%s", format, before, after)
		}
		if after == before {
			t.Errorf("get -o %s | update -f -: revision and updated_at did not change", format)
		}
		// The file now names a revision that is gone: refused, nothing changes.
		code, _, errOut := ctl(t, vars, before, "update", "-f", "-")
		if code != 1 || !strings.Contains(errOut, "ERR_CONFLICT") {
			t.Errorf("update -f with a stale revision = exit %d, %q; want 1 and ERR_CONFLICT", code, errOut)
		}
	}
}

// TestUpdateNoSilentReset: a plain update that would reset fields says
// which and changes nothing; --patch changes only what is given; --replace
// resets.
func TestUpdateNoSilentReset(t *testing.T) {
	vars := manageVars(t)
	addCarrier(t, vars)
	code, _, errOut := ctl(t, vars, "", "update", "--trunk-id", "c1", "--display-name", "X")
	for _, want := range []string{"channel_limit (7 -> 50)", `domain ("sip.example.com" -> "")`, "sip_password (set -> cleared)", "--patch", "--replace"} {
		if code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("update --display-name X = exit %d, %q; want exit 2 naming %s", code, errOut, want)
		}
	}
	mustCtl(t, vars, "", "update", "--patch", "--trunk-id", "c1", "--display-name", "X")
	got := mustCtl(t, vars, "", "get", "c1", "-o", "yaml")
	for _, want := range []string{"display_name: X", "channel_limit: 7", "domain: sip.example.com", "gateway_ip: 192.0.2.10", "- 192.0.2.0/24", "sip_password_set: true"} {
		if !strings.Contains(got, want) {
			t.Errorf("after update --patch:\n%s\nwant %q", got, want)
		}
	}
	mustCtl(t, vars, "", "update", "--replace", "--trunk-id", "c1", "--display-name", "Y")
	got = mustCtl(t, vars, "", "get", "c1", "-o", "yaml")
	for _, want := range []string{"display_name: \"Y\"", "channel_limit: 50", "sip_password_set: false"} {
		if !strings.Contains(got, want) {
			t.Errorf("after update --replace:\n%s\nwant %q", got, want)
		}
	}
}

// TestEdit: edit changes one field and keeps every other; a conflicting
// edit is refused and the edited file kept.
func TestEdit(t *testing.T) {
	vars := manageVars(t)
	addCarrier(t, vars)
	vars["EDITOR"] = `sed -i 's/^display_name: .*/display_name: Edited/'`
	if out := mustCtl(t, vars, "", "edit", "c1"); !strings.Contains(out, "trunk c1 edited") {
		t.Errorf("edit = %q", out)
	}
	got := mustCtl(t, vars, "", "get", "c1", "-o", "yaml")
	for _, want := range []string{"display_name: Edited", "channel_limit: 7", "domain: sip.example.com", "sip_password_set: true"} {
		if !strings.Contains(got, want) {
			t.Errorf("after edit:\n%s\nwant %q", got, want)
		}
	}
	vars["EDITOR"] = "true"
	if out := mustCtl(t, vars, "", "edit", "c1"); !strings.Contains(out, "no changes") {
		t.Errorf("edit without a change = %q; want no changes made", out)
	}
	// A revision that is no longer current stands for another admin's write.
	vars["EDITOR"] = `sed -i 's/^display_name: .*/display_name: Lost/; s/^revision: .*/revision: 1/'`
	code, _, errOut := ctl(t, vars, "", "edit", "c1")
	if code != 1 || !strings.Contains(errOut, "changed by someone else") {
		t.Fatalf("conflicting edit = exit %d, %q; want 1 and a conflict", code, errOut)
	}
	m := regexp.MustCompile(`kept in (\S+)`).FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("conflicting edit does not say where the edit is kept: %q", errOut)
	}
	defer os.Remove(m[1])
	if b, err := os.ReadFile(m[1]); err != nil || !strings.Contains(string(b), "display_name: Lost") {
		t.Errorf("kept file %s = %q, %v; want the edit", m[1], b, err)
	}
	if got := mustCtl(t, vars, "", "get", "c1", "-o", "yaml"); !strings.Contains(got, "display_name: Edited") {
		t.Errorf("a conflicting edit changed the trunk:\n%s", got)
	}
}

// TestListFilters: list passes its filters to the server.
func TestListFiltersFlags(t *testing.T) {
	vars := manageVars(t)
	mustCtl(t, vars, "", "add", "--trunk-id", "a", "--name", "sales-east")
	mustCtl(t, vars, "", "add", "--trunk-id", "b", "--name", "support")
	out := mustCtl(t, vars, "", "list", "--name-prefix", "sales", "-o", "json")
	var list []rpc.TrunkConfig
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].TrunkID != "a" {
		t.Errorf("list --name-prefix sales = %s; want a only", out)
	}
	code, _, errOut := ctl(t, vars, "", "list", "--created-after", "soon")
	if code != 1 || !strings.Contains(errOut, "created_after") {
		t.Errorf("list --created-after soon = exit %d, %q; want the field named", code, errOut)
	}
}
