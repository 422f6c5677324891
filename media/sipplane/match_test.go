package sipplane

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/trunk"
)

func liveFor(id, domain string, gw, sbc []string) *live {
	t := trunk.Defaults()
	t.TrunkID, t.Domain = id, domain
	lv := &live{t: &t, bind: "0.0.0.0:5060"}
	s := &addrSet{}
	for _, a := range gw {
		s.gateway = append(s.gateway, netip.MustParseAddr(a))
	}
	for _, a := range sbc {
		s.sbc = append(s.sbc, netip.MustParseAddr(a))
	}
	lv.addrs.Store(s)
	if len(gw) > 0 {
		t.GatewayIP = gw[0]
	}
	if len(sbc) > 0 {
		t.SBCIP = sbc[0]
	}
	return lv
}

func TestMatch(t *testing.T) {
	tb := buildTable([]*live{
		liveFor("b", "b.example", []string{"192.0.2.1"}, nil),
		liveFor("a", "a.example", []string{"192.0.2.1"}, nil),
		liveFor("c", "c.example", nil, []string{"198.51.100.7"}),
		liveFor("dns", "", []string{"2001:db8::1", "203.0.113.5"}, nil),
	})
	for _, tc := range []struct {
		src, host, want, reason string
	}{
		{"198.51.100.7", "", "c", "sbc_ip"},
		{"203.0.113.5", "", "dns", "gateway_ip"},
		{"2001:db8::1", "", "dns", "gateway_ip"},
		{"192.0.2.1", "b.example", "b", "domain equals"},
		{"192.0.2.1", "B.EXAMPLE", "b", "domain equals"},
		{"192.0.2.1", "other.example", "a", "lowest trunk_id"},
		{"192.0.2.1", "", "a", "lowest trunk_id"},
		{"192.0.2.99", "a.example", "", "not the gateway_ip or sbc_ip"},
	} {
		lv, m := tb.match("0.0.0.0:5060", netip.MustParseAddr(tc.src), tc.host)
		got := ""
		if lv != nil {
			got = lv.t.TrunkID
		}
		if got != tc.want || m.TrunkID != tc.want || m.Matched != (tc.want != "") || !strings.Contains(m.Reason, tc.reason) {
			t.Errorf("match(%s, %q) = %q, %+v; want %q with reason containing %q", tc.src, tc.host, got, m, tc.want, tc.reason)
		}
	}
	if lv, m := tb.match("127.0.0.1:5070", netip.MustParseAddr("192.0.2.1"), ""); lv != nil || !strings.Contains(m.Reason, "no trunk listens") {
		t.Errorf("match on another listener = %v, %+v", lv, m)
	}
	// An empty table never accepts: no trunks is not "accept everything".
	if lv, _ := buildTable(nil).match("0.0.0.0:5060", netip.MustParseAddr("192.0.2.1"), ""); lv != nil {
		t.Error("empty table matched a call")
	}
}

func TestNormalizeListener(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5060": "127.0.0.1:5060",
		":5060":          "0.0.0.0:5060",
		"[::1]:5070":     "[::1]:5070",
	} {
		if got, err := normalizeListener(in); err != nil || got != want {
			t.Errorf("normalizeListener(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"127.0.0.1", "host:5060", "127.0.0.1:0", "127.0.0.1:70000"} {
		if _, err := normalizeListener(bad); err == nil {
			t.Errorf("normalizeListener(%q) succeeded", bad)
		}
	}
}

// fakeResolver maps names to addresses.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestGatewayByName: a gateway given as a DNS name matches calls from the
// address it resolves to, and a name that does not resolve matches none.
func TestGatewayByName(t *testing.T) {
	p := newPlane(t, Config{Resolver: fakeResolver{"gw.carrier.example": {netip.MustParseAddr("127.0.0.1")}}})
	port := siptest.FreePort(t, "127.0.0.1")
	tr := testTrunk("named", port)
	tr.GatewayIP = "gw.carrier.example"
	apply(t, p, tr)
	if got := newUAC(t, "127.0.0.1").code(t, port); got != 603 {
		t.Errorf("INVITE from the gateway's resolved address got %d; want 603", got)
	}
	tr2 := tr.Clone()
	tr2.GatewayIP = "gone.carrier.example"
	apply(t, p, tr2)
	if got := newUAC(t, "127.0.0.1").code(t, port); got != 403 {
		t.Errorf("INVITE after the gateway became an unresolvable name got %d; want 403", got)
	}
}

// movingResolver resolves every name to its current address.
type movingResolver struct {
	mu   sync.Mutex
	addr netip.Addr
}

func (r *movingResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return []netip.Addr{r.addr}, nil
}

func (r *movingResolver) set(a string) {
	r.mu.Lock()
	r.addr = netip.MustParseAddr(a)
	r.mu.Unlock()
}

// TestDNSRefreshFollowsNames: a gateway given by name is re-resolved
// every DNSRefresh and calls then match from its new address, and no
// longer from its old one; a trunk given by address keeps matching.
func TestDNSRefreshFollowsNames(t *testing.T) {
	r := &movingResolver{addr: netip.MustParseAddr("127.0.0.2")}
	p := newPlane(t, Config{Resolver: r, DNSRefresh: 20 * time.Millisecond})
	port := siptest.FreePort(t, "127.0.0.1")
	named := testTrunk("named", port)
	named.GatewayIP = "gw.carrier.example"
	apply(t, p, named)
	byIP := testTrunk("by-ip", port)
	byIP.GatewayIP = "127.0.0.4"
	apply(t, p, byIP)
	listener := fmt.Sprintf("127.0.0.1:%d", port)
	explain := func(source string) string {
		m, err := p.Explain(source, listener, "sip:100@127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		return m.TrunkID
	}
	if got := explain("127.0.0.2"); got != "named" {
		t.Fatalf("a call from the name's first address matched %q; want named", got)
	}
	r.set("127.0.0.3")
	waitFor(t, "the refresher to follow the name", func() bool { return explain("127.0.0.3") == "named" })
	if got := explain("127.0.0.2"); got != "" {
		t.Errorf("a call from the name's old address matched %q; want none", got)
	}
	if got := explain("127.0.0.4"); got != "by-ip" {
		t.Errorf("a call from by-ip's address matched %q; want by-ip", got)
	}
}

// TestTableReplaceMatchesRebuild: replacing trunks one at a time gives the
// same table as building it from scratch.
func TestTableReplaceMatchesRebuild(t *testing.T) {
	trunks := map[string]*live{}
	tb := buildTable(nil)
	mk := func(id, bind string) *live {
		tr := trunk.Defaults()
		tr.TrunkID = id
		return &live{t: &tr, bind: bind}
	}
	steps := []struct{ id, bind string }{
		{"b", "l1"}, {"a", "l1"}, {"c", "l2"}, {"a", "l2"}, {"d", "l1"}, {"b", ""}, {"c", ""}, {"e", "l1"},
	}
	for _, st := range steps {
		prev := trunks[st.id]
		var next *live
		if st.bind != "" {
			next = mk(st.id, st.bind)
			trunks[st.id] = next
		} else {
			delete(trunks, st.id)
		}
		tb = tb.replace(prev, next)
		want := buildTable(slices.Collect(maps.Values(trunks)))
		if len(tb.byListener) != len(want.byListener) {
			t.Fatalf("after %v: listeners %v; want %v", st, tb.byListener, want.byListener)
		}
		for k, l := range want.byListener {
			if ids(tb.byListener[k]) != ids(l) {
				t.Fatalf("after %v: %s holds %s; want %s", st, k, ids(tb.byListener[k]), ids(l))
			}
		}
	}
}

// liveWith is liveFor with allowed_addresses and an organization.
func liveWith(id, org string, gw []string, allowed ...string) *live {
	lv := liveFor(id, "", gw, nil)
	lv.t.OrganizationID = org
	lv.t.AllowedAddresses = allowed
	if len(gw) > 0 {
		lv.t.GatewayIP = gw[0]
	}
	lv.t.Normalize() // as the plane gets them: empty entries stripped
	for _, a := range lv.t.AllowedAddresses {
		p, err := trunk.ParseAllowed(a)
		if err != nil {
			panic(err)
		}
		lv.allowed = append(lv.allowed, p)
	}
	return lv
}

// TestMatchPrecedence: exact address > longest prefix > no restriction,
// whatever the ids; ExplainMatch names the rule.
func TestMatchPrecedence(t *testing.T) {
	tb := buildTable([]*live{
		liveWith("a-open", "acme", nil),
		liveWith("b-wide", "acme", nil, "10.0.0.0/8"),
		liveWith("c-narrow", "acme", nil, "10.1.0.0/16", " "),
		liveWith("d-exact", "acme", nil, "10.1.2.3"),
		liveWith("e-gw", "acme", []string{"192.0.2.1"}),
		liveWith("f-v6", "acme", nil, "2001:db8::/32"),
	})
	for _, tc := range []struct{ src, want, reason string }{
		{"10.1.2.3", "d-exact", "exact address: its allowed_addresses entry 10.1.2.3"},
		{"10.1.9.9", "c-narrow", "longest prefix: its allowed_addresses entry 10.1.0.0/16"},
		{"10.200.0.1", "b-wide", "longest prefix: its allowed_addresses entry 10.0.0.0/8"},
		{"192.0.2.1", "e-gw", "exact address: its gateway_ip"},
		{"2001:db8::5", "f-v6", "longest prefix"},
		{"203.0.113.9", "a-open", "no restriction"},
	} {
		lv, m := tb.match("0.0.0.0:5060", netip.MustParseAddr(tc.src), "")
		if lv == nil || lv.t.TrunkID != tc.want || !strings.Contains(m.Reason, tc.reason) {
			t.Errorf("match(%s) = %+v; want %s by %q", tc.src, m, tc.want, tc.reason)
		}
	}
	// Without an unrestricted trunk, an unknown source is refused.
	tb = buildTable([]*live{liveWith("b-wide", "acme", nil, "10.0.0.0/8")})
	if lv, m := tb.match("0.0.0.0:5060", netip.MustParseAddr("11.0.0.1"), ""); lv != nil {
		t.Errorf("match(11.0.0.1) = %+v; want no match", m)
	}
}

// TestMatchOrgIsolation: a tie between trunks of different organizations
// is never broken by trunk_id; only a domain that names one of them
// decides, and otherwise the call is refused.
func TestMatchOrgIsolation(t *testing.T) {
	a := liveWith("a", "acme", []string{"192.0.2.1"})
	a.t.Domain = "acme.example"
	b := liveWith("b", "globex", nil, "192.0.2.1")
	tb := buildTable([]*live{a, b, liveWith("c-open", "globex", nil)})
	if lv, m := tb.match("0.0.0.0:5060", netip.MustParseAddr("192.0.2.1"), ""); lv != nil || !strings.Contains(m.Reason, "several organizations") {
		t.Errorf("cross-organization tie = %+v; want refused", m)
	}
	if lv, m := tb.match("0.0.0.0:5060", netip.MustParseAddr("192.0.2.1"), "acme.example"); lv != a {
		t.Errorf("cross-organization tie with acme's domain = %+v; want a", m)
	}
	// Same organization: the lowest id wins as before.
	tb = buildTable([]*live{liveWith("y", "acme", []string{"192.0.2.1"}), liveWith("x", "acme", nil, "192.0.2.1")})
	if lv, m := tb.match("0.0.0.0:5060", netip.MustParseAddr("192.0.2.1"), ""); lv == nil || lv.t.TrunkID != "x" {
		t.Errorf("same-organization tie = %+v; want x", m)
	}
}

// TestUnmatchedReasonIsBounded: the reason of an unmatched call names at
// most reasonIDs trunks and counts the rest, however many share the
// listener.
func TestUnmatchedReasonIsBounded(t *testing.T) {
	var ls []*live
	for i := range 15 {
		ls = append(ls, liveFor(fmt.Sprintf("t%02d", i), "", []string{fmt.Sprintf("192.0.2.%d", i+1)}, nil))
	}
	lv, m := buildTable(ls).match("0.0.0.0:5060", netip.MustParseAddr("198.51.100.1"), "")
	if lv != nil || !strings.Contains(m.Reason, "t09 and 5 more") || strings.Contains(m.Reason, "t10") {
		t.Errorf("match = %v, %q; want no trunk and a reason naming t00…t09 and 5 more", lv, m.Reason)
	}
}

// TestUpdateKeepingKeysKeepsTable: an update that keeps what a trunk is
// matched by (listener, addresses, rules) changes no table, yet the next
// match sees the new configuration; one that changes them builds a new
// table in which the old address no longer matches.
func TestUpdateKeepingKeysKeepsTable(t *testing.T) {
	p := newPlane(t, Config{})
	port := siptest.FreePort(t, "127.0.0.1")
	tr := testTrunk("k", port)
	tr.GatewayIP = "192.0.2.7"
	apply(t, p, tr)
	key := bindKey("127.0.0.1", port)
	before := p.table.Load()

	tr2 := tr.Clone()
	tr2.Domain, tr2.DisplayName = "new.example", "renamed"
	apply(t, p, tr2)
	if p.table.Load() != before {
		t.Error("an update keeping the match keys built a new table")
	}
	lv, m := p.table.Load().match(key, netip.MustParseAddr("192.0.2.7"), "")
	if lv == nil || lv.t.Domain != "new.example" || !m.Matched {
		t.Fatalf("match after the update = %v, %+v; want the updated trunk", lv, m)
	}

	tr3 := tr2.Clone()
	tr3.GatewayIP = "192.0.2.8"
	apply(t, p, tr3)
	if p.table.Load() == before {
		t.Fatal("an update changing gateway_ip kept the table")
	}
	if lv, _ := p.table.Load().match(key, netip.MustParseAddr("192.0.2.7"), ""); lv != nil {
		t.Errorf("the old gateway_ip still matches %s", lv.t.TrunkID)
	}
	if lv, _ := p.table.Load().match(key, netip.MustParseAddr("192.0.2.8"), ""); lv == nil || lv.t.GatewayIP != "192.0.2.8" {
		t.Errorf("the new gateway_ip matches %v; want the trunk", lv)
	}
}
