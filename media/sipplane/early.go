package sipplane

import (
	"github.com/emiago/sipgo/sip"
)

// answerEarly answers a new INVITE whose verdict is a final reply
// straight on its server transaction: trunkd shutting down (503), no trunk
// matching the source (403), a trunk at channel_limit (503) or refusing
// the offer (488), and a trunk whose policy is REJECT (reject_sip_code).
// The transaction absorbs retransmissions and the ACK; no dialog is built
// and no goroutine waits 32 s for an ACK, so floods from unknown sources
// and rejected calls stay cheap. It reports whether it answered; other
// calls go on to diago (serve).
func (l *listener) answerEarly(req *sip.Request, tx sip.ServerTransaction) bool {
	v := l.decide(req)
	if !v.final() {
		return false
	}
	l.settle(req, v, func(code int, reason string, hs ...sip.Header) { l.reply(req, tx, code, reason, hs...) })
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
