package sipplane

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/trunk"
)

// linearMatch is table.match as it was before the index: every trunk of
// the listener judged by claim. The index must give the same answers.
func linearMatch(on []*live, listener string, src netip.Addr, ruriHost string) (*live, trunk.Match) {
	var cands []*live
	best, why := claimNone, ""
	for _, lv := range on {
		switch r, w := lv.claim(src); {
		case r == claimNone || r < best:
		case r > best:
			cands, best, why = []*live{lv}, r, w
		default:
			cands = append(cands, lv)
		}
	}
	switch {
	case len(cands) == 0:
		return nil, trunk.Match{Reason: fmt.Sprintf("source %s is not the gateway_ip or sbc_ip of any trunk on %s, nor in any allowed_addresses (trunks there: %s)", src, listener, someIDs(on))}
	case len(cands) == 1:
		return cands[0], matched(cands[0], fmt.Sprintf("source %s: %s", src, why))
	}
	rule := strings.SplitN(why, ":", 2)[0]
	var byDomain []*live
	for _, lv := range cands {
		if ruriHost != "" && strings.EqualFold(lv.t.Domain, ruriHost) {
			byDomain = append(byDomain, lv)
		}
	}
	if len(byDomain) > 0 {
		if orgs(byDomain) > 1 {
			return nil, trunk.Match{Reason: fmt.Sprintf("source %s matches trunks of several organizations by %s with domain %s; refused (narrow their rules)", src, rule, ruriHost)}
		}
		return byDomain[0], matched(byDomain[0], fmt.Sprintf("source %s matches trunks %s by %s; its domain equals the Request-URI host %s", src, someIDs(cands), rule, ruriHost))
	}
	if orgs(cands) > 1 {
		return nil, trunk.Match{Reason: fmt.Sprintf("source %s matches trunks of several organizations by %s and none has domain %q; refused (set their domains or narrow their rules)", src, rule, ruriHost)}
	}
	return cands[0], matched(cands[0], fmt.Sprintf("source %s matches trunks %s by %s, none with domain %q; lowest trunk_id wins", src, someIDs(cands), rule, ruriHost))
}

// randomLive is a trunk with random address rules drawn from a small
// space, so that ties, shared prefixes and overlaps are frequent.
func randomLive(r *rand.Rand, id string) *live {
	addr := func() string {
		if r.IntN(5) == 0 {
			return fmt.Sprintf("2001:db8::%x", r.IntN(8))
		}
		return fmt.Sprintf("10.%d.%d.%d", r.IntN(2), r.IntN(3), r.IntN(6))
	}
	var gw, sbc []string
	if r.IntN(3) == 0 {
		gw = []string{addr()}
	}
	if r.IntN(5) == 0 {
		sbc = []string{addr()}
	}
	var allowed []string
	for range r.IntN(3) {
		switch r.IntN(5) {
		case 0:
			allowed = append(allowed, addr())
		case 1:
			allowed = append(allowed, fmt.Sprintf("10.%d.0.0/16", r.IntN(2)))
		case 2:
			allowed = append(allowed, "10.0.0.0/8")
		case 3:
			allowed = append(allowed, fmt.Sprintf("10.%d.%d.0/24", r.IntN(2), r.IntN(3)))
		default:
			allowed = append(allowed, "2001:db8::/64")
		}
	}
	lv := liveFor(id, "", gw, sbc)
	lv.t.OrganizationID = []string{"acme", "globex"}[r.IntN(2)]
	lv.t.Domain = []string{"", "a.example", "b.example"}[r.IntN(3)]
	lv.t.AllowedAddresses = allowed
	for _, a := range allowed {
		p, err := trunk.ParseAllowed(a)
		if err != nil {
			panic(err)
		}
		lv.allowed = append(lv.allowed, p)
	}
	return lv
}

// TestIndexMatchesLinearScan: on random tables, changed one trunk at a
// time and re-addressed as the DNS refresher does, the indexed match
// gives the trunk and reason the linear scan gives, for every source.
func TestIndexMatchesLinearScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var srcs []netip.Addr
	for a := range 2 {
		for b := range 3 {
			for c := range 7 {
				srcs = append(srcs, netip.AddrFrom4([4]byte{10, byte(a), byte(b), byte(c)}))
			}
		}
	}
	for i := range 9 {
		srcs = append(srcs, netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i)))
	}
	srcs = append(srcs, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db9::1"))
	for round := range 30 {
		trunks := map[string]*live{}
		tb := buildTable(nil)
		for step := range 40 {
			id := fmt.Sprintf("t%02d", r.IntN(12))
			prev := trunks[id]
			switch op := r.IntN(6); {
			case op == 0 && prev != nil: // removed
				delete(trunks, id)
				tb = tb.replace(prev, nil)
			case op == 1 && prev != nil: // its name resolved anew
				next := &addrSet{gateway: []netip.Addr{srcs[r.IntN(len(srcs))]}}
				old := prev.addrs.Swap(next)
				tb = tb.readdress(prev, old, next)
			default:
				next := randomLive(r, id)
				trunks[id] = next
				tb = tb.replace(prev, next)
			}
			if step%10 == 9 { // a bulk build agrees too
				tb = buildTable(slices.Collect(mapsValues(trunks)))
			}
			on := slices.SortedFunc(mapsValues(trunks), byID)
			for _, src := range srcs {
				for _, host := range []string{"", "a.example", "b.example"} {
					gotLv, got := tb.match("0.0.0.0:5060", src, host)
					if len(on) == 0 {
						if gotLv != nil {
							t.Fatalf("round %d: empty table matched %s", round, src)
						}
						continue
					}
					wantLv, want := linearMatch(on, "0.0.0.0:5060", src, host)
					if gotLv != wantLv || got != want {
						t.Fatalf("round %d step %d: match(%s, %q) = %+v; want %+v", round, step, src, host, got, want)
					}
				}
			}
		}
	}
}

func mapsValues(m map[string]*live) func(func(*live) bool) {
	return func(yield func(*live) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// TestPlaneReaddress: when the DNS refresher finds new addresses for a
// trunk's gateway_ip, calls from the new address match it and calls from
// the old one no longer do; removing it afterwards leaves nothing behind.
func TestPlaneReaddress(t *testing.T) {
	p := &Plane{}
	lv := liveFor("dns", "", []string{"192.0.2.1"}, nil)
	lv.t.GatewayIP = "gw.example"
	p.table.Store(buildTable([]*live{lv}))
	p.readdress(lv, &addrSet{gateway: []netip.Addr{netip.MustParseAddr("192.0.2.2")}})
	for src, want := range map[string]*live{"192.0.2.1": nil, "192.0.2.2": lv} {
		if got, m := p.table.Load().match(lv.bind, netip.MustParseAddr(src), ""); got != want {
			t.Errorf("after the refresh, match(%s) = %+v; want %v", src, m, want)
		}
	}
	tb := p.table.Load().replace(lv, nil)
	if n := len(tb.byListener) + len(tb.index); n != 0 {
		t.Errorf("after removal the table holds %d listeners", n)
	}
}

// TestLoadAllOrder: LoadAll builds trunks on several goroutines but
// applies them in the order given, so of two trunks that conflict on a
// listener the first stays live and the second is degraded, every run;
// the others are all live and matched by their gateway_ip.
func TestLoadAllOrder(t *testing.T) {
	p := newPlane(t, Config{})
	port := siptest.FreePort(t, "127.0.0.1")
	var ts []*trunk.Trunk
	for i := range 300 {
		tr := testTrunk(fmt.Sprintf("t%03d", i), port)
		tr.GatewayIP = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String()
		ts = append(ts, tr)
	}
	ts[7].ExternalSIPIP = "203.0.113.7" // differs from t000's, which opens the listener
	ts[9].CodecPreferences = []string{"G729"}
	p.LoadAll(context.Background(), ts)
	for i, tr := range ts {
		st := p.status(tr.TrunkID)
		want := trunk.SIPActive
		if i == 7 || i == 9 {
			want = trunk.SIPDegraded
		}
		if st.State != want {
			t.Errorf("%s: %s (%s); want %s", tr.TrunkID, st.State, st.Error, want)
		}
		if want != trunk.SIPActive {
			continue
		}
		if lv, m := p.table.Load().match(bindKey("127.0.0.1", port), netip.MustParseAddr(tr.GatewayIP), ""); lv == nil || lv.t.TrunkID != tr.TrunkID {
			t.Errorf("a call from %s = %+v; want %s", tr.GatewayIP, m, tr.TrunkID)
		}
	}
	ids := []string{"t006", "t007", "t008", "t009", "unknown", "t299"}
	checkStatuses(t, p, ids...)
}

// checkStatuses checks that TrunkStatuses reads what TrunkStatus does for
// each of ids.
func checkStatuses(t *testing.T, p *Plane, ids ...string) {
	t.Helper()
	got := make([]trunk.Status, len(ids))
	for i := range got {
		got[i].AIUnavailable = 99 // overwritten, never kept
	}
	p.TrunkStatuses(ids, got)
	for i, id := range ids {
		if want := p.TrunkStatus(id); got[i] != want {
			t.Errorf("TrunkStatuses for %s: %+v; TrunkStatus: %+v", id, got[i], want)
		}
	}
}
