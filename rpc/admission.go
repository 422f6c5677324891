package rpc

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// DefaultRetryAbove is how many QUIC handshakes may be in progress at once
// before the server asks new connection attempts to validate their address.
// An admin port sees a handful of handshakes at a time, so honest clients
// rarely pay the Retry's round trip (or risk quic-go dropping the Retry
// when its queue of 8 is full, and waiting out a retransmission). A
// spoofed-source flood keeps each of its handshakes in progress for the
// whole handshake timeout, so it crosses this after a few dozen packets and
// then costs at most DefaultRetryAbove+1 handshakes every 5 s: a few
// milliseconds of CPU a second and a few MB.
const DefaultRetryAbove = 64

// handshakeTimeout is the server's QUIC HandshakeIdleTimeout. quic-go gives
// up on a handshake after twice that at the latest.
const handshakeTimeout = 5 * time.Second

// retryLogEvery bounds the warnings about address validation to one a
// minute during a flood.
const retryLogEvery = time.Minute

// handshakeGate decides when the server requires address validation (a
// QUIC Retry, RFC 9000 §8.1.2) before doing any handshake work: whenever
// more than above handshakes are in progress. A handshake is in progress
// from the moment quic-go creates its connection (after the address check)
// until the connection is accepted, fails, or the handshake timeout has
// certainly passed. A Retry costs the server one small stateless packet
// and an honest client one round trip; a spoofed source never sees it, so
// it cannot make the server allocate a connection or sign anything.
type handshakeGate struct {
	above int64 // negative: always validate
	log   *slog.Logger

	inProgress atomic.Int64
	peak       atomic.Int64 // most handshakes in progress at once
	retries    atomic.Int64 // attempts asked to validate their address
	lastLog    atomic.Int64 // unix nanoseconds of the last warning
	logged     atomic.Int64 // retries at the last warning
}

// newHandshakeGate returns a gate for Config.RetryAbove.
func newHandshakeGate(retryAbove int, log *slog.Logger) *handshakeGate {
	g := &handshakeGate{above: int64(retryAbove), log: log}
	switch {
	case retryAbove == 0:
		g.above = DefaultRetryAbove
	case retryAbove < 0:
		g.above = -1
	}
	return g
}

// handshakeKey is the connection context key of a handshake's release.
type handshakeKey struct{}

// verifySourceAddress is the transport's VerifySourceAddress: true asks
// the client at addr (unvalidated, possibly spoofed) for a Retry first.
func (g *handshakeGate) verifySourceAddress(addr net.Addr) bool {
	n := g.inProgress.Load()
	if n <= g.above {
		return false
	}
	retries := g.retries.Add(1)
	now := time.Now().UnixNano()
	last := g.lastLog.Load()
	if g.above >= 0 && now-last >= int64(retryLogEvery) && g.lastLog.CompareAndSwap(last, now) {
		g.log.Warn("admin RPC handshake load: new connections must validate their address (QUIC Retry)",
			"handshakes_in_progress", n, "retry_above", g.above,
			"retries_since_last_warning", retries-g.logged.Swap(retries), "last_source", addr.String())
	}
	return true
}

// connContext is the transport's ConnContext: it counts a handshake in and
// arranges for it to be counted out exactly once.
func (g *handshakeGate) connContext(ctx context.Context, _ *quic.ClientInfo) (context.Context, error) {
	n := g.inProgress.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	h := &handshake{gate: g}
	h.mu.Lock()
	h.stopCtx = context.AfterFunc(ctx, h.release)
	// A backstop, should quic-go drop a connection without ending its
	// context: no handshake outlives twice the idle timeout.
	h.timer = time.AfterFunc(2*handshakeTimeout+time.Second, h.release)
	h.mu.Unlock()
	return context.WithValue(ctx, handshakeKey{}, h), nil
}

// accepted counts out the handshake of a connection the listener returned.
func (g *handshakeGate) accepted(conn *quic.Conn) {
	if h, ok := conn.Context().Value(handshakeKey{}).(*handshake); ok {
		h.release()
	}
}

// handshake is one handshake counted in a handshakeGate.
type handshake struct {
	gate *handshakeGate

	mu       sync.Mutex
	released bool
	stopCtx  func() bool
	timer    *time.Timer
}

// release counts the handshake out; only its first call counts.
func (h *handshake) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return
	}
	h.released = true
	h.gate.inProgress.Add(-1)
	h.stopCtx()
	h.timer.Stop()
}
