package ws

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/coder/websocket"
	"github.com/trunkd/trunkd/media/bridge"
)

// ReadLimit is the largest message trunkd takes from an agent: 1 MiB, about
// 96 s of base64 μ-law or 30 s of base64 L16 at 8 kHz in one media message.
// A larger message closes the connection with 1009 and ends the call.
const ReadLimit = 1 << 20

// Subprotocols trunkd offers. An agent that selects none speaks plain
// Twilio Media Streams (μ-law at 8 kHz in base64 JSON).
var Subprotocols = []string{ProtoL16_8k, ProtoL16_16k, ProtoL16_24k, ProtoPCMU, ProtoV1}

// The trunkd.ai.v1 subprotocols: the extensions, with the audio format.
const (
	ProtoV1      = "trunkd.ai.v1"           // μ-law at 8 kHz
	ProtoPCMU    = "trunkd.ai.v1+pcmu"      // μ-law at 8 kHz
	ProtoL16_8k  = "trunkd.ai.v1+l16-8000"  // 16-bit little-endian PCM at 8 kHz
	ProtoL16_16k = "trunkd.ai.v1+l16-16000" // 16-bit little-endian PCM at 16 kHz (resampled)
	ProtoL16_24k = "trunkd.ai.v1+l16-24000" // 16-bit little-endian PCM at 24 kHz (resampled)
)

// l16Rate is the sample rate of an L16 profile, 0 for a μ-law one.
func l16Rate(proto string) int {
	switch proto {
	case ProtoL16_8k:
		return 8000
	case ProtoL16_16k:
		return 16000
	case ProtoL16_24k:
		return 24000
	}
	return 0
}

// Headers of the upgrade request.
const (
	HeaderTimestamp = "X-Trunkd-Timestamp" // Unix seconds
	HeaderSignature = "X-Trunkd-Signature" // "v1=" + hex HMAC-SHA256(token, timestamp + "." + call id)
	HeaderCallID    = "X-Trunkd-Call-Id"   // the SIP Call-ID
	HeaderTrunkID   = "X-Trunkd-Trunk-Id"
	HeaderAgentID   = "X-Trunkd-Agent-Id"
	HeaderTwilioSig = "X-Twilio-Signature" // base64 HMAC-SHA1(token, URL), Twilio's RequestValidator with no parameters
)

// Dialer connects to agents over WebSocket.
type Dialer struct {
	Timeout time.Duration  // connect and handshake; 3 s
	RootCAs *x509.CertPool // for wss://; nil uses the system roots
	Log     *slog.Logger
	Ping    time.Duration // keepalive; 10 s. Three missed pongs end the call.
	Now     func() time.Time
}

// Connect implements bridge.Connector.
func (d *Dialer) Connect(ctx context.Context, t bridge.Target) (bridge.Agent, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, err
	}
	if t.Token != "" && u.Scheme == "ws" && !loopback(u.Hostname()) {
		log.Warn("sending the api_bearer_token over plain ws:// to a non-loopback agent; use wss://", "host", u.Host)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: d.RootCAs, MinVersion: tls.VersionTLS12}}}
	c, resp, err := websocket.Dial(ctx, t.URL, &websocket.DialOptions{
		HTTPClient:   hc,
		HTTPHeader:   Headers(t, now()),
		Subprotocols: Subprotocols,
	})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("agent %s refused the connection: HTTP %d", u.Redacted(), resp.StatusCode)
		}
		return nil, fmt.Errorf("agent %s unreachable: %w", u.Redacted(), err)
	}
	c.SetReadLimit(ReadLimit)
	ping := d.Ping
	if ping <= 0 {
		ping = 10 * time.Second
	}
	a := newAgent(c, c.Subprotocol())
	go a.keepalive(ping)
	return a, nil
}

// Headers are the upgrade request's headers for t at time now.
func Headers(t bridge.Target, now time.Time) http.Header {
	h := http.Header{}
	h.Set("User-Agent", "trunkd")
	h.Set(HeaderCallID, t.CallID)
	h.Set(HeaderTrunkID, t.TrunkID)
	if t.AgentID != "" {
		h.Set(HeaderAgentID, t.AgentID)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	h.Set(HeaderTimestamp, ts)
	if t.Token != "" {
		h.Set("Authorization", "Bearer "+t.Token)
		h.Set(HeaderSignature, Sign(t.Token, ts, t.CallID))
		h.Set(HeaderTwilioSig, TwilioSignature(t.Token, t.URL))
	}
	return h
}

// Sign is the X-Trunkd-Signature of a connection: "v1=" and the hex
// HMAC-SHA256, keyed by the token, of the timestamp, ".", and the call id.
func Sign(token, timestamp, callID string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(timestamp + "." + callID))
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// TwilioSignature is Twilio's request signature of a URL with no
// parameters: base64 HMAC-SHA1 keyed by the token.
func TwilioSignature(token, u string) string {
	m := hmac.New(sha1.New, []byte(token))
	m.Write([]byte(u))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// errBinary is a binary message on the plain Twilio profile.
var errBinary = errors.New("binary message on the Twilio profile (JSON text only)")
