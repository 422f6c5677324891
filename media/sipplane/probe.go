package sipplane

import (
	"context"
	"net"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/trunk"
)

// probeTimeout bounds one OPTIONS probe; no answer within it is a fault.
const probeTimeout = 5 * time.Second

// probeLoop checks every trunk's breaker once a second: an open breaker
// whose cooldown has passed is probed with OPTIONS (half-open), and with
// ProbeInterval set every carrier is probed that often as a keepalive, so
// a dead carrier is known before a call fails. Without ProbeInterval and
// with no breaker tripped there is nothing to probe, and the trunks are
// not walked (at 100 000 trunks the walk cost a tenth of a CPU).
func (p *Plane) probeLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := map[string]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if p.cfg.ProbeInterval <= 0 && p.tripped.Load() == 0 {
				continue
			}
			for _, lv := range p.liveTrunks() {
				p.maybeProbe(ctx, lv, last, now)
			}
		}
	}
}

func (p *Plane) liveTrunks() []*live {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.liveTrunksLocked()
}

func (p *Plane) maybeProbe(ctx context.Context, lv *live, last map[string]time.Time, now time.Time) {
	id := lv.t.TrunkID
	if lv.h.breaker.TryProbe() {
		last[id] = now
		go func() { lv.h.breaker.RecordProbe(p.probe(ctx, lv)) }()
		return
	}
	if p.cfg.ProbeInterval <= 0 || now.Sub(last[id]) < p.cfg.ProbeInterval || lv.h.breaker.Tripped() {
		return
	}
	last[id] = now
	go func() { lv.h.breaker.RecordProbe(p.probe(ctx, lv)) }()
}

// probe sends OPTIONS to the trunk's carrier, as a call would be sent, and
// reports whether any final response came back: a carrier that answers
// OPTIONS at all, even 404 or 405, is alive.
func (p *Plane) probe(ctx context.Context, lv *live) bool {
	ruri, err := dialURI(lv.t, "ping")
	if err != nil {
		return false
	}
	ruri.User = ""
	cl, err := lv.l.client(lv.t.Transport)
	if err != nil {
		p.log.Warn("OPTIONS probe", "trunk_id", lv.t.TrunkID, "err", err)
		return false
	}
	req := sip.NewRequest(sip.OPTIONS, ruri)
	req.SetTransport(strings.ToUpper(lv.t.Transport.Network()))
	if h := routeHeader(lv.t); h != nil {
		req.AppendHeader(h)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	res, err := cl.Do(ctx, req)
	ok := err == nil && res.StatusCode >= 200
	p.log.Debug("OPTIONS probe", "trunk_id", lv.t.TrunkID, "ok", ok, "err", err)
	return ok
}

// client returns the listener's SIP client for requests outside dialogs
// over tr: UDP ones leave from the listener's own socket; TCP and TLS ones
// from a connection of their own (reused per carrier).
func (l *listener) client(tr trunk.Transport) (*sipgo.Client, error) {
	if tr != trunk.TransportUDP {
		l.streamOnce.Do(func() {
			l.streamCl, l.streamErr = sipgo.NewClient(l.ua, sipgo.WithClientNAT(), sipgo.WithClientHostname(l.contactHost()))
		})
		return l.streamCl, l.streamErr
	}
	l.clientOnce.Do(func() {
		opts := []sipgo.ClientOption{sipgo.WithClientNAT(), sipgo.WithClientHostname(l.contactHost())}
		if host, _, _ := net.SplitHostPort(l.key); host != "0.0.0.0" {
			opts = append(opts, sipgo.WithClientConnectionAddr(l.key))
		}
		l.cl, l.clErr = sipgo.NewClient(l.ua, opts...)
	})
	return l.cl, l.clErr
}
