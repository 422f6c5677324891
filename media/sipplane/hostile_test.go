package sipplane

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trunkd/trunkd/media/sipplane/siptest"
)

// rawInvite sends a hand-built INVITE with body over UDP from 127.0.0.1 to
// port and returns the final status code (0 when none came), ACKing it.
func rawInvite(t *testing.T, port uint16, body string) int {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)}
	local := conn.LocalAddr().String()
	branch := fmt.Sprintf("z9hG4bK-%d", time.Now().UnixNano())
	head := func(method string, cl int) string {
		return fmt.Sprintf("%s sip:100@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s\r\nMax-Forwards: 70\r\n"+
			"From: <sip:carrier@127.0.0.1>;tag=raw1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: %s@raw\r\nCSeq: 1 %s\r\n"+
			"Contact: <sip:carrier@%s>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n",
			method, port, local, branch, branch, method, local, cl)
	}
	if _, err := conn.WriteTo([]byte(head("INVITE", len(body))+body), dst); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		conn.SetReadDeadline(deadline)
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			return 0
		}
		code := statusCode(buf[:n])
		if code >= 200 {
			ack := strings.Replace(head("ACK", 0), "To: <sip:100@127.0.0.1>", "To: "+header(buf[:n], "To"), 1)
			ack = strings.Replace(ack, "CSeq: 1 ACK", "CSeq: 1 ACK", 1)
			conn.WriteTo([]byte(ack), dst)
			return code
		}
	}
	return 0
}

func statusCode(msg []byte) int {
	line, _, _ := bytes.Cut(msg, []byte("\r\n"))
	f := strings.Fields(string(line))
	if len(f) < 2 || !strings.HasPrefix(f[0], "SIP/") {
		return 0
	}
	code, _ := strconv.Atoi(f[1])
	return code
}

func header(msg []byte, name string) string {
	for _, line := range strings.Split(string(msg), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestHostileSDP: offers that would crash or confuse diago's SDP parser
// are refused with 488 by ours, and the listener keeps serving.
func TestHostileSDP(t *testing.T) {
	p := newPlane(t, Config{})
	port := siptest.FreePort(t, "127.0.0.1")
	tr := testTrunk("h", port)
	tr.RejectAudioFile = "file:///x.wav"
	tr.MediaIPCIDRs = []string{"127.0.0.0/8"}
	apply(t, p, tr)
	good := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	for name, body := range map[string]string{
		"short c=":          "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
		"short m=":          "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio\r\n",
		"no o=":             "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n",
		"outside cidrs":     strings.Replace(good, "c=IN IP4 127.0.0.1", "c=IN IP4 192.0.2.1", 1),
		"G729 only":         strings.Replace(good, "RTP/AVP 0", "RTP/AVP 18\r\na=rtpmap:18 G729/8000", 1),
		"SRTP":              strings.Replace(good, "RTP/AVP", "RTP/SAVP", 1),
		"bad rtpmap":        strings.Replace(good, "RTP/AVP 0", "RTP/AVP 96\r\na=rtpmap:96 /", 1),
		"two audio streams": good + "m=audio 4002 RTP/AVP 0\r\n",
		"garbage":           "\x00\x01\x02 not sdp at all",
	} {
		if got := rawInvite(t, port, body); got != 488 {
			t.Errorf("%s: INVITE got %d; want 488", name, got)
		}
	}
	if got := newUAC(t, "127.0.0.1").code(t, port); got != 200 {
		t.Fatalf("a good call after the hostile ones got %d; want 200", got)
	}
}
