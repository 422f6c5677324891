package sipplane

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/media/bridge"
	"github.com/trunkd/trunkd/media/bridge/denoise"
	"github.com/trunkd/trunkd/trunk"
)

// buildAI checks a trunk's AI settings against what this plane can do and
// keeps its barge-in thresholds. Only a trunk that uses the bridge
// (HANDLE_AI, or an outbound AI URL) is held to it.
func (p *Plane) buildAI(t *trunk.Trunk, lv *live) error {
	inbound := !t.RejectIncomingCalls && t.InboundRule == trunk.RuleHandleAI
	if !inbound && t.AIWebsocketURL == "" && t.AIQUICURL == "" {
		// Calls to deployed agents may still cross this trunk: they take
		// its barge-in settings when the bridge can run them, else off.
		if bp, err := bridge.ParamsFor(t.AutoBargeinMode, int(t.AutoBargeinAggressiveness)); err == nil {
			lv.bargein = bp
		}
		return nil
	}
	if p.cfg.Bridger == nil {
		return trunk.FieldErrorf("inbound_rule", "this trunkd has no AI bridge configured")
	}
	if t.EnableNoiseCancellation && !denoise.Built {
		return trunk.FieldErrorf("enable_noise_cancellation", "this trunkd was built without libspeexdsp (build tag with_speexdsp; make build sets it); set it to false")
	}
	for _, f := range []struct{ name, url string }{
		{"inbound_ai_websocket_url", t.InboundAIWebsocketURL}, {"inbound_ai_quic_url", t.InboundAIQUICURL},
		{"ai_websocket_url", t.AIWebsocketURL}, {"ai_quic_url", t.AIQUICURL},
	} {
		if f.url != "" && !p.supports(f.url) {
			return trunk.FieldErrorf(f.name, "this trunkd has no agent transport for %q", f.url)
		}
	}
	if len(bridgeCodecs(lv.codecsOrFor(t))) == 0 {
		return trunk.FieldErrorf("codec_preferences", "the AI bridge needs PCMU or PCMA in codec_preferences")
	}
	bp, err := bridge.ParamsFor(t.AutoBargeinMode, int(t.AutoBargeinAggressiveness))
	if err != nil {
		return trunk.FieldErrorf("auto_bargein_mode", "%v", err)
	}
	lv.bargein = bp
	return nil
}

// supports reports whether the Bridger can dial url (a Bridger that does
// not say is trusted).
func (p *Plane) supports(url string) bool {
	if s, ok := p.cfg.Bridger.(interface{ Supports(string) bool }); ok {
		return s.Supports(url)
	}
	return true
}

// inboundAIURL is where a HANDLE_AI trunk's calls go: the WebSocket URL,
// else the QUIC one.
func inboundAIURL(t *trunk.Trunk) string {
	if t.InboundAIWebsocketURL != "" {
		return t.InboundAIWebsocketURL
	}
	return t.InboundAIQUICURL
}

// agentURL is where a deployed agent's calls go.
func agentURL(a *trunk.Agent) string {
	if a.WebsocketURL != "" {
		return a.WebsocketURL
	}
	return a.QUICURL
}

// denoiseDB is the most noise cancellation takes off (speexdsp's
// noise_suppress; its default is 15 dB).
const denoiseDB = 25

// codecsOrFor is lv's codec list, computed from t when build has not yet.
func (lv *live) codecsOrFor(t *trunk.Trunk) []media.Codec {
	if lv.codecs != nil {
		return lv.codecs
	}
	return codecsFor(t.CodecPreferences)
}

// bridgeCodecs keeps the G.711 codecs of a list, in order: the bridge
// speaks 8 kHz audio.
func bridgeCodecs(l []media.Codec) []media.Codec {
	var out []media.Codec
	for _, c := range l {
		if c.Name == media.CodecAudioUlaw.Name || c.Name == media.CodecAudioAlaw.Name {
			out = append(out, c)
		}
	}
	return out
}

func lawOf(c media.Codec) bridge.Law {
	if c.Name == media.CodecAudioAlaw.Name {
		return bridge.PCMA
	}
	return bridge.PCMU
}

// phone is the bridge's view of a call's RTP. The bridge is the only
// reader of the call's audio; each packet goes to the quality tap.
func phone(r *media.RTPPacketReader, w *media.RTPPacketWriter, codecs []media.Codec, tap *rtpWatch) bridge.Phone {
	buf := make([]byte, media.RTPBufSize)
	codec := codecs[0]
	ph := bridge.Phone{
		Law: lawOf(codec),
		Read: func() (bridge.Packet, error) {
			for bad := 0; ; {
				n, err := r.Read(buf)
				switch {
				case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
					return bridge.Packet{}, io.EOF
				case err != nil:
					if bad++; bad > 1000 {
						return bridge.Packet{}, err
					}
				case n > 0:
					h := r.PacketHeader
					return bridge.Packet{PT: h.PayloadType, Seq: h.SequenceNumber, TS: h.Timestamp, Payload: buf[:n]}, nil
				}
			}
		},
		Write: func(b []byte) error { _, err := w.Write(b); return err },
		// The bridge paces its frames itself (WriteSamples does not wait
		// for diago's ticker), so an answer can start between ticks.
		Send: func(b []byte) error {
			_, err := w.WriteSamples(b, bridge.FrameSamples, false, codec.PayloadType)
			return err
		},
		Tap: func(p bridge.Packet, at time.Time) { tap.rx.Packet(p.Seq, p.TS, at) },
	}
	for _, c := range codecs {
		if c.Name == media.CodecTelephoneEvent8000.Name {
			pt := c.PayloadType
			ph.EventPT = pt
			// DTMF from the agent, on the same writer from the same (player)
			// goroutine as the audio, so sequence numbers stay one series.
			ph.Event = func(p []byte, adv uint32, marker bool) error {
				_, err := w.WriteSamples(p, adv, marker, pt)
				return err
			}
		}
	}
	return ph
}

// bridge connects the agent while the call rings, then answers and
// bridges. An agent that cannot be reached within AIConnectTimeout gets
// the caller a 503 (never an answered call into silence); an agent that
// ends or fails ends the call with a BYE; the caller hanging up sends the
// agent stop.
func (c *inboundCall) bridge(agent *trunk.Agent) {
	codecs, ok := negotiate(bridgeCodecs(c.lv.codecs), c.offer.codecs)
	if !ok {
		c.respond(sip.StatusNotAcceptableHere, "Not Acceptable Here: the AI bridge needs PCMU or PCMA")
		return
	}
	_ = c.d.Trying()
	_ = c.d.Ringing()
	t, req := c.lv.t, c.d.InviteRequest
	tgt := bridge.Target{URL: inboundAIURL(t), Token: t.APIBearerToken, TrunkID: t.TrunkID,
		AgentID: t.AgentID, CallID: req.CallID().Value(), From: req.From().Address.User,
		To: req.To().Address.User, Direction: trunk.Inbound}
	if agent != nil {
		tgt.URL, tgt.AgentID = agentURL(agent), agent.AgentID
	}
	ag, err := c.p.connectAgent(c.d.Context(), tgt)
	if err != nil {
		if c.d.Context().Err() != nil {
			return // the caller gave up while we connected
		}
		c.p.log.Warn("AI agent unreachable; refusing the call", "trunk_id", t.TrunkID, "err", err)
		c.lv.h.count(trunk.Inbound, outAIUnavailable)
		c.respond(sip.StatusServiceUnavailable, "AI Unavailable", c.p.retryAfterHeader())
		return
	}
	if code, err := c.openMedia(codecs); err != nil {
		_ = ag.Close(false, "call media failed")
		c.p.log.Warn("cannot set up media", "trunk_id", t.TrunkID, "code", code, "err", err)
		c.respond(code, reasonPhrase(code))
		return
	}
	if err := c.d.Answer(); err != nil {
		_ = ag.Close(false, "answer failed")
		c.p.log.Debug("answer failed", "trunk_id", t.TrunkID, "err", err)
		return
	}
	tap := c.answerTap(codecs[0])
	end := c.p.runBridge(c.d.Context(), c.lv, ag, phone(c.d.RTPPacketReader, c.d.RTPPacketWriter, codecs, tap), tgt)
	if !end.ByCaller {
		c.p.log.Info("agent ended the call", "trunk_id", t.TrunkID, "reason", end.Reason)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.hangup(ctx)
	}
}

// connectAgent connects an agent within AIConnectTimeout.
func (p *Plane) connectAgent(ctx context.Context, tgt bridge.Target) (bridge.Agent, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.AIConnectTimeout)
	defer cancel()
	return p.cfg.Bridger.Connect(ctx, tgt)
}

// runBridge tells the agent the stream starts and bridges until either
// side ends.
func (p *Plane) runBridge(ctx context.Context, lv *live, ag bridge.Agent, ph bridge.Phone, tgt bridge.Target) bridge.End {
	st := bridge.Start{Target: tgt, StreamSID: bridge.SID("MZ", tgt.CallID), CallSID: bridge.SID("CA", tgt.CallID)}
	bctx, cancel := context.WithTimeout(ctx, p.cfg.AIConnectTimeout)
	err := ag.Begin(bctx, st)
	cancel()
	if err != nil {
		_ = ag.Close(false, "start failed")
		return bridge.End{Reason: "agent did not take start: " + err.Error()}
	}
	o := bridge.Options{Bargein: lv.bargein, Stats: p.cfg.AIStats, Log: p.log.With("trunk_id", lv.t.TrunkID, "call_id", tgt.CallID)}
	if lv.t.EnableNoiseCancellation {
		if d, err := denoise.New(bridge.FrameSamples, bridge.Rate, denoiseDB); err == nil {
			o.Denoise = d
		} else {
			p.log.Warn("noise cancellation unavailable for this call", "trunk_id", lv.t.TrunkID, "err", err)
		}
	}
	return bridge.Run(ctx, ph, ag, o)
}

// answerTap marks a bridged call answered; its RTP is read by the bridge,
// which feeds the returned quality tap.
func (c *inboundCall) answerTap(codec media.Codec) *rtpWatch {
	c.lv.h.count(trunk.Inbound, outAnswered)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answeredAt = time.Now()
	c.rtp = watchRTP(nil, nil, int(codec.SampleRate))
	return c.rtp
}
