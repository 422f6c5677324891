package sipplane

import (
	"runtime/debug"

	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// middleware wraps every request diago handles on l: a panic in a handler
// is logged instead of killing the daemon, and re-INVITEs of our calls are
// answered here. diago's own re-INVITE answer drops the external media
// address, races the ACK (491) and needs an RTP session we do not give it.
func (l *listener) middleware(next sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if r := recover(); r != nil {
				l.p.log.Error("panic handling SIP request", "method", req.Method.String(), "panic", r, "stack", string(debug.Stack()))
			}
		}()
		if inDialog(req) {
			switch {
			case req.IsInvite():
				l.reinvite(req, tx, next)
				return
			case req.IsAck() && l.ownAck(req):
				return
			}
		} else if req.IsInvite() && l.answerEarly(req, tx) {
			return
		}
		next(req, tx)
	}
}

func inDialog(req *sip.Request) bool {
	to := req.To()
	if to == nil {
		return false
	}
	_, ok := to.Params.Get("tag")
	return ok
}

// ownAck reports whether req acknowledges a re-INVITE answered here; the
// dialog layer would refuse its CSeq.
func (l *listener) ownAck(req *sip.Request) bool {
	if req.CSeq() == nil {
		return false
	}
	if oc, ok := l.p.calls.outboundSRTP(req.CallID().Value()); ok && req.CSeq().SeqNo == oc.reack.Load() {
		return true
	}
	c, ok := l.p.calls.inbound(req.CallID().Value())
	return ok && req.CSeq().SeqNo == c.reack.Load()
}

// reinvite answers an in-dialog INVITE for a call of ours: hold
// (sendonly, inactive or c=0.0.0.0) is answered with the matching
// direction, the answer keeps advertising external_rtp_ip, and with
// terminate_on_hold the call is hung up after the answer.
func (l *listener) reinvite(req *sip.Request, tx sip.ServerTransaction, next sipgo.RequestHandler) {
	if oc, ok := l.p.calls.outboundSRTP(req.CallID().Value()); ok {
		l.reinviteOutbound(oc, req, tx)
		return
	}
	c, ok := l.p.calls.inbound(req.CallID().Value())
	if !ok || !c.answered() {
		next(req, tx) // not ours or not answered: diago replies (481, 491 ...)
		return
	}
	c.reack.Store(req.CSeq().SeqNo)
	code, body, hold := c.answerReinvite(req.Body())
	res := sip.NewResponseFromRequest(req, code, reasonPhrase(code), body)
	if code == sip.StatusOK {
		res.AppendHeader(l.contactHeader(req.Transport()))
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	if err := tx.Respond(res); err != nil {
		l.p.log.Debug("re-INVITE answer not sent", "err", err)
	}
	if hold && c.lv.t.TerminateOnHold {
		l.p.log.Info("call put on hold; terminate_on_hold hangs up", "trunk_id", c.lv.t.TrunkID)
		go c.hangup(c.d.Context())
	}
}

// answerReinvite negotiates a re-INVITE's offer against the call's media
// and returns the SIP code, the answer SDP and whether it is a hold.
func (c *inboundCall) answerReinvite(body []byte) (int, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(body) == 0 {
		if c.socks.encrypted() { // session refresh without SDP
			return sip.StatusOK, secureSDP(c.ms.LocalSDP(), c.socks.local), false
		}
		return sip.StatusOK, c.ms.LocalSDP(), false
	}
	o, err := parseOffer(body)
	if err != nil {
		return sip.StatusNotAcceptableHere, nil, false
	}
	peer, ok := keepsEncryption(c.socks, o)
	if !ok {
		return sip.StatusNotAcceptableHere, nil, false
	}
	codecs, ok := negotiate(c.lv.codecs, o.codecs)
	if !ok {
		return sip.StatusNotAcceptableHere, nil, false
	}
	fork := c.lv.session(codecs, c.ms)
	if err := fork.RemoteSDP(plainSDP(body)); err != nil {
		return sip.StatusNotAcceptableHere, nil, false
	}
	answer := fork.LocalSDP()
	if peer != nil {
		local := c.socks.local.withTag(peer.tag) // our key stays; the peer's may change
		if err := c.socks.secure(local, peer); err != nil {
			return sip.StatusNotAcceptableHere, nil, false
		}
		answer = secureSDP(answer, local)
	}
	if !o.hold() {
		rtp := media.NewRTPSession(fork)
		c.d.RTPPacketWriter.UpdateRTPSession(rtp)
		c.d.RTPPacketReader.UpdateRTPSession(rtp)
	}
	c.ms = fork
	return sip.StatusOK, answer, o.hold()
}

// keepsEncryption checks a re-INVITE's offer against a call's SRTP: a
// call that runs SRTP stays on it (RTP/SAVP with a key of the same suite),
// a plain call stays plain. It returns the peer's key for an SRTP call.
func keepsEncryption(socks *mediaSockets, o *offer) (*sdesCrypto, bool) {
	if !socks.encrypted() {
		return nil, o.proto == "RTP/AVP"
	}
	if o.proto != "RTP/SAVP" {
		return nil, false
	}
	for _, k := range o.cryptos {
		if k.suite == socks.local.suite {
			return k, true
		}
	}
	return nil, false
}
