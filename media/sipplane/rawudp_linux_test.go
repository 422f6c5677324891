//go:build linux && (amd64 || arm64)

package sipplane

import (
	"errors"
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

func rawListen(t *testing.T, network, addr string) *rawUDP {
	t.Helper()
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Skipf("%s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	r, ok := newRawUDP(c.(*net.UDPConn)).(*rawUDP)
	if !ok {
		t.Fatal("newRawUDP did not wrap a UDP socket")
	}
	return r
}

// TestRawUDPRoundTrip exchanges datagrams between a raw socket and a
// plain one, IPv4, IPv6 and IPv4 peers of a dual-stack socket: the
// addresses ReadFrom reports are those the net package would, and
// WriteTo reaches them.
func TestRawUDPRoundTrip(t *testing.T) {
	for _, tc := range []struct{ name, network, listen, peer, peerNet string }{
		{"ipv4", "udp4", "127.0.0.1:0", "127.0.0.1:0", "udp4"},
		{"ipv6", "udp6", "[::1]:0", "[::1]:0", "udp6"},
		{"ipv4 to dual stack", "udp", "[::]:0", "127.0.0.1:0", "udp4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rawListen(t, tc.network, tc.listen)
			peer, err := net.ListenPacket(tc.peerNet, tc.peer)
			if err != nil {
				t.Skip(err)
			}
			defer peer.Close()
			port := r.LocalAddr().(*net.UDPAddr).Port
			to := &net.UDPAddr{IP: peer.LocalAddr().(*net.UDPAddr).IP, Port: port}
			if _, err := peer.WriteTo([]byte("INVITE"), to); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			n, from, err := r.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "INVITE" {
				t.Fatalf("ReadFrom = %q, %v", buf[:n], err)
			}
			want := peer.LocalAddr().(*net.UDPAddr)
			got := from.(*net.UDPAddr)
			if !got.IP.Equal(want.IP) || got.Port != want.Port {
				t.Fatalf("from %v, want %v", got, want)
			}
			// Answer to the address as sipgo builds it: a fresh UDPAddr.
			if n, err := r.WriteTo([]byte("SIP/2.0 603"), &net.UDPAddr{IP: got.IP, Port: got.Port}); err != nil || n != 11 {
				t.Fatalf("WriteTo = %d, %v", n, err)
			}
			peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, back, err := peer.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "SIP/2.0 603" {
				t.Fatalf("peer read %q, %v", buf[:n], err)
			}
			if back.(*net.UDPAddr).Port != port {
				t.Fatalf("answer came from %v, want port %d", back, port)
			}
		})
	}
}

// TestRawUDPWaits checks that ReadFrom parks until a datagram comes, keeps
// the socket's read deadline, and reports a closed socket as net.ErrClosed
// (sipgo stops its read loop quietly on that).
func TestRawUDPWaits(t *testing.T) {
	r := rawListen(t, "udp4", "127.0.0.1:0")
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 10)
		n, _, err := r.ReadFrom(buf)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(buf[:n])
	}()
	time.Sleep(50 * time.Millisecond)
	select {
	case s := <-got:
		t.Fatalf("ReadFrom returned %q before anything was sent", s)
	default:
	}
	peer, err := net.Dial("udp4", r.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peer.Write([]byte("ACK"))
	if s := <-got; s != "ACK" {
		t.Fatalf("ReadFrom = %q, want ACK", s)
	}

	r.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, _, err := r.ReadFrom(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrom past the deadline: %v, want a timeout", err)
	}
	r.SetReadDeadline(time.Time{})

	go func() { time.Sleep(30 * time.Millisecond); r.Close() }()
	if _, _, err := r.ReadFrom(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom on a closed socket: %v, want net.ErrClosed", err)
	}
	if _, err := r.WriteTo([]byte("x"), peer.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo on a closed socket: %v, want net.ErrClosed", err)
	}
}

// TestRawUDPWrongFamily sends an IPv6 address through an IPv4 socket: the
// net package's own error, not a malformed system call.
func TestRawUDPWrongFamily(t *testing.T) {
	r := rawListen(t, "udp4", "127.0.0.1:0")
	if _, err := r.WriteTo([]byte("x"), &net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 5060}); err == nil {
		t.Fatal("an IPv6 destination on an IPv4 socket was accepted")
	}
}

// TestRawUDPAllocations sends datagrams to the socket itself: a read
// allocates only the source address it returns, a write nothing (not
// checked under the race detector, which makes sync.Pool drop what it is
// given at random).
func TestRawUDPAllocations(t *testing.T) {
	r := rawListen(t, "udp4", "127.0.0.1:0")
	self := r.LocalAddr().(*net.UDPAddr)
	msg, buf := []byte("OPTIONS"), make([]byte, 64)
	write := func() {
		if _, err := r.WriteTo(msg, self); err != nil {
			t.Fatal(err)
		}
	}
	read := func() {
		if n, _, err := r.ReadFrom(buf); err != nil || n != len(msg) {
			t.Fatalf("ReadFrom = %d, %v", n, err)
		}
	}
	if allocs := testing.AllocsPerRun(200, func() { write(); read() }); allocs != 1 && !raceEnabled {
		t.Errorf("a write and a read allocate %v times; want 1 (the source address)", allocs)
	}
	for range 201 { // AllocsPerRun's warm-up and runs
		write()
	}
	if allocs := testing.AllocsPerRun(200, read); allocs != 1 {
		t.Errorf("a read allocates %v times; want 1 (the source address)", allocs)
	}
}

// TestRawUDPNilAddress is the net package's error, not a panic.
func TestRawUDPNilAddress(t *testing.T) {
	r := rawListen(t, "udp4", "127.0.0.1:0")
	if _, err := r.WriteTo([]byte("x"), (*net.UDPAddr)(nil)); err == nil {
		t.Fatal("a nil address was accepted")
	}
}

// TestZoneCache converts IPv6 scopes both ways, through the loopback
// interface and by decimal index.
func TestZoneCache(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip(err)
	}
	var z zoneCache
	for range 2 { // the second round is served from the cache
		if got := z.name(uint32(lo.Index)); got != "lo" {
			t.Fatalf("name(%d) = %q, want lo", lo.Index, got)
		}
		if got := z.index("lo"); got != uint32(lo.Index) {
			t.Fatalf("index(lo) = %d, want %d", got, lo.Index)
		}
	}
	if got := z.index("4242"); got != 4242 {
		t.Fatalf("index(4242) = %d", got)
	}
	if z.name(0) != "" || z.index("") != 0 {
		t.Fatal("no zone is not scope 0")
	}
	for i := range 100 { // a peer naming many zones does not grow it for ever
		z.index(strconv.Itoa(1000 + i))
	}
	if n := len(z.names) + len(z.indexes); n > 65 {
		t.Fatalf("the cache holds %d entries", n)
	}
}
