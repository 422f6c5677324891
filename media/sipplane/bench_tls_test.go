package sipplane

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trunkd/trunkd/media/sipplane/siptest"
)

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawRejectClient sends INVITEs over one connection and reads their final
// responses, as a carrier sending calls over one TLS connection (or one
// UDP socket) does. It is deliberately thin, so that nearly all the CPU
// measured is trunkd's.
type rawRejectClient struct {
	conn  net.Conn
	rd    *bufio.Reader
	proto string // UDP or TLS
	port  int    // trunkd's
	seq   atomic.Int64
}

func (c *rawRejectClient) call() error {
	n := c.seq.Add(1)
	local := c.conn.LocalAddr().String()
	branch := fmt.Sprintf("z9hG4bK-b%d-%p", n, c)
	head := func(method, to string) string {
		return fmt.Sprintf("%s sip:100@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=%s\r\nMax-Forwards: 70\r\n"+
			"From: <sip:carrier@127.0.0.1>;tag=b%d\r\nTo: %s\r\nCall-ID: %s@bench\r\nCSeq: 1 %s\r\n"+
			"Contact: <sip:carrier@%s>\r\nContent-Length: 0\r\n\r\n",
			method, c.port, c.proto, local, branch, n, to, branch, method, local)
	}
	if _, err := io.WriteString(c.conn, head("INVITE", "<sip:100@127.0.0.1>")); err != nil {
		return err
	}
	for {
		code, to, err := c.readResponse()
		if err != nil {
			return err
		}
		if code >= 200 {
			_, err = io.WriteString(c.conn, head("ACK", to))
			if code != 603 && err == nil {
				err = fmt.Errorf("final response %d; want 603", code)
			}
			return err
		}
	}
}

// readResponse reads one response: its code and To header.
func (c *rawRejectClient) readResponse() (int, string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	tp := textproto.NewReader(c.rd)
	line, err := tp.ReadLine()
	if err != nil {
		return 0, "", err
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil && err != io.EOF {
		return 0, "", err
	}
	if cl, _ := strconv.Atoi(hdr.Get("Content-Length")); cl > 0 {
		if _, err := c.rd.Discard(cl); err != nil {
			return 0, "", err
		}
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, "", fmt.Errorf("bad status line %q", line)
	}
	code, _ := strconv.Atoi(f[1])
	return code, hdr.Get("To"), nil
}

// udpPacketReader turns a UDP socket into a stream of whole datagrams.
type udpPacketReader struct{ c net.Conn }

func (u udpPacketReader) Read(b []byte) (int, error) { return u.c.Read(b) }

// BenchmarkRejectTLSvsUDP is the REJECT path (603 from the trunk's
// policy, answered on the server transaction) over UDP and over TLS on one
// kept-up connection per client, with 8 clients per CPU: calls per second
// and the process's CPU time per call (trunkd plus the thin raw clients).
func BenchmarkRejectTLSvsUDP(b *testing.B) {
	ca := newTestCA(b)
	p := newPlane(b, tlsPlaneConfig(ca.issue(b, "127.0.0.1"), nil))
	tr := testTrunk("reject", siptest.FreePort(b, "127.0.0.1"))
	tr.SIPTLSPort = siptest.FreePort(b, "127.0.0.1")
	apply(b, p, tr)
	dial := map[string]func() (net.Conn, error){
		"UDP": func() (net.Conn, error) {
			return net.Dial("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(tr.SourcePBXPort))))
		},
		"TLS": func() (net.Conn, error) {
			return tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(tr.SIPTLSPort))), &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"})
		},
	}
	for _, proto := range []string{"UDP", "TLS"} {
		b.Run(proto, func(b *testing.B) {
			b.SetParallelism(8)
			start, cpu := time.Now(), cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				conn, err := dial[proto]()
				if err != nil {
					b.Error(err)
					return
				}
				defer conn.Close()
				c := &rawRejectClient{conn: conn, proto: proto, port: int(tr.SourcePBXPort)}
				if proto == "TLS" {
					c.port = int(tr.SIPTLSPort)
					c.rd = bufio.NewReader(conn)
				} else {
					c.rd = bufio.NewReaderSize(udpPacketReader{conn}, 65535)
				}
				for pb.Next() {
					if err := c.call(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			elapsed, used := time.Since(start), cpuTime()-cpu
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
			b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/call")
		})
	}
}

// BenchmarkTLSHandshake is inbound TLS handshakes (ECDSA P-256, TLS 1.3)
// through the listener's own accept loop, one connection at a time.
func BenchmarkTLSHandshake(b *testing.B) {
	ca := newTestCA(b)
	p := newPlane(b, tlsPlaneConfig(ca.issue(b, "127.0.0.1"), nil))
	tr := testTrunk("tls", siptest.FreePort(b, "127.0.0.1"))
	tr.SIPTLSPort = siptest.FreePort(b, "127.0.0.1")
	apply(b, p, tr)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(tr.SIPTLSPort)))
	conf := &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"}
	start := time.Now()
	b.ResetTimer()
	for range b.N {
		c, err := tls.Dial("tcp", addr, conf)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "handshakes/s")
}

// BenchmarkSRTPPerPacket is one 20 ms PCMU packet (172 bytes of RTP)
// sent and received through a call's socket, plain and with SRTP
// (AES_CM_128_HMAC_SHA1_80, encrypt on one side and authenticate and
// decrypt on the other), over loopback.
func BenchmarkSRTPPerPacket(b *testing.B) {
	for _, encrypted := range []bool{false, true} {
		name := "plain"
		if encrypted {
			name = "srtp"
		}
		b.Run(name, func(b *testing.B) {
			tx, rx := srtpPair(b, encrypted)
			pkt := make([]byte, 172)
			pkt[0], pkt[1] = 0x80, 0
			buf := make([]byte, 1500)
			to := rx.LocalAddr()
			b.SetBytes(int64(len(pkt)))
			b.ResetTimer()
			for i := range b.N {
				binary16(pkt[2:], uint16(i))
				if _, err := tx.WriteTo(pkt, to); err != nil {
					b.Fatal(err)
				}
				if _, _, err := rx.ReadFrom(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func binary16(b []byte, v uint16) { b[0], b[1] = byte(v>>8), byte(v) }

// srtpPair is two call sockets on loopback, keyed to each other when
// encrypted.
func srtpPair(b *testing.B, encrypted bool) (tx, rx *srtpConn) {
	ip := net.IPv4(127, 0, 0, 1)
	var socks [2]*mediaSockets
	for i := range socks {
		var err error
		for port := 50000 + 2*i; ; port += 4 {
			if socks[i], err = bindPair(ip, port); err == nil {
				break
			}
			if port > 60000 {
				b.Fatal(err)
			}
		}
		s := socks[i]
		b.Cleanup(func() { s.rtp.Close(); s.rtcp.Close() })
	}
	if encrypted {
		k1, _ := newLocalCrypto(1, suites[0])
		k2, _ := newLocalCrypto(1, suites[0])
		if err := socks[0].secure(k1, k2); err != nil {
			b.Fatal(err)
		}
		if err := socks[1].secure(k2, k1); err != nil {
			b.Fatal(err)
		}
	}
	return socks[0].rtp, socks[1].rtp
}
