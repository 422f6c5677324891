package sipplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
)

// TLSConfig is SIP over TLS for every listener with a sip_tls_port and
// every trunk with transport TLS. Zero limits take the defaults shown.
type TLSConfig struct {
	// Certificate returns the listeners' certificate, also offered as the
	// client certificate when a carrier asks for one (mutual TLS). It is
	// called per handshake, so a reloaded pair is used at once
	// (certs.Reloader.GetCertificate). Nil: no TLS listener can start.
	Certificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Roots verify carriers' certificates when trunkd connects: the
	// system roots plus --sip-tls-ca. Nil means the system roots.
	Roots *x509.CertPool
	// HandshakeTimeout bounds an inbound TLS handshake; 5s.
	HandshakeTimeout time.Duration
	// MaxConnsPerSource bounds the inbound TLS connections (including
	// those still in handshake) from one IP address per listener; 64.
	MaxConnsPerSource int
	// MaxConns bounds the inbound TLS connections per listener; 4096.
	MaxConns int
	// IdleTimeout closes an inbound TLS connection on which nothing
	// arrived for that long; 10m. Carriers keep their connections alive
	// with CRLF or OPTIONS keepalives well within it.
	IdleTimeout time.Duration
}

func (c *TLSConfig) defaults() {
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 5 * time.Second
	}
	if c.MaxConnsPerSource <= 0 {
		c.MaxConnsPerSource = 64
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 4096
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 10 * time.Minute
	}
}

// server is the listeners' TLS configuration, nil without a certificate.
func (c *TLSConfig) server() *tls.Config {
	if c.Certificate == nil {
		return nil
	}
	return &tls.Config{GetCertificate: c.Certificate, MinVersion: tls.VersionTLS12}
}

// client is the configuration for connecting to carriers: their
// certificate must chain to Roots for the host name (or IP address)
// dialled. sipgo sets ServerName per connection.
func (c *TLSConfig) client() *tls.Config {
	conf := &tls.Config{RootCAs: c.Roots, MinVersion: tls.VersionTLS12}
	if c.Certificate != nil {
		get := c.Certificate
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return get(nil) }
	}
	return conf
}

var errTLSPortInUse = errors.New("TLS port in use")

// udpReadBuffer is the receive buffer asked for on a listener's UDP
// socket. The default (net.core.rmem_default, 208 KiB on most systems) is
// a few hundred INVITEs: a burst arriving while the one goroutine reading
// the socket waits for the CPU overflows it, and every datagram dropped
// there costs its sender a retransmission 500 ms later.
const udpReadBuffer = 4 << 20

// sockets are a listener's bound sockets: UDP and TCP on the SIP port,
// TLS on sip_tls_port when set.
type sockets struct {
	udp net.PacketConn
	tcp net.Listener
	tls *tlsListener
}

// bind binds l's sockets. The sockets are bound here rather than by
// sipgo so that a bind error is returned at once and TLS gets limits.
func (l *listener) bind(host string, port int) (*sockets, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	s := &sockets{}
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	// best effort: the kernel caps it at net.core.rmem_max
	_ = udp.(*net.UDPConn).SetReadBuffer(udpReadBuffer)
	s.udp = newRawUDP(udp.(*net.UDPConn))
	if s.tcp, err = net.Listen("tcp", addr); err != nil {
		s.close()
		return nil, err
	}
	if l.tlsPort != 0 {
		raw, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(l.tlsPort)))
		if err != nil {
			s.close()
			return nil, fmt.Errorf("%w: %w", errTLSPortInUse, err)
		}
		s.tls = newTLSListener(raw, l.p.cfg.TLS, l.p.log.With("listener", l.key))
	}
	return s, nil
}

// serve hands the sockets to sipgo until ctx ends, then closes them.
func (s *sockets) serve(ctx context.Context, srv *sipgo.Server, log *slog.Logger) {
	run := func(proto string, f func() error) {
		go func() {
			// sipgo's UDP loop ends on a read error with a nil error:
			// any end before ctx's is worth a line.
			if err := f(); ctx.Err() == nil {
				log.Error("SIP socket stopped", "proto", proto, "err", err)
			}
		}()
	}
	run("udp", func() error { return srv.ServeUDP(s.udp) })
	run("tcp", func() error { return srv.ServeTCP(s.tcp) })
	if s.tls != nil {
		run("tls", func() error { return srv.ServeTLS(s.tls) })
	}
	go func() {
		<-ctx.Done()
		s.close()
	}()
	// Clients sending from the listening UDP socket find it in sipgo's
	// pool, which ServeUDP fills from its goroutine: wait for it, or the
	// first request would try to bind the port a second time.
	tp, addr := srv.TransportLayer(), s.udp.LocalAddr().String()
	for range 200 {
		if c, err := tp.GetConnection("udp", addr); err == nil && c != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
	log.Warn("UDP socket not registered with sipgo in time", "addr", addr)
}

func (s *sockets) close() {
	if s.udp != nil {
		s.udp.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
	if s.tls != nil {
		s.tls.Close()
	}
}

// tlsListener accepts TLS connections with limits sipgo does not have:
// the handshake runs in its own goroutine under a timeout (a peer that
// never finishes it holds nothing for long and never blocks Accept), at
// most MaxConnsPerSource connections per source address and MaxConns in
// all, and a connection idle for IdleTimeout is closed. Accept returns
// only connections whose handshake completed.
type tlsListener struct {
	raw  net.Listener
	conf *tls.Config
	lim  TLSConfig
	log  *slog.Logger
	out  chan net.Conn
	done chan struct{}
	once sync.Once

	mu    sync.Mutex
	bySrc map[netip.Addr]int
	total int

	refused   atomic.Int64 // over a limit
	failed    atomic.Int64 // handshake failed or timed out
	completed atomic.Int64
}

func newTLSListener(raw net.Listener, lim TLSConfig, log *slog.Logger) *tlsListener {
	lim.defaults()
	t := &tlsListener{raw: raw, conf: lim.server(), lim: lim, log: log,
		out: make(chan net.Conn), done: make(chan struct{}), bySrc: map[netip.Addr]int{}}
	go t.acceptLoop()
	return t
}

func (t *tlsListener) acceptLoop() {
	for {
		c, err := t.raw.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			t.Close()
			return
		}
		src := addrOf(c.RemoteAddr())
		if !t.admit(src) {
			t.refused.Add(1)
			c.Close()
			continue
		}
		go t.handshake(c, src)
	}
}

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// admit counts a new connection from src, or refuses it over a limit.
func (t *tlsListener) admit(src netip.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.total >= t.lim.MaxConns || t.bySrc[src] >= t.lim.MaxConnsPerSource {
		return false
	}
	t.total++
	t.bySrc[src]++
	return true
}

func (t *tlsListener) leave(src netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total--
	if t.bySrc[src]--; t.bySrc[src] <= 0 {
		delete(t.bySrc, src)
	}
}

func (t *tlsListener) handshake(c net.Conn, src netip.Addr) {
	tc := tls.Server(c, t.conf)
	ctx, cancel := context.WithTimeout(context.Background(), t.lim.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		t.failed.Add(1)
		t.log.Debug("TLS handshake failed", "source", src, "err", err)
		tc.Close()
		t.leave(src)
		return
	}
	t.completed.Add(1)
	conn := &tlsConn{Conn: tc, idle: t.lim.IdleTimeout, release: func() { t.leave(src) }}
	select {
	case t.out <- conn:
	case <-t.done:
		conn.Close()
	}
}

// Accept returns the next connection whose handshake completed.
func (t *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-t.out:
		return c, nil
	case <-t.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections already handed out stay open.
func (t *tlsListener) Close() error {
	t.once.Do(func() {
		close(t.done)
		t.raw.Close()
	})
	return nil
}

// Addr is the listening address.
func (t *tlsListener) Addr() net.Addr { return t.raw.Addr() }

// tlsConn is an accepted TLS connection that gives its place back when
// closed and closes itself after IdleTimeout without data.
type tlsConn struct {
	*tls.Conn
	idle    time.Duration
	once    sync.Once
	release func()
}

func (c *tlsConn) Read(b []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(b)
}

func (c *tlsConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// TLSCount is one TLS listener's inbound connection counts since it
// started.
type TLSCount struct {
	Listener  string // the bind, ip:port (UDP/TCP), of which this is the TLS port
	Port      int    // sip_tls_port
	Completed int64  // handshakes completed
	Failed    int64  // handshakes failed or timed out
	Refused   int64  // connections closed at once, over a connection limit
}

// TLSCounts reports every running TLS listener's counts.
func (p *Plane) TLSCounts() []TLSCount {
	p.listeners.mu.Lock()
	defer p.listeners.mu.Unlock()
	var out []TLSCount
	for key, l := range p.listeners.byKey {
		if l.tls == nil {
			continue
		}
		out = append(out, TLSCount{Listener: key, Port: l.tlsPort, Completed: l.tls.completed.Load(),
			Failed: l.tls.failed.Load(), Refused: l.tls.refused.Load()})
	}
	return out
}

// bindOf maps a TLS listening address (ip:sip_tls_port) to the bind key
// of its listener, whose trunks a call over TLS is matched against; any
// other key is returned as is.
func (ls *listeners) bindOf(key string) string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if _, ok := ls.byKey[key]; ok {
		return key
	}
	host, port, _ := net.SplitHostPort(key)
	for k, l := range ls.byKey {
		if h, _, _ := net.SplitHostPort(k); h == host && l.tlsPort != 0 && strconv.Itoa(l.tlsPort) == port {
			return k
		}
	}
	return key
}
