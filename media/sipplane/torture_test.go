package sipplane

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trunkd/trunkd/media/sipplane/siptest"
)

// TestTortureMessages sends every RFC 4475 torture message (valid and
// invalid) to a live listener over UDP and TCP: trunkd answers or drops
// each, never crashes, and still serves a normal call afterwards. The
// messages' sources match no trunk or carry hostile SDP, so none may be
// answered with a 2xx.
func TestTortureMessages(t *testing.T) {
	var files []string
	for _, dir := range []string{"valid", "invalid"} {
		m, err := filepath.Glob(filepath.Join("..", "..", "testdata", "sip", "torture", dir, "*.dat"))
		if err != nil || len(m) == 0 {
			t.Fatalf("no torture messages in testdata/sip/torture/%s: %v", dir, err)
		}
		files = append(files, m...)
	}
	p := newPlane(t, Config{})
	port := siptest.FreePort(t, "127.0.0.1")
	tr := testTrunk("t", port)
	tr.RejectAudioFile = "file:///x.wav"
	apply(t, p, tr)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	dst, _ := net.ResolveUDPAddr("udp", addr)
	for _, f := range files {
		msg, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := udp.WriteTo(msg, dst); err != nil {
			t.Fatal(err)
		}
		if code := readCode(udp, 100*time.Millisecond); code >= 200 && code < 300 {
			t.Errorf("%s over UDP was answered %d", filepath.Base(f), code)
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Write(msg)
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			c.Read(make([]byte, 4096))
			c.Close()
		}
	}
	if got := newUAC(t, "127.0.0.1").code(t, port); got != 200 {
		t.Fatalf("a normal call after %d torture messages got %d; want 200", len(files), got)
	}
}

// readCode returns the status code of the first response read within d
// that is final, or of the last provisional one; 0 when nothing came.
func readCode(c *net.UDPConn, d time.Duration) int {
	buf := make([]byte, 65535)
	code := 0
	deadline := time.Now().Add(d)
	for {
		c.SetReadDeadline(deadline)
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return code
		}
		if code = statusCode(buf[:n]); code >= 200 {
			return code
		}
	}
}
