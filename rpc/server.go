package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/trunkd/trunkd/rpc/api"
	"github.com/trunkd/trunkd/trunk/control"
)

// ALPN is the TLS application protocol of the admin RPC.
const ALPN = "trunkd/1"

// Defaults of the server's limits.
const (
	DefaultMaxRequestSize = 64 << 10
	DefaultRequestTimeout = 10 * time.Second
	DefaultMaxStreams     = 256
)

// Stream and connection error codes the server sends when it resets.
const (
	streamCodeTimeout  quic.StreamErrorCode      = 1 // the request did not arrive in time
	streamCodeTooLarge quic.StreamErrorCode      = 2 // the rest of an oversize request is not read
	streamCodeShutdown quic.StreamErrorCode      = 3 // the server is going away
	connCodeShutdown   quic.ApplicationErrorCode = 0
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("rpc: server closed")

// Config configures a Server.
type Config struct {
	Service *control.Service // required: the trunk service every method calls
	Auth    Authorizer       // required
	Logger  *slog.Logger     // optional

	// Observe, optional, is called once for every request answered, for
	// metrics: method is the method name, or "unknown" for any name the
	// protocol does not have (so labels stay bounded); code is "" for
	// success, else the wire error code; d is the time spent serving it.
	Observe func(method, code string, d time.Duration)

	MaxRequestSize int           // bytes; 0 means DefaultMaxRequestSize
	RequestTimeout time.Duration // to receive a whole request; 0 means DefaultRequestTimeout
	MaxStreams     int64         // concurrent requests per connection; 0 means DefaultMaxStreams

	// RetryAbove is how many QUIC handshakes may be in progress at once
	// before every new connection attempt must first validate its address
	// with a QUIC Retry (RFC 9000 §8.1.2), so that a flood from spoofed
	// sources cannot make the server do handshake work. Honest clients
	// follow the Retry on their own, for one extra round trip. 0 means
	// DefaultRetryAbove; a negative value validates every attempt.
	RetryAbove int
}

// Server serves the admin RPC over QUIC: one request per client-initiated
// bidirectional stream.
type Server struct {
	h          handler
	maxRequest int
	timeout    time.Duration
	maxStreams int64
	observe    func(method, code string, d time.Duration)
	gate       *handshakeGate

	mu      sync.Mutex
	ln      *quic.Listener
	tr      *quic.Transport
	conns   map[*quic.Conn]struct{}
	closing bool
	streams sync.WaitGroup

	work chan streamJob // to an idle worker (dispatch)
	stop chan struct{}  // closed when the server stops accepting
}

// NewServer returns a Server for cfg.
func NewServer(cfg Config) *Server {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		h:          handler{api: api.NewHandler(cfg.Service, cfg.Auth, log), log: log},
		maxRequest: orDefault(cfg.MaxRequestSize, DefaultMaxRequestSize),
		timeout:    orDefault(cfg.RequestTimeout, DefaultRequestTimeout),
		maxStreams: orDefault(cfg.MaxStreams, DefaultMaxStreams),
		conns:      map[*quic.Conn]struct{}{},
		work:       make(chan streamJob),
		stop:       make(chan struct{}),
		observe:    cfg.Observe,
		gate:       newHandshakeGate(cfg.RetryAbove, log),
	}
	if s.observe == nil {
		s.observe = func(string, string, time.Duration) {}
	}
	return s
}

// orDefault returns v, or def when v is zero or negative.
func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// ServerTLSConfig returns a copy of base restricted to what the protocol
// allows: TLS 1.3 and the trunkd/1 ALPN.
func ServerTLSConfig(base *tls.Config) *tls.Config {
	c := base.Clone()
	c.MinVersion = tls.VersionTLS13
	c.NextProtos = []string{ALPN}
	return c
}

func (s *Server) quicConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           handshakeTimeout,
		MaxIdleTimeout:                 60 * time.Second,
		MaxIncomingStreams:             s.maxStreams + creditReserve(s.maxStreams),
		RequireStreamCreditRelease:     creditBatch(s.maxStreams) > 0,
		MaxIncomingUniStreams:          -1,
		InitialStreamReceiveWindow:     uint64(s.maxRequest) + 1024,
		MaxStreamReceiveWindow:         uint64(s.maxRequest) + 1024,
		InitialConnectionReceiveWindow: 1 << 20,
		MaxConnectionReceiveWindow:     4 << 20,
		Allow0RTT:                      false,
	}
}

// ListenAndServe listens on the UDP address addr and serves until Shutdown
// or Close. It returns ErrServerClosed then.
func (s *Server) ListenAndServe(addr string, tlsConf *tls.Config) error {
	if err := s.Listen(addr, tlsConf); err != nil {
		return err
	}
	return s.Serve()
}

// Listen binds the UDP address addr. Serve then accepts on it.
func (s *Server) Listen(addr string, tlsConf *tls.Config) error {
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("rpc: listen %s: %w", addr, err)
	}
	tr := &quic.Transport{
		Conn:                udp,
		VerifySourceAddress: s.gate.verifySourceAddress,
		ConnContext:         s.gate.connContext,
	}
	ln, err := tr.Listen(ServerTLSConfig(tlsConf), s.quicConfig())
	if err != nil {
		udp.Close()
		return fmt.Errorf("rpc: listen %s: %w", addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ln, s.tr = ln, tr
	return nil
}

// Addr returns the address the server listens on, or nil before Listen.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve accepts connections until Shutdown or Close.
func (s *Server) Serve() error {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln == nil {
		return errors.New("rpc: Serve called before Listen")
	}
	for {
		conn, err := ln.Accept(context.Background())
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			return fmt.Errorf("rpc: accept: %w", err)
		}
		s.gate.accepted(conn)
		if !s.track(conn) {
			conn.CloseWithError(connCodeShutdown, "server shutting down")
			return ErrServerClosed
		}
		go s.serveConn(conn)
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) track(conn *quic.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[conn] = struct{}{}
	return true
}

func (s *Server) untrack(conn *quic.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, conn)
}

func (s *Server) serveConn(conn *quic.Conn) {
	defer s.untrack(conn)
	ctx := api.WithLazyPages(conn.Context()) // pages are written while built (sendPage)
	cr := newCredits(s.maxStreams)
	defer cr.stop()
	for {
		str, err := conn.AcceptStream(context.Background())
		if err != nil {
			return
		}
		if !s.startStream() {
			str.CancelRead(streamCodeShutdown)
			str.CancelWrite(streamCodeShutdown)
			return
		}
		s.dispatch(streamJob{ctx, str, cr})
	}
}

// streamJob is a stream to serve, with its connection's context.
type streamJob struct {
	ctx context.Context
	str *quic.Stream
	cr  *credits
}

// workerIdle is how long a worker waits for another stream before it
// exits.
const workerIdle = 10 * time.Second

// dispatch hands j to an idle worker, or starts a worker for it. A worker
// serves stream after stream: its stack has grown to what a request
// needs, where a goroutine per stream grew (copied) its stack on most
// requests (5% of the CPU of UpdateTrunks at 64 in flight).
func (s *Server) dispatch(j streamJob) {
	select {
	case s.work <- j:
	default:
		go s.worker(j)
	}
}

// worker serves j, then whatever dispatch hands it, until it has been
// idle for workerIdle or the server stops accepting.
func (s *Server) worker(j streamJob) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		s.serveStream(j.ctx, j.str)
		j.cr.finished(j.str)
		j = streamJob{} // keep no connection alive while idle
		idle.Reset(workerIdle)
		select {
		case j = <-s.work:
		case <-idle.C:
			return
		case <-s.stop:
			return
		}
	}
}

// startStream counts a stream in, unless the server is closing.
func (s *Server) startStream() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.streams.Add(1)
	return true
}

// serveStream reads one request, answers it and closes the stream in both
// directions. A panic in a handler resets this stream only.
func (s *Server) serveStream(ctx context.Context, str *quic.Stream) {
	defer s.streams.Done()
	defer func() {
		if p := recover(); p != nil {
			s.h.log.Error("panic serving request", "panic", p, "stack", string(debug.Stack()))
			str.CancelRead(streamCodeShutdown)
			str.CancelWrite(streamCodeShutdown)
		}
	}()
	deadline := time.Now().Add(s.timeout)
	str.SetReadDeadline(deadline)
	req := bodies.Get().(*bytes.Buffer)
	defer putBody(req) // the decoded request keeps no reference to it
	_, err := req.ReadFrom(io.LimitReader(str, int64(s.maxRequest)+1))
	frame := req.Bytes()
	var resp []byte
	switch {
	case len(frame) > s.maxRequest:
		str.CancelRead(streamCodeTooLarge)
		resp = encodeResponse("Err", Errorf(CodeTooLarge, "request is larger than %d bytes", s.maxRequest))
		s.observe(unknownMethod, CodeTooLarge, 0)
	case err != nil:
		// Timed out or reset by the peer: nothing complete to answer.
		str.CancelRead(streamCodeTimeout)
		str.CancelWrite(streamCodeTimeout)
		return
	default:
		start := time.Now()
		var out outcome
		e := encoders.Get().(*encoder)
		defer encoders.Put(e) // after resp, its buffer, is written
		resp, out = s.h.serveWith(ctx, frame, e)
		switch {
		case out.stream != nil:
			s.sendStream(ctx, str, &out)
		case out.page != nil:
			s.sendPage(str, out.page, e)
		}
		d := time.Since(start)
		s.h.logRequest(ctx, out, d)
		s.observe(metricName(out.method), out.code, d)
		if out.stream != nil || out.page != nil {
			return
		}
	}
	str.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := str.Write(resp); err != nil {
		str.CancelWrite(streamCodeTimeout)
		return
	}
	str.Close()
}

// sendStream writes a streamed answer (Backup), moving the write deadline
// on as the client reads, and closes the stream; on a failure after the
// head it resets the stream, so the client never sees a digest.
func (s *Server) sendStream(ctx context.Context, str *quic.Stream, out *outcome) {
	w := &deadlineWriter{str: str, timeout: s.timeout}
	if err := s.h.sendStream(ctx, out, w); err != nil {
		str.CancelWrite(streamCodeTimeout)
		return
	}
	str.Close()
}

// deadlineWriter gives every write to a stream its own deadline, so a
// long answer is bounded by the client's progress, not its total size.
type deadlineWriter struct {
	str     *quic.Stream
	timeout time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.str.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.str.Write(p)
}

// Shutdown stops accepting connections and streams, waits for requests in
// flight to finish or ctx to end, then closes every connection.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	done := make(chan struct{})
	go func() { s.streams.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.closeAll()
	return err
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.stopAccepting()
	s.closeAll()
	return nil
}

// stopAccepting marks the server closing, so no new stream is served, and
// closes the listener, so Serve returns ErrServerClosed.
func (s *Server) stopAccepting() {
	s.mu.Lock()
	if !s.closing {
		close(s.stop)
	}
	s.closing = true
	ln := s.ln
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

func (s *Server) closeAll() {
	s.mu.Lock()
	conns := make([]*quic.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	tr := s.tr
	s.mu.Unlock()
	for _, c := range conns {
		c.CloseWithError(connCodeShutdown, "server shutting down")
	}
	if tr != nil {
		tr.Close()
		tr.Conn.Close()
	}
}

// unknownMethod stands for every method name the protocol does not have.
const unknownMethod = "unknown"

// metricName bounds a client-supplied method name to the known ones.
func metricName(method string) string {
	if _, ok := api.Lookup(method); ok {
		return method
	}
	return unknownMethod
}
