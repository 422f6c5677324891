package sipplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/trunk"
)

// runSipp runs scenario (a file in testdata/sipp; expect, when set,
// replaces its expected final code 603) for calls calls, all at once,
// from 127.0.0.1 against port. sipp is an external peer; `make deps`
// installs it.
func runSipp(t *testing.T, scenario string, port uint16, calls int, expect int) siptest.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := sipp(t, scenario, port, calls, calls, expect).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// sipp prepares a sipp run of scenario at rate calls/s.
func sipp(t testing.TB, scenario string, port uint16, calls, rate, expect int) siptest.Sipp {
	t.Helper()
	sf := filepath.Join("..", "..", "testdata", "sipp", scenario)
	if expect != 0 {
		xml, err := os.ReadFile(sf)
		if err != nil {
			t.Fatal(err)
		}
		xml = []byte(strings.Replace(string(xml), `<recv response="603"/>`, fmt.Sprintf(`<recv response="%d"/>`, expect), 1))
		sf = filepath.Join(t.TempDir(), scenario)
		if err := os.WriteFile(sf, xml, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return siptest.Sipp{Scenario: sf, Port: int(port), Calls: calls, Limit: calls, Rate: rate,
		Timeout: 30 * time.Second, Dir: t.TempDir(), Args: []string{"-s", "100"}}
}

func TestSippRejectFollowsUpdate(t *testing.T) {
	p := newPlane(t, Config{})
	port := siptest.FreePort(t, "127.0.0.1")
	tr := testTrunk("sipp", port)
	apply(t, p, tr)
	if r := runSipp(t, "uac_reject.xml", port, 5, 603); r.Exit != 0 || r.Successful != 5 {
		t.Fatalf("5 calls expecting 603: exit %d, %d successful, %d failed\n%s", r.Exit, r.Successful, r.Failed, r.Output)
	}
	tr2 := tr.Clone()
	tr2.RejectSIPCode = 486
	apply(t, p, tr2)
	if r := runSipp(t, "uac_reject.xml", port, 1, 486); r.Exit != 0 || r.Successful != 1 {
		t.Fatalf("call right after the update, expecting 486: exit %d\n%s", r.Exit, r.Output)
	}
	// The scenario can fail: expecting 603 now is a failed call.
	if r := runSipp(t, "uac_reject.xml", port, 1, 603); r.Exit == 0 || r.Failed != 1 {
		t.Fatalf("expecting the old code 603 passed: exit %d, %d failed", r.Exit, r.Failed)
	}
}

func TestSippCodecAndChannelLimit(t *testing.T) {
	p := newPlane(t, Config{Audio: &fakeAudio{length: 2 * time.Second}})
	port := siptest.FreePort(t, "127.0.0.1")
	tr := testTrunk("sipp", port)
	tr.RejectIncomingCalls = false
	tr.InboundRule = trunk.RulePlayAndHangup
	tr.InboundAudioURL = "file:///prompt.wav"
	tr.ChannelLimit = 3
	apply(t, p, tr)
	if r := runSipp(t, "uac_codec.xml", port, 1, 0); r.Exit != 0 {
		t.Fatalf("G.729-only offer: exit %d; want 488\n%s", r.Exit, r.Output)
	}
	// Five concurrent calls on a 3-channel trunk: 3 answered and played to
	// the end, 2 refused with 503 (failed calls for this scenario).
	r := runSipp(t, "uac_answer_wait_bye.xml", port, 5, 0)
	if r.Successful != 3 || r.Failed != 2 {
		t.Fatalf("5 concurrent calls, channel_limit 3: %d successful, %d failed; want 3 and 2\n%s", r.Successful, r.Failed, r.Output)
	}
	if !strings.Contains(r.Output, "503") {
		t.Errorf("sipp output does not show the 503s:\n%s", r.Output)
	}
}
