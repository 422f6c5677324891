package sipplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/media/audio"
	"github.com/trunkd/trunkd/media/bridge"
	"github.com/trunkd/trunkd/trunk"
)

// DefaultDialTimeout is how long Dial waits for an answer when the request
// does not say.
const DefaultDialTimeout = 30 * time.Second

// outboundCall is one outbound call placed by Dial.
type outboundCall struct {
	p     *Plane
	lv    *live // the configuration the call started with
	h     *health
	pdd   time.Duration
	d     *diago.DialogClientSession
	info  trunk.Call
	port  int
	socks *mediaSockets
	// offered are the keys of our SRTP offer (nil without);
	// srtpRefused says why the answer's media was refused for its
	// encryption, set while the answer is read.
	offered     []*sdesCrypto
	srtpRefused string
	ms          *media.MediaSession // the media session in use; re-INVITEs answered here replace it (guarded by mu)
	reack       atomic.Uint32       // CSeq of the last re-INVITE answered here
	setup       context.CancelFunc  // ends the INVITE while ringing; guarded by mu

	mu         sync.Mutex
	state      string
	answeredAt time.Time
	ended      bool
	hangReq    bool // a hangup was asked for, perhaps before setup existed
	hangupOnce sync.Once
	bye        chan struct{} // closed when a hangup is asked for
	rtp        *rtpWatch
	agent      bridge.Agent  // set before the INVITE when the call goes to an AI agent
	target     bridge.Target // the agent's target
}

// Dial places a call through trunk r.TrunkID and returns once the INVITE
// has a final outcome. A call the carrier refuses is a result, not an
// error; errors are for calls that were never sent: unknown trunk
// (ENOTFOUND), channel_limit reached (ECHANNELLIMIT), breaker open
// (ECIRCUITOPEN), bad arguments (EINVALID), shutting down (EUNAVAILABLE).
func (p *Plane) Dial(ctx context.Context, r trunk.DialRequest) (trunk.DialResult, error) {
	lv, err := p.dialTrunk(r.TrunkID)
	if err != nil {
		return trunk.DialResult{}, err
	}
	ruri, err := dialURI(lv.t, r.To)
	if err != nil {
		return trunk.DialResult{}, err
	}
	aiURL, err := dialAIURL(lv.t, r)
	if err != nil {
		return trunk.DialResult{}, err
	}
	if r.AudioURL != "" {
		if _, err := p.cfg.Audio.WAV(ctx, r.AudioURL, formatFor(lv.codecs[0])); err != nil {
			return trunk.DialResult{}, fieldError("audio_url", err, "cannot be fetched and converted for the call")
		}
	}
	if limit := p.limit(lv); !lv.slots.acquire(limit) {
		if limit != lv.t.ChannelLimit {
			return trunk.DialResult{}, trunk.Errorf(trunk.ECHANNELLIMIT, "trunk %q has %d calls in flight on this node, its share of channel_limit %d", lv.t.TrunkID, limit, lv.t.ChannelLimit)
		}
		return trunk.DialResult{}, trunk.Errorf(trunk.ECHANNELLIMIT, "trunk %q has %d calls in flight (channel_limit)", lv.t.TrunkID, lv.t.ChannelLimit)
	}
	h := lv.h
	_, err = h.breaker.Allow()
	if err != nil {
		lv.slots.release()
		// The breaker's text is ours and says until when: keep it.
		return trunk.DialResult{}, trunk.Wrap(trunk.ECIRCUITOPEN, err, "trunk %q: %s", lv.t.TrunkID, err)
	}
	codecs := lv.codecs
	if aiURL != "" {
		codecs = bridgeCodecs(lv.codecs) // the bridge speaks G.711 only
	}
	c, err := p.newOutboundCall(lv, h, ruri, r, codecs)
	if err != nil {
		lv.slots.release()
		h.breaker.Release() // never sent: no verdict on the carrier
		return trunk.DialResult{}, err
	}
	if aiURL != "" {
		if err := c.connectAgent(ctx, aiURL, r); err != nil {
			h.breaker.Release()
			c.end()
			return trunk.DialResult{}, err
		}
	}
	res := c.invite(ctx, r.Timeout)
	c.record(res)
	if !res.Answered {
		if c.agent != nil {
			_ = c.agent.Close(true, "call not answered: "+res.Reason)
		}
		c.end()
		return res, nil
	}
	go c.run(r)
	return res, nil
}

// dialAIURL is the agent a Dial bridges to: the request's ai_url, else the
// trunk's ai_websocket_url unless the request plays audio_url.
func dialAIURL(t *trunk.Trunk, r trunk.DialRequest) (string, error) {
	switch {
	case r.AIURL != "" && r.AudioURL != "":
		return "", trunk.FieldErrorf("ai_url", "audio_url and ai_url are exclusive: a call plays a file or talks to an agent")
	case r.AIURL != "":
		u, err := url.Parse(r.AIURL)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss" && u.Scheme != "quic") || u.Host == "" {
			return "", trunk.FieldErrorf("ai_url", "%q is not a ws://, wss:// or quic:// URL", r.AIURL)
		}
		return r.AIURL, nil
	case r.AudioURL == "" && t.AIWebsocketURL != "":
		return t.AIWebsocketURL, nil
	case r.AudioURL == "":
		return t.AIQUICURL, nil
	}
	return "", nil
}

// connectAgent connects the call's agent before the INVITE goes out, so
// that an answered call never waits for it and an unreachable agent
// places no call (EUNAVAILABLE).
func (c *outboundCall) connectAgent(ctx context.Context, aiURL string, r trunk.DialRequest) error {
	if c.p.cfg.Bridger == nil {
		return trunk.FieldErrorf("ai_url", "this trunkd has no AI bridge configured")
	}
	if !c.p.supports(aiURL) {
		return trunk.FieldErrorf("ai_url", "this trunkd has no agent transport for %q", aiURL)
	}
	t := c.lv.t
	agentID := r.AgentID
	if agentID == "" {
		agentID = t.AgentID
	}
	c.target = bridge.Target{URL: aiURL, Token: t.APIBearerToken, TrunkID: t.TrunkID, AgentID: agentID,
		CallID: c.info.CallID, From: c.info.From, To: c.info.To, Direction: trunk.Outbound}
	ag, err := c.p.connectAgent(ctx, c.target)
	if err != nil {
		return trunk.Wrap(trunk.EUNAVAILABLE, err, "AI agent unreachable: %v", err)
	}
	c.agent = ag
	return nil
}

// dialTrunk finds the live trunk.
func (p *Plane) dialTrunk(id string) (*live, error) {
	if p.closing.Load() {
		return nil, trunk.Errorf(trunk.EUNAVAILABLE, "SIP plane is shutting down")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ts := p.trunks[id]
	if ts == nil || ts.live == nil {
		if ts != nil && ts.degraded != "" {
			return nil, trunk.Errorf(trunk.EUNAVAILABLE, "trunk %q is not live on SIP: %s", id, ts.degraded)
		}
		return nil, trunk.Errorf(trunk.ENOTFOUND, "no trunk %q", id)
	}
	return ts.live, nil
}

// dialURI is the Request-URI of a call to `to` through t: sbc_ip if set,
// else gateway_ip, at destination_sbc_port.
func dialURI(t *trunk.Trunk, to string) (sip.Uri, error) {
	user := strings.TrimPrefix(to, "sip:")
	if i := strings.IndexByte(user, '@'); i >= 0 {
		user = user[:i]
	}
	if user == "" || strings.ContainsAny(user, " \t\r\n<>;?:@\"") {
		return sip.Uri{}, trunk.FieldErrorf("to", "%q is not a number or SIP user", to)
	}
	host := t.SBCIP
	if host == "" {
		host = t.GatewayIP
	}
	if host == "" {
		return sip.Uri{}, trunk.FieldErrorf("trunk_id", "trunk %q has neither sbc_ip nor gateway_ip to send calls to", t.TrunkID)
	}
	u := sip.Uri{User: user, Host: host, Port: int(t.DestinationSBCPort)}
	if t.Transport != trunk.TransportUDP {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", t.Transport.Network())
	}
	return u, nil
}

func formatFor(c media.Codec) audio.Format {
	if c.Name == media.CodecAudioOpus.Name {
		return audio.Format{Rate: 48000, Channels: 2}
	}
	return audio.Format{Rate: 8000, Channels: 1}
}

// newOutboundCall prepares the dialog: our own RTP sockets from the trunk's
// range, From, Call-ID, Route through the proxy; it counts the call as in
// flight.
func (p *Plane) newOutboundCall(lv *live, h *health, ruri sip.Uri, r trunk.DialRequest, codecs []media.Codec) (*outboundCall, error) {
	if len(codecs) == 0 {
		return nil, trunk.FieldErrorf("codec_preferences", "the AI bridge needs PCMU or PCMA in the trunk's codec_preferences")
	}
	d, err := lv.l.dg.NewDialog(ruri, diago.NewDialogOptions{Transport: lv.t.Transport.Network()})
	if err != nil {
		return nil, trunk.Wrap(trunk.EUNAVAILABLE, err, "cannot create the dialog")
	}
	ms, port, socks, err := lv.newSession(codecs)
	if err != nil {
		d.Close()
		return nil, trunk.Wrap(trunk.ECHANNELLIMIT, err, "trunk %q: no free RTP port in %d-%d", lv.t.TrunkID, lv.t.RTPStartPort, lv.t.RTPEndPort)
	}
	var offered []*sdesCrypto
	if lv.t.OutboundMediaEncryption != trunk.EncryptDisable {
		if offered, err = offerSRTP(ms); err != nil {
			ms.Close()
			lv.ports.release(port)
			d.Close()
			return nil, trunk.Wrap(trunk.EUNAVAILABLE, err, "cannot make SRTP keys")
		}
	}
	d.InitMediaSession(ms, nil, nil) // diago offers it and closes it with the dialog
	d.UA.ContactHDR = *lv.l.contactHeader(lv.t.Transport.String())
	id := newCallID()
	cid := sip.CallIDHeader(id)
	d.InviteRequest.AppendHeader(&cid)
	c := &outboundCall{p: p, lv: lv, h: h, d: d, port: port, socks: socks, offered: offered, ms: ms, state: trunk.CallRinging, bye: make(chan struct{})}
	c.info = trunk.Call{CallID: id, TrunkID: lv.t.TrunkID, Direction: trunk.Outbound,
		From: fromUser(lv.t, r.From), To: ruri.User, State: trunk.CallRinging, Start: time.Now()}
	p.calls.add(trunk.Outbound, id, c)
	lv.l.active.Add(1)
	p.active.Add(1)
	return c, nil
}

func fromUser(t *trunk.Trunk, from string) string {
	if from != "" {
		return from
	}
	return t.SIPUsername
}

func newCallID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// inviteOptions are the INVITE's From, Route and credentials.
func (c *outboundCall) inviteOptions(onResponse func(*sip.Response) error) diago.InviteClientOptions {
	t := c.lv.t
	o := diago.InviteClientOptions{Username: t.SIPUsername, Password: t.SIPPassword, OnResponse: onResponse}
	host := t.Domain
	if host == "" {
		host = c.d.InviteRequest.Recipient.Host
	}
	user := c.info.From
	if user == "" {
		user = c.p.cfg.UserAgent
	}
	o.WithCaller(t.DisplayName, user, host)
	if h := routeHeader(t); h != nil {
		o.Headers = append(o.Headers, h)
	}
	return o
}

// invite sends the INVITE and waits for its final outcome, at most
// timeout. When the time is up after a provisional response the INVITE is
// cancelled (a ring timeout, 487); with no response at all it is abandoned
// at once rather than waiting for SIP's 32 s transaction timeout.
func (c *outboundCall) invite(ctx context.Context, timeout time.Duration) trunk.DialResult {
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	start := time.Now()
	var ringing atomic.Bool
	var pdd time.Duration
	var pddSet bool
	onResponse := func(r *sip.Response) error {
		// PDD: INVITE to the first 180/183, or to the 200 when it came
		// first (sipgo may also drop a 180 overtaken by the 200).
		if (r.StatusCode == 180 || r.StatusCode == 183 || r.StatusCode == 200) && !pddSet {
			pdd, pddSet = time.Since(start), true
		}
		if r.IsProvisional() && r.StatusCode != 100 {
			ringing.Store(true)
		}
		if r.IsSuccess() {
			c.takeAnswer(r)
		}
		return nil
	}
	ictx, cancel := context.WithCancelCause(ctx)
	c.mu.Lock()
	c.setup = func() { cancel(errHungUp) }
	early := c.hangReq
	c.mu.Unlock()
	if early {
		cancel(errHungUp)
	}
	timer := time.AfterFunc(timeout, func() {
		if ringing.Load() {
			cancel(context.DeadlineExceeded)
		} else {
			cancel(sipgo.WaitAnswerForceCancelErr)
		}
	})
	defer timer.Stop()
	defer cancel(nil)
	err := c.waitAnswer(ictx, c.inviteOptions(onResponse))
	res := c.result(ictx, err, ringing.Load())
	res.Setup = time.Since(start)
	if res.Answered {
		res.Answered, res.SIPCode, res.Reason = c.accept(ctx)
	}
	c.pdd = pdd
	return res
}

var errHungUp = errors.New("hung up by request")

// waitAnswer runs the INVITE to a final response. sipgo gives up after ten
// provisional responses; a carrier may send more (183s with progress), so
// waiting resumes on the same transaction.
func (c *outboundCall) waitAnswer(ctx context.Context, o diago.InviteClientOptions) error {
	err := c.d.Invite(ctx, o)
	for range 10 {
		if err == nil || !isTooManyProvisional(err) {
			return err
		}
		err = c.d.WaitAnswer(ctx, sipgo.AnswerOptions{Username: o.Username, Password: o.Password, OnResponse: o.OnResponse})
	}
	return err
}

func isTooManyProvisional(err error) bool {
	return strings.Contains(err.Error(), "more than 10 responses received")
}

// result maps the INVITE's outcome to a DialResult.
func (c *outboundCall) result(ctx context.Context, err error, ringing bool) trunk.DialResult {
	r := trunk.DialResult{CallID: c.info.CallID}
	var re *sipgo.ErrDialogResponse
	switch {
	case err == nil:
		r.Answered, r.SIPCode, r.Reason = true, 200, "OK"
	case errors.As(err, &re):
		r.SIPCode, r.Reason = re.Res.StatusCode, re.Res.Reason
	case context.Cause(ctx) == errHungUp:
		r.SIPCode, r.Reason = 487, "Request Terminated (hung up by request)"
	case ringing && ctx.Err() != nil:
		r.SIPCode, r.Reason = 487, "Request Terminated (no answer within timeout)"
	case ctx.Err() != nil:
		r.Reason = "no response from the carrier within timeout"
	default:
		r.Reason = "no response from the carrier: " + err.Error()
	}
	return r
}

// accept checks the answer's media against media_ip_cidrs and ACKs it. A
// refused answer is ACKed and hung up at once.
func (c *outboundCall) accept(ctx context.Context) (bool, int, string) {
	ok, why := true, ""
	if c.srtpRefused != "" {
		ok, why = false, c.srtpRefused
	}
	if len(c.lv.cidrs) > 0 {
		o, err := parseOffer(c.d.InviteResponse.Body())
		switch {
		case err != nil:
			ok, why = false, "answer SDP: "+err.Error()
		case ok && !inPrefixes(c.lv.cidrs, o.addr):
			ok, why = false, "answer media address "+o.addr.String()+" is outside media_ip_cidrs"
		}
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := c.d.Ack(actx); err != nil {
		return false, 200, "answered, but the ACK failed: " + err.Error()
	}
	if !ok {
		c.p.log.Warn("answer refused for its media", "trunk_id", c.lv.t.TrunkID, "call_id", c.info.CallID, "reason", why)
		_ = c.d.Bye(actx)
		return false, 200, why
	}
	c.mu.Lock()
	c.state, c.answeredAt = trunk.CallAnswered, time.Now()
	c.mu.Unlock()
	return true, 200, "OK"
}

// run keeps an answered call up: it plays the audio and hangs up, or waits
// for a hangup, max_duration or the far end's BYE.
func (c *outboundCall) run(r trunk.DialRequest) {
	defer c.end()
	var limit <-chan time.Time
	if r.MaxDuration > 0 {
		t := time.NewTimer(r.MaxDuration)
		defer t.Stop()
		limit = t.C
	}
	reader := c.d.RTPPacketReader
	if c.agent != nil {
		reader = nil // the bridge reads the call's RTP, feeding the tracker as a tap
	}
	w := watchRTP(reader, c.d.RTPSession(), c.clockRate())
	c.mu.Lock()
	c.rtp = w
	c.mu.Unlock()
	played := make(chan struct{})
	switch {
	case c.agent != nil:
		go func() { c.bridge(); close(played) }()
	case r.AudioURL != "":
		go func() { c.play(r.AudioURL); close(played) }()
	}
	select {
	case <-c.d.Context().Done():
		return
	case <-c.bye:
	case <-limit:
	case <-played:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.d.Bye(ctx); err != nil {
		c.p.log.Debug("BYE", "call_id", c.info.CallID, "err", err)
	}
}

// bridge runs the answered call's bridge to its agent until either side
// ends; run then hangs up.
func (c *outboundCall) bridge() {
	codecs := c.d.MediaSession().CommonCodecs()
	codec := codecs[0]
	if len(bridgeCodecs([]media.Codec{codec})) == 0 {
		_ = c.agent.Close(false, "the call has no G.711 codec")
		c.p.log.Warn("answered without PCMU or PCMA; cannot bridge", "trunk_id", c.lv.t.TrunkID, "codec", codec.Name)
		return
	}
	ph := phone(c.d.RTPPacketReader, c.d.RTPPacketWriter, codecs, c.rtp)
	end := c.p.runBridge(c.d.Context(), c.lv, c.agent, ph, c.target)
	if !end.ByCaller {
		c.p.log.Info("agent ended the call", "trunk_id", c.lv.t.TrunkID, "call_id", c.info.CallID, "reason", end.Reason)
	}
}

func (c *outboundCall) clockRate() int {
	if cs := c.d.MediaSession().CommonCodecs(); len(cs) > 0 {
		return int(cs[0].SampleRate)
	}
	return 8000
}

func (c *outboundCall) play(url string) {
	f := formatFor(c.d.MediaSession().CommonCodecs()[0])
	ctx, cancel := context.WithTimeout(c.d.Context(), 15*time.Second)
	wav, err := c.p.cfg.Audio.WAV(ctx, url, f)
	cancel()
	if err == nil {
		err = playWAV(c.d.PlaybackCreate, wav)
	}
	if err != nil && c.d.Context().Err() == nil {
		c.p.log.Warn("playback failed", "trunk_id", c.lv.t.TrunkID, "call_id", c.info.CallID, "err", err)
	}
}

// hangup ends the call: a ringing INVITE is cancelled, an answered call
// gets a BYE (from run, which waits for it).
func (c *outboundCall) hangup(context.Context) {
	c.hangupOnce.Do(func() {
		c.mu.Lock()
		c.hangReq = true
		cancel := c.setup
		c.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		close(c.bye)
	})
}

// end releases everything the call holds and records its duration, once.
func (c *outboundCall) end() {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	answeredAt := c.answeredAt
	c.mu.Unlock()
	if !answeredAt.IsZero() {
		c.h.ended(time.Since(answeredAt), c.rtp)
	}
	c.d.Close()
	c.lv.ports.release(c.port)
	c.lv.slots.release()
	c.p.calls.remove(trunk.Outbound, c.info.CallID, c)
	c.lv.l.active.Add(-1)
	c.p.active.Add(-1)
}

func (c *outboundCall) snapshot() trunk.Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.info
	i.State = c.state
	return i
}

// record feeds the setup's outcome to the trunk's breaker and figures.
func (c *outboundCall) record(r trunk.DialResult) {
	o := trunk.FaultOf(r.SIPCode)
	if r.SIPCode == 503 {
		if d, ok := parseRetryAfter(c.d.InviteResponse); ok {
			c.h.breaker.OpenFor(d)
		}
	}
	c.h.breaker.Record(o)
	c.h.attempt(r.Answered, c.pdd)
	c.h.count(trunk.Outbound, outboundOutcome(r, o))
}

// parseRetryAfter reads a 503's Retry-After in seconds, capped at an hour.
func parseRetryAfter(r *sip.Response) (time.Duration, bool) {
	if r == nil {
		return 0, false
	}
	h := r.GetHeader("Retry-After")
	if h == nil {
		return 0, false
	}
	var s int
	if _, err := fmt.Sscanf(h.Value(), "%d", &s); err != nil || s <= 0 {
		return 0, false
	}
	return time.Duration(min(s, 3600)) * time.Second, true
}

func outboundOutcome(r trunk.DialResult, o trunk.Outcome) outcome {
	switch {
	case r.Answered:
		return outAnswered
	case o == trunk.Fault:
		return outCarrierFault
	}
	return outNotAnswered
}

// Hangup ends a call in flight, in either direction.
func (p *Plane) Hangup(ctx context.Context, callID string) error {
	if c, ok := p.calls.get(callID); ok {
		c.hangup(ctx)
		return nil
	}
	return trunk.Errorf(trunk.ENOCALL, "no call %q in flight", callID)
}

// ListCalls lists the calls in flight of one trunk, or of all when trunkID
// is "".
func (p *Plane) ListCalls(trunkID string) []trunk.Call { return p.calls.list(trunkID) }

// takeAnswer reads the SRTP part of a 2xx answer to our SRTP offer: it
// turns SRTP on with the key the carrier chose, or records why the answer
// is refused (accept then ACKs and hangs up). diago is handed the answer
// without SRTP, which it would refuse or get wrong.
func (c *outboundCall) takeAnswer(r *sip.Response) {
	if c.offered == nil {
		return
	}
	body := r.Body()
	o, err := parseOffer(body)
	if err != nil {
		return // diago refuses it too, and the dial fails with its reason
	}
	r.SetBody(plainSDP(body))
	local, peer, why := answerKeys(o, c.offered, c.lv.t.OutboundMediaEncryption)
	switch {
	case why != "":
		c.srtpRefused = why
	case peer != nil:
		if err := c.socks.secure(local, peer); err != nil {
			c.srtpRefused = "cannot set up SRTP: " + err.Error()
		}
	}
}
