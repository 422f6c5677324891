package sipplane

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/trunkd/trunkd/trunk"
)

// table is an immutable snapshot of which trunks listen where, indexed
// per listener by source address (index.go); a change builds a new one
// and swaps it in, so the INVITE path reads without locks.
type table struct {
	byListener map[string][]*slot // sorted by trunk id
	index      map[string]*index  // the same trunks by source address
}

// buildTable indexes trunks, each in its slot (a new one when it has
// none).
func buildTable(trunks []*live) *table {
	t := &table{byListener: map[string][]*slot{}, index: map[string]*index{}}
	on := map[string][]*live{}
	for _, lv := range trunks {
		if lv.slot == nil || lv.slot.lv.Load() != lv {
			newSlot(lv)
		}
		on[lv.bind] = append(on[lv.bind], lv)
		t.byListener[lv.bind] = append(t.byListener[lv.bind], lv.slot)
	}
	for k, l := range t.byListener {
		slices.SortFunc(l, slotByID)
		t.index[k] = buildIndex(on[k])
	}
	return t
}

// replace returns a copy of t with prev's slot (if any) taken out and
// next (if any) put in, in a new slot. Only the listeners they are on are copied, and of their
// indexes only the shards their addresses fall in, so a write costs
// O(trunks on that listener) pointer copies, not O(all trunks) work.
func (t *table) replace(prev, next *live) *table {
	n := &table{byListener: maps.Clone(t.byListener), index: maps.Clone(t.index)}
	if n.byListener == nil {
		n.byListener, n.index = map[string][]*slot{}, map[string]*index{}
	}
	if prev != nil {
		l := without(n.byListener[prev.bind], prev.slot)
		if len(l) == 0 {
			delete(n.byListener, prev.bind)
			delete(n.index, prev.bind)
		} else {
			n.byListener[prev.bind] = l
			n.index[prev.bind] = n.index[prev.bind].with(prev, nil)
		}
	}
	if next != nil {
		newSlot(next)
		l := slices.Clone(n.byListener[next.bind])
		i, _ := slices.BinarySearchFunc(l, next.slot, slotByID)
		n.byListener[next.bind] = slices.Insert(l, i, next.slot)
		x := n.index[next.bind]
		if x == nil {
			x = &index{}
		}
		n.index[next.bind] = x.with(nil, next)
	}
	return n
}

// readdress returns a copy of t in which lv's resolved addresses are next
// instead of prev (the DNS refresher resolved them anew), or t when lv
// itself is not in t.
func (t *table) readdress(lv *live, prev, next *addrSet) *table {
	l := t.byListener[lv.bind]
	if i, ok := slices.BinarySearchFunc(l, lv.slot, slotByID); !ok || l[i] != lv.slot || lv.slot.lv.Load() != lv {
		return t
	}
	n := &table{byListener: t.byListener, index: maps.Clone(t.index)}
	n.index[lv.bind] = t.index[lv.bind].readdress(lv, prev, next)
	return n
}

// The claims a trunk's address rules make on a source, strongest last:
// the precedence of docs/operations.md ("Which trunk a call matches").
const (
	claimNone         = 0
	claimUnrestricted = 1   // no gateway_ip, sbc_ip or allowed_addresses
	claimPrefix       = 2   // + the prefix length: longer prefixes win
	claimExact        = 300 // gateway_ip, sbc_ip or a single-address entry
)

// claim says how strongly lv's rules claim src, and which rule does.
func (lv *live) claim(src netip.Addr) (int, string) { return lv.claimWhy(src, true) }

// rank is claim without the reason, for the INVITE path.
func (lv *live) rank(src netip.Addr) int {
	r, _ := lv.claimWhy(src, false)
	return r
}

// claimWhy is claim; the reason is written only when explain is set.
func (lv *live) claimWhy(src netip.Addr, explain bool) (int, string) {
	if f := lv.addrField(src); f != "" {
		if !explain {
			return claimExact, ""
		}
		return claimExact, "exact address: its " + f
	}
	rank, longest := claimNone, netip.Prefix{}
	for _, p := range lv.allowed {
		switch {
		case !p.Contains(src):
		case p.IsSingleIP():
			if !explain {
				return claimExact, ""
			}
			return claimExact, "exact address: its allowed_addresses entry " + p.Addr().String()
		case claimPrefix+p.Bits() > rank:
			rank, longest = claimPrefix+p.Bits(), p
		}
	}
	switch {
	case rank == claimNone && unrestricted(lv):
		return claimUnrestricted, "no restriction: it has no gateway_ip, sbc_ip or allowed_addresses"
	case rank == claimNone || !explain:
		return rank, ""
	}
	return rank, fmt.Sprintf("longest prefix: its allowed_addresses entry %s", longest)
}

// match finds the trunk for a call arriving on listener from src with
// Request-URI host ruriHost. Only the packet's source address counts,
// never a header: the trunks whose rules claim it most strongly (exact
// address > longest prefix > no restriction) are the candidates; ties go
// to the one whose domain equals the Request-URI host, then to the lowest
// id. Candidates of different organizations that the domain does not
// separate are refused: one organization's carrier never reaches another
// organization's trunk by a tie-break.
func (t *table) match(listener string, src netip.Addr, ruriHost string) (*live, trunk.Match) {
	return t.lookup(listener, src, ruriHost, true)
}

// lookup is match. With explain unset, the INVITE path's, a matched
// call's Match has no Reason: nothing reads it, and writing it cost more
// than the rest of the verdict. A call that matches nothing still gets
// its reason, for the log.
func (t *table) lookup(listener string, src netip.Addr, ruriHost string, explain bool) (*live, trunk.Match) {
	on, x := t.byListener[listener], t.index[listener]
	if len(on) == 0 || x == nil {
		return nil, trunk.Match{Reason: fmt.Sprintf("no trunk listens on %s", listener)}
	}
	var buf [4]*live
	cands, _ := x.candidates(buf[:0], src)
	found := func(lv *live, reason func() string) (*live, trunk.Match) {
		if !explain {
			return lv, matched(lv, "")
		}
		return lv, matched(lv, reason())
	}
	switch {
	case len(cands) == 0:
		return nil, trunk.Match{Reason: fmt.Sprintf("source %s is not the gateway_ip or sbc_ip of any trunk on %s, nor in any allowed_addresses (trunks there: %s)", src, listener, someIDs(on))}
	case len(cands) == 1:
		return found(cands[0], func() string { return fmt.Sprintf("source %s: %s", src, why(cands, src)) })
	}
	rule := func() string { return strings.SplitN(why(cands, src), ":", 2)[0] }
	var byDomain []*live
	for _, lv := range cands {
		if ruriHost != "" && strings.EqualFold(lv.t.Domain, ruriHost) {
			byDomain = append(byDomain, lv)
		}
	}
	if len(byDomain) > 0 {
		if orgs(byDomain) > 1 {
			return nil, trunk.Match{Reason: fmt.Sprintf("source %s matches trunks of several organizations by %s with domain %s; refused (narrow their rules)", src, rule(), ruriHost)}
		}
		return found(byDomain[0], func() string {
			return fmt.Sprintf("source %s matches trunks %s by %s; its domain equals the Request-URI host %s", src, someIDs(cands), rule(), ruriHost)
		})
	}
	if orgs(cands) > 1 {
		return nil, trunk.Match{Reason: fmt.Sprintf("source %s matches trunks of several organizations by %s and none has domain %q; refused (set their domains or narrow their rules)", src, rule(), ruriHost)}
	}
	return found(cands[0], func() string {
		return fmt.Sprintf("source %s matches trunks %s by %s, none with domain %q; lowest trunk_id wins", src, someIDs(cands), rule(), ruriHost)
	})
}

// why is the reason of the claim of the lowest id among cands on src.
func why(cands []*live, src netip.Addr) string {
	_, why := cands[0].claim(src)
	return why
}

func matched(lv *live, reason string) trunk.Match {
	return trunk.Match{Matched: true, TrunkID: lv.t.TrunkID, Reason: reason}
}

// orgs counts the organizations of l.
func orgs(l []*live) int {
	seen := map[string]bool{}
	for _, lv := range l {
		seen[lv.t.Org()] = true
	}
	return len(seen)
}

// reasonIDs is how many trunk ids a match reason lists: an unmatched
// INVITE (the path spoofed sources take) must not build a string of every
// id on a listener of 100 000 trunks.
const reasonIDs = 10

// someIDs lists the first reasonIDs trunk ids of l and says how many
// more there are.
func someIDs[T interface{ id() string }](l []T) string {
	if len(l) <= reasonIDs {
		return ids(l)
	}
	return fmt.Sprintf("%s and %d more", ids(l[:reasonIDs]), len(l)-reasonIDs)
}

func ids[T interface{ id() string }](l []T) string {
	s := make([]string, len(l))
	for i, x := range l {
		s[i] = x.id()
	}
	return strings.Join(s, ", ")
}

// bindKey names a listener: "ip:port", 0.0.0.0 for all addresses.
func bindKey(ip string, port uint16) string {
	if ip == "" {
		ip = "0.0.0.0"
	}
	return net.JoinHostPort(ip, strconv.Itoa(int(port)))
}

// normalizeListener turns an operator's listener address into a bindKey.
func normalizeListener(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("listener %q: %w", s, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", fmt.Errorf("listener %q: bad port", s)
	}
	if host != "" {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return "", fmt.Errorf("listener %q: %q is not an IP", s, host)
		}
		host = a.Unmap().String()
	}
	return bindKey(host, uint16(p)), nil
}
