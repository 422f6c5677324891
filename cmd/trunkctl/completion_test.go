package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func completions(t *testing.T, vars map[string]string, words ...string) []string {
	t.Helper()
	code, out, stderr := ctl(t, vars, "", append([]string{"__complete"}, words...)...)
	if code != 0 {
		t.Fatalf("__complete %q: exit %d: %s", words, code, stderr)
	}
	return strings.Fields(out)
}

func TestCompleteCommandsFlagsAndValues(t *testing.T) {
	var all []string
	for _, c := range commands {
		all = append(all, c.name)
	}
	if !slices.Contains(all, "dial") || !slices.Contains(all, "completion") {
		t.Fatalf("commands = %q", all)
	}
	tests := []struct {
		words []string
		want  []string
	}{
		{[]string{""}, all},
		{[]string{"d"}, []string{"dial"}},
		{[]string{"--addr", "127.0.0.1:1", "ca"}, []string{"calls"}},
		{[]string{"dial", "--tr"}, []string{"--trunk"}},
		{[]string{"calls", "--tr"}, []string{"--trunk"}},
		{[]string{"get", "-o", ""}, []string{"table", "json", "yaml"}},
		{[]string{"get", "-o", "j"}, []string{"json"}},
		{[]string{"completion", ""}, []string{"bash", "fish", "zsh"}},
		{[]string{"get", ""}, nil}, // no token: no server lookup
	}
	for _, tt := range tests {
		got := completions(t, nil, tt.words...)
		slices.Sort(got)
		want := slices.Clone(tt.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("complete %q = %q; want %q", tt.words, got, want)
		}
	}
	// add takes every trunk field as a flag, learned from the command itself
	if got := completions(t, nil, "add", "--channel"); !slices.Equal(got, []string{"--channel-limit"}) && !slices.Equal(got, []string{"--channel_limit"}) {
		t.Errorf("complete add --channel = %q; want the channel_limit flag", got)
	}
}

// TestCompleteTrunkIDsFromServer: with a token, trunk ids come from trunkd,
// for positional ids and for --trunk; an unreachable trunkd gives nothing
// within the completion's time bound.
func TestCompleteTrunkIDsFromServer(t *testing.T) {
	dir := t.TempDir()
	addr := server(t, dir)
	_, tok, _ := ctl(t, nil, "", "token", "--secret-file", filepath.Join(dir, "jwt.secret"), "--scope", "trunks:manage", "--ttl", "10m")
	vars := map[string]string{"TRUNKD_ADDR": addr, "TRUNKD_TOKEN": strings.TrimSpace(tok), "TRUNKD_CA": filepath.Join(dir, "tls.crt")}
	for _, id := range []string{"carrier-a", "carrier-b", "other"} {
		if code, _, stderr := ctl(t, vars, "", "add", "--trunk-id", id, "--gateway-ip", "192.0.2.10"); code != 0 {
			t.Fatalf("add %s: %s", id, stderr)
		}
	}
	if got := completions(t, vars, "get", "car"); !slices.Equal(got, []string{"carrier-a", "carrier-b"}) {
		t.Errorf("complete get car = %q; want carrier-a carrier-b", got)
	}
	if got := completions(t, vars, "dial", "--trunk", "o"); !slices.Equal(got, []string{"other"}) {
		t.Errorf("complete dial --trunk o = %q; want other", got)
	}
	if got := completions(t, vars, "hangup", ""); !slices.Equal(got, []string{"in-1"}) {
		t.Errorf("complete hangup = %q; want the call in flight in-1", got)
	}
	vars["TRUNKD_ADDR"] = "127.0.0.1:9"
	if got := completions(t, vars, "get", ""); len(got) != 0 {
		t.Errorf("complete get against no trunkd = %q; want nothing", got)
	}
}

// TestBashCompletionScript drives the bash script the way bash does, with
// a built trunkctl on PATH.
func TestBashCompletionScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	script := filepath.Join(bin, "trunkctl.bash")
	_, out, _ := ctl(t, nil, "", "completion", "bash")
	if err := os.WriteFile(script, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	sh := `source "$1"; COMP_WORDS=(trunkctl di); COMP_CWORD=1; _trunkctl; printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command("bash", "-c", sh, "bash", script)
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	got, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "dial" {
		t.Errorf("bash completion of 'trunkctl di' = %q, %v; want dial", got, err)
	}
}
