package sipplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
)

// carrier is a SIP peer on loopback playing a carrier's part for outbound
// calls: a sipgo server whose INVITE handling each test scripts, with its
// own RTP socket advertised in its answers.
type carrier struct {
	t       testing.TB
	port    uint16
	network string // udp, tcp or tls
	rtp     *net.UDPConn

	mu         sync.Mutex
	invites    []*sip.Request
	options    int
	byes       int
	transports []string       // of the OPTIONS received
	registers  []*sip.Request // REGISTERs received
	script     func(c *carrier, req *sip.Request, tx sip.ServerTransaction)
}

func newCarrier(t testing.TB, script func(c *carrier, req *sip.Request, tx sip.ServerTransaction)) *carrier {
	t.Helper()
	return newCarrierOn(t, "udp", nil, script)
}

// newCarrierOn is a carrier listening on network ("udp", "tcp" or "tls",
// the last with conf).
func newCarrierOn(t testing.TB, network string, conf *tls.Config, script func(c *carrier, req *sip.Request, tx sip.ServerTransaction)) *carrier {
	t.Helper()
	c := &carrier{t: t, port: siptest.FreePort(t, "127.0.0.1"), script: script, network: network}
	rtp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c.rtp = rtp
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("carrier"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		c.mu.Lock()
		c.invites = append(c.invites, req)
		s := c.script
		c.mu.Unlock()
		s(c, req, tx)
	})
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		c.mu.Lock()
		c.byes++
		c.mu.Unlock()
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		c.mu.Lock()
		c.options++
		c.transports = append(c.transports, req.Transport())
		c.mu.Unlock()
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
		c.mu.Lock()
		c.registers = append(c.registers, req)
		c.mu.Unlock()
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		if ct := req.Contact(); ct != nil {
			res.AppendHeader(ct)
		}
		_ = tx.Respond(res)
	})
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	//lint:ignore SA1029 sipgo defines this key as a string constant
	lctx := context.WithValue(ctx, sipgo.ListenReadyCtxKey, sipgo.ListenReadyCtxValue(ready))
	addr := fmt.Sprintf("127.0.0.1:%d", c.port)
	if network == "tls" {
		go srv.ListenAndServeTLS(lctx, "tcp", addr, conf)
	} else {
		go srv.ListenAndServe(lctx, network, addr)
	}
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("carrier did not start")
	}
	t.Cleanup(func() { cancel(); ua.Close(); rtp.Close() })
	return c
}

func (c *carrier) setScript(s func(c *carrier, req *sip.Request, tx sip.ServerTransaction)) {
	c.mu.Lock()
	c.script = s
	c.mu.Unlock()
}

func (c *carrier) counts() (invites, options, byes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.invites), c.options, c.byes
}

func (c *carrier) lastInvite() *sip.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.invites) == 0 {
		return nil
	}
	return c.invites[len(c.invites)-1]
}

// contact is the carrier's Contact for its transport.
func (c *carrier) contact() string {
	switch c.network {
	case "tls":
		return fmt.Sprintf("<sips:carrier@127.0.0.1:%d>", c.port)
	case "tcp":
		return fmt.Sprintf("<sip:carrier@127.0.0.1:%d;transport=tcp>", c.port)
	}
	return fmt.Sprintf("<sip:carrier@127.0.0.1:%d>", c.port)
}

// respond sends a response in the INVITE's dialog (To tag added).
func (c *carrier) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, body []byte, hs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	if code > 100 {
		res.To().Params.Add("tag", "carrier-"+req.CallID().Value()[:8])
		res.AppendHeader(sip.NewHeader("Contact", c.contact()))
	}
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	for _, h := range hs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		c.t.Logf("carrier: respond %d: %v", code, err)
	}
}

// answerSDP advertises the carrier's RTP socket with PCMU (and the address
// ip, to test media_ip_cidrs).
func (c *carrier) answerSDP(ip string) []byte {
	port := c.rtp.LocalAddr().(*net.UDPAddr).Port
	return fmt.Appendf(nil, "v=0\r\no=carrier 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n", ip, ip, port)
}

// Scripts.

func answer(c *carrier, req *sip.Request, tx sip.ServerTransaction) {
	c.respond(req, tx, 180, "Ringing", nil)
	c.respond(req, tx, 200, "OK", c.answerSDP("127.0.0.1"))
}

func reply(code int, hs ...sip.Header) func(*carrier, *sip.Request, sip.ServerTransaction) {
	return func(c *carrier, req *sip.Request, tx sip.ServerTransaction) {
		c.respond(req, tx, code, reasonPhrase(code), nil, hs...)
	}
}

func silent(*carrier, *sip.Request, sip.ServerTransaction) {}

// ringForever sends 180 and never a final response; the server
// transaction answers a CANCEL with 487 itself.
func ringForever(c *carrier, req *sip.Request, tx sip.ServerTransaction) {
	c.respond(req, tx, 180, "Ringing", nil)
}

// progressStorm sends n 183s before answering: sipgo alone gives up after
// ten provisional responses.
func progressStorm(n int) func(*carrier, *sip.Request, sip.ServerTransaction) {
	return func(c *carrier, req *sip.Request, tx sip.ServerTransaction) {
		for range n {
			c.respond(req, tx, 183, "Session Progress", nil)
			time.Sleep(2 * time.Millisecond) // keep their order: sipgo handles packets concurrently
		}
		c.respond(req, tx, 200, "OK", c.answerSDP("127.0.0.1"))
	}
}

// challenge asks for digest credentials, then answers an INVITE that
// carries them.
func challenge(c *carrier, req *sip.Request, tx sip.ServerTransaction) {
	if req.GetHeader("Authorization") == nil {
		c.respond(req, tx, 401, "Unauthorized", nil,
			sip.NewHeader("WWW-Authenticate", `Digest realm="carrier", nonce="n0nce", algorithm=MD5, qop="auth"`))
		return
	}
	answer(c, req, tx)
}
