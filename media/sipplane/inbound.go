package sipplane

import (
	"bytes"
	"context"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/trunk"
)

// inboundCall is one inbound call in flight.
type inboundCall struct {
	p        *Plane
	lv       *live // the configuration the call started with
	l        *listener
	d        *diago.DialogServerSession
	offer    *offer
	ms       *media.MediaSession
	socks    *mediaSockets // the call's RTP/RTCP sockets, SRTP keys with them
	port     int
	start    time.Time
	hungUp   atomic.Bool
	finished atomic.Bool   // no longer counted in Plane.active
	reack    atomic.Uint32 // CSeq of the last re-INVITE answered here

	mu         sync.Mutex // guards ms after the answer: re-INVITEs replace it
	handed     bool       // ms was given to diago
	answeredAt time.Time
	rtp        *rtpWatch
}

func (c *inboundCall) answered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ms != nil
}

// serve handles a new INVITE on l. diago runs it in the INVITE's goroutine
// and hangs up (BYE, or 480 when unanswered) when it returns.
func (l *listener) serve(d *diago.DialogServerSession) {
	p := l.p
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("panic handling INVITE", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	req := d.InviteRequest
	v := l.decide(req)
	if !v.final() && !v.lv.slots.acquire(p.limit(v.lv)) {
		v = l.overLimit(v.lv)
	}
	if v.final() {
		l.settle(req, v, func(code int, reason string, hs ...sip.Header) { p.respond(d, code, reason, hs...) })
		return
	}
	lv := v.lv
	l.active.Add(1)
	p.active.Add(1)
	c := &inboundCall{p: p, lv: lv, l: l, d: d, offer: v.offer, start: time.Now()}
	id := req.CallID().Value()
	p.calls.add(trunk.Inbound, id, c)
	defer c.end(id)
	c.run(v)
}

// end closes the call's media, records its quality and frees its slot,
// then takes it off the list of calls: a client that sees the call gone
// from ListCalls finds the trunk's status already counting it.
func (c *inboundCall) end(id string) {
	c.closeMedia()
	c.finish()
	c.p.calls.remove(trunk.Inbound, id, c)
}

// retryAfterHeader is the Retry-After header of our 503 replies.
func (p *Plane) retryAfterHeader() sip.Header {
	return sip.NewHeader("Retry-After", strconv.Itoa(int(p.cfg.RetryAfter/time.Second)))
}

// respond sends a final response; diago's Respond waits for the ACK.
func (p *Plane) respond(d *diago.DialogServerSession, code int, reason string, h ...sip.Header) {
	if err := d.Respond(code, reason, nil, h...); err != nil {
		p.log.Debug("response not delivered", "code", code, "err", err)
	}
}

// policy maps a trunk's inbound settings to an action and its audio URL;
// REJECT is actReply, with reject_sip_code.
func policy(t *trunk.Trunk) (action, string) {
	if t.RejectIncomingCalls {
		if t.RejectAudioFile != "" {
			return actPlay, t.RejectAudioFile
		}
		return actReply, ""
	}
	switch t.InboundRule {
	case trunk.RulePlayAndHangup:
		return actPlay, t.InboundAudioURL
	case trunk.RuleNotifyAndHangup:
		return actNotify, ""
	case trunk.RuleHandleAI:
		return actBridge, ""
	}
	return actReply, ""
}

// run carries out a verdict that needs the dialog.
func (c *inboundCall) run(v verdict) {
	switch v.act {
	case actPlay:
		c.play(v.url)
	case actNotify:
		c.p.notify(c.d.Context(), c.lv.t, c.d.InviteRequest)
		c.reject()
	case actBridge:
		c.bridge(v.agent)
	default:
		c.reject()
	}
}

// respond ends the call with a final non-2xx response. The call stops
// counting as in flight at once: diago then waits up to 32 s for an ACK
// that a hostile or broken peer may never send, and shutdown must not.
func (c *inboundCall) respond(code int, reason string, h ...sip.Header) {
	c.finish()
	c.hungUp.Store(true) // nothing left to hang up
	c.p.respond(c.d, code, reason, h...)
}

// finish stops counting the call as in flight, and against the trunk's
// channel_limit, once.
func (c *inboundCall) finish() {
	if c.finished.CompareAndSwap(false, true) {
		c.mu.Lock()
		at, w := c.answeredAt, c.rtp
		c.mu.Unlock()
		if !at.IsZero() {
			c.lv.h.ended(time.Since(at), w)
		}
		c.lv.slots.release()
		c.l.active.Add(-1)
		c.p.active.Add(-1)
	}
}

func (c *inboundCall) reject() {
	c.lv.h.count(trunk.Inbound, outRejected)
	code := int(c.lv.t.RejectSIPCode)
	c.respond(code, reasonPhrase(code))
}

// checkOffer parses an offer and checks it against lv's media_ip_cidrs
// and codecs: code is 0 when it is acceptable, else 488 and why.
func checkOffer(lv *live, body []byte) (*offer, int, string) {
	o, err := parseOffer(body)
	if err != nil {
		return nil, sip.StatusNotAcceptableHere, "Not Acceptable Here: " + err.Error()
	}
	if len(lv.cidrs) > 0 && !inPrefixes(lv.cidrs, o.addr) {
		return nil, sip.StatusNotAcceptableHere, "Not Acceptable Here: media address not allowed"
	}
	if _, ok := negotiate(lv.codecs, o.codecs); !ok {
		return nil, sip.StatusNotAcceptableHere, "Not Acceptable Here: no common codec"
	}
	use, why := acceptProfile(o, lv.t.InboundMediaEncryption)
	if why != "" {
		return nil, sip.StatusNotAcceptableHere, "Not Acceptable Here: " + why
	}
	o.use = use
	return o, 0, ""
}

func inPrefixes(l []netip.Prefix, a netip.Addr) bool {
	for _, p := range l {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// play answers, plays url to the end and hangs up. If the audio cannot be
// fetched the call is rejected with reject_sip_code instead of answered.
func (c *inboundCall) play(url string) {
	codecs, _ := negotiate(c.lv.codecs, c.offer.codecs)
	f := formatFor(codecs[0])
	_ = c.d.Trying()
	ctx, cancel := context.WithTimeout(c.d.Context(), 15*time.Second)
	wav, err := c.p.cfg.Audio.WAV(ctx, url, f)
	cancel()
	if err != nil {
		c.p.log.Warn("audio unavailable; rejecting", "trunk_id", c.lv.t.TrunkID, "err", err)
		c.reject()
		return
	}
	if code, err := c.openMedia(codecs); err != nil {
		c.p.log.Warn("cannot set up media", "trunk_id", c.lv.t.TrunkID, "code", code, "err", err)
		if code == sip.StatusServiceUnavailable {
			c.respond(code, "Media Unavailable", c.p.retryAfterHeader())
		} else {
			c.respond(code, reasonPhrase(code))
		}
		return
	}
	if err := c.answerSDP(); err != nil {
		c.p.log.Debug("answer failed", "trunk_id", c.lv.t.TrunkID, "err", err)
		return
	}
	c.answer(codecs[0])
	err = playWAV(c.d.PlaybackCreate, wav)
	if err != nil && c.d.Context().Err() == nil {
		c.p.log.Warn("playback failed", "trunk_id", c.lv.t.TrunkID, "err", err)
	}
	c.hangup(c.d.Context())
}

// answerSDP sends the 200 with our SDP (diago's plain one, with our key
// added when the call runs SRTP) and our Contact for the INVITE's
// transport. It waits for the ACK.
func (c *inboundCall) answerSDP() error {
	body := c.ms.LocalSDP()
	if c.socks.encrypted() {
		body = secureSDP(body, c.socks.local)
	}
	return c.d.DialogServerSession.Respond(sip.StatusOK, "OK", body,
		sip.NewHeader("Content-Type", "application/sdp"), c.l.contactHeader(c.d.InviteRequest.Transport()))
}

// answer marks the call answered and starts watching its RTP.
func (c *inboundCall) answer(codec media.Codec) {
	c.lv.h.count(trunk.Inbound, outAnswered)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answeredAt = time.Now()
	c.rtp = watchRTP(c.d.RTPPacketReader, nil, int(codec.SampleRate))
}

// snapshot describes the call for ListCalls.
func (c *inboundCall) snapshot() trunk.Call {
	req := c.d.InviteRequest
	st := trunk.CallRinging
	c.mu.Lock()
	if !c.answeredAt.IsZero() {
		st = trunk.CallAnswered
	}
	c.mu.Unlock()
	return trunk.Call{CallID: req.CallID().Value(), TrunkID: c.lv.t.TrunkID, Direction: trunk.Inbound,
		From: req.From().Address.User, To: req.To().Address.User, State: st, Start: c.start}
}

// playWAV plays a complete WAV file to the end of the file or of ctx.
func playWAV(create func() (diago.AudioPlayback, error), wav []byte) error {
	pb, err := create()
	if err != nil {
		return err
	}
	_, err = pb.Play(bytes.NewReader(wav), "audio/wav")
	return err
}

// openMedia binds the call's RTP sockets from the trunk's own port range
// and negotiates the offer, before diago's Answer (which then only sends
// our SDP).
// On failure it returns the SIP code to answer: 503 when no port is free,
// 488 when diago refuses the offer.
func (c *inboundCall) openMedia(codecs []media.Codec) (int, error) {
	ms, port, socks, err := c.lv.newSession(codecs)
	if err != nil {
		return sip.StatusServiceUnavailable, err
	}
	c.mu.Lock()
	c.ms, c.port, c.socks = ms, port, socks
	c.mu.Unlock()
	body := c.d.InviteRequest.Body()
	if c.offer.use != nil {
		body = plainSDP(body)
	}
	if err := ms.RemoteSDP(body); err != nil {
		return sip.StatusNotAcceptableHere, err
	}
	if peer := c.offer.use; peer != nil {
		local, err := newLocalCrypto(peer.tag, peer.suite)
		if err == nil {
			err = socks.secure(local, peer)
		}
		if err != nil {
			return sip.StatusInternalServerError, err
		}
	}
	rtp := media.NewRTPSession(ms)
	c.d.InitMediaSession(ms, media.NewRTPPacketReaderSession(rtp), media.NewRTPPacketWriterSession(rtp))
	c.mu.Lock()
	c.handed = true // diago closes the sockets with the dialog
	c.mu.Unlock()
	return 0, nil
}

// closeMedia returns the call's port to the pool, closing its sockets
// unless diago owns them.
func (c *inboundCall) closeMedia() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ms != nil {
		if !c.handed {
			c.ms.Close()
		}
		c.lv.ports.release(c.port)
	}
}

// hangup ends the call once: BYE when answered, else a final response.
// An answered call is ended with Bye directly: diago's Hangup reads the
// dialog state, which the ACK's handler may not have confirmed yet (it runs
// concurrently), and would then send 480 on an answered call.
func (c *inboundCall) hangup(ctx context.Context) {
	if !c.hungUp.CompareAndSwap(false, true) {
		return
	}
	var err error
	if c.answered() {
		err = c.d.Bye(ctx)
	} else {
		err = c.d.Hangup(ctx)
	}
	if err != nil {
		c.p.log.Debug("hangup", "trunk_id", c.lv.t.TrunkID, "err", err)
	}
}

func sourceIP(src string) netip.Addr {
	ap, err := netip.ParseAddrPort(src)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// ruriUser extracts the user of a SIP URI ("" when it has none or does
// not parse).
func ruriUser(s string) string {
	var u sip.Uri
	if s == "" || sip.ParseUri(s, &u) != nil {
		return ""
	}
	return u.User
}

// ruriHost extracts the host of a SIP URI.
func ruriHost(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		return "", err
	}
	return u.Host, nil
}

var reasons = map[int]string{
	400: "Bad Request", 403: "Forbidden", 404: "Not Found", 480: "Temporarily Unavailable",
	486: "Busy Here", 488: "Not Acceptable Here", 500: "Server Internal Error", 502: "Bad Gateway",
	503: "Service Unavailable", 600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
	606: "Not Acceptable",
}

func reasonPhrase(code int) string {
	if r, ok := reasons[code]; ok {
		return r
	}
	return "Rejected"
}
