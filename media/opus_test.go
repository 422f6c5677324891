//go:build with_opus_c

package media

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// TestOpusPlayback: a caller offering only Opus gets an answer in Opus and
// hears the prompt, converted to 48 kHz stereo and encoded by libopus.
func TestOpusPlayback(t *testing.T) {
	p := newPlane(t, Config{Audio: &fakeAudio{length: 600 * time.Millisecond}})
	port := freePort(t, "127.0.0.1")
	tr := testTrunk("opus", port)
	tr.CodecPreferences = []string{"OPUS", "PCMU"}
	tr.RejectAudioFile = "file:///prompt.wav"
	apply(t, p, tr)

	ua, err := sipgo.NewUA(sipgo.WithUserAgent("opus-caller"))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	cport := freePort(t, "127.0.0.1")
	dg := diago.NewDiago(ua,
		diago.WithTransport(diago.Transport{Transport: "udp", BindHost: "127.0.0.1", BindPort: int(cport)}),
		diago.WithMediaConfig(diago.MediaConfig{Codecs: []media.Codec{media.CodecAudioOpus}}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := dg.ServeBackground(ctx, func(*diago.DialogServerSession) {}); err != nil {
		t.Fatal(err)
	}
	ictx, icancel := context.WithTimeout(ctx, 5*time.Second)
	defer icancel()
	d, err := dg.Invite(ictx, sip.Uri{User: "100", Host: "127.0.0.1", Port: int(port)}, diago.InviteOptions{})
	if err != nil {
		t.Fatalf("INVITE offering Opus only: %v", err)
	}
	defer d.Close()
	if sdp := string(d.InviteResponse.Body()); !strings.Contains(sdp, "opus/48000/2") {
		t.Fatalf("answer does not use Opus:\n%s", sdp)
	}
	if n := readUntilHangup(t, d); n < 10 {
		t.Errorf("received %d bytes of Opus before the BYE; want the prompt", n)
	}
}
