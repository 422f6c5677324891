package rpc

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// countingConn counts the datagrams a QUIC endpoint receives.
type countingConn struct {
	net.PacketConn
	in atomic.Int64
}

func (c *countingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if err == nil {
		c.in.Add(1)
	}
	return n, addr, err
}

func (c *countingConn) SetReadBuffer(n int) error {
	return c.PacketConn.(*net.UDPConn).SetReadBuffer(n)
}

func (c *countingConn) SetWriteBuffer(n int) error {
	return c.PacketConn.(*net.UDPConn).SetWriteBuffer(n)
}

// dialCounting connects to s through a socket that counts what the server
// sends.
func dialCounting(t *testing.T, s *Server) (*quic.Conn, *countingConn) {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cc := &countingConn{PacketConn: udp}
	tr := &quic.Transport{Conn: cc}
	t.Cleanup(func() { tr.Close() })
	conn, err := tr.Dial(ctxT(t), s.Addr(), insecureTLS(), &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	return conn, cc
}

// rawPing sends one Ping on its own stream and reads the answer.
func rawPing(t *testing.T, conn *quic.Conn) {
	t.Helper()
	str, err := conn.OpenStreamSync(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	str.Write(env("Ping", mpMap()))
	str.Close()
	if _, err := io.ReadAll(str); err != nil {
		t.Fatal(err)
	}
}

// openable counts the streams conn may open now, opening them.
func openable(conn *quic.Conn) int {
	n := 0
	for {
		_, err := conn.OpenStream()
		var sle *quic.StreamLimitReachedError
		if errors.As(err, &sle) {
			return n
		}
		if err != nil {
			return -1
		}
		n++
	}
}

// TestStreamCreditInBatches checks that the credit of finished streams
// goes back in batches: one request at a time costs the client about one
// packet from the server, not two (the answer, and a MAX_STREAMS of its
// own); that a client can open at least the stream limit at any time; and
// that a quiet connection gets all its credit back.
func TestStreamCreditInBatches(t *testing.T) {
	s, _ := testServer(t, Config{}, ScopeManage)
	conn, cc := dialCounting(t, s)
	rawPing(t, conn) // the handshake's packets are done with
	const n = 300
	before := cc.in.Load()
	for range n {
		rawPing(t, conn)
	}
	per := float64(cc.in.Load()-before) / n
	if per > 1.5 {
		t.Errorf("the server sent %.2f packets per request; want at most 1.5 (credit in batches)", per)
	}
	if got := openable(conn); got < DefaultMaxStreams {
		t.Errorf("right after %d requests the client may open %d streams; want at least %d", n, got, DefaultMaxStreams)
	}

	quiet, _ := dialCounting(t, s)
	for range n {
		rawPing(t, quiet)
	}
	time.Sleep(2*creditTick + 300*time.Millisecond) // two ticks, the client's delayed ACK, and slack
	want := DefaultMaxStreams + int(creditReserve(DefaultMaxStreams))
	if got := openable(quiet); got != want {
		t.Errorf("after a quiet spell the client may open %d streams; want %d, all its credit", got, want)
	}
}

// TestCreditTickAfterStop fires a tick that was already under way when
// the connection went: it must give back nothing (stop dropped what was
// held) and not fail.
func TestCreditTickAfterStop(t *testing.T) {
	c := newCredits(DefaultMaxStreams)
	c.held = make([]*quic.Stream, 3) // never touched: a release would panic on them
	c.aged = 3
	c.stop()
	c.onTick()
	if c.aged != 3 || c.held != nil {
		t.Errorf("after stop, a tick changed the credit held: aged %d, held %v", c.aged, c.held)
	}
}
