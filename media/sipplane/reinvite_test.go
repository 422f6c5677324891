package sipplane

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
)

// reinvite sends an in-dialog INVITE with direction dir and ACKs its answer.
func reinvite(t *testing.T, d *diago.DialogClientSession, dir string) *sip.Response {
	t.Helper()
	la := d.MediaSession().Laddr
	body := fmt.Sprintf("v=0\r\no=- 2 3 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=%s\r\n", la.IP, la.IP, la.Port, dir)
	req := sip.NewRequest(sip.INVITE, d.RemoteContact().Address)
	req.AppendHeader(d.InviteRequest.Contact())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte(body))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := d.Do(ctx, req)
	if err != nil {
		t.Fatalf("re-INVITE: %v", err)
	}
	if res.StatusCode == 200 {
		ack := sip.NewRequest(sip.ACK, res.Contact().Address)
		if err := d.WriteRequest(ack); err != nil {
			t.Fatalf("ACK: %v", err)
		}
	}
	return res
}

func TestHoldKeepsExternalIP(t *testing.T) {
	for _, terminate := range []bool{false, true} {
		t.Run(fmt.Sprintf("terminate_on_hold=%v", terminate), func(t *testing.T) {
			p := newPlane(t, Config{Audio: &fakeAudio{length: 3 * time.Second}})
			port := siptest.FreePort(t, "127.0.0.1")
			tr := testTrunk("h", port)
			tr.RejectAudioFile = "file:///moh.wav"
			tr.ExternalRTPIP = "203.0.113.9"
			tr.TerminateOnHold = terminate
			apply(t, p, tr)
			d, code := newUAC(t, "127.0.0.1").call(t, port, diago.InviteOptions{})
			if code != 200 {
				t.Fatalf("INVITE got %d", code)
			}
			defer d.Close()
			res := reinvite(t, d, "sendonly")
			body := string(res.Body())
			if res.StatusCode != 200 || !strings.Contains(body, "a=recvonly") || !strings.Contains(body, "c=IN IP4 203.0.113.9") {
				t.Fatalf("hold re-INVITE answered %d:\n%s\nwant 200, a=recvonly, c= external_rtp_ip", res.StatusCode, body)
			}
			select {
			case <-d.Context().Done():
				if !terminate {
					t.Fatal("call hung up on hold without terminate_on_hold")
				}
			case <-time.After(time.Second):
				if terminate {
					t.Fatal("terminate_on_hold: no BYE within a second of the hold")
				}
			}
			if !terminate {
				res := reinvite(t, d, "sendrecv")
				if res.StatusCode != 200 || !strings.Contains(string(res.Body()), "a=sendrecv") {
					t.Fatalf("resume answered %d:\n%s", res.StatusCode, res.Body())
				}
			}
		})
	}
}
