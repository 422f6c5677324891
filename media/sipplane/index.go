package sipplane

import (
	"encoding/binary"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
)

// shardBits sets how many shards (1 << shardBits) an index's address maps
// are split into: a change copies only the shards its addresses fall in.
const shardBits = 8

const shards = 1 << shardBits

// index is the match table of one listener, keyed by source address, so
// that finding the trunks that claim a source costs the same with one
// trunk as with 100 000. It is immutable: a change builds a new one
// sharing every shard the change does not touch.
//
// The index only narrows the search: every trunk it yields is judged by
// live.claim, so the rules of match stay those of claim. It must yield
// every trunk whose claim on the source is not claimNone.
type index struct {
	exact [shards]map[netip.Addr][]*slot   // by resolved gateway_ip, sbc_ip and single-address allowed_addresses
	pfx   [shards]map[netip.Prefix][]*slot // by allowed_addresses prefix (not single addresses)
	count [2]map[int]int                   // how many prefixes of each length, IPv4 and IPv6
	lens  [2][]int                         // the lengths in count, longest first
	open  []*slot                          // trunks with no address rule at all
}

// slot is where the table and the index hold a trunk: it stays while an
// update keeps what the trunk is indexed by (listener, addresses, rules),
// and such an update only stores its new live here, with no new table.
type slot struct {
	lv atomic.Pointer[live]
}

// newSlot returns a slot holding lv, and sets lv's.
func newSlot(lv *live) *slot {
	s := &slot{}
	s.lv.Store(lv)
	lv.slot = s
	return s
}

func (s *slot) id() string { return s.lv.Load().t.TrunkID }

func slotByID(a, b *slot) int { return strings.Compare(a.id(), b.id()) }

// candidates are the trunks that claim src most strongly, sorted by id,
// appended to cands (pass a slice of the caller's stack to find the usual
// one trunk without allocating), and that claim.
func (x *index) candidates(cands []*live, src netip.Addr) ([]*live, int) {
	f := finder{cands: cands[:0]}
	if !src.IsValid() {
		return f.done()
	}
	k := src.Unmap().WithZone("")
	if f = f.judge(x.exact[shardOf(k)][k], src); f.best != claimNone {
		return f.done()
	}
	fam := 0
	if src.Is6() {
		fam = 1
	}
	for _, bits := range x.lens[fam] {
		p, err := src.WithZone("").Prefix(bits)
		if err != nil {
			continue
		}
		if f = f.judge(x.pfx[prefixShard(p)][p], src); f.best != claimNone {
			return f.done()
		}
	}
	return f.judge(x.open, src).done()
}

// finder keeps the trunks of the strongest claim seen. It is passed by
// value so that the caller's buffer in cands stays on the caller's stack.
type finder struct {
	cands []*live
	best  int
}

func (f finder) judge(l []*slot, src netip.Addr) finder {
	for _, s := range l {
		lv := s.lv.Load()
		switch r := lv.rank(src); {
		case r == claimNone || r < f.best:
		case r > f.best:
			f.cands, f.best = append(f.cands[:0], lv), r
		default:
			f.cands = append(f.cands, lv)
		}
	}
	return f
}

func (f finder) done() ([]*live, int) {
	slices.SortFunc(f.cands, byID)
	return f.cands, f.best
}

func byID(a, b *live) int { return strings.Compare(a.t.TrunkID, b.t.TrunkID) }

func (lv *live) id() string { return lv.t.TrunkID }

// buildIndex indexes trunks.
func buildIndex(trunks []*live) *index {
	e := editor{x: &index{}, fresh: true}
	for _, lv := range trunks {
		e.add(lv.slot, lv, lv.addrs.Load())
	}
	return e.finish()
}

// with returns a copy of x with prev (if any) taken out and next (if any)
// put in.
func (x *index) with(prev, next *live) *index {
	e := x.edit()
	if prev != nil {
		e.remove(prev.slot, prev, prev.addrs.Load())
	}
	if next != nil {
		e.add(next.slot, next, next.addrs.Load())
	}
	return e.finish()
}

// readdress returns a copy of x in which lv's resolved addresses are next
// instead of prev.
func (x *index) readdress(lv *live, prev, next *addrSet) *index {
	e := x.edit()
	prevAddrs, _ := e.keys(lv, prev)
	prevAddrs = slices.Clone(prevAddrs)
	nextAddrs, _ := e.keys(lv, next)
	for _, a := range prevAddrs {
		e.unlink(a, lv.slot)
	}
	for _, a := range nextAddrs {
		e.link(a, lv.slot)
	}
	return e.finish()
}

// editor builds a new index from an old one, copying each shard, count
// and list the first time it changes. A fresh editor owns everything.
type editor struct {
	x                 *index
	fresh             bool
	ownExact, ownPfx  [shards]bool
	ownCount, ownOpen bool
	countsChanged     bool
	addrs             []netip.Addr   // keys' scratch
	pfxs              []netip.Prefix // keys' scratch
	slab              []*slot        // a fresh editor's one-trunk lists are cut from it
}

func (x *index) edit() *editor {
	n := *x
	return &editor{x: &n}
}

// add indexes sl under the keys of lv, whose resolved addresses are s.
func (e *editor) add(sl *slot, lv *live, s *addrSet) {
	addrs, pfxs := e.keys(lv, s)
	for _, a := range addrs {
		e.link(a, sl)
	}
	for _, p := range pfxs {
		m := e.pfxShard(p)
		m[p] = e.appendTo(m[p], sl)
		e.counted(p, 1)
	}
	if unrestricted(lv) {
		if !e.fresh && !e.ownOpen {
			e.x.open, e.ownOpen = slices.Clone(e.x.open), true
		}
		e.x.open = append(e.x.open, sl)
	}
}

// remove takes sl out from under the keys of lv, whose resolved
// addresses are s.
func (e *editor) remove(sl *slot, lv *live, s *addrSet) {
	addrs, pfxs := e.keys(lv, s)
	for _, a := range addrs {
		e.unlink(a, sl)
	}
	for _, p := range pfxs {
		m := e.pfxShard(p)
		if l := without(m[p], sl); len(l) > 0 {
			m[p] = l
		} else {
			delete(m, p)
		}
		e.counted(p, -1)
	}
	if unrestricted(lv) {
		e.x.open, e.ownOpen = without(e.x.open, sl), true
	}
}

// keys are the distinct exact addresses (resolved, and single-address
// allowed_addresses) and prefixes under which lv is indexed, s being its
// resolved addresses; distinct, so that no list holds a trunk twice. The
// slices are the editor's scratch, valid until its next call.
func (e *editor) keys(lv *live, s *addrSet) ([]netip.Addr, []netip.Prefix) {
	addrs, pfxs := e.addrs[:0], e.pfxs[:0]
	if s != nil {
		addrs = append(append(addrs, s.gateway...), s.sbc...)
	}
	for _, p := range lv.allowed {
		if p.IsSingleIP() {
			addrs = append(addrs, p.Addr())
		} else if !slices.Contains(pfxs, p) {
			pfxs = append(pfxs, p)
		}
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap().WithZone("")
	}
	if len(addrs) > 1 {
		slices.SortFunc(addrs, netip.Addr.Compare)
		addrs = slices.Compact(addrs)
	}
	e.addrs, e.pfxs = addrs, pfxs
	return addrs, pfxs
}

func (e *editor) link(a netip.Addr, sl *slot) {
	m := e.exactShard(a)
	m[a] = e.appendTo(m[a], sl)
}

func (e *editor) unlink(a netip.Addr, sl *slot) {
	m := e.exactShard(a)
	if l := without(m[a], sl); len(l) > 0 {
		m[a] = l
	} else {
		delete(m, a)
	}
}

// appendTo appends lv to l, copying l unless the editor built it. A fresh
// editor cuts new one-trunk lists from a slab, not one allocation each.
func (e *editor) appendTo(l []*slot, sl *slot) []*slot {
	switch {
	case !e.fresh:
		l = slices.Clip(l)
	case l == nil:
		if len(e.slab) == 0 {
			e.slab = make([]*slot, 1024)
		}
		l, e.slab = e.slab[:1:1], e.slab[1:]
		l[0] = sl
		return l
	}
	return append(l, sl)
}

// without is a copy of l without sl.
func without(l []*slot, sl *slot) []*slot {
	return slices.DeleteFunc(slices.Clone(l), func(x *slot) bool { return x == sl })
}

func (e *editor) exactShard(a netip.Addr) map[netip.Addr][]*slot {
	s := shardOf(a)
	if !e.ownExact[s] {
		e.x.exact[s], e.ownExact[s] = cloneOrMake(e.x.exact[s]), true
	}
	return e.x.exact[s]
}

func (e *editor) pfxShard(p netip.Prefix) map[netip.Prefix][]*slot {
	s := prefixShard(p)
	if !e.ownPfx[s] {
		e.x.pfx[s], e.ownPfx[s] = cloneOrMake(e.x.pfx[s]), true
	}
	return e.x.pfx[s]
}

func cloneOrMake[K comparable](m map[K][]*slot) map[K][]*slot {
	if m == nil {
		return map[K][]*slot{}
	}
	return maps.Clone(m)
}

// counted adds d to the count of p's length.
func (e *editor) counted(p netip.Prefix, d int) {
	fam := 0
	if p.Addr().Is6() {
		fam = 1
	}
	if !e.ownCount {
		for i := range e.x.count {
			e.x.count[i] = maps.Clone(e.x.count[i])
			if e.x.count[i] == nil {
				e.x.count[i] = map[int]int{}
			}
		}
		e.ownCount = true
	}
	if e.x.count[fam][p.Bits()] += d; e.x.count[fam][p.Bits()] <= 0 {
		delete(e.x.count[fam], p.Bits())
	}
	e.countsChanged = true
}

func (e *editor) finish() *index {
	if e.countsChanged {
		for fam, c := range e.x.count {
			e.x.lens[fam] = slices.SortedFunc(maps.Keys(c), func(a, b int) int { return b - a })
		}
	}
	return e.x
}

// unrestricted reports whether lv has no address rule: it claims every
// source, weakest.
func unrestricted(lv *live) bool {
	return lv.t.GatewayIP == "" && lv.t.SBCIP == "" && len(lv.allowed) == 0
}

// shardOf picks a's shard: a multiplicative hash of its 16 bytes.
func shardOf(a netip.Addr) int {
	b := a.As16()
	h := binary.LittleEndian.Uint64(b[:8])*0x9E3779B97F4A7C15 ^ binary.LittleEndian.Uint64(b[8:])
	h *= 0x9E3779B97F4A7C15
	return int(h >> (64 - shardBits))
}

func prefixShard(p netip.Prefix) int {
	return (shardOf(p.Addr()) + p.Bits()) & (shards - 1)
}

// sameAddrs reports whether a and b hold the same addresses in order.
func sameAddrs(a, b *addrSet) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.gateway, b.gateway) && slices.Equal(a.sbc, b.sbc)
}

// sameKeys reports whether a and b are indexed under the same keys on the
// same listener, so that b may take a's slot.
func sameKeys(a, b *live) bool {
	return a.t.TrunkID == b.t.TrunkID && a.bind == b.bind && unrestricted(a) == unrestricted(b) &&
		slices.Equal(a.allowed, b.allowed) && sameAddrs(a.addrs.Load(), b.addrs.Load())
}
