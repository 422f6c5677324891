package sipplane

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/media/audio"
	"github.com/trunkd/trunkd/trunk"
)

// Event is the JSON body POSTed to inbound_webhook_url for an inbound call.
type Event struct {
	Event   string `json:"event"` // "inbound_call"
	TrunkID string `json:"trunk_id"`
	CallID  string `json:"call_id"`
	From    string `json:"from"`
	To      string `json:"to"`
	Source  string `json:"source"` // ip:port the INVITE came from
	Time    string `json:"time"`   // RFC 3339, UTC
}

// Webhook headers. The signature is hex HMAC-SHA256, keyed by the trunk's
// api_bearer_token, of the timestamp, a ".", and the body.
const (
	HeaderTimestamp = "X-Trunkd-Timestamp" // Unix seconds
	HeaderSignature = "X-Trunkd-Signature" // "v1=" + hex
)

// Sign returns the signature header value for a webhook body.
func Sign(token, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// notify POSTs the call's event to the trunk's webhook. It waits at most
// WebhookTimeout: the SIP reply never waits longer on a slow receiver.
func (p *Plane) notify(ctx context.Context, t *trunk.Trunk, req *sip.Request) {
	ev := Event{Event: "inbound_call", TrunkID: t.TrunkID, CallID: req.CallID().Value(),
		From: req.From().Address.String(), To: req.To().Address.String(),
		Source: req.Source(), Time: time.Now().UTC().Format(time.RFC3339Nano)}
	body, _ := json.Marshal(ev)
	ctx, cancel := context.WithTimeout(ctx, p.cfg.WebhookTimeout)
	defer cancel()
	if err := p.post(ctx, t, body); err != nil {
		p.log.Warn("webhook failed", "trunk_id", t.TrunkID, "err", err)
	}
}

func (p *Plane) post(ctx context.Context, t *trunk.Trunk, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.InboundWebhookURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", p.cfg.UserAgent)
	req.Header.Set(HeaderTimestamp, ts)
	if t.APIBearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+t.APIBearerToken)
		req.Header.Set(HeaderSignature, Sign(t.APIBearerToken, ts, body))
	}
	res, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, credentials and all
		}
		return fmt.Errorf("POST %s: %w", audio.Redact(t.InboundWebhookURL), err)
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s", audio.Redact(t.InboundWebhookURL), res.Status)
	}
	return nil
}
