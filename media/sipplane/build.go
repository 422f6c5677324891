package sipplane

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/trunk"
)

// build turns a validated trunk into the configuration the SIP plane runs,
// refusing what the plane cannot do yet. It keeps a copy of t.
func (p *Plane) build(ctx context.Context, t *trunk.Trunk) (*live, error) {
	return p.buildOwned(ctx, t.Clone())
}

// buildOwned is build keeping t itself, which the caller hands over and
// must not modify afterwards (LoadAll's trunks, 100 000 at start-up).
func (p *Plane) buildOwned(ctx context.Context, t *trunk.Trunk) (*live, error) {
	lv := &live{t: t, bind: bindKey(t.InternalSIPIP, t.SourcePBXPort)}
	if err := p.buildAI(t, lv); err != nil {
		return nil, err
	}
	lv.regKey = regKey(t, lv.bind)
	lv.codecs = codecsFor(t.CodecPreferences)
	if len(lv.codecs) == 0 {
		return nil, trunk.FieldErrorf("codec_preferences", "OPUS needs a trunkd built with libopus (make build), and no other codec is listed")
	}
	for _, c := range t.MediaIPCIDRs {
		pfx, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, trunk.FieldErrorf("media_ip_cidrs", "%q: %v", c, err)
		}
		lv.cidrs = append(lv.cidrs, pfx.Masked())
	}
	for _, a := range t.AllowedAddresses {
		pfx, err := trunk.ParseAllowed(a)
		if err != nil {
			return nil, trunk.FieldErrorf("allowed_addresses", "%q: %v", a, err)
		}
		lv.allowed = append(lv.allowed, pfx)
	}
	ip, err := rtpBindIP(t)
	if err != nil {
		return nil, fieldError("internal_rtp_ip", err, "no address to bind RTP to")
	}
	lv.rtpIP = ip
	if t.ExternalRTPIP != "" {
		lv.extRTP = net.ParseIP(t.ExternalRTPIP)
	}
	lv.ports = p.portsFor(t)
	lv.addrs.Store(p.resolve(ctx, t))
	lv.named = !isIP(t.GatewayIP) || !isIP(t.SBCIP)
	return lv, nil
}

// rtpBindIP is where a trunk's RTP sockets bind: internal_rtp_ip, else
// internal_sip_ip, else the first interface address (what diago does; an
// unspecified address cannot be advertised in SDP).
func rtpBindIP(t *trunk.Trunk) (net.IP, error) {
	for _, s := range []string{t.InternalRTPIP, t.InternalSIPIP} {
		if ip := net.ParseIP(s); ip != nil && !ip.IsUnspecified() {
			return ip, nil
		}
	}
	ip, _, err := sip.ResolveInterfacesIP("ip4", nil)
	return ip, err
}

// portsFor reuses the running configuration's port pool when the range is
// unchanged, so ports held by calls in flight stay marked busy.
func (p *Plane) portsFor(t *trunk.Trunk) *portPool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev := p.liveLocked(t.TrunkID); prev != nil &&
		prev.t.RTPStartPort == t.RTPStartPort && prev.t.RTPEndPort == t.RTPEndPort {
		return prev.ports
	}
	return newPortPool(int(t.RTPStartPort), int(t.RTPEndPort))
}

// resolve looks up gateway_ip and sbc_ip. A name that does not resolve
// matches nothing until the refresher resolves it.
func (p *Plane) resolve(ctx context.Context, t *trunk.Trunk) *addrSet {
	return &addrSet{gateway: p.lookup(ctx, t.TrunkID, t.GatewayIP), sbc: p.lookup(ctx, t.TrunkID, t.SBCIP)}
}

func (p *Plane) lookup(ctx context.Context, id, host string) []netip.Addr {
	if host == "" {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := p.cfg.Resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		p.log.Warn("cannot resolve trunk address", "trunk_id", id, "host", host, "err", err)
		return nil
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	return addrs
}

// refreshDNS re-resolves every trunk's names periodically; the match
// table is re-indexed for each trunk whose addresses changed. Trunks
// given by IP address are skipped without parsing them again: at 100 000
// trunks that parsing alone cost tens of milliseconds a pass.
func (p *Plane) refreshDNS(ctx context.Context) {
	tick := time.NewTicker(p.cfg.DNSRefresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, lv := range p.liveTrunks() {
			if lv.named {
				p.readdress(lv, p.resolve(ctx, lv.t))
			}
		}
	}
}

// readdress gives lv the addresses next. The swap and the table's index
// change together under p.mu, so the index always holds the addresses of
// every live it indexes (a trunk is taken out under the ones it has).
func (p *Plane) readdress(lv *live, next *addrSet) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev := lv.addrs.Swap(next); !sameAddrs(prev, next) {
		p.table.Store(p.table.Load().readdress(lv, prev, next))
	}
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return s == "" || err == nil
}
