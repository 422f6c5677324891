package siptest

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReadStats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stat.csv")
	csv := "StartTime;LastResetTime;CurrentTime;SuccessfulCall(C);FailedCall(C);Retransmissions(C);\n" +
		"2026-11-23\t08:25:03.000000\t1795422303.000000;x;2026-11-23\t08:25:03.500000\t1795422303.500000;1;0;0;\n" +
		"2026-11-23\t08:25:03.000000\t1795422303.000000;x;2026-11-23\t08:25:05.000000\t1795422305.000000;40;2;3;\n"
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := ReadStats(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Successful != 40 || st.Failed != 2 || st.Retransmissions != 3 || st.Elapsed != 2*time.Second || st.CPS() != 20 {
		t.Errorf("ReadStats = %+v (CPS %v); want 40 successful, 2 failed, 3 retransmissions over 2s, 20 calls/s", st, st.CPS())
	}
	if err := os.WriteFile(path, []byte("StartTime;CurrentTime;\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadStats(path); err == nil {
		t.Error("ReadStats of a header alone = nil error; want one")
	}
}

func TestTail(t *testing.T) {
	if got := Tail("a\nb\nc\n", 2); got != "b\nc" {
		t.Errorf("Tail(3 lines, 2) = %q; want %q", got, "b\nc")
	}
}
