package sipplane

import (
	"github.com/emiago/sipgo/sip"
)

// answerEarly answers a new INVITE whose verdict is a final reply
// straight on its server transaction: trunkd shutting down (503), no trunk
// matching the source (403), a trunk at channel_limit (503) or refusing
// the offer (488), and a trunk whose policy is REJECT (reject_sip_code).
// The transaction absorbs retransmissions and the ACK; no dialog is
// built, so floods from unknown sources and rejected calls stay cheap.
// It reports whether it answered; other calls go on to diago (serve).
func (l *listener) answerEarly(req *sip.Request, tx sip.ServerTransaction) bool {
	v := l.decide(req)
	if !v.final() {
		return false
	}
	l.settle(req, v, func(code int, reason string, hs ...sip.Header) { l.reply(req, tx, code, reason, hs...) })
	if v.lv != nil {
		l.awaitAck(tx)
	}
	return true
}

// maxAckWaits bounds how many early answers of one listener wait for
// their ACK at once (awaitAck): each holds a goroutine and its stack.
const maxAckWaits = 1024

// awaitAck waits on an answered INVITE's transaction until its ACK
// arrives or the transaction ends. sipgo hands the ACK of a non-2xx final
// to a receiver of tx.Acks() when one is waiting; when none is, it starts
// a goroutine that holds the ACK until the transaction ends, 5 s later
// over UDP (Timer I): at thousands of rejected calls a second, tens of
// thousands of parked goroutines for the collector to scan and a wake-up
// each. Waiting here, on the goroutine sipgo already runs the request on,
// takes the ACK as it arrives, one round trip after the response. The
// transaction still matches the ACK and retransmits the response until
// it comes (RFC 3261 17.2.1); only who receives it changes.
//
// Only calls from a trunk's carrier wait (a flood from unknown sources,
// which may never ACK, does not), and at most maxAckWaits at once, so a
// carrier whose ACKs are lost holds a bounded number of goroutines for up
// to Timer H (32 s); past the bound, sipgo's own goroutine takes the ACK.
func (l *listener) awaitAck(tx sip.ServerTransaction) {
	if l.ackWaits.Add(1) > maxAckWaits {
		l.ackWaits.Add(-1)
		return
	}
	select {
	case <-tx.Acks():
	case <-tx.Done():
	}
	l.ackWaits.Add(-1)
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
