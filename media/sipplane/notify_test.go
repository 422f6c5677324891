package sipplane

import (
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/trunk"
)

// TestWebhookSignedAndBounded checks NOTIFY_AND_HANGUP: the receiver gets
// the event with the bearer token and a signature it can verify, and the
// SIP reply does not wait for a receiver that hangs.
func TestWebhookSignedAndBounded(t *testing.T) {
	const token = "tok-3f9a"
	got := make(chan Event, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts := r.Header.Get(HeaderTimestamp)
		want := Sign(token, ts, body)
		if r.Header.Get("Authorization") != "Bearer "+token || !hmac.Equal([]byte(r.Header.Get(HeaderSignature)), []byte(want)) {
			t.Errorf("webhook auth: Authorization %q, signature %q; want bearer and %q", r.Header.Get("Authorization"), r.Header.Get(HeaderSignature), want)
		}
		var ev Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook body %s: %v", body, err)
		}
		got <- ev
		select { // hang like a slow receiver until the SIP side is done
		case <-release:
		case <-time.After(10 * time.Second):
		}
	}))
	defer srv.Close()
	defer close(release)

	p := newPlane(t, Config{WebhookTimeout: 300 * time.Millisecond})
	port := siptest.FreePort(t, "127.0.0.1")
	tr := testTrunk("hook", port)
	tr.RejectIncomingCalls = false
	tr.InboundRule = trunk.RuleNotifyAndHangup
	tr.InboundWebhookURL = srv.URL + "/calls"
	tr.APIBearerToken = token
	tr.RejectSIPCode = 480
	apply(t, p, tr)
	if code := newUAC(t, "127.0.0.1").code(t, port); code != 480 {
		t.Fatalf("INVITE got %d; want reject_sip_code 480 after the webhook", code)
	}
	select {
	case ev := <-got:
		if ev.TrunkID != "hook" || ev.CallID == "" || ev.From == "" || ev.To == "" || ev.Source == "" || ev.Time == "" {
			t.Errorf("event = %+v; want every field set", ev)
		}
	default:
		t.Fatal("the webhook was not called before the SIP reply")
	}
}
