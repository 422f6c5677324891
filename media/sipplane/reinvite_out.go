package sipplane

import (
	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo/sip"
)

// reinviteOutbound answers a carrier's re-INVITE on an outbound SRTP call.
// diago would answer it from a fork of our offer's session, which has no
// SRTP and repeats the original offer; here the answer keeps the call's
// keys, as for inbound calls.
func (l *listener) reinviteOutbound(c *outboundCall, req *sip.Request, tx sip.ServerTransaction) {
	c.reack.Store(req.CSeq().SeqNo)
	code, body := c.answerReinvite(req.Body())
	res := sip.NewResponseFromRequest(req, code, reasonPhrase(code), body)
	if code == sip.StatusOK {
		res.AppendHeader(l.contactHeader(req.Transport()))
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	if err := tx.Respond(res); err != nil {
		l.p.log.Debug("re-INVITE answer not sent", "err", err)
	}
}

// answerReinvite negotiates a re-INVITE's offer on an outbound SRTP call:
// RTP/SAVP with a key of the call's suite, else 488.
func (c *outboundCall) answerReinvite(body []byte) (int, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(body) == 0 {
		return sip.StatusOK, secureSDP(c.session(c.lv.codecs).LocalSDP(), c.socks.local)
	}
	o, err := parseOffer(body)
	if err != nil {
		return sip.StatusNotAcceptableHere, nil
	}
	peer, ok := keepsEncryption(c.socks, o)
	if !ok || peer == nil {
		return sip.StatusNotAcceptableHere, nil
	}
	codecs, ok := negotiate(c.lv.codecs, o.codecs)
	if !ok {
		return sip.StatusNotAcceptableHere, nil
	}
	fork := c.session(codecs)
	if err := fork.RemoteSDP(plainSDP(body)); err != nil {
		return sip.StatusNotAcceptableHere, nil
	}
	local := c.socks.local.withTag(peer.tag)
	if err := c.socks.secure(local, peer); err != nil {
		return sip.StatusNotAcceptableHere, nil
	}
	answer := secureSDP(fork.LocalSDP(), local)
	if !o.hold() {
		rtp := media.NewRTPSession(fork)
		c.d.RTPPacketWriter.UpdateRTPSession(rtp)
		c.d.RTPPacketReader.UpdateRTPSession(rtp)
	}
	c.ms = fork
	return sip.StatusOK, answer
}

// session forks the call's media session for a new answer. Our SRTP offer
// was fixed into the session as static SDP (offerSRTP), which a fork
// copies and would send again: InitWithSDP(nil) clears it (it stores the
// SDP first, then fails to parse nil, leaving the rest as it was).
func (c *outboundCall) session(codecs []media.Codec) *media.MediaSession {
	fork := c.lv.session(codecs, c.ms)
	_ = fork.InitWithSDP(nil)
	return fork
}
