package sipplane

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trunkd/trunkd/media/audio"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/trunk"
)

// Interoperability with a SIP stack that is not Go: Debian's baresip
// (libre's TLS and SRTP), headless. It answers or places one call with
// SRTP over TLS; its sndfile module writes the audio it decoded to a WAV
// file, which shows it decrypted trunkd's SRTP; trunkd counting baresip's
// packets with none dropped shows the other way.

// toneAudio serves a 440 Hz tone, so that decoded audio can be told from
// silence.
type toneAudio struct{ length time.Duration }

func (a toneAudio) WAV(_ context.Context, _ string, f audio.Format) ([]byte, error) {
	n := int(a.length.Seconds() * float64(f.Rate))
	s := make([]int16, n*f.Channels)
	for i := range n {
		v := int16(8000 * math.Sin(2*math.Pi*440*float64(i)/float64(f.Rate)))
		for ch := range f.Channels {
			s[i*f.Channels+ch] = v
		}
	}
	b := wavBytes(s, f.Rate, f.Channels) // the header; wavBytes leaves the samples zero
	for i, v := range s {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(v))
	}
	return b, nil
}

// baresip is one headless baresip process with its config dir.
type baresip struct {
	dir  string
	port uint16 // UDP/TCP; TLS is on port+1
	cmd  *exec.Cmd
	out  *syncBuffer
}

// syncBuffer is baresip's output, written by the process's pipe copier
// and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func needBaresip(t *testing.T) {
	if _, err := exec.LookPath("baresip"); err != nil {
		t.Skip("baresip is not installed (make deps installs it)")
	}
}

// startBaresip runs baresip with a TLS certificate issued by ca,
// answering calls automatically with SRTP mandatory, sending a tone and
// dumping what it decodes; extra are -e commands.
func startBaresip(t *testing.T, ca *testCA, extra ...string) *baresip {
	t.Helper()
	dir := t.TempDir()
	b := &baresip{dir: dir, out: &syncBuffer{}}
	b.port = siptest.FreePorts(t, "127.0.0.1", 2) // baresip listens for TLS on port+1
	cert := ca.issue(t, "127.0.0.1")
	var pemData []byte
	pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})...)
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})...)
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("cert.pem", pemData)
	write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
	tone, _ := toneAudio{length: 5 * time.Second}.WAV(context.Background(), "", audio.Format{Rate: 8000, Channels: 1})
	write("tone.wav", tone)
	write("config", fmt.Appendf(nil, `poll_method	poll
sip_listen	127.0.0.1:%d
sip_certificate	%s
sip_cafile	%s
module_path	/usr/lib/baresip/modules
module	g711.so
module	srtp.so
module	aufile.so
module	sndfile.so
module	aubridge.so
module_app	account.so
module_app	menu.so
audio_source	aufile,%s
audio_player	aubridge,nowhere
audio_alert	aubridge,nowhere
snd_path	%s
`, b.port, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "ca.pem"), filepath.Join(dir, "tone.wav"), dir))
	write("accounts", []byte("<sip:bs@127.0.0.1>;regint=0;answermode=auto;mediaenc=srtp-mand;audio_codecs=PCMU\n"))
	args := []string{"-f", dir, "-t", "20"}
	for _, e := range extra {
		args = append(args, "-e", e)
	}
	b.cmd = exec.Command("baresip", args...)
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = b.cmd.Process.Kill()
		_ = b.cmd.Wait()
		if t.Failed() {
			t.Logf("baresip output:\n%s", b.out.String())
			files, _ := filepath.Glob(filepath.Join(b.dir, "*.wav"))
			for _, f := range files {
				fi, _ := os.Stat(f)
				t.Logf("%s: %d bytes", filepath.Base(f), fi.Size())
			}
			if d := os.Getenv("BARESIP_KEEP"); d != "" {
				_ = exec.Command("cp", "-r", b.dir, d).Run()
			}
		}
	})
	return b
}

// decodedRMS is the RMS of the audio baresip decoded (its sndfile dump),
// 0 when there is none.
func (b *baresip) decodedRMS(t *testing.T) float64 {
	files, _ := filepath.Glob(filepath.Join(b.dir, "*dec.wav"))
	var best float64
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil || len(data) <= 44 {
			continue
		}
		pcm := data[44:]
		var sum float64
		n := len(pcm) / 2
		for i := range n {
			v := float64(int16(binary.LittleEndian.Uint16(pcm[2*i:])))
			sum += v * v
		}
		if n > 0 {
			best = max(best, math.Sqrt(sum/float64(n)))
		}
	}
	return best
}

func tlsTrunkConfig(t *testing.T, ca *testCA) Config {
	cfg := tlsPlaneConfig(ca.issue(t, "127.0.0.1"), ca.pool)
	cfg.Audio = toneAudio{length: 3 * time.Second}
	return cfg
}

func TestBaresipAnswersTLSAndSRTP(t *testing.T) {
	needBaresip(t)
	ca := newTestCA(t)
	bs := startBaresip(t, ca)
	p := newDialPlane(t, tlsTrunkConfig(t, ca))
	tr := testTrunk("to-baresip", siptest.FreePort(t, "127.0.0.1"))
	tr.SIPTLSPort = siptest.FreePort(t, "127.0.0.1")
	tr.Transport, tr.OutboundMediaEncryption = trunk.TransportTLS, trunk.EncryptRequire
	tr.DestinationSBCPort = bs.port + 1
	tr.CodecPreferences = []string{"PCMU"}
	apply(t, p, tr)
	var res trunk.DialResult
	waitFor(t, "baresip listening", func() bool { return strings.Contains(bs.out.String(), "baresip is ready") })
	res = dial(t, p, trunk.DialRequest{TrunkID: "to-baresip", To: "bs", Timeout: 10 * time.Second, AudioURL: "https://audio.example/tone.wav"})
	if !res.Answered {
		t.Fatalf("Dial to baresip = %+v; want answered", res)
	}
	call, ok := p.calls.get(res.CallID)
	if !ok {
		t.Fatal("the call ended at once")
	}
	oc := call.(*outboundCall)
	if !oc.socks.encrypted() {
		t.Fatal("the call to baresip is not encrypted")
	}
	waitFor(t, "baresip's SRTP at trunkd", func() bool { return oc.received() >= 50 })
	// RTP only: baresip also sends a 16-byte packet to the RTCP port that
	// is no SRTCP packet (too short for one) and is rightly dropped.
	if d := oc.socks.rtp.dropped.Load(); d != 0 {
		t.Errorf("trunkd dropped %d of baresip's SRTP packets (RTP %d, RTCP %d): %v", d, oc.socks.rtp.dropped.Load(), oc.socks.rtcp.dropped.Load(), oc.socks.lastError())
	}
	waitFor(t, "trunkd's tone decoded by baresip", func() bool { return bs.decodedRMS(t) > 1000 })
	_ = p.Hangup(context.Background(), res.CallID)
}

func TestBaresipCallsOverTLSAndSRTP(t *testing.T) {
	needBaresip(t)
	ca := newTestCA(t)
	p := newPlane(t, tlsTrunkConfig(t, ca))
	tr := testTrunk("from-baresip", siptest.FreePort(t, "127.0.0.1"))
	tr.SIPTLSPort = siptest.FreePort(t, "127.0.0.1")
	tr.InboundMediaEncryption = trunk.EncryptRequire
	tr.RejectIncomingCalls, tr.InboundRule, tr.InboundAudioURL = false, trunk.RulePlayAndHangup, "https://audio.example/tone.wav"
	tr.CodecPreferences = []string{"PCMU"}
	apply(t, p, tr)
	bs := startBaresip(t, ca, fmt.Sprintf("/dial sip:100@127.0.0.1:%d;transport=tls", tr.SIPTLSPort))
	var in *inboundCall
	waitFor(t, "baresip's call", func() bool {
		for _, c := range p.calls.list("from-baresip") {
			if ic, ok := p.calls.inbound(c.CallID); ok {
				in = ic
				return true
			}
		}
		return false
	})
	if in.d.InviteRequest.Transport() != "TLS" {
		t.Errorf("baresip's INVITE came over %s; want TLS", in.d.InviteRequest.Transport())
	}
	waitFor(t, "baresip's SRTP at trunkd", func() bool {
		return in.received() >= 50
	})
	if m := in.media(); !m.encrypted() || m.rtp.dropped.Load() != 0 {
		t.Errorf("encrypted %v, dropped %d (%v); want SRTP with no RTP packet dropped", m.encrypted(), m.dropped(), m.lastError())
	}
	waitFor(t, "trunkd's tone decoded by baresip", func() bool { return bs.decodedRMS(t) > 1000 })
}
