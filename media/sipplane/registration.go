package sipplane

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/media/sipplane/register"
	"github.com/trunkd/trunkd/trunk"
)

// regKey is what a trunk's registration depends on: an Update that leaves
// it unchanged keeps the running registration (no re-REGISTER).
func regKey(t *trunk.Trunk, bind string) string {
	if !t.RequireRegistration {
		return ""
	}
	return fmt.Sprintf("%s|%s|%s|%d|%s|%s|%s|%d|%s|%s|%d|%d", bind, t.ExternalSIPIP, t.Proxy, t.DestinationSBCPort, t.GatewayIP,
		t.Domain, t.SIPUsername, t.RegisterExpiresSec, t.DisplayName, t.SIPPassword, t.Transport, t.SIPTLSPort)
}

// registrar is where REGISTERs go: the proxy's host and port (either
// form of the proxy field), else gateway_ip:destination_sbc_port.
func registrar(t *trunk.Trunk) string {
	if t.Proxy != "" {
		if p, err := trunk.ParseProxy(t.Proxy); err == nil {
			return p.HostPort(t.Transport)
		}
	}
	return net.JoinHostPort(t.GatewayIP, strconv.Itoa(int(t.DestinationSBCPort)))
}

// startRegistration registers lv's AOR from its listener: REGISTERs leave
// from the listening socket, so a NAT pinhole it opens also lets INVITEs in.
func (p *Plane) startRegistration(lv *live) (*register.Registration, error) {
	t := lv.t
	host, port, _ := net.SplitHostPort(lv.bind)
	opts := []sipgo.ClientOption{sipgo.WithClientNAT()}
	if host != "0.0.0.0" && t.Transport == trunk.TransportUDP {
		opts = append(opts, sipgo.WithClientConnectionAddr(lv.bind))
	}
	contact := lv.l.contactHost()
	if t.ExternalSIPIP == "" && host != "0.0.0.0" {
		opts = append(opts, sipgo.WithClientHostname(host))
	} else {
		opts = append(opts, sipgo.WithClientHostname(contact))
	}
	client, err := sipgo.NewClient(lv.l.ua, opts...)
	if err != nil {
		return nil, err
	}
	pn, _ := strconv.Atoi(port)
	contactURI := sip.Uri{User: t.SIPUsername, Host: contact, Port: pn}
	if t.Transport != trunk.TransportUDP {
		contactURI.UriParams = sip.NewParams()
		contactURI.UriParams.Add("transport", t.Transport.Network())
	}
	if t.Transport == trunk.TransportTLS {
		contactURI.Port = lv.l.tlsPort
	}
	return register.Start(client, register.Config{
		Registrar:   registrar(t),
		Transport:   t.Transport.Network(),
		Domain:      t.Domain,
		Username:    t.SIPUsername,
		Password:    t.SIPPassword,
		Expires:     time.Duration(t.RegisterExpiresSec) * time.Second,
		Contact:     contactURI,
		DisplayName: t.DisplayName,
		Logger:      p.log.With("trunk_id", t.TrunkID),
	}), nil
}

// handOver gives next the registration prev runs when nothing it depends
// on changed, else starts a new one. It returns the registration prev ran
// that is no longer needed, to be stopped.
func (p *Plane) handOver(prev, next *live) *register.Registration {
	var old *register.Registration
	if prev != nil {
		old = prev.reg
	}
	if prev != nil && prev.reg != nil && prev.regKey == next.regKey {
		next.reg = old
		return nil
	}
	if next.regKey != "" && p.registers(next.t.TrunkID) {
		reg, err := p.startRegistration(next)
		if err != nil {
			p.log.Error("cannot start registration", "trunk_id", next.t.TrunkID, "err", err)
		}
		next.reg = reg
	}
	return old
}

// registers reports whether this node registers trunk id (Config.Registers).
func (p *Plane) registers(id string) bool {
	return p.cfg.Registers == nil || p.cfg.Registers(id)
}

// SetRegistering starts (on) or stops the registration of a live trunk
// that requires registration, when this node becomes or stops being the
// one that registers it (see Config.Registers). Stopping un-REGISTERs
// this node's contact first; the trunk stays live for calls.
func (p *Plane) SetRegistering(id string, on bool) {
	p.mu.Lock()
	ts := p.trunks[id]
	if ts == nil || ts.live == nil || ts.live.regKey == "" || (ts.live.reg != nil) == on {
		p.mu.Unlock()
		return
	}
	lv := ts.live
	var old *register.Registration
	if on {
		reg, err := p.startRegistration(lv)
		if err != nil {
			p.log.Error("cannot start registration", "trunk_id", id, "err", err)
		}
		lv.reg = reg
	} else {
		old, lv.reg = lv.reg, nil
	}
	p.mu.Unlock()
	if old != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := old.Stop(ctx); err != nil {
			p.log.Warn("unregister", "trunk_id", id, "err", err)
		}
	}
}

// retire stops a registration that is no longer needed (removing only our
// own contact) and then releases the listener it ran on: its un-REGISTER
// must leave before the listener's UserAgent closes.
func (p *Plane) retire(reg *register.Registration, l *listener) {
	if reg == nil {
		p.listeners.release(l)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := reg.Stop(ctx); err != nil {
			p.log.Warn("unregister", "err", err)
		}
		p.listeners.release(l)
	}()
}

// stopRegistrations un-registers every trunk at shutdown, in parallel.
func (p *Plane) stopRegistrations(ctx context.Context) {
	p.mu.Lock()
	var regs []*register.Registration
	for _, ts := range p.trunks {
		if ts.live != nil && ts.live.reg != nil {
			regs = append(regs, ts.live.reg)
		}
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, r := range regs {
		wg.Go(func() { r.Stop(ctx) })
	}
	wg.Wait()
}

func regStatus(reg *register.Registration) (trunk.RegState, string) {
	if reg == nil {
		return trunk.RegOff, ""
	}
	st := reg.Status()
	return trunk.RegState(st.State), st.Error
}
