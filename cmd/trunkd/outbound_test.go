package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trunkd/trunkd/media/audio"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/trunk"
)

// These tests place outbound calls through a daemon started in-process,
// over the real admin RPC (QUIC), to sipp running a UAS scenario from
// testdata/sipp: the carrier is an external peer. `make deps` installs
// sipp (Debian package sip-tester).

// farEnd is sipp running one UAS scenario on a free loopback port.
type farEnd struct {
	t        *testing.T
	port     uint16
	stat     string // sipp's statistics (-trace_stat), dumped every second and at exit
	msgs     string // every SIP message sipp received or sent (-trace_msg)
	out      string // sipp's screen
	cmd      *exec.Cmd
	done     chan struct{}
	stopOnce sync.Once
}

// startFarEnd starts sipp with scenario for at most calls calls; extra
// are more sipp flags. It returns once sipp listens, and stops it at the
// end of the test.
func startFarEnd(t *testing.T, scenario string, calls int, extra ...string) *farEnd {
	t.Helper()
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Fatal("sipp is not installed: run `make deps` (Debian package sip-tester)")
	}
	sf, err := filepath.Abs(filepath.Join("..", "..", "testdata", "sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sf); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		f, err := launchFarEnd(t, sf, calls, extra)
		if err == nil {
			return f
		}
		// Exit code 254 (-2) is sipp failing to bind: another process took
		// a port between our check and sipp's bind.
		if attempt == 3 || f.cmd.ProcessState == nil || f.cmd.ProcessState.ExitCode() != 254 {
			t.Fatalf("sipp %s: %v\n%s", scenario, err, f.screen())
		}
	}
}

func launchFarEnd(t *testing.T, scenario string, calls int, extra []string) (*farEnd, error) {
	dir := t.TempDir()
	f := &farEnd{t: t, port: freeSIPPort(t), stat: filepath.Join(dir, "stat.csv"),
		msgs: filepath.Join(dir, "messages.log"), out: filepath.Join(dir, "screen.log"), done: make(chan struct{})}
	cmd, err := siptest.Sipp{Scenario: scenario, LocalPort: int(f.port), MediaPort: freeMediaPorts(t), Calls: calls,
		Args: append([]string{"-trace_msg", "-message_file", f.msgs}, extra...)}.Command(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(f.out)
	if err != nil {
		t.Fatal(err)
	}
	f.cmd = cmd
	f.cmd.Stdout, f.cmd.Stderr = out, out
	if err := f.cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("sipp: %v", err)
	}
	go func() {
		f.cmd.Wait()
		out.Close()
		close(f.done)
	}()
	t.Cleanup(f.kill)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		select {
		case <-f.done:
			return f, fmt.Errorf("exited at start (%d)", f.cmd.ProcessState.ExitCode())
		default:
		}
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", f.port))
		if err != nil {
			return f, nil // sipp has the port
		}
		pc.Close()
		if time.Now().After(deadline) {
			return f, fmt.Errorf("not listening on %d after 5 s", f.port)
		}
	}
}

// freeMediaPorts returns an even loopback port p with p to p+3 free for
// UDP: sipp binds p for audio and p+2 for video.
func freeMediaPorts(t *testing.T) int {
	t.Helper()
	for range 100 {
		p := int(freeSIPPort(t)) &^ 1
		free := true
		for q := p; q <= p+3 && free; q++ {
			pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", q))
			if free = err == nil; free {
				pc.Close()
			}
		}
		if free {
			return p
		}
	}
	t.Fatal("no four free UDP ports in a row")
	return 0
}

// stop asks sipp to finish the calls it has and quit (SIGUSR1), as for a
// final statistics dump, and kills it if that takes over 5 s.
func (f *farEnd) stop() {
	f.stopOnce.Do(func() {
		if f.cmd.Process.Signal(syscall.SIGUSR1) == nil {
			select {
			case <-f.done:
				return
			case <-time.After(5 * time.Second):
				f.t.Errorf("sipp did not finish its calls within 5 s of SIGUSR1; killed it\n%s", f.trace())
			}
		}
		f.cmd.Process.Kill()
		<-f.done
	})
}

// kill stops sipp at once, whatever it is doing.
func (f *farEnd) kill() {
	f.stopOnce.Do(func() {
		f.cmd.Process.Kill()
		<-f.done
	})
}

// stats are sipp's cumulative counters, e.g. "IncomingCall(C)",
// "SuccessfulCall(C)", "FailedCall(C)", from its statistics after stop.
func (f *farEnd) stats() map[string]int {
	f.t.Helper()
	fh, err := os.Open(f.stat)
	if err != nil {
		f.t.Fatalf("sipp statistics: %v", err)
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	r.Comma, r.FieldsPerRecord = ';', -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		f.t.Fatalf("sipp statistics: %d rows, %v", len(rows), err)
	}
	m := map[string]int{}
	last := rows[len(rows)-1]
	for i, h := range rows[0] {
		if strings.HasSuffix(h, "(C)") && i < len(last) {
			m[h], _ = strconv.Atoi(last[i])
		}
	}
	return m
}

// sipMsg is one message in sipp's message trace.
type sipMsg struct {
	sent   bool   // sent by sipp; else received
	start  string // the request or status line
	callID string
}

// messages reads sipp's message trace so far (sipp writes it as it goes).
func (f *farEnd) messages() []sipMsg {
	b, err := os.ReadFile(f.msgs)
	if err != nil {
		return nil
	}
	var l []sipMsg
	for _, block := range strings.Split(string(b), "-----------------------------------------------")[1:] {
		var m sipMsg
		sc := bufio.NewScanner(strings.NewReader(block))
		sc.Scan() // timestamp
		sc.Scan()
		m.sent = strings.Contains(sc.Text(), "message sent")
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case m.start == "" && line != "":
				m.start = line
			case strings.HasPrefix(strings.ToLower(line), "call-id:"):
				m.callID = strings.TrimSpace(line[len("call-id:"):])
			}
		}
		if m.start != "" {
			l = append(l, m)
		}
	}
	return l
}

// received counts the calls (distinct Call-IDs) in which sipp received a
// method request, retransmissions aside.
func (f *farEnd) received(method string) int {
	calls := map[string]bool{}
	for _, m := range f.messages() {
		if !m.sent && strings.HasPrefix(m.start, method+" ") {
			calls[m.callID] = true
		}
	}
	return len(calls)
}

// waitReceived waits up to 2 s for sipp to have received method in n
// calls (a message trunkd sent just now may still be on its way), and
// returns the count.
func (f *farEnd) waitReceived(method string, n int) int {
	got := f.received(method)
	for deadline := time.Now().Add(2 * time.Second); got < n && time.Now().Before(deadline); got = f.received(method) {
		time.Sleep(10 * time.Millisecond)
	}
	return got
}

// sent counts the messages sipp sent.
func (f *farEnd) sent() int {
	n := 0
	for _, m := range f.messages() {
		if m.sent {
			n++
		}
	}
	return n
}

// trace is sipp's message trace in brief, for failure messages.
func (f *farEnd) trace() string {
	var b strings.Builder
	for _, m := range f.messages() {
		dir := "<-"
		if m.sent {
			dir = "->"
		}
		fmt.Fprintf(&b, "  sipp %s %s  [%s]\n", dir, m.start, m.callID)
	}
	if b.Len() == 0 {
		return "  (sipp saw no SIP message)\n"
	}
	return b.String()
}

func (f *farEnd) screen() string {
	b, _ := os.ReadFile(f.out)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// startOutbound starts trunkd with flags and returns a client with scope
// trunks:manage; calls still up at the end are hung up within 1 s.
func startOutbound(t *testing.T, flags ...string) *rpc.Client {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"--listen", "127.0.0.1:0", "--data", dir, "--log-level", "warn", "--drain-timeout", "1s"}, flags...)
	cfg, err := parseConfig(args, func(string) string { return "" }, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Start(cfg, cfg.logger(os.Stderr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopDaemon(t, d) })
	return connect(t, d, dir, token(t, dir, rpc.ScopeManage))
}

// addCarrierTrunk adds trunk id, whose carrier is sipp f, with edit
// applied, and returns it.
func addCarrierTrunk(t *testing.T, c *rpc.Client, id string, f *farEnd, edit func(*trunk.Trunk)) *trunk.Trunk {
	t.Helper()
	tr := sipTrunk(id, freeSIPPort(t))
	tr.DestinationSBCPort = f.port
	if edit != nil {
		edit(tr)
	}
	if err := c.AddTrunk(context.Background(), tr); err != nil {
		t.Fatalf("AddTrunk %s: %v", id, err)
	}
	return tr
}

// placeCall dials and fails the test on an error.
func placeCall(t *testing.T, c *rpc.Client, req rpc.DialRequest) rpc.DialResponse {
	t.Helper()
	res, err := tryCall(c, req)
	if err != nil {
		t.Fatalf("Dial(%+v) = %v", req, err)
	}
	return res
}

func tryCall(c *rpc.Client, req rpc.DialRequest) (rpc.DialResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.Dial(ctx, req)
}

func getTrunk(t *testing.T, c *rpc.Client, id string) rpc.TrunkConfig {
	t.Helper()
	cfg, found, err := c.GetTrunk(context.Background(), id)
	if err != nil || !found {
		t.Fatalf("GetTrunk %s = %v, found %v", id, err, found)
	}
	return cfg
}

func listCalls(t *testing.T, c *rpc.Client, id string) []rpc.CallInfo {
	t.Helper()
	l, err := c.ListCalls(context.Background(), id)
	if err != nil {
		t.Fatalf("ListCalls %q: %v", id, err)
	}
	return l
}

// waitTrunk polls GetTrunk until ok holds, for up to 5 s.
func waitTrunk(t *testing.T, c *rpc.Client, id, what string, ok func(rpc.TrunkConfig) bool) rpc.TrunkConfig {
	t.Helper()
	var cfg rpc.TrunkConfig
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if cfg = getTrunk(t, c, id); ok(cfg) {
			return cfg
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: after 5 s GetTrunk %s = %+v", what, id, cfg)
		}
	}
}

// waitCalls polls ListCalls("") until it holds n calls, for up to 5 s.
func waitCalls(t *testing.T, c *rpc.Client, n int) []rpc.CallInfo {
	t.Helper()
	var l []rpc.CallInfo
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if l = listCalls(t, c, ""); len(l) == n {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s ListCalls = %+v; want %d calls", l, n)
		}
	}
}

func hangup(t *testing.T, c *rpc.Client, callID string) {
	t.Helper()
	if err := c.Hangup(context.Background(), callID); err != nil {
		t.Fatalf("Hangup %s: %v", callID, err)
	}
}

// checkBreaker checks the breaker's state as GetTrunk shows it.
func checkBreaker(t *testing.T, c *rpc.Client, id, when, state string) {
	t.Helper()
	cfg := getTrunk(t, c, id)
	if cfg.BreakerState != state || cfg.IsCBTripped != (state != "closed") {
		t.Fatalf("%s: breaker_state %q, is_cb_tripped %v; want %q, %v", when, cfg.BreakerState, cfg.IsCBTripped, state, state != "closed")
	}
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	var re *rpc.Error
	if !errors.As(err, &re) || re.Code != code {
		t.Fatalf("%s = %v; want %s", what, err, code)
	}
}

// TestOutboundAnswered: two calls answered by sipp, one ended by
// max_duration_sec, one by Hangup; listed while up; the trunk's figures
// count both.
func TestOutboundAnswered(t *testing.T) {
	f := startFarEnd(t, "uas_answer.xml", 10)
	c := startOutbound(t)
	addCarrierTrunk(t, c, "carrier", f, nil)

	res := placeCall(t, c, rpc.DialRequest{TrunkID: "carrier", To: "+15551230", TimeoutSec: 5, MaxDurationSec: 1})
	answeredAt := time.Now()
	if !res.Answered || res.SIPCode != 200 || res.CallID == "" || res.SetupMs < 200 || res.SetupMs > 2000 {
		t.Fatalf("Dial = %+v; want answered, 200, a call id, setup_ms about 200 (sipp rings after 100 ms, answers 100 ms later)\n%s", res, f.trace())
	}
	calls := listCalls(t, c, "carrier")
	if len(calls) != 1 || calls[0].CallID != res.CallID || calls[0].Direction != "outbound" || calls[0].State != "answered" ||
		calls[0].TrunkID != "carrier" || calls[0].To != "+15551230" || calls[0].Start == 0 {
		t.Fatalf("ListCalls while up = %+v; want the answered outbound call %s to +15551230", calls, res.CallID)
	}
	cfg := getTrunk(t, c, "carrier")
	if cfg.CallsAttempted != 1 || cfg.CallsAnswered != 1 || cfg.CurrentASR != 100 || cfg.ActiveCalls != 1 {
		t.Errorf("GetTrunk while up = %+v; want calls_attempted 1, calls_answered 1, current_asr 100, active_calls 1", cfg)
	}
	// sipp schedules its pause on a millisecond clock that may fire just
	// before 100 ms of ours have passed (99.8 ms seen); a PDD that was not
	// measured at all is 0.
	if cfg.CurrentPDDms < 95 || cfg.CurrentPDDms > 2000 {
		t.Errorf("current_pdd_ms = %v; want about 100 (sipp rings after 100 ms)", cfg.CurrentPDDms)
	}
	if cfg.IsCBTripped || cfg.BreakerState != "closed" {
		t.Errorf("breaker after an answered call: is_cb_tripped %v, breaker_state %q; want false, closed", cfg.IsCBTripped, cfg.BreakerState)
	}
	if f.received("INVITE") != 1 || f.waitReceived("ACK", 1) != 1 {
		t.Errorf("sipp did not see one INVITE and its ACK:\n%s", f.trace())
	}

	cfg = waitTrunk(t, c, "carrier", "the 1 s call to end", func(cfg rpc.TrunkConfig) bool { return cfg.ActiveCalls == 0 })
	if took := time.Since(answeredAt); took < 900*time.Millisecond || took > 3*time.Second {
		t.Errorf("a call with max_duration_sec 1 ended after %v", took)
	}
	if cfg.CurrentACD != 1 || cfg.CallsAttempted != 1 || cfg.CallsAnswered != 1 {
		t.Errorf("GetTrunk after the call = %+v; want current_acd 1, 1 attempted, 1 answered", cfg)
	}
	if l := listCalls(t, c, ""); len(l) != 0 {
		t.Errorf("ListCalls after the call ended = %+v; want none", l)
	}
	if f.received("BYE") != 1 {
		t.Errorf("sipp got no BYE at max_duration_sec:\n%s", f.trace())
	}
	if err := c.Hangup(context.Background(), res.CallID); rpc.ErrorCode(err) != rpc.CodeUnknownCall {
		t.Errorf("Hangup of the ended call = %v; want ERR_UNKNOWN_CALL", err)
	}

	// The second call stays up (no limit) until Hangup after 2 s.
	res2 := placeCall(t, c, rpc.DialRequest{TrunkID: "carrier", To: "+15551231", TimeoutSec: 5})
	if !res2.Answered || res2.CallID == res.CallID {
		t.Fatalf("second Dial = %+v; want answered, a new call id", res2)
	}
	time.Sleep(2 * time.Second)
	if l := listCalls(t, c, "carrier"); len(l) != 1 || l[0].CallID != res2.CallID || l[0].State != "answered" {
		t.Fatalf("ListCalls 2 s into a call with no limit = %+v; want it still up", l)
	}
	hangup(t, c, res2.CallID)
	cfg = waitTrunk(t, c, "carrier", "the hung-up call to end", func(cfg rpc.TrunkConfig) bool { return cfg.ActiveCalls == 0 })
	t.Logf("after both calls: %+v", cfg)
	// (about 1 s + about 2 s) / 2, rounded.
	if cfg.CurrentACD != 2 || cfg.CallsAttempted != 2 || cfg.CallsAnswered != 2 || cfg.CurrentASR != 100 {
		t.Errorf("GetTrunk after both calls = %+v; want current_acd 2 (mean of 1 s and 2 s), 2 attempted, 2 answered, ASR 100", cfg)
	}
	f.stop()
	if st := f.stats(); st["SuccessfulCall(C)"] != 2 || st["FailedCall(C)"] != 0 || f.received("BYE") != 2 {
		t.Errorf("sipp: %d successful, %d failed calls; want 2 and 0 (each ended with a BYE)\n%s",
			st["SuccessfulCall(C)"], st["FailedCall(C)"], f.trace())
	}
}

// TestOutboundFarEndHangsUp: the callee's BYE ends the call: answered
// 200, the call leaves ListCalls, its duration counts in the ACD.
func TestOutboundFarEndHangsUp(t *testing.T) {
	f := startFarEnd(t, "uas_answer_bye.xml", 10)
	c := startOutbound(t)
	addCarrierTrunk(t, c, "carrier", f, nil)
	res := placeCall(t, c, rpc.DialRequest{TrunkID: "carrier", To: "800", TimeoutSec: 5})
	if !res.Answered {
		t.Fatalf("Dial = %+v; want answered\n%s", res, f.trace())
	}
	answeredAt := time.Now()
	cfg := waitTrunk(t, c, "carrier", "the callee's BYE to end the call", func(cfg rpc.TrunkConfig) bool { return cfg.ActiveCalls == 0 })
	if took := time.Since(answeredAt); took < 900*time.Millisecond || took > 3*time.Second {
		t.Errorf("a call the callee hangs up after 1 s ended after %v", took)
	}
	if cfg.CurrentACD != 1 || cfg.CallsAnswered != 1 {
		t.Errorf("GetTrunk = %+v; want current_acd 1, 1 answered", cfg)
	}
	waitCalls(t, c, 0)
	f.stop()
	if st := f.stats(); st["SuccessfulCall(C)"] != 1 || f.received("BYE") != 0 {
		t.Errorf("sipp: %d successful calls; want 1 (its BYE answered 200, none from trunkd)\n%s", st["SuccessfulCall(C)"], f.trace())
	}
}

// TestOutboundMOS: sipp echoes the prompt trunkd plays, so trunkd
// receives 2 s of clean RTP on loopback and the trunk's MOS is that of a
// perfect line.
func TestOutboundMOS(t *testing.T) {
	f := startFarEnd(t, "uas_answer.xml", 10, "-rtp_echo")
	c := startOutbound(t)
	addCarrierTrunk(t, c, "carrier", f, nil)
	if cfg := getTrunk(t, c, "carrier"); cfg.CurrentMOS != 0 {
		t.Fatalf("current_mos before any call = %v; want 0", cfg.CurrentMOS)
	}
	wav := filepath.Join(t.TempDir(), "prompt.wav")
	if err := os.WriteFile(wav, audio.Encode(make([]int16, 2*8000), audio.Format{Rate: 8000, Channels: 1}), 0o600); err != nil {
		t.Fatal(err)
	}
	res := placeCall(t, c, rpc.DialRequest{TrunkID: "carrier", To: "100", TimeoutSec: 5, AudioURL: "file://" + wav, MaxDurationSec: 10})
	if !res.Answered {
		t.Fatalf("Dial = %+v; want answered", res)
	}
	cfg := waitTrunk(t, c, "carrier", "the prompt to end the call", func(cfg rpc.TrunkConfig) bool { return cfg.ActiveCalls == 0 })
	t.Logf("after 2 s of echoed RTP: current_mos %.3f, current_acd %d", cfg.CurrentMOS, cfg.CurrentACD)
	if cfg.CurrentMOS < 4.2 || cfg.CurrentMOS > 4.5 {
		t.Errorf("current_mos after 2 s of echoed RTP on loopback = %v; want 4.2-4.5", cfg.CurrentMOS)
	}
	if cfg.CurrentACD < 2 || cfg.CurrentACD > 3 { // the prompt's 2 s, plus the hang-up's round trip on a loaded machine
		t.Errorf("current_acd after a 2 s prompt = %d; want 2 (3 at most)", cfg.CurrentACD)
	}
	if f.received("BYE") != 1 {
		t.Errorf("sipp got no BYE after the prompt:\n%s", f.trace())
	}
}

// TestOutboundBusy: a busy callee is a call not answered, not a carrier
// fault: more 486s than -breaker-faults leave the breaker closed.
func TestOutboundBusy(t *testing.T) {
	f := startFarEnd(t, "uas_busy.xml", 20)
	c := startOutbound(t, "--breaker-faults", "3", "--breaker-cooldown", "1m")
	addCarrierTrunk(t, c, "carrier", f, nil)
	for i := range 5 {
		res := placeCall(t, c, rpc.DialRequest{TrunkID: "carrier", To: "200", TimeoutSec: 5})
		if res.Answered || res.SIPCode != 486 || res.Reason != "Busy Here" {
			t.Fatalf("Dial %d = %+v; want answered false, sip_code 486, Busy Here\n%s", i+1, res, f.trace())
		}
	}
	cfg := getTrunk(t, c, "carrier")
	if cfg.CallsAttempted != 5 || cfg.CallsAnswered != 0 || cfg.CurrentASR != 0 || cfg.ActiveCalls != 0 || cfg.CurrentACD != 0 {
		t.Errorf("GetTrunk after 5 busy = %+v; want 5 attempted, 0 answered, ASR 0, ACD 0, no active calls", cfg)
	}
	checkBreaker(t, c, "carrier", "after 5 busy (breaker-faults 3)", "closed")
	if l := listCalls(t, c, ""); len(l) != 0 {
		t.Errorf("ListCalls after refused calls = %+v; want none", l)
	}
	f.stop()
	if st := f.stats(); st["IncomingCall(C)"] != 5 || st["SuccessfulCall(C)"] != 5 || f.received("ACK") != 5 {
		t.Errorf("sipp: %d calls in, %d successful (486 ACKed); want 5 and 5\n%s", st["IncomingCall(C)"], st["SuccessfulCall(C)"], f.trace())
	}
}

// TestOutbound503OpensBreaker: -breaker-faults consecutive 503s open the
// breaker; the next Dial is refused with
// ERR_CIRCUIT_OPEN and sends nothing.
func TestOutbound503OpensBreaker(t *testing.T) {
	f := startFarEnd(t, "uas_503.xml", 20)
	c := startOutbound(t, "--breaker-faults", "3", "--breaker-cooldown", "1m")
	addCarrierTrunk(t, c, "carrier", f, nil)
	for i := range 3 {
		checkBreaker(t, c, "carrier", fmt.Sprintf("after %d 503s", i), "closed")
		res := placeCall(t, c, rpc.DialRequest{TrunkID: "carrier", To: "300", TimeoutSec: 5})
		if res.Answered || res.SIPCode != 503 {
			t.Fatalf("Dial %d = %+v; want answered false, sip_code 503\n%s", i+1, res, f.trace())
		}
	}
	checkBreaker(t, c, "carrier", "after 3 503s (breaker-faults 3)", "open")
	start := time.Now()
	_, err := tryCall(c, rpc.DialRequest{TrunkID: "carrier", To: "300", TimeoutSec: 5})
	wantCode(t, "Dial with the breaker open", err, rpc.CodeCircuitOpen)
	if took := time.Since(start); took > time.Second {
		t.Errorf("Dial refused by the breaker took %v; want at once", took)
	}
	cfg := getTrunk(t, c, "carrier")
	if cfg.CallsAttempted != 3 || cfg.CallsAnswered != 0 || cfg.CurrentASR != 0 || cfg.ActiveCalls != 0 {
		t.Errorf("GetTrunk = %+v; want 3 attempted (the refused Dial sent nothing), 0 answered, ASR 0, no active calls", cfg)
	}
	time.Sleep(200 * time.Millisecond) // room for a stray INVITE to arrive
	f.stop()
	if st := f.stats(); st["IncomingCall(C)"] != 3 || st["SuccessfulCall(C)"] != 3 || f.received("INVITE") != 3 {
		t.Errorf("sipp: %d calls in, %d successful; want 3 and 3 (no INVITE once the breaker opened)\n%s",
			st["IncomingCall(C)"], st["SuccessfulCall(C)"], f.trace())
	}
}

// TestOutbound503RetryAfterOpensBreaker: one 503 with Retry-After: 60
// opens the breaker at once, though -breaker-faults is 3, and keeps it
// open past the 1 s cooldown: no OPTIONS probe goes out, though sipp would
// answer one (-aa).
func TestOutbound503RetryAfterOpensBreaker(t *testing.T) {
	f := startFarEnd(t, "uas_503_retry.xml", 20, "-aa")
	c := startOutbound(t, "--breaker-faults", "3", "--breaker-cooldown", "1s")
	addCarrierTrunk(t, c, "carrier", f, nil)
	res := placeCall(t, c, rpc.DialRequest{TrunkID: "carrier", To: "300", TimeoutSec: 5})
	if res.Answered || res.SIPCode != 503 {
		t.Fatalf("Dial = %+v; want answered false, sip_code 503\n%s", res, f.trace())
	}
	checkBreaker(t, c, "carrier", "after one 503 with Retry-After: 60", "open")
	_, err := tryCall(c, rpc.DialRequest{TrunkID: "carrier", To: "300", TimeoutSec: 5})
	wantCode(t, "Dial after a 503 with Retry-After", err, rpc.CodeCircuitOpen)
	time.Sleep(2500 * time.Millisecond) // the cooldown, and a tick of the probe loop
	checkBreaker(t, c, "carrier", "2.5 s into Retry-After: 60 (cooldown 1s)", "open")
	f.stop()
	if st := f.stats(); st["IncomingCall(C)"] != 1 || st["SuccessfulCall(C)"] != 1 || f.received("INVITE") != 1 || f.received("OPTIONS") != 0 {
		t.Errorf("sipp: %d calls in, %d successful; want 1 and 1, one INVITE, no OPTIONS\n%s", st["IncomingCall(C)"], st["SuccessfulCall(C)"], f.trace())
	}
}

// TestOutboundBreakerRecovers: after the cooldown an open breaker probes
// the carrier with OPTIONS; sipp answers it (-aa), the breaker closes and
// the next Dial reaches the carrier again.
func TestOutboundBreakerRecovers(t *testing.T) {
	f := startFarEnd(t, "uas_503.xml", 20, "-aa")
	c := startOutbound(t, "--breaker-faults", "1", "--breaker-cooldown", "1s")
	addCarrierTrunk(t, c, "carrier", f, nil)
	if res := placeCall(t, c, rpc.DialRequest{TrunkID: "carrier", To: "300", TimeoutSec: 5}); res.SIPCode != 503 {
		t.Fatalf("Dial = %+v; want sip_code 503\n%s", res, f.trace())
	}
	checkBreaker(t, c, "carrier", "after a 503 (breaker-faults 1)", "open")
	_, err := tryCall(c, rpc.DialRequest{TrunkID: "carrier", To: "300", TimeoutSec: 5})
	wantCode(t, "Dial with the breaker open", err, rpc.CodeCircuitOpen)
	waitTrunk(t, c, "carrier", "the breaker to close after an answered probe", func(cfg rpc.TrunkConfig) bool {
		return cfg.BreakerState == "closed" && !cfg.IsCBTripped
	})
	if n := f.received("OPTIONS"); n != 1 {
		t.Errorf("sipp got %d OPTIONS probes; want 1\n%s", n, f.trace())
	}
	if res := placeCall(t, c, rpc.DialRequest{TrunkID: "carrier", To: "300", TimeoutSec: 5}); res.SIPCode != 503 {
		t.Fatalf("Dial after the breaker closed = %+v; want it sent, and 503 again\n%s", res, f.trace())
	}
	checkBreaker(t, c, "carrier", "after another 503", "open")
	if n := f.received("INVITE"); n != 2 {
		t.Errorf("sipp got %d INVITEs; want 2\n%s", n, f.trace())
	}
}

// TestOutboundBreakerAcrossUpdateAndRemove: an UpdateTrunk keeps an open
// breaker and the figures; a RemoveTrunk drops them, so the trunk added
// again dials the carrier.
func TestOutboundBreakerAcrossUpdateAndRemove(t *testing.T) {
	f := startFarEnd(t, "uas_503.xml", 20)
	c := startOutbound(t, "--breaker-faults", "1", "--breaker-cooldown", "1m")
	tr := addCarrierTrunk(t, c, "carrier", f, nil)
	if res := placeCall(t, c, rpc.DialRequest{TrunkID: "carrier", To: "300", TimeoutSec: 5}); res.SIPCode != 503 {
		t.Fatalf("Dial = %+v; want sip_code 503\n%s", res, f.trace())
	}
	checkBreaker(t, c, "carrier", "after a 503 (breaker-faults 1)", "open")

	tr.DisplayName = "Renamed"
	if err := c.UpdateTrunk(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	checkBreaker(t, c, "carrier", "after UpdateTrunk", "open")
	if cfg := getTrunk(t, c, "carrier"); cfg.CallsAttempted != 1 {
		t.Errorf("calls_attempted after UpdateTrunk = %d; want 1 (kept)", cfg.CallsAttempted)
	}
	_, err := tryCall(c, rpc.DialRequest{TrunkID: "carrier", To: "300", TimeoutSec: 5})
	wantCode(t, "Dial after UpdateTrunk of a trunk with its breaker open", err, rpc.CodeCircuitOpen)

	if err := c.RemoveTrunk(context.Background(), "carrier"); err != nil {
		t.Fatal(err)
	}
	if err := c.AddTrunk(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	checkBreaker(t, c, "carrier", "after RemoveTrunk and AddTrunk", "closed")
	if cfg := getTrunk(t, c, "carrier"); cfg.CallsAttempted != 0 || cfg.CurrentASR != 0 {
		t.Errorf("GetTrunk after RemoveTrunk and AddTrunk = %+v; want fresh figures", cfg)
	}
	if res := placeCall(t, c, rpc.DialRequest{TrunkID: "carrier", To: "300", TimeoutSec: 5}); res.SIPCode != 503 {
		t.Fatalf("Dial through the trunk added again = %+v; want it sent, and 503\n%s", res, f.trace())
	}
	if n := f.received("INVITE"); n != 2 {
		t.Errorf("sipp got %d INVITEs; want 2 (none while the breaker was open)\n%s", n, f.trace())
	}
}

// TestOutboundSilentCarrier: a carrier that never answers gives sip_code
// 0 after timeout_sec, and counts as a fault: -breaker-faults of them open
// the breaker.
func TestOutboundSilentCarrier(t *testing.T) {
	f := startFarEnd(t, "uas_silent.xml", 20, "-default_behaviors", "none")
	c := startOutbound(t, "--breaker-faults", "3", "--breaker-cooldown", "1m")
	addCarrierTrunk(t, c, "carrier", f, nil)
	for i := range 3 {
		checkBreaker(t, c, "carrier", fmt.Sprintf("after %d silent calls", i), "closed")
		start := time.Now()
		res := placeCall(t, c, rpc.DialRequest{TrunkID: "carrier", To: "400", TimeoutSec: 1})
		took := time.Since(start)
		if res.Answered || res.SIPCode != 0 || res.Reason == "" {
			t.Fatalf("Dial %d = %+v; want answered false, sip_code 0, a reason\n%s", i+1, res, f.trace())
		}
		if took < 900*time.Millisecond || took > 3*time.Second {
			t.Errorf("Dial %d with timeout_sec 1 to a silent carrier took %v; want about 1 s", i+1, took)
		}
	}
	checkBreaker(t, c, "carrier", "after 3 silent calls (breaker-faults 3)", "open")
	_, err := tryCall(c, rpc.DialRequest{TrunkID: "carrier", To: "400", TimeoutSec: 1})
	wantCode(t, "Dial after 3 silent calls", err, rpc.CodeCircuitOpen)
	cfg := getTrunk(t, c, "carrier")
	if cfg.CallsAttempted != 3 || cfg.CallsAnswered != 0 || cfg.ActiveCalls != 0 {
		t.Errorf("GetTrunk = %+v; want 3 attempted, 0 answered, no active calls", cfg)
	}
	if l := listCalls(t, c, ""); len(l) != 0 {
		t.Errorf("ListCalls after abandoned INVITEs = %+v; want none", l)
	}
	time.Sleep(200 * time.Millisecond)
	if n, s := f.received("INVITE"), f.sent(); n != 3 || s != 0 {
		t.Errorf("sipp got INVITEs in %d calls and sent %d messages; want 3 and 0\n%s", n, s, f.trace())
	}
}

// TestOutboundRingTimeout: a callee that rings past timeout_sec is
// cancelled and reported as 487, a callee's answer rather than a carrier
// fault: with -breaker-faults 1 the breaker stays closed.
func TestOutboundRingTimeout(t *testing.T) {
	f := startFarEnd(t, "uas_ring.xml", 10)
	c := startOutbound(t, "--breaker-faults", "1", "--breaker-cooldown", "1m")
	addCarrierTrunk(t, c, "carrier", f, nil)
	start := time.Now()
	res := placeCall(t, c, rpc.DialRequest{TrunkID: "carrier", To: "700", TimeoutSec: 1})
	if took := time.Since(start); res.Answered || res.SIPCode != 487 || took < 900*time.Millisecond || took > 3*time.Second {
		t.Fatalf("Dial with timeout_sec 1 to a ringing callee = %+v after %v; want answered false, sip_code 487 after about 1 s\n%s", res, took, f.trace())
	}
	cfg := getTrunk(t, c, "carrier")
	if cfg.CallsAttempted != 1 || cfg.CallsAnswered != 0 || cfg.ActiveCalls != 0 || cfg.CurrentPDDms <= 0 || cfg.CurrentPDDms > 500 {
		t.Errorf("GetTrunk = %+v; want 1 attempted, 0 answered, no active calls, a PDD of a few ms", cfg)
	}
	checkBreaker(t, c, "carrier", "after a ring timeout (breaker-faults 1)", "closed")
	f.stop()
	if st := f.stats(); st["SuccessfulCall(C)"] != 1 || f.received("CANCEL") != 1 || f.received("ACK") != 1 {
		t.Errorf("sipp: %d successful calls; want 1, cancelled, the 487 ACKed\n%s", st["SuccessfulCall(C)"], f.trace())
	}
}

// TestOutboundHangupWhileRinging: Hangup of a call still ringing cancels
// its INVITE, and its Dial answers 487.
func TestOutboundHangupWhileRinging(t *testing.T) {
	f := startFarEnd(t, "uas_ring.xml", 10)
	c := startOutbound(t, "--breaker-faults", "1", "--breaker-cooldown", "1m")
	addCarrierTrunk(t, c, "carrier", f, nil)
	type outcome struct {
		res rpc.DialResponse
		err error
		at  time.Time
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := tryCall(c, rpc.DialRequest{TrunkID: "carrier", To: "701", TimeoutSec: 10})
		done <- outcome{res, err, time.Now()}
	}()
	var ringing []rpc.CallInfo
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ringing = listCalls(t, c, "carrier"); len(ringing) > 0 && f.received("INVITE") > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call ringing at sipp after 5 s: ListCalls = %+v\n%s", ringing, f.trace())
		}
	}
	if len(ringing) != 1 || ringing[0].State != "ringing" || ringing[0].Direction != "outbound" {
		t.Fatalf("ListCalls while ringing = %+v; want one outbound call, ringing", ringing)
	}
	time.Sleep(100 * time.Millisecond) // let the 180 arrive: a CANCEL needs a provisional response
	hungUp := time.Now()
	hangup(t, c, ringing[0].CallID)
	var o outcome
	select {
	case o = <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("Dial did not answer within 5 s of Hangup\n%s", f.trace())
	}
	if o.err != nil || o.res.Answered || o.res.SIPCode != 487 || o.res.CallID != ringing[0].CallID {
		t.Fatalf("Dial hung up while ringing = %+v, %v; want answered false, sip_code 487, call %s", o.res, o.err, ringing[0].CallID)
	}
	if took := o.at.Sub(hungUp); took > 2*time.Second {
		t.Errorf("Dial answered %v after Hangup; want promptly", took)
	}
	waitCalls(t, c, 0)
	checkBreaker(t, c, "carrier", "after a call hung up while ringing", "closed")
	f.stop()
	if st := f.stats(); st["SuccessfulCall(C)"] != 1 || f.received("CANCEL") != 1 || f.received("ACK") != 1 {
		t.Errorf("sipp: %d successful calls; want 1, cancelled, the 487 ACKed\n%s", st["SuccessfulCall(C)"], f.trace())
	}
}

// TestOutboundChannelLimit: two answered calls fill channel_limit 2; a
// third Dial is refused with nothing sent; once one is hung up, a Dial
// goes through.
func TestOutboundChannelLimit(t *testing.T) {
	f := startFarEnd(t, "uas_answer.xml", 20)
	c := startOutbound(t)
	addCarrierTrunk(t, c, "carrier", f, func(tr *trunk.Trunk) { tr.ChannelLimit = 2 })
	// Four Dials at once: two get the channels, two are refused.
	var wg sync.WaitGroup
	results := make([]rpc.DialResponse, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Go(func() {
			results[i], errs[i] = tryCall(c, rpc.DialRequest{TrunkID: "carrier", To: fmt.Sprint(500 + i), TimeoutSec: 5, MaxDurationSec: 60})
		})
	}
	wg.Wait()
	var up []rpc.DialResponse
	for i := range 4 {
		switch {
		case errs[i] == nil && results[i].Answered:
			up = append(up, results[i])
		case rpc.ErrorCode(errs[i]) != rpc.CodeChannelLimit:
			t.Errorf("Dial %d of 4 at once = %+v, %v; want answered or ERR_CHANNEL_LIMIT", i, results[i], errs[i])
		}
	}
	if len(up) != 2 {
		t.Fatalf("4 Dials at once on channel_limit 2: %d answered; want 2\n%s", len(up), f.trace())
	}
	a, b := up[0], up[1]
	_, err := tryCall(c, rpc.DialRequest{TrunkID: "carrier", To: "503", TimeoutSec: 5})
	wantCode(t, "third Dial on channel_limit 2", err, rpc.CodeChannelLimit)
	if cfg := getTrunk(t, c, "carrier"); cfg.ActiveCalls != 2 || cfg.CallsAttempted != 2 {
		t.Errorf("GetTrunk = %+v; want active_calls 2, calls_attempted 2", cfg)
	}
	if n := f.received("INVITE"); n != 2 {
		t.Errorf("sipp got %d INVITEs; want 2 (none for the refused Dial)\n%s", n, f.trace())
	}

	hangup(t, c, a.CallID)
	if l := waitCalls(t, c, 1); l[0].CallID != b.CallID {
		t.Fatalf("ListCalls after Hangup of %s = %+v; want only %s", a.CallID, l, b.CallID)
	}
	d := placeCall(t, c, rpc.DialRequest{TrunkID: "carrier", To: "504", TimeoutSec: 5, MaxDurationSec: 60})
	if !d.Answered {
		t.Fatalf("Dial after a Hangup freed a channel = %+v; want answered", d)
	}
	l := listCalls(t, c, "carrier")
	if len(l) != 2 || l[0].CallID != b.CallID || l[1].CallID != d.CallID {
		t.Errorf("ListCalls = %+v; want %s then %s, oldest first", l, b.CallID, d.CallID)
	}
	hangup(t, c, b.CallID)
	hangup(t, c, d.CallID)
	waitCalls(t, c, 0)
	f.stop()
	if st := f.stats(); st["IncomingCall(C)"] != 3 || st["SuccessfulCall(C)"] != 3 || f.received("BYE") != 3 {
		t.Errorf("sipp: %d calls in, %d successful; want 3 and 3\n%s", st["IncomingCall(C)"], st["SuccessfulCall(C)"], f.trace())
	}
}

// TestOutboundCallSurvivesUpdateAndRemove: an answered call outlives an
// UpdateTrunk in place, one that moves the trunk to another SIP port and a
// RemoveTrunk; Hangup still sends its BYE, and the listeners are released
// once it ends.
func TestOutboundCallSurvivesUpdateAndRemove(t *testing.T) {
	f := startFarEnd(t, "uas_answer.xml", 10)
	c := startOutbound(t)
	tr := addCarrierTrunk(t, c, "carrier", f, nil)
	firstPort := tr.SourcePBXPort
	res := placeCall(t, c, rpc.DialRequest{TrunkID: "carrier", To: "600", TimeoutSec: 5})
	if !res.Answered {
		t.Fatalf("Dial = %+v; want answered\n%s", res, f.trace())
	}
	up := func(when string) {
		t.Helper()
		l := listCalls(t, c, "")
		if len(l) != 1 || l[0].CallID != res.CallID || l[0].State != "answered" || l[0].TrunkID != "carrier" {
			t.Fatalf("ListCalls %s = %+v; want the answered call %s", when, l, res.CallID)
		}
		if n := f.received("BYE"); n != 0 {
			t.Fatalf("sipp got a BYE %s; want the call up\n%s", when, f.trace())
		}
	}

	tr.DisplayName, tr.ChannelLimit = "Renamed", 7
	if err := c.UpdateTrunk(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	up("after UpdateTrunk")
	cfg := getTrunk(t, c, "carrier")
	if cfg.DisplayName != "Renamed" || cfg.ActiveCalls != 1 || cfg.CallsAttempted != 1 || cfg.CallsAnswered != 1 {
		t.Errorf("GetTrunk after UpdateTrunk = %+v; want the new name, the call active, the figures kept", cfg)
	}

	tr.SourcePBXPort = freeSIPPort(t)
	if err := c.UpdateTrunk(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	up("after UpdateTrunk to another source_pbx_port")

	if err := c.RemoveTrunk(context.Background(), "carrier"); err != nil {
		t.Fatal(err)
	}
	if _, found, err := c.GetTrunk(context.Background(), "carrier"); err != nil || found {
		t.Fatalf("GetTrunk after RemoveTrunk: found %v, %v; want not found", found, err)
	}
	time.Sleep(300 * time.Millisecond) // a call wrongly cut by the removal would show by now
	up("after RemoveTrunk")
	if l := listCalls(t, c, "carrier"); len(l) != 1 {
		t.Errorf("ListCalls(carrier) after RemoveTrunk = %+v; want the call", l)
	}
	_, err := tryCall(c, rpc.DialRequest{TrunkID: "carrier", To: "601", TimeoutSec: 5})
	wantCode(t, "Dial through the removed trunk", err, rpc.CodeInvalidTrunk)

	hangup(t, c, res.CallID)
	waitCalls(t, c, 0)
	f.stop()
	if st := f.stats(); f.received("BYE") != 1 || st["SuccessfulCall(C)"] != 1 {
		t.Errorf("sipp after Hangup: BYE in %d calls, %d successful; want 1 and 1\n%s", f.received("BYE"), st["SuccessfulCall(C)"], f.trace())
	}
	// The listener kept for the call is gone with it: the trunk can be
	// added again on its first port.
	tr.SourcePBXPort = firstPort
	if err := c.AddTrunk(context.Background(), tr); err != nil {
		t.Errorf("AddTrunk on the call's port once it ended: %v", err)
	}
}
