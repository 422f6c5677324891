package sipplane

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trunkd/trunkd/trunk"
)

// sippResult is what a sipp run reports.
type sippResult struct {
	exit               int
	successful, failed int
	output             string
}

// runSipp runs scenario (a file in testdata/sipp; expect, when set,
// replaces its expected final code 603) for calls calls, all at once,
// from 127.0.0.1 against port. sipp is an external peer; `make deps`
// installs it.
func runSipp(t *testing.T, scenario string, port uint16, calls int, expect int) sippResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd, stat := sippCmd(ctx, t, scenario, port, calls, calls, expect)
	out, _ := cmd.CombinedOutput()
	r := sippResult{exit: cmd.ProcessState.ExitCode(), output: string(out)}
	r.successful, r.failed = sippCounts(t, stat)
	return r
}

// sippCmd prepares a sipp run of scenario at rate calls/s; stat is where
// its statistics go.
func sippCmd(ctx context.Context, t testing.TB, scenario string, port uint16, calls, rate, expect int) (cmd *exec.Cmd, stat string) {
	t.Helper()
	bin, err := exec.LookPath("sipp")
	if err != nil {
		t.Fatal("sipp is not installed: run `make deps` (Debian package sip-tester)")
	}
	dir := t.TempDir()
	xml, err := os.ReadFile(filepath.Join("..", "..", "testdata", "sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	if expect != 0 {
		xml = []byte(strings.Replace(string(xml), `<recv response="603"/>`, fmt.Sprintf(`<recv response="%d"/>`, expect), 1))
	}
	sf := filepath.Join(dir, scenario)
	if err := os.WriteFile(sf, xml, 0o600); err != nil {
		t.Fatal(err)
	}
	stat = filepath.Join(dir, "stat.csv")
	cmd = exec.CommandContext(ctx, bin, "-sf", sf, "-m", strconv.Itoa(calls), "-l", strconv.Itoa(calls),
		"-r", strconv.Itoa(rate), "-i", "127.0.0.1", "-p", strconv.Itoa(int(freePort(t, "127.0.0.1"))),
		"-mp", strconv.Itoa(int(freePort(t, "127.0.0.1"))), "-s", "100", "-nostdin", "-timeout", "30s", "-timeout_error",
		"-trace_stat", "-stf", stat, "-fd", "1", fmt.Sprintf("127.0.0.1:%d", port))
	cmd.Dir = dir
	return cmd, stat
}

// sippCounts reads the cumulative successful and failed call counts from
// the last line of sipp's statistics file.
func sippCounts(t testing.TB, path string) (int, int) {
	f, err := os.Open(path)
	if err != nil {
		return -1, -1
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = ';'
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		return -1, -1
	}
	col := func(name string) int {
		for i, h := range rows[0] {
			if h == name {
				n, _ := strconv.Atoi(rows[len(rows)-1][i])
				return n
			}
		}
		t.Fatalf("sipp statistics have no %s column", name)
		return 0
	}
	return col("SuccessfulCall(C)"), col("FailedCall(C)")
}

func TestSippRejectFollowsUpdate(t *testing.T) {
	p := newPlane(t, Config{})
	port := freePort(t, "127.0.0.1")
	tr := testTrunk("sipp", port)
	apply(t, p, tr)
	if r := runSipp(t, "uac_reject.xml", port, 5, 603); r.exit != 0 || r.successful != 5 {
		t.Fatalf("5 calls expecting 603: exit %d, %d successful, %d failed\n%s", r.exit, r.successful, r.failed, r.output)
	}
	tr2 := tr.Clone()
	tr2.RejectSIPCode = 486
	apply(t, p, tr2)
	if r := runSipp(t, "uac_reject.xml", port, 1, 486); r.exit != 0 || r.successful != 1 {
		t.Fatalf("call right after the update, expecting 486: exit %d\n%s", r.exit, r.output)
	}
	// The scenario can fail: expecting 603 now is a failed call.
	if r := runSipp(t, "uac_reject.xml", port, 1, 603); r.exit == 0 || r.failed != 1 {
		t.Fatalf("expecting the old code 603 passed: exit %d, %d failed", r.exit, r.failed)
	}
}

func TestSippCodecAndChannelLimit(t *testing.T) {
	p := newPlane(t, Config{Audio: &fakeAudio{length: 2 * time.Second}})
	port := freePort(t, "127.0.0.1")
	tr := testTrunk("sipp", port)
	tr.RejectIncomingCalls = false
	tr.InboundRule = trunk.RulePlayAndHangup
	tr.InboundAudioURL = "file:///prompt.wav"
	tr.ChannelLimit = 3
	apply(t, p, tr)
	if r := runSipp(t, "uac_codec.xml", port, 1, 0); r.exit != 0 {
		t.Fatalf("G.729-only offer: exit %d; want 488\n%s", r.exit, r.output)
	}
	// Five concurrent calls on a 3-channel trunk: 3 answered and played to
	// the end, 2 refused with 503 (failed calls for this scenario).
	r := runSipp(t, "uac_answer_wait_bye.xml", port, 5, 0)
	if r.successful != 3 || r.failed != 2 {
		t.Fatalf("5 concurrent calls, channel_limit 3: %d successful, %d failed; want 3 and 2\n%s", r.successful, r.failed, r.output)
	}
	if !strings.Contains(r.output, "503") {
		t.Errorf("sipp output does not show the 503s:\n%s", r.output)
	}
}
