package sipplane

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/trunk"
)

// dialTrunkFor is a trunk whose carrier is c.
func dialTrunkFor(t *testing.T, id string, c *carrier) *trunk.Trunk {
	tr := testTrunk(id, siptest.FreePort(t, "127.0.0.1"))
	tr.DestinationSBCPort = c.port
	tr.SIPUsername, tr.Domain, tr.DisplayName = "trunk-user", "trunk.example.com", "Trunk One"
	return tr
}

func newDialPlane(t *testing.T, cfg Config) *Plane {
	if cfg.Breaker == (trunk.BreakerConfig{}) {
		cfg.Breaker = trunk.DefaultBreakerConfig()
		cfg.Breaker.ConsecutiveFaults = 3
	}
	return newPlane(t, cfg)
}

func dial(t *testing.T, p *Plane, r trunk.DialRequest) trunk.DialResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := p.Dial(ctx, r)
	if err != nil {
		t.Fatalf("Dial(%+v) = %v", r, err)
	}
	return res
}

func TestDialAnsweredThenHangup(t *testing.T) {
	c := newCarrier(t, answer)
	p := newDialPlane(t, Config{})
	tr := dialTrunkFor(t, "out", c)
	apply(t, p, tr)
	res := dial(t, p, trunk.DialRequest{TrunkID: "out", To: "+15551234", Timeout: 5 * time.Second})
	if !res.Answered || res.SIPCode != 200 || res.CallID == "" || res.Setup <= 0 {
		t.Fatalf("Dial = %+v; want answered 200 with a call id", res)
	}
	inv := c.lastInvite()
	if got := inv.Recipient.User; got != "+15551234" {
		t.Errorf("Request-URI user %q; want +15551234", got)
	}
	from := inv.From()
	if from.DisplayName != "Trunk One" || from.Address.User != "trunk-user" || from.Address.Host != "trunk.example.com" {
		t.Errorf("From = %s; want \"Trunk One\" <sip:trunk-user@trunk.example.com>", from.Value())
	}
	calls := p.ListCalls("out")
	if len(calls) != 1 || calls[0].CallID != res.CallID || calls[0].Direction != trunk.Outbound || calls[0].State != trunk.CallAnswered {
		t.Fatalf("ListCalls = %+v; want the answered outbound call", calls)
	}
	if err := p.Hangup(context.Background(), res.CallID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "BYE at the carrier", func() bool { _, _, b := c.counts(); return b == 1 })
	waitFor(t, "the call to end", func() bool { return len(p.ListCalls("")) == 0 })
	st := p.TrunkStatus("out")
	if st.Attempted != 1 || st.Answered != 1 || st.ASR != 100 || st.ACD <= 0 || st.SIP.ActiveCalls != 0 {
		t.Errorf("status = %+v; want 1 attempted, 1 answered, ASR 100, ACD > 0, no active calls", st)
	}
	if err := p.Hangup(context.Background(), res.CallID); trunk.ErrorCode(err) != trunk.ENOCALL {
		t.Errorf("Hangup of an ended call = %v; want ENOCALL", err)
	}
}

func TestDialRefusedCalls(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script func(*carrier, *sip.Request, sip.ServerTransaction)
		code   int
		fault  bool
	}{
		{"busy", reply(486), 486, false},
		{"declined", reply(603), 603, false},
		{"unavailable", reply(503), 503, true},
		{"server error", reply(500), 500, true},
		{"no response", silent, 0, true},
		{"ring timeout", ringForever, 487, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCarrier(t, tc.script)
			p := newDialPlane(t, Config{})
			apply(t, p, dialTrunkFor(t, "out", c))
			start := time.Now()
			res := dial(t, p, trunk.DialRequest{TrunkID: "out", To: "100", Timeout: time.Second})
			if res.Answered || res.SIPCode != tc.code || res.Reason == "" {
				t.Fatalf("Dial = %+v; want not answered, code %d, a reason", res, tc.code)
			}
			if took := time.Since(start); took > 8*time.Second {
				t.Errorf("Dial took %v with a 1 s timeout", took)
			}
			st := p.TrunkStatus("out")
			if st.Attempted != 1 || st.Answered != 0 || st.ASR != 0 {
				t.Errorf("status = %+v; want 1 attempted, 0 answered", st)
			}
			n, _ := p.Counters("out")
			outcome := "not_answered"
			if tc.fault {
				outcome = "carrier_fault"
			}
			if n.Calls[[2]string{trunk.Outbound, outcome}] != 1 {
				t.Errorf("counters = %+v; want one outbound %s", n.Calls, outcome)
			}
			waitFor(t, "no calls in flight", func() bool { return p.TrunkStatus("out").SIP.ActiveCalls == 0 })
		})
	}
}

// TestBreakerOpensOnCarrierFaults: three 503s in a row open the breaker;
// the next Dial fails fast with no INVITE sent; busy answers never open
// it.
func TestBreakerOpensOnCarrierFaults(t *testing.T) {
	c := newCarrier(t, reply(486))
	p := newDialPlane(t, Config{})
	apply(t, p, dialTrunkFor(t, "out", c))
	for range 5 {
		dial(t, p, trunk.DialRequest{TrunkID: "out", To: "100", Timeout: time.Second})
	}
	if st := p.TrunkStatus("out"); st.CircuitOpen() {
		t.Fatal("five busy answers opened the breaker")
	}
	c.setScript(reply(503))
	for range 3 {
		dial(t, p, trunk.DialRequest{TrunkID: "out", To: "100", Timeout: time.Second})
	}
	st := p.TrunkStatus("out")
	if !st.CircuitOpen() || st.Breaker != trunk.BreakerOpen {
		t.Fatalf("after 3 consecutive 503s: %+v; want the breaker open", st)
	}
	checkStatuses(t, p, "out") // with calls in its quality window
	before, _, _ := c.counts()
	_, err := p.Dial(context.Background(), trunk.DialRequest{TrunkID: "out", To: "100"})
	if trunk.ErrorCode(err) != trunk.ECIRCUITOPEN {
		t.Fatalf("Dial with the breaker open = %v; want ECIRCUITOPEN", err)
	}
	if after, _, _ := c.counts(); after != before {
		t.Errorf("an INVITE was sent with the breaker open (%d → %d)", before, after)
	}
	n, _ := p.Counters("out")
	if n.Transitions[string(trunk.BreakerOpen)] != 1 {
		t.Errorf("transitions = %+v; want one to open", n.Transitions)
	}
}

func TestBreakerHonoursRetryAfter(t *testing.T) {
	c := newCarrier(t, reply(503, sip.NewHeader("Retry-After", "120")))
	p := newDialPlane(t, Config{})
	apply(t, p, dialTrunkFor(t, "out", c))
	dial(t, p, trunk.DialRequest{TrunkID: "out", To: "100", Timeout: time.Second})
	_, err := p.Dial(context.Background(), trunk.DialRequest{TrunkID: "out", To: "100"})
	var te *trunk.Error
	if !errors.As(err, &te) || te.Code != trunk.ECIRCUITOPEN {
		t.Fatalf("Dial after a 503 with Retry-After = %v; want ECIRCUITOPEN", err)
	}
}

// TestBreakerProbeCloses: after the cooldown an OPTIONS probe to the
// carrier, now healthy, closes the breaker.
func TestBreakerProbeCloses(t *testing.T) {
	c := newCarrier(t, reply(503))
	cfg := trunk.DefaultBreakerConfig()
	cfg.ConsecutiveFaults, cfg.Cooldown = 1, time.Second
	p := newDialPlane(t, Config{Breaker: cfg})
	apply(t, p, dialTrunkFor(t, "out", c))
	dial(t, p, trunk.DialRequest{TrunkID: "out", To: "100", Timeout: time.Second})
	if !p.TrunkStatus("out").CircuitOpen() {
		t.Fatal("breaker not open after a 503 with ConsecutiveFaults 1")
	}
	if n := len(p.tripped.list()); n != 1 {
		t.Errorf("tripped breakers = %d with one open; want 1 (the probe loop skips its walk at 0)", n)
	}
	waitFor(t, "an OPTIONS probe to close the breaker", func() bool { return !p.TrunkStatus("out").CircuitOpen() })
	if _, o, _ := c.counts(); o == 0 {
		t.Error("the breaker closed with no OPTIONS probe sent")
	}
	waitFor(t, "no breaker counted as tripped", func() bool { return len(p.tripped.list()) == 0 })
	c.setScript(answer)
	if res := dial(t, p, trunk.DialRequest{TrunkID: "out", To: "100", Timeout: 5 * time.Second, MaxDuration: 100 * time.Millisecond}); !res.Answered {
		t.Errorf("Dial after the breaker closed = %+v; want answered", res)
	}
}

func TestDialManyProvisionalResponses(t *testing.T) {
	c := newCarrier(t, progressStorm(14))
	p := newDialPlane(t, Config{})
	apply(t, p, dialTrunkFor(t, "out", c))
	res := dial(t, p, trunk.DialRequest{TrunkID: "out", To: "100", Timeout: 5 * time.Second, MaxDuration: 200 * time.Millisecond})
	if !res.Answered {
		t.Fatalf("Dial after 14 × 183 = %+v; want answered", res)
	}
	waitFor(t, "max_duration to hang up", func() bool { _, _, b := c.counts(); return b == 1 })
	if st := p.TrunkStatus("out"); st.PDDms <= 0 {
		t.Errorf("PDD = %v; want > 0 after 183s", st.PDDms)
	}
}

func TestDialDigestAuth(t *testing.T) {
	c := newCarrier(t, challenge)
	p := newDialPlane(t, Config{})
	tr := dialTrunkFor(t, "out", c)
	tr.SIPPassword = "s3cret"
	apply(t, p, tr)
	res := dial(t, p, trunk.DialRequest{TrunkID: "out", To: "100", Timeout: 5 * time.Second, MaxDuration: 100 * time.Millisecond})
	if !res.Answered {
		t.Fatalf("Dial against a challenging carrier = %+v; want answered", res)
	}
	auth := c.lastInvite().GetHeader("Authorization")
	if auth == nil || !strings.Contains(auth.Value(), `username="trunk-user"`) || strings.Contains(auth.Value(), "s3cret") {
		t.Errorf("Authorization = %v; want a digest for trunk-user without the password", auth)
	}
}

// TestDialThroughProxy: with proxy set the INVITE goes to the proxy with
// a loose Route, its Request-URI still naming the gateway.
func TestDialThroughProxy(t *testing.T) {
	proxy := newCarrier(t, answer)
	port := strconv.Itoa(int(proxy.port))
	for _, form := range []string{"127.0.0.1:" + port, "sip:127.0.0.1:" + port, "sip:127.0.0.1:" + port + ";lr"} {
		t.Run(form, func(t *testing.T) {
			p := newDialPlane(t, Config{})
			tr := dialTrunkFor(t, "out", proxy)
			tr.DestinationSBCPort = 5999 // the gateway itself is never contacted
			tr.Proxy = form
			apply(t, p, tr)
			before, _, _ := proxy.counts()
			res := dial(t, p, trunk.DialRequest{TrunkID: "out", To: "100", Timeout: 5 * time.Second, MaxDuration: 100 * time.Millisecond})
			if !res.Answered {
				t.Fatalf("Dial through the proxy = %+v; want answered", res)
			}
			if n, _, _ := proxy.counts(); n != before+1 {
				t.Fatalf("proxy got %d INVITEs; want 1", n-before)
			}
			inv := proxy.lastInvite()
			if inv.Recipient.Port != 5999 {
				t.Errorf("Request-URI %s; want the gateway's port 5999", inv.Recipient.String())
			}
			want := "<sip:127.0.0.1:" + port + ";lr>"
			if r := inv.GetHeader("Route"); r == nil || r.Value() != want {
				t.Errorf("Route = %v; want %s", r, want)
			}
		})
	}
}

func TestRegisterThroughProxyURI(t *testing.T) {
	proxy := newCarrier(t, answer)
	p := newDialPlane(t, Config{})
	tr := dialTrunkFor(t, "reg", proxy)
	tr.GatewayIP, tr.DestinationSBCPort = "192.0.2.1", 5999 // never contacted
	tr.Proxy = "sip:127.0.0.1:" + strconv.Itoa(int(proxy.port)) + ";lr"
	tr.RequireRegistration, tr.SIPPassword, tr.RegisterExpiresSec = true, "pw", 300
	apply(t, p, tr)
	waitFor(t, "registered through the proxy", func() bool {
		return p.TrunkStatus("reg").SIP.RegistrationState == trunk.RegRegistered
	})
	proxy.mu.Lock()
	reg := proxy.registers[0]
	proxy.mu.Unlock()
	if got := reg.Recipient.Host; got != "trunk.example.com" {
		t.Errorf("REGISTER Request-URI host %q; want the domain trunk.example.com", got)
	}
}

func TestDialErrors(t *testing.T) {
	c := newCarrier(t, answer)
	p := newDialPlane(t, Config{})
	tr := dialTrunkFor(t, "out", c)
	tr.ChannelLimit = 1
	apply(t, p, tr)
	ctx := context.Background()
	if _, err := p.Dial(ctx, trunk.DialRequest{TrunkID: "nope", To: "100"}); trunk.ErrorCode(err) != trunk.ENOTFOUND {
		t.Errorf("unknown trunk: %v; want ENOTFOUND", err)
	}
	if _, err := p.Dial(ctx, trunk.DialRequest{TrunkID: "out", To: "a b"}); trunk.ErrorCode(err) != trunk.EINVALID {
		t.Errorf("bad number: %v; want EINVALID", err)
	}
	res := dial(t, p, trunk.DialRequest{TrunkID: "out", To: "100", Timeout: 5 * time.Second})
	before, _, _ := c.counts()
	if _, err := p.Dial(ctx, trunk.DialRequest{TrunkID: "out", To: "100"}); trunk.ErrorCode(err) != trunk.ECHANNELLIMIT {
		t.Errorf("over channel_limit: %v; want ECHANNELLIMIT", err)
	}
	if after, _, _ := c.counts(); after != before {
		t.Error("an INVITE was sent over channel_limit")
	}
	// The call survives an Update and a Remove of its trunk.
	tr2 := tr.Clone()
	tr2.DisplayName = "Renamed"
	apply(t, p, tr2)
	p.Remove("out")
	if calls := p.ListCalls("out"); len(calls) != 1 {
		t.Fatalf("after Update and Remove: %+v; want the call still up", calls)
	}
	if _, err := p.Dial(ctx, trunk.DialRequest{TrunkID: "out", To: "100"}); trunk.ErrorCode(err) != trunk.ENOTFOUND {
		t.Errorf("removed trunk: %v; want ENOTFOUND", err)
	}
	if err := p.Hangup(ctx, res.CallID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "BYE", func() bool { _, _, b := c.counts(); return b == 1 })
}

func TestDialAnswerMediaOutsideCIDRs(t *testing.T) {
	c := newCarrier(t, func(c *carrier, req *sip.Request, tx sip.ServerTransaction) {
		c.respond(req, tx, 200, "OK", c.answerSDP("192.0.2.1"))
	})
	p := newDialPlane(t, Config{})
	tr := dialTrunkFor(t, "out", c)
	tr.MediaIPCIDRs = []string{"127.0.0.0/8"}
	apply(t, p, tr)
	res := dial(t, p, trunk.DialRequest{TrunkID: "out", To: "100", Timeout: 5 * time.Second})
	if res.Answered || !strings.Contains(res.Reason, "media_ip_cidrs") {
		t.Fatalf("Dial = %+v; want refused for its media address", res)
	}
	waitFor(t, "the refused answer's BYE", func() bool { _, _, b := c.counts(); return b == 1 })
}
