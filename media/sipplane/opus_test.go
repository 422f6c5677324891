//go:build with_opus_c

package sipplane

import (
	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"strings"
	"testing"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
)

// TestOpusPlayback: a caller offering only Opus gets an answer in Opus and
// hears the prompt, converted to 48 kHz stereo and encoded by libopus.
func TestOpusPlayback(t *testing.T) {
	p := newPlane(t, Config{Audio: &fakeAudio{length: 600 * time.Millisecond}})
	port := siptest.FreePort(t, "127.0.0.1")
	tr := testTrunk("opus", port)
	tr.CodecPreferences = []string{"OPUS", "PCMU"}
	tr.RejectAudioFile = "file:///prompt.wav"
	apply(t, p, tr)

	u := newUAC(t, "127.0.0.1", diago.WithMediaConfig(diago.MediaConfig{Codecs: []media.Codec{media.CodecAudioOpus}}))
	d, code := u.call(t, port, diago.InviteOptions{})
	if code != 200 {
		t.Fatalf("INVITE offering Opus only got %d; want 200", code)
	}
	defer d.Close()
	if sdp := string(d.InviteResponse.Body()); !strings.Contains(sdp, "opus/48000/2") {
		t.Fatalf("answer does not use Opus:\n%s", sdp)
	}
	if n := readUntilHangup(t, d); n < 10 {
		t.Errorf("received %d bytes of Opus before the BYE; want the prompt", n)
	}
}
