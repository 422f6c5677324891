package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// The hostile-input suite of the QUIC plane: real QUIC on loopback, each
// test checking that honest clients keep being served and that what the
// hostile ones hold (connections, streams, handshakes, goroutines) is given
// back. These tests count goroutines, so none of them is parallel.

// insecureTLS is the TLS config of hostile clients, which do not pin.
func insecureTLS() *tls.Config {
	return ClientTLSConfig(&tls.Config{InsecureSkipVerify: true})
}

// spoofTLS keeps a spoofer's ClientHello to one packet (no post-quantum
// key share), so that the one Initial it sends is a whole handshake's
// worth of work for a server that answers it.
func spoofTLS() *tls.Config {
	c := insecureTLS()
	c.CurvePreferences = []tls.CurveID{tls.X25519}
	return c
}

// lockedBuffer is a log destination safe to read while the server writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// connCount is how many connections the server tracks.
func (s *Server) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// eventually polls cond until it returns nil or within passes, then fails
// with its last error.
func eventually(t testing.TB, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settleGoroutines waits for the goroutine count to come back to at most
// limit, and dumps the goroutines if it does not.
func settleGoroutines(t *testing.T, limit int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for runtime.NumGoroutine() > limit {
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Fatalf("%d goroutines after %v; want at most %d\n%s", runtime.NumGoroutine(), within, limit, buf.Bytes()[:min(buf.Len(), 16<<10)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// tapConn is a client's UDP socket as the test sees it: it counts the QUIC
// Retry packets that arrive, and it can be cut (everything dropped both
// ways: a client that vanished without a word). In spoof mode it is a
// spoofed source: each connection's first flight goes out, nothing after
// it, and nothing the server sends comes back, as if the answers went to
// the address the attacker forged.
type tapConn struct {
	net.PacketConn
	udp     *net.UDPConn
	spoof   bool
	cut     atomic.Bool
	retries atomic.Int64 // Retry packets received
	sent    atomic.Int64 // datagrams let through

	mu    sync.Mutex
	first map[string]time.Time // spoof: when each destination connection ID was first sent to
}

// firstFlight is how long after a connection's first packet the spoofer
// still lets its packets through: the first flight is sent back to back,
// retransmissions come a probe timeout (hundreds of ms) later.
const firstFlight = 30 * time.Millisecond

func newTap(t testing.TB, spoof bool) *tapConn {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close() })
	return &tapConn{PacketConn: udp, udp: udp, spoof: spoof, first: map[string]time.Time{}}
}

// The socket options quic-go sets, passed through so that it sizes the
// buffers as it does for a plain socket. (Embedding *net.UDPConn instead
// would let quic-go read and write past the tap.)
func (c *tapConn) SetReadBuffer(n int) error             { return c.udp.SetReadBuffer(n) }
func (c *tapConn) SetWriteBuffer(n int) error            { return c.udp.SetWriteBuffer(n) }
func (c *tapConn) SyscallConn() (syscall.RawConn, error) { return c.udp.SyscallConn() }

func (c *tapConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.cut.Load() {
		return len(p), nil
	}
	if c.spoof {
		dcid, ok := longHeaderDCID(p)
		if !ok {
			return len(p), nil
		}
		now := time.Now()
		c.mu.Lock()
		first, seen := c.first[string(dcid)]
		if !seen {
			first = now
			c.first[string(dcid)] = now
		}
		c.mu.Unlock()
		if now.Sub(first) > firstFlight {
			return len(p), nil
		}
	}
	c.sent.Add(1)
	return c.PacketConn.WriteTo(p, addr)
}

func (c *tapConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		if isRetry(p[:n]) {
			c.retries.Add(1)
		}
		if !c.spoof && !c.cut.Load() {
			return n, addr, nil
		}
	}
}

// longHeaderDCID returns the destination connection ID of a QUIC long
// header packet (RFC 8999: the version-independent layout).
func longHeaderDCID(p []byte) ([]byte, bool) {
	if len(p) < 6 || p[0]&0x80 == 0 || len(p) < 6+int(p[5]) {
		return nil, false
	}
	return p[6 : 6+int(p[5])], true
}

// isRetry reports whether p is a QUIC version 1 Retry packet.
func isRetry(p []byte) bool {
	return len(p) > 5 && p[0]&0x80 != 0 && p[0]&0x30 == 0x30 && bytes.Equal(p[1:5], []byte{0, 0, 0, 1})
}

// dialRaw opens a QUIC connection to s over its own socket, outside
// rpc.Client, closed at the end of the test.
func dialRaw(t *testing.T, s *Server) *quic.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, s.Addr().String(), insecureTLS(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	return conn
}

// pingN sends n Pings on c, one after the other.
func pingN(t *testing.T, c *Client, n int, what string) {
	t.Helper()
	ctx := ctxT(t)
	for i := range n {
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("ping %d %s: %v", i, what, err)
		}
	}
}

// TestIdleConnectionsLeaveServerServing opens 200 connections that finish
// the handshake and never open a stream. An honest client, on an old
// connection and on a new one, is served meanwhile; once the idle clients
// close, or vanish without a word and are timed out, the server holds
// nothing for them.
func TestIdleConnectionsLeaveServerServing(t *testing.T) {
	const n = 200
	s, c := testServer(t, Config{}, ScopeManage)
	ctx := ctxT(t)
	pingN(t, c, 1, "before")
	base, heapBase := runtime.NumGoroutine(), heapInUse()

	// Half will close, half will vanish. A client's idle timeout binds
	// the server too (quic-go raises it to at least 5 s); one that asks
	// for none is held for the server's 60 s.
	polite, vanishing := newTap(t, false), newTap(t, false)
	transports := []*quic.Transport{{Conn: polite}, {Conn: vanishing}}
	conf := &quic.Config{MaxIdleTimeout: time.Second}
	// At most 32 handshakes at once: a burst is TestHandshakeFloodIsValidated's.
	conns := make([]*quic.Conn, n)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			conn, err := transports[i%2].Dial(ctx, s.Addr(), insecureTLS(), conf)
			if err != nil {
				t.Errorf("idle dial %d: %v", i, err)
				return
			}
			conns[i] = conn
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	eventually(t, 10*time.Second, func() error {
		if got := s.connCount(); got != n+1 {
			return fmt.Errorf("server holds %d connections; want %d", got, n+1)
		}
		return nil
	})
	t.Logf("%d idle connections: %d more goroutines, %d kB more heap (both ends, in one process)",
		n, runtime.NumGoroutine()-base, (int64(heapInUse())-int64(heapBase))>>10)

	pingN(t, c, 20, "with idle connections open")
	fresh, err := Dial(ctx, s.Addr().String(), insecureTLS(), "")
	if err != nil {
		t.Fatalf("new honest connection with idle connections open: %v", err)
	}
	pingN(t, fresh, 5, "on a new connection")
	fresh.Close()

	vanishing.cut.Store(true) // not even their CONNECTION_CLOSE arrives
	for i, conn := range conns {
		conn.CloseWithError(0, "")
		transports[i%2].Close()
	}
	eventually(t, 15*time.Second, func() error {
		if got := s.connCount(); got != 1 {
			return fmt.Errorf("server holds %d connections after the idle clients left; want 1 (the honest one)", got)
		}
		return nil
	})
	pingN(t, c, 1, "after")
	settleGoroutines(t, base+10, 10*time.Second)
	if grown := int64(heapInUse()) - int64(heapBase); grown > 8<<20 {
		t.Errorf("heap %d kB above its baseline after the idle connections left; want at most 8 MiB", grown>>10)
	}
}

// TestUnfinishedStreamsAreReset fills one connection up to its stream
// limit with requests that never finish: one trickles a byte at a time
// (slowloris), some stop after part of a request, the rest send nothing
// at all. Other
// connections are served meanwhile; each of those streams is reset after
// the request timeout, and its credit returns, so the same connection
// can make requests again.
func TestUnfinishedStreamsAreReset(t *testing.T) {
	const limit = 8
	s, c := testServer(t, Config{MaxStreams: limit, RequestTimeout: 500 * time.Millisecond}, ScopeManage)
	ctx := ctxT(t)
	pingN(t, c, 1, "before")
	base := runtime.NumGoroutine()

	hostile := dialRaw(t, s)
	strs := make([]*quic.Stream, limit)
	for i := range strs {
		str, err := hostile.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		strs[i] = str
	}
	var sle *quic.StreamLimitReachedError
	if _, err := hostile.OpenStream(); !errors.As(err, &sle) {
		t.Fatalf("OpenStream beyond the limit of %d = %v; want StreamLimitReachedError", limit, err)
	}
	ping := env("Ping", mpMap())
	var trickle sync.WaitGroup
	trickle.Go(func() {
		for i := 0; ; i++ {
			_, err := strs[0].Write(ping[i%(len(ping)-1) : i%(len(ping)-1)+1])
			if err != nil {
				var se *quic.StreamError
				if !errors.As(err, &se) || se.ErrorCode != streamCodeTimeout || !se.Remote {
					t.Errorf("trickling stream: write = %v; want STOP_SENDING with code %d", err, streamCodeTimeout)
				}
				return
			}
			if i > 200 {
				t.Errorf("trickling stream still accepted after %d bytes", i)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	// Odd streams stop one byte short; even ones but the first send
	// nothing, and the server sees them because a later stream has data.
	for i := 1; i < limit; i += 2 {
		if _, err := strs[i].Write(ping[:len(ping)-1]); err != nil {
			t.Fatal(err)
		}
	}

	pingN(t, c, 20, "while another connection's streams hang")

	for i, str := range strs {
		str.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := str.Read(make([]byte, 64))
		var se *quic.StreamError
		if !errors.As(err, &se) || se.ErrorCode != streamCodeTimeout || !se.Remote {
			t.Errorf("unfinished stream %d: read = %v; want RESET_STREAM with code %d", i, err, streamCodeTimeout)
		}
	}
	trickle.Wait()

	// Every stream's credit came back: the hostile connection can have
	// limit requests in flight again.
	again := &Client{conn: hostile}
	var wg sync.WaitGroup
	for i := range limit {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := again.Ping(pctx); err != nil {
				t.Errorf("ping %d on the connection after its streams were reset: %v", i, err)
			}
		})
	}
	wg.Wait()
	hostile.CloseWithError(0, "")
	eventually(t, 5*time.Second, func() error {
		if got := s.connCount(); got != 1 {
			return fmt.Errorf("server holds %d connections; want 1", got)
		}
		return nil
	})
	settleGoroutines(t, base+10, 10*time.Second)
}

// TestHandshakeFloodIsValidated floods the server with connection attempts
// from a spoofed source while an honest client keeps making requests. The
// server starts asking for address validation once RetryAbove handshakes
// are in progress, so the flood never holds more than that; an honest
// client dialing during the flood gets a Retry, follows it and is served.
// Then a few hundred real clients dial at once, each with a short timeout.
// Afterwards every handshake has been counted out and the goroutines are
// back to their baseline.
func TestHandshakeFloodIsValidated(t *testing.T) {
	const above, spoofed, real = 8, 300, 200
	var logs lockedBuffer
	s, c := testServer(t, Config{RetryAbove: above, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, ScopeManage)
	ctx := ctxT(t)
	pingN(t, c, 1, "before")
	base := runtime.NumGoroutine()

	stop := make(chan struct{})
	lat := make(chan []time.Duration, 1)
	go func() {
		var ds []time.Duration
		defer func() { lat <- ds }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			if err := c.Ping(ctx); err != nil {
				t.Errorf("honest ping %d during the flood: %v", len(ds), err)
				return
			}
			ds = append(ds, time.Since(start))
		}
	}()

	spoofer := newTap(t, true)
	str := &quic.Transport{Conn: spoofer}
	defer str.Close()
	var wg sync.WaitGroup
	for range spoofed {
		wg.Go(func() {
			dctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if conn, err := str.Dial(dctx, s.Addr(), spoofTLS(), nil); err == nil {
				conn.CloseWithError(0, "")
				t.Error("a spoofed dial completed its handshake")
			}
		})
	}
	eventually(t, 5*time.Second, func() error {
		if n := s.gate.inProgress.Load(); n <= above {
			return fmt.Errorf("%d handshakes in progress during the flood; want more than %d", n, above)
		}
		return nil
	})
	// The spoofed handshakes in progress stay for the handshake timeout
	// (5 s): a new client now has to validate its address.
	honest := newTap(t, false)
	htr := &quic.Transport{Conn: honest}
	defer htr.Close()
	hconn, err := htr.Dial(ctx, s.Addr(), insecureTLS(), nil)
	if err != nil {
		t.Fatalf("honest dial during the flood: %v", err)
	}
	pingN(t, &Client{conn: hconn}, 5, "on a connection made during the flood")
	hconn.CloseWithError(0, "")
	if honest.retries.Load() == 0 {
		t.Error("the honest client dialing during the flood got no Retry")
	}
	wg.Wait()
	peak := s.gate.peak.Load()
	if peak > above+2 { // the threshold's last one plus the honest client's validated attempt
		t.Errorf("%d handshakes in progress at most during the spoofed flood; want at most %d", peak, above+2)
	}
	if spoofer.retries.Load() == 0 {
		t.Error("the spoofed source got no Retry")
	}
	t.Logf("spoofed flood: %d Initials sent, %d Retries back to the spoofer, %d Retries asked by the server, at most %d handshakes in progress",
		spoofer.sent.Load(), spoofer.retries.Load(), s.gate.retries.Load(), peak)

	// A client that gives up just as its handshake completes leaves the
	// server holding the connection until its idle timeout: make that 5 s.
	var connected atomic.Int64
	for range real {
		wg.Go(func() {
			dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if conn, err := quic.DialAddr(dctx, s.Addr().String(), insecureTLS(), &quic.Config{MaxIdleTimeout: time.Second}); err == nil {
				connected.Add(1)
				conn.CloseWithError(0, "")
			}
		})
	}
	wg.Wait()
	close(stop)
	ds := <-lat
	if len(ds) == 0 {
		t.Fatal("no honest ping completed during the floods")
	}
	slices.Sort(ds)
	t.Logf("real flood: %d of %d connected; honest pings meanwhile: %d, p50 %v, p99 %v, max %v",
		connected.Load(), real, len(ds), ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1])

	eventually(t, 15*time.Second, func() error {
		if n, conns := s.gate.inProgress.Load(), s.connCount(); n != 0 || conns != 1 {
			return fmt.Errorf("%d handshakes in progress and %d connections after the floods; want 0 and 1", n, conns)
		}
		return nil
	})
	pingN(t, c, 1, "after the floods")
	if n := strings.Count(logs.String(), "QUIC Retry"); n != 1 {
		t.Errorf("%d warnings about address validation; want 1 (at most one a minute)\n%s", n, logs.String())
	}
	str.Close()
	htr.Close()
	settleGoroutines(t, base+10, 10*time.Second)
}

// TestAddressValidationPolicy checks when the server asks for a Retry:
// above the threshold of handshakes in progress, always, or not below it.
func TestAddressValidationPolicy(t *testing.T) {
	tests := []struct {
		retryAbove int
		inProgress int64
		want       bool
	}{
		{0, DefaultRetryAbove, false},
		{0, DefaultRetryAbove + 1, true},
		{4, 4, false},
		{4, 5, true},
		{-1, 0, true},
	}
	addr := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4433}
	for _, tt := range tests {
		s := NewServer(Config{RetryAbove: tt.retryAbove})
		s.gate.inProgress.Store(tt.inProgress)
		if got := s.gate.verifySourceAddress(addr); got != tt.want {
			t.Errorf("RetryAbove %d with %d handshakes in progress: verifySourceAddress = %v; want %v", tt.retryAbove, tt.inProgress, got, tt.want)
		}
	}
}

// TestEveryConnectionValidated runs with RetryAbove negative: even an
// idle server asks each new client for a Retry, which the client follows.
func TestEveryConnectionValidated(t *testing.T) {
	s, _ := testServer(t, Config{RetryAbove: -1}, ScopeManage)
	tap := newTap(t, false)
	tr := &quic.Transport{Conn: tap}
	defer tr.Close()
	conn, err := tr.Dial(ctxT(t), s.Addr(), insecureTLS(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	pingN(t, &Client{conn: conn}, 1, "after a Retry")
	// One Retry per Initial of the first flight: a post-quantum
	// ClientHello takes two.
	if tap.retries.Load() == 0 {
		t.Error("client saw no Retry")
	}
}

// paddedPing is a Ping envelope with a pad field, exactly size bytes long.
func paddedPing(size int) []byte {
	for k := 0; ; k++ {
		f := env("Ping", mpMap(mpStr("pad"), mpStr(string(make([]byte, k)))))
		if len(f) == size {
			return f
		}
		if len(f) > size {
			panic(fmt.Sprintf("no padded Ping of %d bytes", size))
		}
	}
}

// TestRequestLimitsOnTheWire covers what TestHostileStreamsLeaveConnectionUsable
// does not: the size limit's boundary, an empty request, and a request
// that never ends. The connection stays usable after each.
func TestRequestLimitsOnTheWire(t *testing.T) {
	const limit = 1024
	_, c := testServer(t, Config{MaxRequestSize: limit}, ScopeManage)
	ctx := ctxT(t)
	tests := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"exactly the limit", paddedPing(limit), CodeInvalidArgument}, // read whole: pad is no Ping field
		{"one byte over", paddedPing(limit + 1), CodeTooLarge},
		{"empty", nil, CodeMalformed},
	}
	for _, tt := range tests {
		resp, err := c.CallRaw(ctx, tt.frame)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if err := decodeResponse(resp, nil); ErrorCode(err) != tt.want {
			t.Errorf("%s (%d bytes): %v; want %s", tt.name, len(tt.frame), err, tt.want)
		}
	}

	// A request that never ends: the server answers ERR_TOO_LARGE and
	// stops the sender with STOP_SENDING, code 2.
	str := rawStream(t, c)
	wrote := make(chan error, 1)
	go func() {
		chunk := make([]byte, 16<<10)
		for range 4096 { // 64 MiB
			if _, err := str.Write(chunk); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	str.SetReadDeadline(time.Now().Add(10 * time.Second))
	var resp bytes.Buffer
	if _, err := resp.ReadFrom(str); err != nil {
		t.Fatalf("endless request: reading the response: %v", err)
	}
	if err := decodeResponse(resp.Bytes(), nil); ErrorCode(err) != CodeTooLarge {
		t.Errorf("endless request: %v; want %s", err, CodeTooLarge)
	}
	var se *quic.StreamError
	if err := <-wrote; !errors.As(err, &se) || se.ErrorCode != streamCodeTooLarge || !se.Remote {
		t.Errorf("endless request: write = %v; want STOP_SENDING with code %d", err, streamCodeTooLarge)
	}
	pingN(t, c, 1, "after the endless request")
}

// floodRate is the spoofed connection attempts a second in
// BenchmarkHandshakeFlood.
const floodRate = 1000

// BenchmarkHandshakeFlood measures what an honest client sees while a
// spoofed source sends floodRate connection attempts a second, each a
// single Initial whose answers go nowhere: the latency of a request on an
// open connection (ping), and of a new connection with its first request
// (dial). It runs with no flood, with address validation off, and with the
// default policy. The flood runs for a second before the measurement.
// handshakes is the most handshakes the server had in progress at once;
// heap-MB how much the heap grew (both ends: one process).
func BenchmarkHandshakeFlood(b *testing.B) {
	for _, mode := range []struct {
		name       string
		rate       int
		retryAbove int
	}{
		{"idle", 0, 0},
		{"retry-off", floodRate, 1 << 30},
		{"retry-on", floodRate, 0},
	} {
		for _, op := range []string{"ping", "dial"} {
			b.Run(mode.name+"/"+op, func(b *testing.B) {
				benchFlood(b, mode.rate, mode.retryAbove, op == "dial")
			})
		}
	}
}

func benchFlood(b *testing.B, rate, retryAbove int, dial bool) {
	s, c := testServer(b, Config{RetryAbove: retryAbove}, ScopeManage)
	ctx := ctxT(b)
	heapBase := heapInUse()
	spoofer := newTap(b, true)
	str := &quic.Transport{Conn: spoofer}
	stop := make(chan struct{})
	var flooding sync.WaitGroup
	if rate > 0 {
		flooding.Go(func() {
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				for range rate / 100 {
					flooding.Go(func() {
						dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
						defer cancel()
						if conn, err := str.Dial(dctx, s.Addr(), spoofTLS(), nil); err == nil {
							conn.CloseWithError(0, "")
						}
					})
				}
			}
		})
		time.Sleep(time.Second)
	}
	b.Cleanup(func() {
		close(stop)
		flooding.Wait()
		str.Close()
	})

	var ds []time.Duration
	start := time.Now()
	for b.Loop() {
		t0 := time.Now()
		if dial {
			fresh, err := Dial(ctx, s.Addr().String(), insecureTLS(), "")
			if err != nil {
				b.Fatal(err)
			}
			err = fresh.Ping(ctx)
			fresh.Close()
			if err != nil {
				b.Fatal(err)
			}
		} else if err := c.Ping(ctx); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t0))
	}
	elapsed := time.Since(start)
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(s.gate.peak.Load()), "handshakes")
	b.ReportMetric(float64(int64(heapInUse())-int64(heapBase))/(1<<20), "heap-MB")
	if rate > 0 {
		b.ReportMetric(float64(spoofer.sent.Load())/(elapsed+time.Second).Seconds(), "spoofed/s")
	}
}
