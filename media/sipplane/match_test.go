package sipplane

import (
	"context"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

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
