package sipplane

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/trunk"
)

// The far end of these tests does its SRTP with pion/srtp directly and
// reads the SDP with plain string handling, not with trunkd's code.

var testProfiles = map[string]srtp.ProtectionProfile{
	"AES_CM_128_HMAC_SHA1_80": srtp.ProtectionProfileAes128CmHmacSha1_80,
	"AES_CM_128_HMAC_SHA1_32": srtp.ProtectionProfileAes128CmHmacSha1_32,
}

// peerKey is the far end's SDES key.
type peerKey struct {
	suite string
	key   []byte
	mki   []byte // sent in each packet when set
}

func newPeerKey(t testing.TB, suite string) peerKey {
	k := make([]byte, 30)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return peerKey{suite: suite, key: k}
}

// line is the a=crypto line; extra is appended to the inline key (a
// lifetime, an MKI).
func (k peerKey) line(tag int, extra string) string {
	return fmt.Sprintf("a=crypto:%d %s inline:%s%s", tag, k.suite, base64.StdEncoding.EncodeToString(k.key), extra)
}

func (k peerKey) context(t testing.TB) *srtp.Context {
	t.Helper()
	var opts []srtp.ContextOption
	if k.mki != nil {
		opts = append(opts, srtp.MasterKeyIndicator(k.mki))
	}
	c, err := srtp.CreateContext(k.key[:16], k.key[16:], testProfiles[k.suite], opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sdpCryptos reads the a=crypto lines of an SDP: tag -> key.
func sdpCryptos(t testing.TB, body []byte) map[int]peerKey {
	t.Helper()
	out := map[int]peerKey{}
	for _, l := range strings.Split(string(body), "\n") {
		l = strings.TrimSpace(l)
		rest, ok := strings.CutPrefix(l, "a=crypto:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		tag, _ := strconv.Atoi(f[0])
		inline, _, _ := strings.Cut(strings.TrimPrefix(f[2], "inline:"), "|")
		key, err := base64.StdEncoding.DecodeString(inline)
		if err != nil || len(key) != 30 {
			t.Fatalf("trunkd sent a bad key in %q", f[1])
		}
		out[tag] = peerKey{suite: f[1], key: key}
	}
	return out
}

// sdpProto is the m=audio profile of an SDP.
func sdpProto(body []byte) string {
	for _, l := range strings.Split(string(body), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "m=audio" {
			return f[2]
		}
	}
	return ""
}

// sdpMedia is the RTP address of an SDP.
func sdpMedia(t testing.TB, body []byte) *net.UDPAddr {
	t.Helper()
	var ip string
	var port int
	for _, l := range strings.Split(string(body), "\n") {
		l = strings.TrimSpace(l)
		if rest, ok := strings.CutPrefix(l, "c=IN IP4 "); ok {
			ip = rest
		}
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "m=audio" {
			port, _ = strconv.Atoi(f[1])
		}
	}
	if ip == "" || port == 0 {
		t.Fatalf("no media address in %q", body)
	}
	return &net.UDPAddr{IP: net.ParseIP(ip), Port: port}
}

// srtpPeer is the far end's media: it decrypts what trunkd sends with
// trunkd's key and sends packets encrypted with its own.
type srtpPeer struct {
	conn      *net.UDPConn
	good, bad atomic.Int64 // packets received that did / did not decrypt
}

func (p *srtpPeer) receive(t testing.TB, theirs peerKey) {
	ctx := theirs.context(t)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := p.conn.ReadFrom(buf)
			if err != nil {
				return
			}
			var h rtp.Header
			out, err := ctx.DecryptRTP(nil, buf[:n], &h)
			if err != nil || len(out)-h.MarshalSize() != 160 {
				p.bad.Add(1)
				continue
			}
			p.good.Add(1)
		}
	}()
}

// plainPeer counts plain PCMU packets received, for calls that must not
// be encrypted.
func (p *srtpPeer) receivePlain() {
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := p.conn.ReadFrom(buf)
			if err != nil {
				return
			}
			var pkt rtp.Packet
			if pkt.Unmarshal(buf[:n]) == nil && pkt.PayloadType == 0 && len(pkt.Payload) == 160 {
				p.good.Add(1)
			} else {
				p.bad.Add(1)
			}
		}
	}()
}

// send sends n packets of PCMU silence to dst, encrypted with mine.
func (p *srtpPeer) send(t testing.TB, mine peerKey, dst *net.UDPAddr, n int) {
	ctx := mine.context(t)
	go func() {
		for i := range n {
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(1000 + i),
				Timestamp: uint32(160 * i), SSRC: 0x5eed}, Payload: bytes.Repeat([]byte{0xff}, 160)}
			raw, _ := pkt.Marshal()
			enc, err := ctx.EncryptRTP(nil, raw, nil)
			if err != nil {
				return
			}
			if _, err := p.conn.WriteTo(enc, dst); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
}

func newSRTPPeer(t testing.TB) *srtpPeer {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &srtpPeer{conn: c}
}

func (p *srtpPeer) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

// offerSDP is an offer for the peer's socket with proto and a=crypto
// lines.
func offerSDP(port int, proto string, cryptos ...string) []byte {
	s := fmt.Sprintf("v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d %s 0 101\r\n"+
		"a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n", port, proto)
	for _, c := range cryptos {
		s += c + "\r\n"
	}
	return []byte(s)
}

// sipCaller sends INVITEs with hand-made SDP, as a carrier would.
func sipCaller(t testing.TB) *sipgo.DialogUA {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("peer"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	cl, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	return &sipgo.DialogUA{Client: cl, ContactHDR: sip.ContactHeader{Address: sip.Uri{User: "peer", Host: "127.0.0.1"}}}
}

// inviteSDP sends an INVITE with body to trunkd on port and waits for the
// final answer: the dialog when answered (ACKed), else nil and the code.
func inviteSDP(t testing.TB, ua *sipgo.DialogUA, port uint16, body []byte) (*sipgo.DialogClientSession, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := ua.Invite(ctx, sip.Uri{User: "100", Host: "127.0.0.1", Port: int(port)}, body, sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatalf("INVITE: %v", err)
	}
	err = d.WaitAnswer(ctx, sipgo.AnswerOptions{})
	var re *sipgo.ErrDialogResponse
	if errorsAs(err, &re) {
		return nil, re.Res.StatusCode
	}
	if err != nil {
		t.Fatalf("INVITE: %v", err)
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Hang up before the plane shuts down: it waits for calls in flight.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = d.Bye(ctx)
		d.Close()
	})
	return d, 200
}

// srtpPlane is a plane answering with 3 s of audio on a trunk with the
// inbound policy.
func srtpPlane(t *testing.T, in trunk.MediaEncryption) (*Plane, *trunk.Trunk) {
	p := newPlane(t, Config{Audio: &fakeAudio{length: 3 * time.Second}})
	tr := testTrunk("sec", siptest.FreePort(t, "127.0.0.1"))
	tr.RejectIncomingCalls, tr.InboundRule, tr.InboundAudioURL = false, trunk.RulePlayAndHangup, "https://audio.example/x.wav"
	tr.InboundMediaEncryption = in
	apply(t, p, tr)
	return p, tr
}

// inboundCallOf is the plane's inbound call with the peer's Call-ID.
func inboundCallOf(t testing.TB, p *Plane, d *sipgo.DialogClientSession) *inboundCall {
	c, ok := p.calls.inbound(d.InviteRequest.CallID().Value())
	if !ok {
		t.Fatal("the call is not in flight")
	}
	return c
}

// received is how many RTP packets trunkd read on an inbound call.
func (c *inboundCall) received() int64 {
	c.mu.Lock()
	w := c.rtp
	c.mu.Unlock()
	if w == nil {
		return 0
	}
	return w.rx.Snapshot().Received
}

func TestInboundSRTPPolicies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy trunk.MediaEncryption
		proto  string
		suite  string // of the offered key; "" for none
		extra  string // after the inline key
		code   int
		srtp   bool // the answer is RTP/SAVP and media is encrypted
	}{
		{"disable refuses SAVP", trunk.EncryptDisable, "RTP/SAVP", "AES_CM_128_HMAC_SHA1_80", "", 488, false},
		{"disable answers AVP with a=crypto plain", trunk.EncryptDisable, "RTP/AVP", "AES_CM_128_HMAC_SHA1_80", "", 200, false},
		{"allow takes SAVP _80", trunk.EncryptAllow, "RTP/SAVP", "AES_CM_128_HMAC_SHA1_80", "", 200, true},
		{"allow takes SAVP _32 with lifetime and MKI", trunk.EncryptAllow, "RTP/SAVP", "AES_CM_128_HMAC_SHA1_32", "|2^31|1:1", 200, true},
		{"allow answers AVP plain", trunk.EncryptAllow, "RTP/AVP", "", "", 200, false},
		{"allow answers AVP with a=crypto plain", trunk.EncryptAllow, "RTP/AVP", "AES_CM_128_HMAC_SHA1_80", "", 200, false},
		{"require refuses AVP", trunk.EncryptRequire, "RTP/AVP", "", "", 488, false},
		{"require refuses SAVP without a key", trunk.EncryptRequire, "RTP/SAVP", "", "", 488, false},
		{"require refuses an unknown suite", trunk.EncryptRequire, "RTP/SAVP", "AES_256_CM_HMAC_SHA1_80", "", 488, false},
		{"require refuses a bad key", trunk.EncryptRequire, "RTP/SAVP", "AES_CM_128_HMAC_SHA1_80", "|2^31|1:99", 488, false},
		{"require takes SAVP _80 with a lifetime", trunk.EncryptRequire, "RTP/SAVP", "AES_CM_128_HMAC_SHA1_80", "|2147483648", 200, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, tr := srtpPlane(t, tc.policy)
			peer := newSRTPPeer(t)
			var mine peerKey
			var cryptos []string
			if tc.suite != "" {
				mine = newPeerKey(t, tc.suite)
				if strings.HasSuffix(tc.extra, "1:1") {
					mine.mki = []byte{1}
				}
				cryptos = append(cryptos, mine.line(7, tc.extra))
			}
			d, code := inviteSDP(t, sipCaller(t), tr.SourcePBXPort, offerSDP(peer.port(), tc.proto, cryptos...))
			if code != tc.code {
				t.Fatalf("INVITE = %d; want %d", code, tc.code)
			}
			if d == nil {
				return
			}
			answer := d.InviteResponse.Body()
			keys := sdpCryptos(t, answer)
			if !tc.srtp {
				if got := sdpProto(answer); got != "RTP/AVP" || len(keys) != 0 {
					t.Fatalf("answer profile %s with %d keys; want RTP/AVP without keys", got, len(keys))
				}
				peer.receivePlain()
				waitFor(t, "plain audio from trunkd", func() bool { return peer.good.Load() >= 10 })
				return
			}
			theirs, ok := keys[7]
			if got := sdpProto(answer); got != "RTP/SAVP" || len(keys) != 1 || !ok || theirs.suite != tc.suite {
				t.Fatalf("answer profile %s, keys %v; want RTP/SAVP with one %s key under tag 7", got, len(keys), tc.suite)
			}
			peer.receive(t, theirs)
			peer.send(t, mine, sdpMedia(t, answer), 100)
			c := inboundCallOf(t, p, d)
			waitFor(t, "audio both ways", func() bool { return peer.good.Load() >= 10 && c.received() >= 20 })
			if b := peer.bad.Load(); b != 0 {
				t.Errorf("%d packets from trunkd did not decrypt", b)
			}
			if n := c.media().dropped(); n != 0 {
				t.Errorf("trunkd dropped %d of our packets", n)
			}
		})
	}
}

func TestInboundSRTPSurvivesReinvite(t *testing.T) {
	p, tr := srtpPlane(t, trunk.EncryptRequire)
	peer := newSRTPPeer(t)
	mine := newPeerKey(t, "AES_CM_128_HMAC_SHA1_80")
	d, code := inviteSDP(t, sipCaller(t), tr.SourcePBXPort, offerSDP(peer.port(), "RTP/SAVP", mine.line(1, "")))
	if code != 200 {
		t.Fatalf("INVITE = %d; want 200", code)
	}
	theirs := sdpCryptos(t, d.InviteResponse.Body())[1]
	peer.receive(t, theirs)
	c := inboundCallOf(t, p, d)
	waitFor(t, "SRTP from trunkd", func() bool { return peer.good.Load() >= 5 })

	// A re-INVITE (same key) keeps SRTP with the same keys.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	re := sip.NewRequest(sip.INVITE, d.InviteResponse.Contact().Address)
	re.SetBody(offerSDP(peer.port(), "RTP/SAVP", mine.line(1, "")))
	re.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res, err := d.Do(ctx, re)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("re-INVITE = %v, %v; want 200", res, err)
	}
	ack := sip.NewRequest(sip.ACK, d.InviteResponse.Contact().Address)
	ack.AppendHeader(sip.NewHeader("CSeq", fmt.Sprintf("%d ACK", re.CSeq().SeqNo)))
	_ = d.WriteRequest(ack)
	if got, keys := sdpProto(res.Body()), sdpCryptos(t, res.Body()); got != "RTP/SAVP" || !bytes.Equal(keys[1].key, theirs.key) {
		t.Fatalf("re-INVITE answer %s with keys %d; want RTP/SAVP with the same key", got, len(keys))
	}
	before := peer.good.Load()
	peer.send(t, mine, sdpMedia(t, res.Body()), 100)
	waitFor(t, "SRTP both ways after the re-INVITE", func() bool { return peer.good.Load() >= before+10 && c.received() >= 20 })
	if b := peer.bad.Load(); b != 0 {
		t.Errorf("%d packets from trunkd did not decrypt", b)
	}

	// A plain re-offer on an SRTP call is refused.
	re2 := sip.NewRequest(sip.INVITE, d.InviteResponse.Contact().Address)
	re2.SetBody(offerSDP(peer.port(), "RTP/AVP"))
	re2.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	if res, err := d.Do(ctx, re2); err != nil || res.StatusCode != 488 {
		t.Fatalf("plain re-INVITE on an SRTP call = %v, %v; want 488", res, err)
	}
}

func TestInboundSRTPDropsForgedPackets(t *testing.T) {
	p, tr := srtpPlane(t, trunk.EncryptRequire)
	peer := newSRTPPeer(t)
	offered, forged := newPeerKey(t, "AES_CM_128_HMAC_SHA1_80"), newPeerKey(t, "AES_CM_128_HMAC_SHA1_80")
	d, code := inviteSDP(t, sipCaller(t), tr.SourcePBXPort, offerSDP(peer.port(), "RTP/SAVP", offered.line(1, "")))
	if code != 200 {
		t.Fatalf("INVITE = %d; want 200", code)
	}
	c := inboundCallOf(t, p, d)
	peer.send(t, forged, sdpMedia(t, d.InviteResponse.Body()), 30)
	waitFor(t, "forged packets dropped", func() bool { return c.media().dropped() >= 30 })
	if n := c.received(); n != 0 {
		t.Errorf("trunkd took %d packets under a key it was not given", n)
	}
}

// srtpAnswer is a carrier script answering an SRTP offer with its key
// mine under the offer's tag.
func srtpAnswer(tag int, mine peerKey) func(*carrier, *sip.Request, sip.ServerTransaction) {
	return func(c *carrier, req *sip.Request, tx sip.ServerTransaction) {
		body := fmt.Sprintf("v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/SAVP 0 101\r\n"+
			"a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n%s\r\n",
			c.rtp.LocalAddr().(*net.UDPAddr).Port, mine.line(tag, ""))
		c.respond(req, tx, 200, "OK", []byte(body))
	}
}

func TestOutboundSRTP(t *testing.T) {
	for _, tc := range []struct {
		name     string
		policy   trunk.MediaEncryption
		srtp     bool // the carrier answers with SRTP (tag 2, the _32 suite)
		answered bool
	}{
		{"require, SRTP answer", trunk.EncryptRequire, true, true},
		{"allow, SRTP answer", trunk.EncryptAllow, true, true},
		{"allow, plain answer", trunk.EncryptAllow, false, true},
		{"require, plain answer", trunk.EncryptRequire, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mine := newPeerKey(t, "AES_CM_128_HMAC_SHA1_32")
			script := answer
			if tc.srtp {
				script = srtpAnswer(2, mine)
			}
			c := newCarrier(t, script)
			p := newDialPlane(t, Config{Audio: &fakeAudio{length: 2 * time.Second}})
			tr := dialTrunkFor(t, "out", c)
			tr.OutboundMediaEncryption = tc.policy
			apply(t, p, tr)
			res := dial(t, p, trunk.DialRequest{TrunkID: "out", To: "100", Timeout: 5 * time.Second, AudioURL: "https://audio.example/x.wav"})
			inv := c.lastInvite()
			if got, keys := sdpProto(inv.Body()), sdpCryptos(t, inv.Body()); got != "RTP/SAVP" || len(keys) != 2 ||
				keys[1].suite != "AES_CM_128_HMAC_SHA1_80" || keys[2].suite != "AES_CM_128_HMAC_SHA1_32" {
				t.Fatalf("offer %s with keys %v; want RTP/SAVP with _80 (tag 1) and _32 (tag 2)", got, keys)
			}
			if res.Answered != tc.answered {
				t.Fatalf("Dial = %+v; want answered %v", res, tc.answered)
			}
			if !tc.answered {
				if !strings.Contains(res.Reason, "without SRTP") || !strings.Contains(res.Reason, "REQUIRE") {
					t.Errorf("reason %q; want it to say the answer had no SRTP under REQUIRE", res.Reason)
				}
				waitFor(t, "ACK and BYE", func() bool { _, _, b := c.counts(); return b == 1 })
				cs, _ := p.Counters("out")
				for k, n := range cs.Calls {
					if k[1] == string(outCarrierFault) && n != 0 {
						t.Errorf("counters %v; the refusal must not count as a carrier fault", cs.Calls)
					}
				}
				if st := p.TrunkStatus("out"); st.Breaker != trunk.BreakerClosed {
					t.Errorf("breaker %s; want closed", st.Breaker)
				}
				return
			}
			peer := &srtpPeer{conn: c.rtp}
			if !tc.srtp {
				peer.receivePlain()
				waitFor(t, "plain audio", func() bool { return peer.good.Load() >= 10 })
				_ = p.Hangup(context.Background(), res.CallID)
				return
			}
			peer.receive(t, sdpCryptos(t, inv.Body())[2])
			call, _ := p.calls.get(res.CallID)
			oc := call.(*outboundCall)
			peer.send(t, mine, sdpMedia(t, inv.Body()), 100)
			waitFor(t, "SRTP both ways", func() bool {
				return peer.good.Load() >= 10 && oc.received() >= 20
			})
			if b, d := peer.bad.Load(), oc.socks.dropped(); b != 0 || d != 0 {
				t.Errorf("%d packets from trunkd did not decrypt; trunkd dropped %d", b, d)
			}
			_ = p.Hangup(context.Background(), res.CallID)
		})
	}
}

// media is the call's sockets, read under its lock.
func (c *inboundCall) media() *mediaSockets {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.socks
}

// received is how many RTP packets trunkd read on an outbound call.
func (c *outboundCall) received() int64 {
	c.mu.Lock()
	w := c.rtp
	c.mu.Unlock()
	if w == nil {
		return 0
	}
	return w.rx.Snapshot().Received
}

// rawReinvite sends an in-dialog INVITE with body for the dialog of inv
// (trunkd's INVITE, answered by carrier c) to trunkd's listener on port,
// as the carrier would, and returns the final response's code and body.
func rawReinvite(t *testing.T, inv *sip.Request, port uint16, body []byte) (int, []byte) {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	callID := inv.CallID().Value()
	branch := fmt.Sprintf("z9hG4bK-re%d", time.Now().UnixNano())
	msg := fmt.Sprintf("INVITE sip:trunkd@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s\r\nMax-Forwards: 70\r\n"+
		"From: <sip:100@127.0.0.1>;tag=carrier-%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 7 INVITE\r\n"+
		"Contact: <sip:carrier@%s>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		port, local, branch, callID[:8], inv.From().Value(), callID, local, len(body), body)
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)}
	if _, err := conn.WriteTo([]byte(msg), dst); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no answer to the re-INVITE: %v", err)
		}
		code := statusCode(buf[:n])
		if code < 200 {
			continue
		}
		_, resBody, _ := bytes.Cut(buf[:n], []byte("\r\n\r\n"))
		ack := fmt.Sprintf("ACK sip:trunkd@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s-ack\r\nMax-Forwards: 70\r\n"+
			"From: <sip:100@127.0.0.1>;tag=carrier-%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 7 ACK\r\nContent-Length: 0\r\n\r\n",
			port, local, branch, callID[:8], inv.From().Value(), callID)
		_, _ = conn.WriteTo([]byte(ack), dst)
		return code, append([]byte(nil), resBody...)
	}
}

func TestOutboundSRTPSurvivesReinvite(t *testing.T) {
	mine := newPeerKey(t, "AES_CM_128_HMAC_SHA1_32")
	c := newCarrier(t, srtpAnswer(2, mine))
	p := newDialPlane(t, Config{Audio: &fakeAudio{length: 5 * time.Second}})
	tr := dialTrunkFor(t, "out", c)
	tr.OutboundMediaEncryption = trunk.EncryptRequire
	apply(t, p, tr)
	res := dial(t, p, trunk.DialRequest{TrunkID: "out", To: "100", Timeout: 5 * time.Second, AudioURL: "https://audio.example/x.wav"})
	if !res.Answered {
		t.Fatalf("Dial = %+v; want answered", res)
	}
	defer p.Hangup(context.Background(), res.CallID)
	inv := c.lastInvite()
	ours := sdpCryptos(t, inv.Body())[2]

	code, answer := rawReinvite(t, inv, tr.SourcePBXPort, offerSDP(c.rtp.LocalAddr().(*net.UDPAddr).Port, "RTP/SAVP", mine.line(2, "")))
	keys := sdpCryptos(t, answer)
	if code != 200 || sdpProto(answer) != "RTP/SAVP" || len(keys) != 1 || !bytes.Equal(keys[2].key, ours.key) {
		t.Fatalf("re-INVITE = %d, %s with %d keys; want 200 RTP/SAVP with our tag-2 key again", code, sdpProto(answer), len(keys))
	}
	peer := &srtpPeer{conn: c.rtp}
	peer.receive(t, ours)
	call, _ := p.calls.get(res.CallID)
	oc := call.(*outboundCall)
	peer.send(t, mine, sdpMedia(t, answer), 100)
	waitFor(t, "SRTP both ways after the re-INVITE", func() bool { return peer.good.Load() >= 10 && oc.received() >= 20 })
	if b, d := peer.bad.Load(), oc.socks.dropped(); b != 0 || d != 0 {
		t.Errorf("%d packets from trunkd did not decrypt; trunkd dropped %d", b, d)
	}

	if code, _ := rawReinvite(t, inv, tr.SourcePBXPort, offerSDP(c.rtp.LocalAddr().(*net.UDPAddr).Port, "RTP/AVP")); code != 488 {
		t.Errorf("plain re-INVITE on an SRTP call = %d; want 488", code)
	}
}
