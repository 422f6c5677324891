package sipplane

import (
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/trunk"
)

// answerEarly answers a new INVITE that needs no dialog, straight on its
// server transaction: trunkd shutting down (503), no trunk matching the
// source (403), and a trunk whose policy is REJECT — its reject_sip_code,
// or 503/488 when the call would be refused for channel_limit or its
// media. The transaction absorbs retransmissions and the ACK; no dialog
// is built and no goroutine waits 32 s for an ACK, so floods from unknown
// sources and rejected calls stay cheap. It reports whether it answered;
// other calls go on to diago (serve).
func (l *listener) answerEarly(req *sip.Request, tx sip.ServerTransaction) bool {
	p := l.p
	if p.closing.Load() {
		l.reply(req, tx, sip.StatusServiceUnavailable, "Service Unavailable", p.retryAfterHeader())
		return true
	}
	lv, m := p.table.Load().match(l.key, sourceIP(req.Source()), req.Recipient.Host)
	if lv == nil {
		p.log.Debug("call matches no trunk", "listener", l.key, "source", req.Source(), "reason", m.Reason)
		l.reply(req, tx, sip.StatusForbidden, "Forbidden")
		return true
	}
	if act, _ := policy(lv.t); act != actReject {
		return false
	}
	if lv.slots.n.Load() >= int64(lv.t.ChannelLimit) {
		lv.h.count(trunk.Inbound, "refused")
		p.log.Info("call over channel_limit", "trunk_id", lv.t.TrunkID, "channel_limit", lv.t.ChannelLimit)
		l.reply(req, tx, sip.StatusServiceUnavailable, "Channel Limit Reached", p.retryAfterHeader())
		return true
	}
	if body := req.Body(); len(body) > 0 {
		if _, code, why := checkOffer(lv, body); code != 0 {
			lv.h.count(trunk.Inbound, "refused")
			p.log.Info("call refused for its media", "trunk_id", lv.t.TrunkID, "code", code, "reason", why)
			l.reply(req, tx, code, why)
			return true
		}
	}
	lv.h.count(trunk.Inbound, "rejected")
	code := int(lv.t.RejectSIPCode)
	l.reply(req, tx, code, reasonPhrase(code))
	return true
}

// reply sends a final response outside any dialog, with a To tag.
func (l *listener) reply(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if to := res.To(); to != nil && !to.Params.Has("tag") {
		to.Params.Add("tag", sip.GenerateTagN(16))
	}
	for _, h := range hs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		l.p.log.Debug("response not delivered", "code", code, "err", err)
	}
}
