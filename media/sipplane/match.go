package sipplane

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/trunkd/trunkd/trunk"
)

// table is an immutable snapshot of which trunks listen where; a change
// builds a new one and swaps it in, so the INVITE path reads without locks.
type table struct {
	byListener map[string][]*live // sorted by trunk id
}

func buildTable(trunks []*live) *table {
	t := &table{byListener: map[string][]*live{}}
	for _, lv := range trunks {
		t.byListener[lv.bind] = append(t.byListener[lv.bind], lv)
	}
	for _, l := range t.byListener {
		slices.SortFunc(l, func(a, b *live) int { return strings.Compare(a.t.TrunkID, b.t.TrunkID) })
	}
	return t
}

// replace returns a copy of t with prev (if any) taken out and next (if
// any) put in. Only the listeners they are on are copied, so a write costs
// O(trunks on that listener), not O(all trunks).
func (t *table) replace(prev, next *live) *table {
	n := &table{byListener: make(map[string][]*live, len(t.byListener)+1)}
	for k, v := range t.byListener {
		n.byListener[k] = v
	}
	if prev != nil {
		l := slices.DeleteFunc(slices.Clone(n.byListener[prev.bind]), func(x *live) bool { return x == prev })
		if len(l) == 0 {
			delete(n.byListener, prev.bind)
		} else {
			n.byListener[prev.bind] = l
		}
	}
	if next != nil {
		l := slices.Clone(n.byListener[next.bind])
		i, _ := slices.BinarySearchFunc(l, next.t.TrunkID, func(x *live, id string) int { return strings.Compare(x.t.TrunkID, id) })
		n.byListener[next.bind] = slices.Insert(l, i, next)
	}
	return n
}

// match finds the trunk for a call arriving on listener from src with
// Request-URI host ruriHost. Only the packet's source address counts: the
// trunk whose gateway_ip or sbc_ip (resolved) equals it. Ties go to the
// trunk whose domain equals the Request-URI host, then to the lowest id.
func (t *table) match(listener string, src netip.Addr, ruriHost string) (*live, trunk.Match) {
	on := t.byListener[listener]
	if len(on) == 0 {
		return nil, trunk.Match{Reason: fmt.Sprintf("no trunk listens on %s", listener)}
	}
	var cands []*live
	for _, lv := range on {
		if lv.hasAddr(src) {
			cands = append(cands, lv)
		}
	}
	switch {
	case len(cands) == 0:
		return nil, trunk.Match{Reason: fmt.Sprintf("source %s is not the gateway_ip or sbc_ip of any trunk on %s (trunks there: %s)", src, listener, ids(on))}
	case len(cands) == 1:
		return cands[0], trunk.Match{Matched: true, TrunkID: cands[0].t.TrunkID, Reason: fmt.Sprintf("source %s is its %s", src, cands[0].addrField(src))}
	}
	for _, lv := range cands {
		if ruriHost != "" && strings.EqualFold(lv.t.Domain, ruriHost) {
			return lv, trunk.Match{Matched: true, TrunkID: lv.t.TrunkID, Reason: fmt.Sprintf("source %s matches trunks %s; its domain equals the Request-URI host %s", src, ids(cands), ruriHost)}
		}
	}
	return cands[0], trunk.Match{Matched: true, TrunkID: cands[0].t.TrunkID, Reason: fmt.Sprintf("source %s matches trunks %s, none with domain %q; lowest trunk_id wins", src, ids(cands), ruriHost)}
}

func ids(l []*live) string {
	s := make([]string, len(l))
	for i, lv := range l {
		s[i] = lv.t.TrunkID
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
