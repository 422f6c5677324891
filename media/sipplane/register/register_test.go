package register

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

func TestMain(m *testing.M) {
	sip.SetDefaultLogger(slog.New(slog.DiscardHandler))
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 && !settled(before, 3*time.Second) {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		os.Stderr.Write(buf[:n])
		os.Stderr.WriteString("goroutines left after tests\n")
		code = 1
	}
	os.Exit(code)
}

// settled waits for the goroutine count to fall back to want.
func settled(want int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

func newClient(t *testing.T) *sipgo.Client {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("trunkd-test"))
	if err != nil {
		t.Fatal(err)
	}
	client, err := sipgo.NewClient(ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ua.Close() })
	return client
}

func testConfig(g *registrar, user, password string, port int) Config {
	return Config{
		Registrar:  g.addr,
		Domain:     "example.test",
		Username:   user,
		Password:   password,
		Expires:    60 * time.Second,
		Contact:    sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1", Port: port},
		MinBackoff: 100 * time.Millisecond,
		MaxBackoff: 800 * time.Millisecond,
		Timeout:    400 * time.Millisecond,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitState(t *testing.T, r *Registration, want State, within time.Duration) Status {
	t.Helper()
	waitFor(t, within, string(want), func() bool { return r.Status().State == want })
	return r.Status()
}

func stop(t *testing.T, r *Registration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func TestDigestAuthAndContactExpiry(t *testing.T) {
	g := newRegistrar(t)
	g.set(func(g *registrar) {
		g.passwords = map[string]string{"alice": "s3cret"}
		g.grant = 3 * time.Second
		g.expiresHdr = "3600" // the Contact parameter must win
	})
	r := Start(newClient(t), testConfig(g, "alice", "s3cret", 5099))
	defer stop(t, r)

	st := waitState(t, r, Registered, 2*time.Second)
	left := time.Until(st.Expires)
	if left > 3*time.Second || left < 2*time.Second {
		t.Errorf("Expires in %v, want about 3s (the Contact's expires)", left)
	}
	reqs := g.received()
	if len(reqs) != 2 || reqs[0].authed || !reqs[1].authed {
		t.Fatalf("want unauthenticated REGISTER then authenticated one, got %+v", reqs)
	}
	checkDialog(t, reqs)
	if got := g.binding("alice"); len(got) != 1 || got[0] != "sip:alice@127.0.0.1:5099" {
		t.Errorf("bindings %v", got)
	}
}

// checkDialog checks From = To = AOR, one Call-ID and increasing CSeq.
func checkDialog(t *testing.T, reqs []received) {
	t.Helper()
	for i, q := range reqs {
		if !strings.Contains(q.from, "<sip:alice@example.test>") || !strings.Contains(q.from, "tag=") {
			t.Errorf("From %q", q.from)
		}
		if !strings.Contains(q.to, "<sip:alice@example.test>") {
			t.Errorf("To %q", q.to)
		}
		if q.callID != reqs[0].callID {
			t.Errorf("Call-ID changed: %q then %q", reqs[0].callID, q.callID)
		}
		if i > 0 && q.cseq <= reqs[i-1].cseq {
			t.Errorf("CSeq not increasing: %d then %d", reqs[i-1].cseq, q.cseq)
		}
	}
}

func TestRefreshBeforeExpiry(t *testing.T) {
	g := newRegistrar(t)
	g.set(func(g *registrar) {
		g.passwords = map[string]string{"alice": "s3cret"}
		g.grant = 2 * time.Second
	})
	r := Start(newClient(t), testConfig(g, "alice", "s3cret", 5099))
	defer stop(t, r)
	waitState(t, r, Registered, 2*time.Second)

	time.Sleep(3500 * time.Millisecond)
	reqs := g.received()
	if len(reqs) < 4 {
		t.Fatalf("%d REGISTERs in 3.5s with 2s grants, want refreshes", len(reqs))
	}
	checkDialog(t, reqs)
	for i := 2; i < len(reqs); i++ {
		if gap := reqs[i].at.Sub(reqs[i-1].at); gap >= 2*time.Second {
			t.Errorf("refresh %d came %v after the last, binding lapsed", i, gap)
		}
		if !reqs[i].authed {
			t.Errorf("refresh %d did not reuse credentials", i)
		}
	}
	if st := r.Status(); st.State != Registered || len(g.binding("alice")) != 1 {
		t.Errorf("status %+v bindings %v", st, g.binding("alice"))
	}
}

func TestWrongPassword(t *testing.T) {
	g := newRegistrar(t)
	g.set(func(g *registrar) { g.passwords = map[string]string{"alice": "s3cret"} })
	cfg := testConfig(g, "alice", "wrong", 5099)
	cfg.MinBackoff = time.Second
	r := Start(newClient(t), cfg)
	defer stop(t, r)

	st := waitState(t, r, Failed, 2*time.Second)
	if st.Error != "401 Unauthorized: bad credentials?" {
		t.Errorf("error %q", st.Error)
	}
	if n := len(g.received()); n != 2 {
		t.Errorf("%d REGISTERs before failing, want 2 (one answer per challenge)", n)
	}
}

func TestForbiddenBacksOff(t *testing.T) {
	g := newRegistrar(t)
	g.set(func(g *registrar) { g.status = 403 })
	r := Start(newClient(t), testConfig(g, "alice", "", 5099))
	defer stop(t, r)

	waitFor(t, 4*time.Second, "5 REGISTERs", func() bool { return len(g.received()) >= 5 })
	st := r.Status()
	if st.State != Failed || st.Error != "403 Forbidden" {
		t.Errorf("status %+v", st)
	}
	reqs := g.received()
	var gaps []time.Duration
	for i := 1; i < 5; i++ {
		gaps = append(gaps, reqs[i].at.Sub(reqs[i-1].at))
	}
	t.Logf("backoff gaps %v", gaps)
	if gaps[0] < 75*time.Millisecond || gaps[1] < gaps[0] || gaps[2] < gaps[1] || gaps[3] < 600*time.Millisecond {
		t.Errorf("backoff not growing from 100ms to 800ms: %v", gaps)
	}
}

func TestRetryAfter(t *testing.T) {
	g := newRegistrar(t)
	g.set(func(g *registrar) { g.status, g.retryAfter = 503, 1 })
	r := Start(newClient(t), testConfig(g, "alice", "", 5099))
	defer stop(t, r)

	waitFor(t, 3*time.Second, "2 REGISTERs", func() bool { return len(g.received()) >= 2 })
	reqs := g.received()
	if gap := reqs[1].at.Sub(reqs[0].at); gap < 900*time.Millisecond {
		t.Errorf("retried after %v despite Retry-After: 1", gap)
	}
	if st := r.Status(); st.Error != "503 Service Unavailable" {
		t.Errorf("status %+v", st)
	}
}

func TestIntervalTooBrief(t *testing.T) {
	g := newRegistrar(t)
	g.set(func(g *registrar) { g.minExpires = 120 })
	r := Start(newClient(t), testConfig(g, "alice", "", 5099))
	defer stop(t, r)

	st := waitState(t, r, Registered, 2*time.Second)
	reqs := g.received()
	if len(reqs) != 2 || !strings.Contains(reqs[1].contact, "expires=120") || reqs[1].expires != "120" {
		t.Errorf("want a retry asking 120s, got %+v", reqs)
	}
	if left := time.Until(st.Expires); left < 100*time.Second {
		t.Errorf("Expires in %v", left)
	}
}

func TestRegistrarGoesAwayAndComesBack(t *testing.T) {
	g := newRegistrar(t)
	g.set(func(g *registrar) { g.grant = 2 * time.Second })
	r := Start(newClient(t), testConfig(g, "alice", "", 5099))
	defer stop(t, r)
	waitState(t, r, Registered, 2*time.Second)

	g.set(func(g *registrar) { g.silent = true })
	st := waitState(t, r, Failed, 3*time.Second)
	if st.Error != "no response from "+g.addr {
		t.Errorf("error %q", st.Error)
	}
	time.Sleep(500 * time.Millisecond) // a retry or two into the void
	g.set(func(g *registrar) { g.silent = false })
	st = waitState(t, r, Registered, 3*time.Second)
	if st.Error != "" || len(g.binding("alice")) != 1 {
		t.Errorf("after recovery: %+v, bindings %v", st, g.binding("alice"))
	}
}

func TestStopRemovesOnlyOwnContact(t *testing.T) {
	g := newRegistrar(t)
	g.set(func(g *registrar) {
		g.passwords = map[string]string{"alice": "s3cret"}
		g.bind("alice", sip.Uri{User: "alice", Host: "192.0.2.7", Port: 5060}, time.Hour) // another device
	})
	r := Start(newClient(t), testConfig(g, "alice", "s3cret", 5099))
	waitState(t, r, Registered, 2*time.Second)
	if n := len(g.binding("alice")); n != 2 {
		t.Fatalf("%d bindings, want ours and the other device's", n)
	}

	stop(t, r)
	if st := r.Status(); st.State != Off {
		t.Errorf("state after Stop %q", st.State)
	}
	reqs := g.received()
	last := reqs[len(reqs)-1]
	if last.contact != "<sip:alice@127.0.0.1:5099>;expires=0" || last.expires != "0" {
		t.Errorf("un-REGISTER Contact %q Expires %q", last.contact, last.expires)
	}
	if g.sawStar {
		t.Error("registrar saw Contact: *")
	}
	if got := g.binding("alice"); !slices.Equal(got, []string{"sip:alice@192.0.2.7:5060"}) {
		t.Errorf("bindings after Stop %v, want only the other device", got)
	}
	if err := r.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestTwoRegistrationsAreIndependent(t *testing.T) {
	g := newRegistrar(t)
	g.set(func(g *registrar) { g.passwords = map[string]string{"alice": "a-pass", "bob": "b-pass"} })
	client := newClient(t)
	alice := Start(client, testConfig(g, "alice", "a-pass", 5099))
	bob := Start(client, testConfig(g, "bob", "b-pass", 5098))
	defer stop(t, bob)
	waitState(t, alice, Registered, 2*time.Second)
	waitState(t, bob, Registered, 2*time.Second)

	stop(t, alice)
	if got := g.binding("alice"); len(got) != 0 {
		t.Errorf("alice still bound: %v", got)
	}
	if got := g.binding("bob"); !slices.Equal(got, []string{"sip:bob@127.0.0.1:5098"}) {
		t.Errorf("bob's bindings %v", got)
	}
	if st := bob.Status(); st.State != Registered {
		t.Errorf("bob %+v", st)
	}
}

func TestStopWhileUnanswered(t *testing.T) {
	g := newRegistrar(t)
	g.set(func(g *registrar) { g.silent = true })
	cfg := testConfig(g, "alice", "", 5099)
	cfg.Timeout = 5 * time.Second
	r := Start(newClient(t), cfg)
	waitFor(t, time.Second, "a REGISTER", func() bool { return len(g.received()) > 0 })

	begin := time.Now()
	stop(t, r)
	if d := time.Since(begin); d > 200*time.Millisecond {
		t.Errorf("Stop took %v with a REGISTER in flight", d)
	}
	if n := len(g.received()); n != 1 {
		t.Errorf("%d REGISTERs; nothing was bound, so no un-REGISTER was due", n)
	}
}

func TestTCP(t *testing.T) {
	g := newRegistrarOn(t, "tcp")
	g.set(func(g *registrar) { g.passwords = map[string]string{"alice": "s3cret"} })
	cfg := testConfig(g, "alice", "s3cret", 5099)
	cfg.Transport = "tcp"
	r := Start(newClient(t), cfg)
	waitState(t, r, Registered, 2*time.Second)
	stop(t, r)
	if got := g.binding("alice"); len(got) != 0 {
		t.Errorf("bindings after Stop %v", got)
	}
}
