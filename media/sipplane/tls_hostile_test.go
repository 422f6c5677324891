package sipplane

import (
	"context"
	"crypto/tls"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
)

// hostileTLSPlane is a plane with one TLS listener and small limits.
func hostileTLSPlane(t *testing.T, ca *testCA) (*Plane, uint16) {
	cfg := tlsPlaneConfig(ca.issue(t, "127.0.0.1"), nil)
	cfg.TLS.HandshakeTimeout = 300 * time.Millisecond
	cfg.TLS.MaxConnsPerSource = 16
	p := newPlane(t, cfg)
	tr := testTrunk("in", siptest.FreePort(t, "127.0.0.1"))
	tr.SIPTLSPort = siptest.FreePort(t, "127.0.0.1")
	tr.RejectSIPCode = 486
	apply(t, p, tr)
	return p, tr.SIPTLSPort
}

// tlsCallCode places a call over TLS from 127.0.0.1 and returns its final
// code.
func tlsCallCode(t *testing.T, ca *testCA, port uint16) int {
	t.Helper()
	dg := tlsUAC(t, ca.pool)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := dg.Invite(ctx, sip.Uri{User: "100", Host: "127.0.0.1", Port: int(port)}, diago.InviteOptions{Transport: "tls"})
	var re *sipgo.ErrDialogResponse
	if errorsAs(err, &re) {
		return re.Res.StatusCode
	}
	t.Fatalf("INVITE over TLS: %v", err)
	return 0
}

// dialFrom opens a TCP connection to port from the loopback address src.
func dialFrom(src string, port uint16) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: time.Second}
	return d.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
}

// closedWithin reports whether the server closes c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			ne, ok := err.(net.Error)
			return !ok || !ne.Timeout()
		}
	}
}

func TestTLSHandshakeThatNeverFinishes(t *testing.T) {
	ca := newTestCA(t)
	_, port := hostileTLSPlane(t, ca)
	silent, err := dialFrom("127.0.0.2", port)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	half, err := dialFrom("127.0.0.2", port)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	_, _ = half.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}) // a ClientHello that stops after its header
	if code := tlsCallCode(t, ca, port); code != 486 {
		t.Errorf("a call during stalled handshakes = %d; want 486", code)
	}
	for name, c := range map[string]net.Conn{"silent": silent, "half a ClientHello": half} {
		if !closedWithin(c, 3*time.Second) {
			t.Errorf("%s connection still open after the handshake timeout", name)
		}
	}
}

func TestTLSConnectionsPerSourceBounded(t *testing.T) {
	ca := newTestCA(t)
	_, port := hostileTLSPlane(t, ca)
	before := runtime.NumGoroutine()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Idle TLS connections, handshake done, from one address.
	conf := &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"}
	held := 0
	for range 2000 {
		raw, err := dialFrom("127.0.0.2", port)
		if err != nil {
			continue
		}
		conns = append(conns, raw)
		if held < 16 {
			tc := tls.Client(raw, conf)
			_ = tc.SetDeadline(time.Now().Add(2 * time.Second))
			if tc.Handshake() == nil {
				held++
			}
		}
	}
	if held != 16 {
		t.Fatalf("%d TLS connections completed from one address; want the limit, 16", held)
	}
	// Over the limit: closed at once.
	extra, err := dialFrom("127.0.0.2", port)
	if err != nil {
		t.Fatal(err)
	}
	conns = append(conns, extra)
	if !closedWithin(extra, time.Second) {
		t.Error("a connection over the per-source limit was kept")
	}
	if code := tlsCallCode(t, ca, port); code != 486 {
		t.Errorf("a call from another address during the flood = %d; want 486", code)
	}
	if g := runtime.NumGoroutine() - before; g > 200 {
		t.Errorf("%d more goroutines with 2000 connection attempts from one address; want them bounded", g)
	}
}

func TestTLSGarbageAfterHandshake(t *testing.T) {
	ca := newTestCA(t)
	_, port := hostileTLSPlane(t, ca)
	raw, err := dialFrom("127.0.0.2", port)
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(raw, &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"})
	defer tc.Close()
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(i*7 + 3)
	}
	_, _ = tc.Write(garbage)
	_, _ = tc.Write([]byte("INVITE sip:x SIP/2.0\r\nContent-Length: 999999999\r\n\r\n"))
	if code := tlsCallCode(t, ca, port); code != 486 {
		t.Errorf("a call after garbage on another connection = %d; want 486", code)
	}
}
