package sipplane

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/trunk"
)

// requests lists the REGISTER requests reg has received.
func requests(reg *siptest.Registrar) []*sip.Request {
	var out []*sip.Request
	for _, r := range reg.Registers() {
		out = append(out, r.Req)
	}
	return out
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
	reg := siptest.NewRegistrar(t)
	p := newPlane(t, Config{})
	tr := testTrunk("reg", siptest.FreePort(t, "127.0.0.1"))
	tr.RequireRegistration = true
	tr.Proxy = reg.Addr
	tr.Domain = "carrier.example"
	tr.SIPUsername, tr.SIPPassword = "alice", "pw"
	apply(t, p, tr)
	waitFor(t, "registered", func() bool { return p.status("reg").RegistrationState == trunk.RegRegistered })
	first := requests(reg)[0]
	if to := first.To().Address; to.User != "alice" || to.Host != "carrier.example" {
		t.Errorf("REGISTER To = %s; want the AOR sip:alice@carrier.example", to.String())
	}

	// An Update that does not touch registration keeps it: no new REGISTER.
	n := len(requests(reg))
	tr2 := tr.Clone()
	tr2.RejectSIPCode = 486
	apply(t, p, tr2)
	time.Sleep(200 * time.Millisecond)
	if got := len(requests(reg)); got != n || p.status("reg").RegistrationState != trunk.RegRegistered {
		t.Errorf("unrelated Update: %d REGISTERs (was %d), state %s; want the registration kept", got, n, p.status("reg").RegistrationState)
	}

	// Removal unregisters our own contact only.
	p.Remove("reg")
	waitFor(t, "un-REGISTER", func() bool {
		l := requests(reg)
		return len(l) > n && l[len(l)-1].GetHeader("Expires") != nil && l[len(l)-1].GetHeader("Expires").Value() == "0"
	})
	last := requests(reg)[len(requests(reg))-1]
	if c := last.GetHeader("Contact").Value(); strings.Contains(c, "*") || !strings.Contains(c, "alice@") {
		t.Errorf("un-REGISTER Contact = %q; want our own contact, never *", c)
	}
}

// TestRegistrationOwnership: a node that does not own a trunk's
// registration runs the trunk without registering; SetRegistering starts
// and stops (un-REGISTERs) it as ownership moves.
func TestRegistrationOwnership(t *testing.T) {
	reg := siptest.NewRegistrar(t)
	var mu sync.Mutex
	owned := false
	p := newPlane(t, Config{Registers: func(string) bool { mu.Lock(); defer mu.Unlock(); return owned }})
	tr := testTrunk("own", siptest.FreePort(t, "127.0.0.1"))
	tr.RequireRegistration = true
	tr.Proxy = reg.Addr
	tr.Domain = "carrier.example"
	tr.SIPUsername, tr.SIPPassword = "alice", "pw"
	apply(t, p, tr)
	time.Sleep(200 * time.Millisecond)
	if n, st := len(requests(reg)), p.status("own"); n != 0 || st.State != trunk.SIPActive || st.RegistrationState != trunk.RegOff {
		t.Fatalf("not owner: %d REGISTERs, state %s/%s; want 0, active/off", n, st.State, st.RegistrationState)
	}
	mu.Lock()
	owned = true
	mu.Unlock()
	p.SetRegistering("own", true)
	waitFor(t, "registered", func() bool { return p.status("own").RegistrationState == trunk.RegRegistered })
	p.SetRegistering("own", true) // no second registration
	n := len(requests(reg))
	mu.Lock()
	owned = false
	mu.Unlock()
	p.SetRegistering("own", false)
	l := requests(reg)
	if len(l) != n+1 || l[n].GetHeader("Expires") == nil || l[n].GetHeader("Expires").Value() != "0" {
		t.Fatalf("after SetRegistering(false): %d REGISTERs (was %d); want one un-REGISTER, sent before it returns", len(l), n)
	}
	if st := p.status("own"); st.RegistrationState != trunk.RegOff || st.State != trunk.SIPActive {
		t.Errorf("after giving up ownership: %s/%s; want active/off", st.State, st.RegistrationState)
	}
}
