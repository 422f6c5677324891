package status

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
	"github.com/trunkd/trunkd/trunk/control/controltest"
)

var secret = []byte("status-page-test-secret-0123456789")

func newPage(t *testing.T) (*httptest.Server, func(scope, org string) string) {
	t.Helper()
	trunks := []*trunk.Trunk{}
	for _, c := range []struct{ id, org string }{{"acme-1", "acme"}, {"other-1", "other"}} {
		tr := trunk.Defaults()
		tr.TrunkID, tr.OrganizationID, tr.Name, tr.ChannelLimit = c.id, c.org, "Trunk <"+c.id+">", 10
		tr.SIPUsername, tr.SIPPassword, tr.APIBearerToken = "user", "pw-never-shown", "bearer-never-shown"
		if c.id == "acme-1" {
			tr.Transport, tr.SIPTLSPort, tr.InboundMediaEncryption, tr.OutboundMediaEncryption = trunk.TransportTLS, 5061, trunk.EncryptAllow, trunk.EncryptRequire
			tr.InboundRule, tr.InboundAIWebsocketURL, tr.AgentID = trunk.RuleHandleAI, "wss://agent.example.com/in?key=url-never-shown", "sales"
		}
		trunks = append(trunks, &tr)
	}
	calls := controltest.NewFakeCalls(map[string]string{"acme-1": controltest.TrunkOK},
		trunk.Call{CallID: "in-1", TrunkID: "acme-1", Direction: trunk.Inbound, From: "+15550001111", To: "+15552223333", State: trunk.CallAnswered, Start: time.Now()})
	plane := &controltest.Plane{Calls: calls, Status: controltest.FakeStatus{"acme-1": {
		Quality:       trunk.Quality{Attempted: 4, Answered: 3, ASR: 75, ACD: 42, MOS: 3.2, PDDms: 850},
		Breaker:       trunk.BreakerHalfOpen,
		AIUnavailable: 3,
		SIP:           trunk.SIPStatus{State: trunk.SIPActive, RegistrationState: trunk.RegFailed, RegistrationError: "403 <Forbidden>", ActiveCalls: 1, ChannelLimit: 10},
	}}}
	authn, err := auth.NewAuthenticator(auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(control.New(controltest.NewMemStore(trunks...), plane), authn, nil))
	t.Cleanup(srv.Close)
	mint := func(scope, org string) string {
		tok, err := auth.MintOrgToken(secret, scope, time.Hour, "", "", org, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return srv, mint
}

func get(t *testing.T, url, token string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if u, org, ok := strings.Cut(url, "#org="); ok { // the test's way to name an organization
		req, _ = http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set(OrgHeader, org)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestPageShellHasNoData(t *testing.T) {
	srv, _ := newPage(t)
	resp, body := get(t, srv.URL+"/", "")
	if resp.StatusCode != 200 || !strings.Contains(body, `id="login"`) || strings.Contains(body, "acme-1") {
		t.Errorf("GET / = %d %q; want the page shell, no trunk", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	for _, asset := range []string{"/status/assets/app.js", "/status/assets/style.css"} {
		if resp, _ := get(t, srv.URL+asset, ""); resp.StatusCode != 200 {
			t.Errorf("GET %s = %d; want 200", asset, resp.StatusCode)
		}
	}
	if resp, _ := get(t, srv.URL+"/status/nothing", ""); resp.StatusCode != 404 {
		t.Errorf("GET /status/nothing = %d; want 404", resp.StatusCode)
	}
}

func TestView(t *testing.T) {
	srv, mint := newPage(t)
	personal, err := auth.MintOrgToken(secret, "trunks:read", time.Hour, "", "", "", []string{"acme", "other"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, token string
		status      int
		want, not   []string
		org         string
	}{
		{"no token", "", 401, []string{"no token"}, []string{"acme-1"}, ""},
		{"bad token", "garbage", 401, nil, []string{"acme-1"}, ""},
		{"calls:manage only", mint("calls:manage", ""), 403, nil, []string{"acme-1"}, ""},
		{"admin sees every org", mint("trunks:admin", ""), 200,
			[]string{`data-trunk="acme-1"`, `data-trunk="other-1"`, "half-open", "403 &lt;Forbidden&gt;", "Trunk &lt;acme-1&gt;",
				`data-field="calls">1 / 10`, `data-field="asr">75%`, `data-field="mos" class="bad">3.20`, `data-field="pdd">850 ms`, `data-call="in-1"`,
				`data-field="security">out TLS, in TLS :5061<br><span class="muted">SRTP in ALLOW, out REQUIRE`, `data-field="security">out UDP</td>`, "15550001111",
				`data-field="ai">HANDLE_AI · WebSocket · agent sales`, "3 unreachable", `data-field="ai">–</td>`},
			[]string{"pw-never-shown", "bearer-never-shown", "url-never-shown"}, ""},
		{"org token sees its org", mint("trunks:read", "acme"), 200, []string{`data-trunk="acme-1"`, "organization <b>acme</b>"}, []string{"other-1", "pw-never-shown"}, ""},
		{"personal token, no org named", personal, 400, []string{"name one"}, nil, ""},
		{"personal token naming other", personal, 200, []string{`data-trunk="other-1"`}, []string{"acme-1"}, "other"},
		{"org token naming another org", mint("trunks:read", "acme"), 403, nil, []string{"other-1"}, "other"},
	} {
		url := srv.URL + "/status/view"
		if c.org != "" {
			url += "#org=" + c.org
		}
		resp, body := get(t, url, c.token)
		if resp.StatusCode != c.status {
			t.Errorf("%s: GET /status/view = %d %q; want %d", c.name, resp.StatusCode, body, c.status)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: view lacks %q:\n%s", c.name, w, body)
			}
		}
		for _, n := range c.not {
			if strings.Contains(body, n) {
				t.Errorf("%s: view shows %q", c.name, n)
			}
		}
		if c.status == 200 && resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control = %q; want no-store", c.name, resp.Header.Get("Cache-Control"))
		}
	}
}

func TestSparkline(t *testing.T) {
	series := make([]trunk.Quality, 60)
	series[10] = trunk.Quality{Attempted: 4, Answered: 2}
	series[59] = trunk.Quality{Attempted: 2, Answered: 2, MOS: 3.1}
	got := string(sparkline(series))
	for _, w := range []string{`width="180"`, `<rect x="30" y="0" width="2" height="20" fill="#c8d3e0"/>`,
		`<rect x="30" y="10" width="2" height="10" fill="#2f6db5"/>`, `<rect x="177" y="0" width="2" height="2" fill="#c0392b"/>`} {
		if !strings.Contains(got, w) {
			t.Errorf("sparkline lacks %s:\n%s", w, got)
		}
	}
	if sparkline(nil) != "" {
		t.Error("sparkline(nil) not empty")
	}
}

// BenchmarkView renders the live view of n trunks, as every open page
// asks for every 2 s.
func BenchmarkView(b *testing.B) {
	for _, n := range []int{40, 1000} {
		b.Run(fmt.Sprintf("trunks=%d", n), func(b *testing.B) {
			var ts []*trunk.Trunk
			status := controltest.FakeStatus{}
			for i := range n {
				tr := trunk.Defaults()
				tr.TrunkID = fmt.Sprintf("t%04d", i)
				ts = append(ts, &tr)
				status[tr.TrunkID] = trunk.Status{Quality: trunk.Quality{Attempted: 10, Answered: 7, ASR: 70, ACD: 61, MOS: 4.1, PDDms: 900},
					Breaker: trunk.BreakerClosed, SIP: trunk.SIPStatus{State: trunk.SIPActive, RegistrationState: trunk.RegRegistered, ActiveCalls: 3, ChannelLimit: 30}}
			}
			authn, _ := auth.NewAuthenticator(auth.Config{Secret: secret})
			tok, _ := auth.MintToken(secret, auth.ScopeRead, time.Hour, "", "")
			h := New(control.New(controltest.NewMemStore(ts...), &controltest.Plane{Status: status}), authn, nil)
			req := httptest.NewRequest("GET", "/status/view", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("view = %d", w.Code)
				}
			}
		})
	}
}
