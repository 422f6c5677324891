package sipplane

import (
	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// FuzzInboundSIP sends arbitrary datagrams to a live listener, seeded with
// the RFC 4475 torture messages: whatever arrives, the listener must keep
// answering a valid INVITE from its trunk's carrier (603, REJECT).
func FuzzInboundSIP(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "sip", "torture", "*", "*.dat"))
	if len(seeds) == 0 {
		f.Fatal("no torture messages in testdata/sip/torture")
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	p := newPlane(f, Config{})
	port := siptest.FreePort(f, "127.0.0.1")
	apply(f, p, testTrunk("fuzz", port))
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	defer conn.Close()
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if _, err := conn.WriteTo(msg, dst); err != nil {
			return // e.g. larger than a datagram
		}
		if got := rawInvite(t, port, ""); got != 603 {
			t.Fatalf("after a %d-byte datagram a valid INVITE got %d; want 603", len(msg), got)
		}
	})
}
