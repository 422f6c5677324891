package sipplane

import (
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/trunk"
)

// outcome is how a call ended up, as counted per trunk and direction: the
// value is the outcome label of trunkd's call metrics, so it must not
// change.
type outcome string

const (
	outNone          outcome = ""               // not counted: no trunk, or shutting down
	outAnswered      outcome = "answered"       // answered (inbound: played to; outbound: the carrier answered)
	outRejected      outcome = "rejected"       // refused by the trunk's policy, reject_sip_code
	outRefused       outcome = "refused"        // inbound, over channel_limit or for its media
	outNotAnswered   outcome = "not_answered"   // outbound, the carrier did not answer (busy, declined, ...)
	outCarrierFault  outcome = "carrier_fault"  // outbound, a carrier failure the breaker counts
	outAIUnavailable outcome = "ai_unavailable" // HANDLE_AI: the agent could not be reached; 503 before answer
)

// action is what the plane does with an inbound call.
type action int

const (
	actReply  action = iota // send the verdict's final response; no dialog is needed
	actPlay                 // answer, play the audio, hang up
	actNotify               // POST the webhook, then reply reject_sip_code
	actBridge               // connect the AI agent while ringing, answer, bridge (HANDLE_AI)
)

// cause says why a verdict is a final reply, for its log line.
type cause int

const (
	causeNone         cause = iota // the call goes on to its action
	causeClosing                   // the plane is shutting down
	causeNoTrunk                   // no trunk matches the source
	causeChannelLimit              // the trunk is at channel_limit
	causeMedia                     // the offer breaks media_ip_cidrs, codecs or profile
	causePolicy                    // the trunk's policy rejects (REJECT)
)

// verdict is what the plane decides about a new INVITE. A final verdict
// (act == actReply) carries the response; any other names the trunk, its
// action and the checked offer.
type verdict struct {
	lv      *live
	act     action
	agent   *trunk.Agent // for actBridge: the deployed agent the Request-URI names; nil for the trunk's
	url     string       // audio to play, for actPlay
	offer   *offer       // the checked SDP offer; nil without a body
	code    int
	reason  string
	hdrs    []sip.Header
	outcome outcome
	cause   cause
	detail  string // why, for the log: the match or offer reason
}

// final reports whether v is answered with a response and no dialog.
func (v verdict) final() bool { return v.act == actReply }

// decide judges a new INVITE arriving on l: shutting down (503), no
// trunk matching the source (403), the trunk at channel_limit (503), the
// trunk's policy REJECT (reject_sip_code, the offer unread), its offer
// unacceptable (488), else the trunk's action with the checked offer.
// Both the early path (answerEarly, on the server transaction) and the
// dialog path (serve) ask it; the dialog path asks again because the
// trunk table may have changed in between.
func (l *listener) decide(req *sip.Request) verdict {
	p := l.p
	if p.closing.Load() {
		return verdict{code: sip.StatusServiceUnavailable, reason: "Service Unavailable",
			hdrs: []sip.Header{p.retryAfterHeader()}, cause: causeClosing}
	}
	lv, m := p.table.Load().lookup(l.key, sourceIP(req.Source()), req.Recipient.Host, false)
	if lv == nil {
		return verdict{code: sip.StatusForbidden, reason: "Forbidden", cause: causeNoTrunk, detail: m.Reason}
	}
	if lv.slots.n.Load() >= int64(lv.t.ChannelLimit) {
		return l.overLimit(lv)
	}
	act, url := policy(lv.t)
	v := verdict{lv: lv, act: act, url: url}
	if a := p.agentFor(req.Recipient.User); a != nil && a.Org() == lv.t.Org() && !lv.t.RejectIncomingCalls {
		v.act, v.url, v.agent = actBridge, "", a
		act = actBridge
	}
	if act == actReply {
		// The offer of a call refused by policy is never used: it is not
		// parsed, and the caller gets reject_sip_code rather than 488.
		v.code = int(lv.t.RejectSIPCode)
		v.reason, v.outcome, v.cause = reasonPhrase(v.code), outRejected, causePolicy
		return v
	}
	if body := req.Body(); len(body) > 0 || act == actPlay || act == actBridge {
		o, code, why := checkOffer(lv, body)
		if code != 0 {
			return verdict{lv: lv, code: code, reason: why, outcome: outRefused, cause: causeMedia, detail: why}
		}
		v.offer = o
	}
	return v
}

// overLimit is the verdict on a call over lv's channel_limit.
func (l *listener) overLimit(lv *live) verdict {
	return verdict{lv: lv, code: sip.StatusServiceUnavailable, reason: "Channel Limit Reached",
		hdrs: []sip.Header{l.p.retryAfterHeader()}, outcome: outRefused, cause: causeChannelLimit}
}

// settle counts and logs a final verdict, then sends its response with
// send: on the server transaction (early path) or through the dialog.
func (l *listener) settle(req *sip.Request, v verdict, send func(code int, reason string, hdrs ...sip.Header)) {
	p := l.p
	switch v.cause {
	case causeNoTrunk:
		p.log.Debug("call matches no trunk", "listener", l.key, "source", req.Source(), "reason", v.detail)
	case causeChannelLimit:
		p.log.Info("call over channel_limit", "trunk_id", v.lv.t.TrunkID, "channel_limit", v.lv.t.ChannelLimit)
	case causeMedia:
		p.log.Info("call refused for its media", "trunk_id", v.lv.t.TrunkID, "code", v.code, "reason", v.detail)
	}
	if v.outcome != outNone {
		v.lv.h.count(trunk.Inbound, v.outcome)
	}
	send(v.code, v.reason, v.hdrs...)
}
