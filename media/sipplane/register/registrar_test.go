package register

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

const testRealm = "trunkd.test"

// received is one REGISTER as the fake registrar saw it.
type received struct {
	at      time.Time
	contact string // raw Contact header value
	expires string // raw Expires header value
	cseq    uint32
	callID  string
	from    string
	to      string
	authed  bool
}

// registrar is an in-process SIP registrar on 127.0.0.1 (UDP) with a
// binding table, digest auth and switches to misbehave.
type registrar struct {
	t    *testing.T
	addr string
	ua   *sipgo.UserAgent

	mu         sync.Mutex
	passwords  map[string]string // user -> password; nil means no auth
	nonces     map[string]bool
	bindings   map[string]map[string]time.Time // user -> contact -> expiry
	reqs       []received
	silent     bool          // drop REGISTERs unanswered
	status     int           // answer every REGISTER with this status
	retryAfter int           // Retry-After seconds sent with status
	grant      time.Duration // cap on granted expiry (0: as asked)
	minExpires int           // answer 423 below this
	expiresHdr string        // Expires header value in 200 (empty: none)
	sawStar    bool
}

func newRegistrar(t *testing.T) *registrar {
	t.Helper()
	return newRegistrarOn(t, "udp")
}

// newRegistrarOn starts a registrar on 127.0.0.1 over "udp" or "tcp".
func newRegistrarOn(t *testing.T, network string) *registrar {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("registrar"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	conn, addr, serve := listen(t, srv, network)
	g := &registrar{
		t:        t,
		addr:     addr,
		ua:       ua,
		nonces:   map[string]bool{},
		bindings: map[string]map[string]time.Time{},
	}
	srv.OnRegister(g.onRegister)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = serve()
	}()
	t.Cleanup(func() {
		_ = ua.Close()
		_ = conn.Close()
		<-served
	})
	return g
}

// listen opens a loopback listener on a free port.
func listen(t *testing.T, srv *sipgo.Server, network string) (io.Closer, string, func() error) {
	t.Helper()
	if network == "tcp" {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return l, l.Addr().String(), func() error { return srv.ServeTCP(l) }
	}
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return c, c.LocalAddr().String(), func() error { return srv.ServeUDP(c) }
}

func (g *registrar) set(f func(g *registrar)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g)
}

func (g *registrar) received() []received {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]received(nil), g.reqs...)
}

// binding returns the contacts bound for user.
func (g *registrar) binding(user string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for c, exp := range g.bindings[user] {
		if time.Now().Before(exp) {
			out = append(out, c)
		}
	}
	return out
}

func (g *registrar) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.record(req)
	if g.silent {
		return
	}
	if err := tx.Respond(g.answer(req)); err != nil {
		g.t.Logf("registrar respond: %v", err)
	}
}

func (g *registrar) record(req *sip.Request) {
	r := received{at: time.Now(), authed: req.GetHeader("Authorization") != nil}
	if h := req.GetHeader("Contact"); h != nil {
		r.contact = h.Value()
	}
	if h := req.GetHeader("Expires"); h != nil {
		r.expires = h.Value()
	}
	if h := req.CSeq(); h != nil {
		r.cseq = h.SeqNo
	}
	if h := req.CallID(); h != nil {
		r.callID = h.Value()
	}
	if h := req.From(); h != nil {
		r.from = h.Value()
	}
	if h := req.To(); h != nil {
		r.to = h.Value()
	}
	g.reqs = append(g.reqs, r)
}

func (g *registrar) answer(req *sip.Request) *sip.Response {
	if g.status != 0 {
		res := sip.NewResponseFromRequest(req, g.status, reasonFor(g.status), nil)
		if g.retryAfter > 0 {
			res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(g.retryAfter)))
		}
		return res
	}
	if !g.authorized(req) {
		return g.challenge(req)
	}
	user := req.To().Address.User
	contact := req.Contact()
	if contact == nil {
		return sip.NewResponseFromRequest(req, 400, "Bad Request", nil)
	}
	if contact.Address.Wildcard || strings.TrimSpace(contact.Value()) == "*" {
		g.sawStar = true
		delete(g.bindings, user)
		return g.ok(req, user)
	}
	asked := requestedExpiry(req, contact)
	if asked > 0 && asked < g.minExpires {
		res := sip.NewResponseFromRequest(req, 423, "Interval Too Brief", nil)
		res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(g.minExpires)))
		return res
	}
	g.bind(user, contact.Address, time.Duration(asked)*time.Second)
	return g.ok(req, user)
}

func requestedExpiry(req *sip.Request, contact *sip.ContactHeader) int {
	if v, ok := contact.Params.Get("expires"); ok {
		n, _ := strconv.Atoi(v)
		return n
	}
	if h := req.GetHeader("Expires"); h != nil {
		n, _ := strconv.Atoi(h.Value())
		return n
	}
	return 3600
}

func (g *registrar) bind(user string, contact sip.Uri, d time.Duration) {
	key := contactKey(contact)
	if d == 0 {
		delete(g.bindings[user], key)
		return
	}
	if g.grant > 0 {
		d = min(d, g.grant)
	}
	if g.bindings[user] == nil {
		g.bindings[user] = map[string]time.Time{}
	}
	g.bindings[user][key] = time.Now().Add(d)
}

func contactKey(u sip.Uri) string {
	return fmt.Sprintf("sip:%s@%s:%d", u.User, u.Host, u.Port)
}

// ok is a 200 listing every live binding of user with its remaining expiry.
func (g *registrar) ok(req *sip.Request, user string) *sip.Response {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	for key, exp := range g.bindings[user] {
		left := time.Until(exp).Round(time.Second)
		if left <= 0 {
			continue
		}
		res.AppendHeader(sip.NewHeader("Contact",
			fmt.Sprintf("<%s>;expires=%d", key, int(left/time.Second))))
	}
	if g.expiresHdr != "" {
		res.AppendHeader(sip.NewHeader("Expires", g.expiresHdr))
	}
	return res
}

func (g *registrar) challenge(req *sip.Request) *sip.Response {
	nonce := sip.GenerateTagN(24)
	g.nonces[nonce] = true
	res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	res.AppendHeader(sip.NewHeader("WWW-Authenticate",
		fmt.Sprintf(`Digest realm=%q, nonce=%q, qop="auth", algorithm=MD5`, testRealm, nonce)))
	return res
}

// authorized checks the Authorization header against the user's password.
func (g *registrar) authorized(req *sip.Request) bool {
	if g.passwords == nil {
		return true
	}
	h := req.GetHeader("Authorization")
	if h == nil {
		return false
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil || !g.nonces[cred.Nonce] || cred.Realm != testRealm {
		return false
	}
	if cred.URI != req.Recipient.String() || cred.Username != req.To().Address.User {
		g.t.Errorf("digest uri %q user %q, request uri %q", cred.URI, cred.Username, req.Recipient.String())
		return false
	}
	want, err := digest.Digest(&digest.Challenge{Realm: testRealm, Nonce: cred.Nonce, QOP: []string{"auth"}, Algorithm: "MD5"},
		digest.Options{
			Method:   string(req.Method),
			URI:      cred.URI,
			Count:    cred.Nc,
			Cnonce:   cred.Cnonce,
			Username: cred.Username,
			Password: g.passwords[cred.Username],
		})
	return err == nil && want.Response == cred.Response
}

func reasonFor(code int) string {
	switch code {
	case 403:
		return "Forbidden"
	case 503:
		return "Service Unavailable"
	}
	return "Error"
}
