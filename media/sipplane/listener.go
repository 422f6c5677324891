package sipplane

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/trunk"
)

// listener is one SIP bind (UDP and TCP on one address and port) with its
// own sipgo UserAgent and Diago: diago mixes up identities when one Diago
// has two binds of a protocol, and two Diagos cannot share a UserAgent.
type listener struct {
	p       *Plane
	key     string // bindKey
	ext     string // external_sip_ip advertised in Via/Contact, "" for the bind
	tlsPort int    // sip_tls_port: TLS on the bind address, 0 for none
	tls     *tlsListener
	ua      *sipgo.UserAgent
	dg      *diago.Diago
	cancel  context.CancelFunc
	clientState
	refs     int          // live trunk configurations using it; guarded by listeners.mu
	active   atomic.Int64 // calls in flight on it
	ackWaits atomic.Int64 // early answers waiting for their ACK (awaitAck)
}

// clientState is the listener's SIP client for requests outside dialogs
// (OPTIONS probes), made on first use by client.
type clientState struct {
	clientOnce sync.Once
	cl         *sipgo.Client
	clErr      error
	streamOnce sync.Once // the client for TCP and TLS
	streamCl   *sipgo.Client
	streamErr  error
}

// listeners is the pool of SIP listeners, one per bind key, shared by the
// trunks on that bind. It counts the live configurations using each one
// and closes a listener when the last is gone and its calls have ended.
type listeners struct {
	p *Plane

	mu    sync.Mutex // guards byKey and every listener's refs; held while binding
	byKey map[string]*listener
}

// acquire returns the listener for lv's bind, creating and binding it when
// no trunk uses the address yet, and takes a reference on it.
func (ls *listeners) acquire(lv *live) (*listener, error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l := ls.byKey[lv.bind]; l != nil {
		if l.ext != lv.t.ExternalSIPIP {
			return nil, trunk.FieldErrorf("external_sip_ip", "%q differs from %q, which listener %s already advertises; trunks sharing a bind share its external_sip_ip",
				lv.t.ExternalSIPIP, l.ext, lv.bind)
		}
		if l.tlsPort != int(lv.t.SIPTLSPort) {
			return nil, trunk.FieldErrorf("sip_tls_port", "%d differs from %d, which listener %s already serves; trunks sharing a bind share its TLS listener",
				lv.t.SIPTLSPort, l.tlsPort, lv.bind)
		}
		l.refs++
		return l, nil
	}
	l, err := ls.p.listen(lv)
	if err != nil {
		return nil, err
	}
	l.refs = 1
	if ls.byKey == nil {
		ls.byKey = map[string]*listener{}
	}
	ls.byKey[lv.bind] = l
	return l, nil
}

// release drops a reference; the last one closes the listener once its
// calls have ended.
func (ls *listeners) release(l *listener) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l.refs--
	if l.refs == 0 {
		go ls.closeWhenIdle(l)
	}
}

func (ls *listeners) closeWhenIdle(l *listener) {
	for l.active.Load() > 0 && !ls.p.closing.Load() {
		time.Sleep(50 * time.Millisecond)
	}
	ls.mu.Lock()
	if l.refs > 0 || ls.byKey[l.key] != l {
		ls.mu.Unlock() // taken again by a new trunk, or closed by closeAll
		return
	}
	delete(ls.byKey, l.key)
	ls.mu.Unlock()
	l.close()
}

// closeAll closes every listener at once, at shutdown.
func (ls *listeners) closeAll() {
	ls.mu.Lock()
	all := ls.byKey
	ls.byKey = map[string]*listener{}
	ls.mu.Unlock()
	for _, l := range all {
		l.close()
	}
}

// listen binds a new listener. A port still closing from a listener that
// was just released is retried for a moment: sipgo closes asynchronously.
func (p *Plane) listen(lv *live) (*listener, error) {
	host, port := lv.t.InternalSIPIP, int(lv.t.SourcePBXPort)
	if host == "" {
		host = "0.0.0.0"
	}
	l := &listener{p: p, key: lv.bind, ext: lv.t.ExternalSIPIP, tlsPort: int(lv.t.SIPTLSPort)}
	if l.tlsPort != 0 && p.cfg.TLS.Certificate == nil {
		return nil, trunk.FieldErrorf("sip_tls_port", "SIP over TLS is not configured on this trunkd (no certificate)")
	}
	var err error
	for wait := 10 * time.Millisecond; ; wait *= 2 {
		err = l.start(host, port)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) || wait > 160*time.Millisecond {
			break
		}
		time.Sleep(wait)
	}
	switch {
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return nil, fieldError("internal_sip_ip", err, "cannot listen for SIP on %s: not an address of this host", lv.bind)
	case errors.Is(err, errTLSPortInUse):
		return nil, fieldError("sip_tls_port", err, "cannot listen for SIP over TLS on port %d: the port is in use", l.tlsPort)
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fieldError("source_pbx_port", err, "cannot listen for SIP on %s: the port is in use", lv.bind)
	}
	return nil, fieldError("source_pbx_port", err, "cannot listen for SIP on %s", lv.bind)
}

// fieldError is trunk.FieldErrorf keeping err as the cause: the message
// goes to the client, the cause (OS or diago text) only to the log.
func fieldError(field string, err error, format string, args ...any) *trunk.Error {
	e := trunk.Wrap(trunk.EINVALID, err, format, args...)
	e.Field = field
	return e
}

func (l *listener) start(host string, port int) error {
	quiet := slog.New(debugOnly{l.p.log.Handler()}).With("listener", l.key)
	opts := []sipgo.UserAgentOption{sipgo.WithUserAgent(l.p.cfg.UserAgent),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet))}
	if c := l.p.cfg.TLS.client(); c != nil {
		opts = append(opts, sipgo.WithUserAgenTLSConfig(c))
	}
	ua, err := sipgo.NewUA(opts...)
	if err != nil {
		return err
	}
	socks, err := l.bind(host, port)
	if err != nil {
		ua.Close()
		return err
	}
	tr := func(proto string, port int) diago.Transport {
		t := diago.Transport{Transport: proto, BindHost: host, BindPort: port}
		if l.ext != "" {
			t.ExternalHost, t.ExternalPort = l.ext, port
		}
		return t
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		socks.close()
		ua.Close()
		return err
	}
	dopts := []diago.DiagoOption{
		diago.WithServer(srv),
		diago.WithTransport(tr("udp", port)),
		diago.WithTransport(tr("tcp", port)),
		diago.WithLogger(l.p.log.With("listener", l.key)),
		diago.WithServerRequestMiddleware(l.middleware),
	}
	if socks.tls != nil {
		t := tr("tls", l.tlsPort)
		// Not used to listen (serve does, with limits): diago needs a
		// transport of the protocol for calls over it.
		dopts = append(dopts, diago.WithTransport(t))
	}
	dg := diago.NewDiago(ua, dopts...)
	dg.HandleFunc(l.serve)
	ctx, cancel := context.WithCancel(context.Background())
	socks.serve(ctx, srv, l.p.log.With("listener", l.key))
	l.ua, l.dg, l.cancel, l.tls = ua, dg, cancel, socks.tls
	return nil
}

func (l *listener) close() {
	l.cancel()
	l.ua.Close()
	l.p.log.Info("SIP listener closed", "listener", l.key)
}

// contactHost is the host Contact headers carry: the external address when
// set, else the bind address (an interface address for a bind on all
// addresses, as diago does).
func (l *listener) contactHost() string {
	host, _, _ := net.SplitHostPort(l.key)
	if l.ext != "" {
		return l.ext
	}
	if host == "0.0.0.0" {
		if ip, _, err := sip.ResolveInterfacesIP("ip4", nil); err == nil {
			return ip.String()
		}
	}
	return host
}

// contactHeader is our Contact for requests and answers sent over
// transport (as sipgo spells it: UDP, TCP, TLS): sip: with ;transport=
// for TCP and TLS, on sip_tls_port for TLS. Not sips: even over TLS: some
// stacks cannot send in-dialog requests to a sips: Contact (baresip 1.0
// drops the call), and sip:...;transport=tls is what most write.
func (l *listener) contactHeader(transport string) *sip.ContactHeader {
	_, port, _ := net.SplitHostPort(l.key)
	u := sip.Uri{Scheme: "sip", User: l.p.cfg.UserAgent, Host: l.contactHost(), UriParams: sip.NewParams(), Headers: sip.NewParams()}
	u.Port, _ = strconv.Atoi(port)
	switch strings.ToUpper(transport) {
	case "TLS":
		u.Port = l.tlsPort
		u.UriParams.Add("transport", "tls")
	case "TCP":
		u.UriParams.Add("transport", "tcp")
	}
	return &sip.ContactHeader{Address: u}
}

// debugOnly logs every record at debug level. sipgo's transport and
// transaction layers log what peers send — unparsable datagrams in full,
// at error level — so a flood of garbage would flood the log; at debug it
// is there when asked for.
type debugOnly struct{ h slog.Handler }

func (d debugOnly) Enabled(ctx context.Context, _ slog.Level) bool {
	return d.h.Enabled(ctx, slog.LevelDebug)
}

func (d debugOnly) Handle(ctx context.Context, r slog.Record) error {
	r.Level = slog.LevelDebug
	return d.h.Handle(ctx, r)
}

func (d debugOnly) WithAttrs(a []slog.Attr) slog.Handler { return debugOnly{d.h.WithAttrs(a)} }
func (d debugOnly) WithGroup(g string) slog.Handler      { return debugOnly{d.h.WithGroup(g)} }
