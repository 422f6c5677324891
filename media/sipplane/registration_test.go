package sipplane

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/trunk"
)

// fakeRegistrar is a minimal SIP fakeRegistrar recording every REGISTER.
type fakeRegistrar struct {
	mu   sync.Mutex
	regs []*sip.Request
	addr string
}

func newFakeRegistrar(t *testing.T) *fakeRegistrar {
	t.Helper()
	r := &fakeRegistrar{}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("registrar"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
		r.mu.Lock()
		r.regs = append(r.regs, req.Clone())
		r.mu.Unlock()
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		if c := req.Contact(); c != nil {
			res.AppendHeader(c.Clone())
		}
		tx.Respond(res)
	})
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = conn.LocalAddr().String()
	go srv.ServeUDP(conn)
	t.Cleanup(func() { ua.Close(); conn.Close() })
	return r
}

func (r *fakeRegistrar) requests() []*sip.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*sip.Request(nil), r.regs...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRegistrationFollowsTrunk(t *testing.T) {
	reg := newFakeRegistrar(t)
	p := newPlane(t, Config{})
	tr := testTrunk("reg", siptest.FreePort(t, "127.0.0.1"))
	tr.RequireRegistration = true
	tr.Proxy = reg.addr
	tr.Domain = "carrier.example"
	tr.SIPUsername, tr.SIPPassword = "alice", "pw"
	apply(t, p, tr)
	waitFor(t, "registered", func() bool { return p.status("reg").RegistrationState == trunk.RegRegistered })
	first := reg.requests()[0]
	if to := first.To().Address; to.User != "alice" || to.Host != "carrier.example" {
		t.Errorf("REGISTER To = %s; want the AOR sip:alice@carrier.example", to.String())
	}

	// An Update that does not touch registration keeps it: no new REGISTER.
	n := len(reg.requests())
	tr2 := tr.Clone()
	tr2.RejectSIPCode = 486
	apply(t, p, tr2)
	time.Sleep(200 * time.Millisecond)
	if got := len(reg.requests()); got != n || p.status("reg").RegistrationState != trunk.RegRegistered {
		t.Errorf("unrelated Update: %d REGISTERs (was %d), state %s; want the registration kept", got, n, p.status("reg").RegistrationState)
	}

	// Removal unregisters our own contact only.
	p.Remove("reg")
	waitFor(t, "un-REGISTER", func() bool {
		l := reg.requests()
		return len(l) > n && l[len(l)-1].GetHeader("Expires") != nil && l[len(l)-1].GetHeader("Expires").Value() == "0"
	})
	last := reg.requests()[len(reg.requests())-1]
	if c := last.GetHeader("Contact").Value(); strings.Contains(c, "*") || !strings.Contains(c, "alice@") {
		t.Errorf("un-REGISTER Contact = %q; want our own contact, never *", c)
	}
}

// TestRegistrationOwnership: a node that does not own a trunk's
// registration runs the trunk without registering; SetRegistering starts
// and stops (un-REGISTERs) it as ownership moves.
func TestRegistrationOwnership(t *testing.T) {
	reg := newFakeRegistrar(t)
	var mu sync.Mutex
	owned := false
	p := newPlane(t, Config{Registers: func(string) bool { mu.Lock(); defer mu.Unlock(); return owned }})
	tr := testTrunk("own", siptest.FreePort(t, "127.0.0.1"))
	tr.RequireRegistration = true
	tr.Proxy = reg.addr
	tr.Domain = "carrier.example"
	tr.SIPUsername, tr.SIPPassword = "alice", "pw"
	apply(t, p, tr)
	time.Sleep(200 * time.Millisecond)
	if n, st := len(reg.requests()), p.status("own"); n != 0 || st.State != trunk.SIPActive || st.RegistrationState != trunk.RegOff {
		t.Fatalf("not owner: %d REGISTERs, state %s/%s; want 0, active/off", n, st.State, st.RegistrationState)
	}
	mu.Lock()
	owned = true
	mu.Unlock()
	p.SetRegistering("own", true)
	waitFor(t, "registered", func() bool { return p.status("own").RegistrationState == trunk.RegRegistered })
	p.SetRegistering("own", true) // no second registration
	n := len(reg.requests())
	mu.Lock()
	owned = false
	mu.Unlock()
	p.SetRegistering("own", false)
	l := reg.requests()
	if len(l) != n+1 || l[n].GetHeader("Expires") == nil || l[n].GetHeader("Expires").Value() != "0" {
		t.Fatalf("after SetRegistering(false): %d REGISTERs (was %d); want one un-REGISTER, sent before it returns", len(l), n)
	}
	if st := p.status("own"); st.RegistrationState != trunk.RegOff || st.State != trunk.SIPActive {
		t.Errorf("after giving up ownership: %s/%s; want active/off", st.State, st.RegistrationState)
	}
}
