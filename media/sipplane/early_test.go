package sipplane

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/trunkd/trunkd/media/sipplane/siptest"
)

// TestRejectRetransmittedUntilACK: the final response of a call refused
// by policy is a real INVITE server transaction over UDP (RFC 3261
// 17.2.1): it is retransmitted while no ACK comes, the ACK sent with the
// INVITE's branch ends the retransmissions, and the listener's wait for
// that ACK (awaitAck) ends with it.
func TestRejectRetransmittedUntilACK(t *testing.T) {
	p := newPlane(t, Config{})
	port := siptest.FreePort(t, "127.0.0.1")
	apply(t, p, testTrunk("reject", port))
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)}
	local, branch := conn.LocalAddr().String(), fmt.Sprintf("z9hG4bK-ack-%d", time.Now().UnixNano())
	msg := func(method, to string) []byte {
		return fmt.Appendf(nil, "%s sip:100@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s\r\nMax-Forwards: 70\r\n"+
			"From: <sip:carrier@127.0.0.1>;tag=ack1\r\nTo: %s\r\nCall-ID: %s@ack\r\nCSeq: 1 %s\r\n"+
			"Contact: <sip:carrier@%s>\r\nContent-Length: 0\r\n\r\n", method, port, local, branch, to, branch, method, local)
	}
	if _, err := conn.WriteTo(msg("INVITE", "<sip:100@127.0.0.1>"), dst); err != nil {
		t.Fatal(err)
	}
	// T1 = 500 ms: the 603 and its first retransmission come within 1.2 s.
	finals, to := finalsWithin(t, conn, 1200*time.Millisecond)
	if finals < 2 {
		t.Fatalf("%d copies of the final response in 1.2 s without an ACK; want it retransmitted (>= 2)", finals)
	}
	p.listeners.mu.Lock()
	l := p.listeners.byKey[fmt.Sprintf("127.0.0.1:%d", port)]
	p.listeners.mu.Unlock()
	if got := l.ackWaits.Load(); got != 1 {
		t.Errorf("%d early answers waiting for their ACK before it came; want 1", got)
	}
	if _, err := conn.WriteTo(msg("ACK", to), dst); err != nil {
		t.Fatal(err)
	}
	// Without the ACK matched, the next copies would come 1.5 s and 3.5 s
	// after the first.
	if n, _ := finalsWithin(t, conn, 2500*time.Millisecond); n != 0 {
		t.Errorf("%d copies of the final response after the ACK; want none", n)
	}
	if got := l.ackWaits.Load(); got != 0 {
		t.Errorf("%d early answers still waiting after the ACK; want 0", got)
	}
}

// finalsWithin counts the final responses read on conn for d, and
// returns the To header of the last.
func finalsWithin(t *testing.T, conn *net.UDPConn, d time.Duration) (int, string) {
	t.Helper()
	n, to := 0, ""
	buf := make([]byte, 65535)
	deadline := time.Now().Add(d)
	for {
		conn.SetReadDeadline(deadline)
		m, _, err := conn.ReadFrom(buf)
		if err != nil {
			return n, to
		}
		if statusCode(buf[:m]) >= 200 {
			n, to = n+1, header(buf[:m], "To")
		}
	}
}
