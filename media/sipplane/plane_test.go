package sipplane

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/media/audio"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/trunk"
)

var rtpBase atomic.Int32

// rtpRange gives each test trunk its own RTP range: 100 ranges of 200
// ports from 40 000, taken in turn. Trunks past the hundredth reuse the
// ranges of trunks long closed. Counting on without end ran past port
// 65 535 under -count 2: the 127th range ended at port 63, below its
// start, and the INVITE got 503 for want of an RTP port.
func rtpRange() (uint16, uint16) {
	start := 40000 + 200*(rtpBase.Add(1)%100)
	return uint16(start), uint16(start + 199)
}

// testTrunk is a trunk on 127.0.0.1:port whose carrier is 127.0.0.1.
func testTrunk(id string, port uint16) *trunk.Trunk {
	t := trunk.Defaults()
	t.TrunkID = id
	t.InternalSIPIP = "127.0.0.1"
	t.SourcePBXPort = port
	t.GatewayIP = "127.0.0.1"
	t.RTPStartPort, t.RTPEndPort = rtpRange()
	t.CodecPreferences = []string{"PCMU", "PCMA"}
	return &t
}

// fakeAudio serves a generated tone of the given length in any format,
// one shared copy per format as the real cache does.
type fakeAudio struct {
	length time.Duration
	err    error
	calls  atomic.Int32

	mu    sync.Mutex
	cache map[audio.Format][]byte
}

func (f *fakeAudio) WAV(ctx context.Context, url string, fm audio.Format) ([]byte, error) {
	f.calls.Add(1)
	if f.err != nil {
		return nil, f.err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if b, ok := f.cache[fm]; ok {
		return b, nil
	}
	if f.cache == nil {
		f.cache = map[audio.Format][]byte{}
	}
	n := int(f.length.Seconds()*float64(fm.Rate)) * fm.Channels
	f.cache[fm] = wavBytes(make([]int16, n), fm.Rate, fm.Channels)
	return f.cache[fm], nil
}

func wavBytes(s []int16, rate, ch int) []byte {
	b := make([]byte, 44+2*len(s))
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*len(s)))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], uint16(ch))
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(rate*ch*2))
	binary.LittleEndian.PutUint16(b[32:], uint16(ch*2))
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*len(s)))
	return b
}

func newPlane(t testing.TB, cfg Config) *Plane {
	t.Helper()
	if cfg.Audio == nil {
		cfg.Audio = &fakeAudio{length: time.Second}
	}
	if os.Getenv("TRUNKD_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p := New(cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return p
}

func apply(t testing.TB, p *Plane, tr *trunk.Trunk) {
	t.Helper()
	c, err := p.Prepare(context.Background(), tr)
	if err != nil {
		t.Fatalf("Prepare(%s) = %v", tr.TrunkID, err)
	}
	c.Commit()
}

// uac is an in-process SIP caller bound to ip.
type uac struct {
	dg *diago.Diago
}

func newUAC(t testing.TB, ip string, opts ...diago.DiagoOption) *uac {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("caller"))
	if err != nil {
		t.Fatal(err)
	}
	port := siptest.FreePort(t, ip)
	opts = append(opts, diago.WithTransport(diago.Transport{Transport: "udp", BindHost: ip, BindPort: int(port)}))
	dg := diago.NewDiago(ua, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	if err := dg.ServeBackground(ctx, func(d *diago.DialogServerSession) {}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); ua.Close() })
	return &uac{dg: dg}
}

// call sends an INVITE to port on 127.0.0.1 and returns the dialog when
// answered, or the final code.
func (u *uac) call(t testing.TB, port uint16, opts diago.InviteOptions) (*diago.DialogClientSession, int) {
	t.Helper()
	return u.callUser(t, "100", port, opts)
}

// callUser is call with a Request-URI user.
func (u *uac) callUser(t testing.TB, user string, port uint16, opts diago.InviteOptions) (*diago.DialogClientSession, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := u.dg.Invite(ctx, sip.Uri{User: user, Host: "127.0.0.1", Port: int(port)}, opts)
	if err != nil && strings.Contains(err.Error(), "address already in use") {
		// sipgo registers a just-started listener's socket for reuse
		// asynchronously; the first request can race it.
		time.Sleep(50 * time.Millisecond)
		d, err = u.dg.Invite(ctx, sip.Uri{User: user, Host: "127.0.0.1", Port: int(port)}, opts)
	}
	if err == nil {
		return d, 200
	}
	var re *sipgo.ErrDialogResponse
	if errors.As(err, &re) {
		return nil, re.Res.StatusCode
	}
	t.Fatalf("INVITE: %v", err)
	return nil, 0
}

func (u *uac) code(t testing.TB, port uint16) int {
	t.Helper()
	d, code := u.call(t, port, diago.InviteOptions{})
	if d != nil {
		d.Hangup(context.Background())
		d.Close()
	}
	return code
}

func TestRejectCodeFollowsUpdate(t *testing.T) {
	p := newPlane(t, Config{})
	port := siptest.FreePort(t, "127.0.0.1")
	tr := testTrunk("carrier-1", port)
	apply(t, p, tr)
	u := newUAC(t, "127.0.0.1")
	if got := u.code(t, port); got != 603 {
		t.Fatalf("INVITE got %d; want 603 (the default reject_sip_code)", got)
	}
	tr2 := tr.Clone()
	tr2.RejectSIPCode = 486
	apply(t, p, tr2)
	if got := u.code(t, port); got != 486 {
		t.Fatalf("INVITE right after the update got %d; want 486", got)
	}
}

func TestUnmatchedSourceIsForbidden(t *testing.T) {
	p := newPlane(t, Config{})
	port := siptest.FreePort(t, "127.0.0.1")
	apply(t, p, testTrunk("carrier-1", port))
	u := newUAC(t, "127.0.0.2")
	if got := u.code(t, port); got != 403 {
		t.Fatalf("INVITE from an unknown source got %d; want 403", got)
	}
	m, err := p.Explain("127.0.0.2", fmt.Sprintf("127.0.0.1:%d", port), "sip:100@127.0.0.1")
	if err != nil || m.Matched || !strings.Contains(m.Reason, "carrier-1") {
		t.Errorf("Explain = %+v, %v; want unmatched, naming the trunks on the listener", m, err)
	}
}

// TestAllowedAddressesAndOrgsOverSIP: real INVITEs from 127.0.0.1 to two
// trunks of different organizations on one listener. When both claim the
// source equally the call is refused (403), never given to one by id; a
// narrower claim by one of them wins; an address outside every rule is
// refused.
func TestAllowedAddressesAndOrgsOverSIP(t *testing.T) {
	p := newPlane(t, Config{})
	port := siptest.FreePort(t, "127.0.0.1")
	acme := testTrunk("a-acme", port)
	acme.OrganizationID, acme.RejectSIPCode = "acme", 486
	globex := testTrunk("b-globex", port)
	globex.OrganizationID, globex.RejectSIPCode = "globex", 480
	globex.GatewayIP, globex.AllowedAddresses = "", []string{"127.0.0.1"}
	apply(t, p, acme)
	apply(t, p, globex)
	u := newUAC(t, "127.0.0.1")
	if got := u.code(t, port); got != 403 {
		t.Errorf("INVITE claimed exactly by two organizations got %d; want 403", got)
	}
	globex = globex.Clone()
	globex.AllowedAddresses = []string{"127.0.0.0/8"}
	apply(t, p, globex)
	if got := u.code(t, port); got != 486 {
		t.Errorf("INVITE from acme's gateway, globex allowing 127.0.0.0/8, got %d; want acme's 486", got)
	}
	if got := newUAC(t, "127.0.0.2").code(t, port); got != 480 {
		t.Errorf("INVITE from 127.0.0.2 (only in globex's prefix) got %d; want globex's 480", got)
	}
	m, _ := p.Explain("127.0.0.2", fmt.Sprintf("127.0.0.1:%d", port), "")
	if m.TrunkID != "b-globex" || !strings.Contains(m.Reason, "longest prefix: its allowed_addresses entry 127.0.0.0/8") {
		t.Errorf("Explain(127.0.0.2) = %+v; want b-globex by its prefix", m)
	}
}

func TestRemovedTrunkIsUnmatched(t *testing.T) {
	p := newPlane(t, Config{})
	port := siptest.FreePort(t, "127.0.0.1")
	apply(t, p, testTrunk("a", port))
	apply(t, p, testTrunk("b", port)) // keeps the listener up
	p.Remove("a")
	u := newUAC(t, "127.0.0.1")
	m, _ := p.Explain("127.0.0.1", fmt.Sprintf("127.0.0.1:%d", port), "")
	if m.TrunkID != "b" {
		t.Fatalf("Explain after removing a = %+v; want b", m)
	}
	p.Remove("b")
	// The listener closes once no trunk uses it: the INVITE goes nowhere.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		l, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			l.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = u
	t.Fatal("listener still bound after its last trunk was removed")
}

func TestBindFailureChangesNothing(t *testing.T) {
	p := newPlane(t, Config{})
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := uint16(busy.LocalAddr().(*net.UDPAddr).Port)
	_, err = p.Prepare(context.Background(), testTrunk("x", port))
	var te *trunk.Error
	if !errors.As(err, &te) || te.Field != "source_pbx_port" {
		t.Fatalf("Prepare on a busy port = %v; want an error naming source_pbx_port", err)
	}
	if !errors.Is(err, syscall.EADDRINUSE) || strings.Contains(te.Message, "bind") {
		t.Errorf("Prepare on a busy port = %q (cause %v); want EADDRINUSE as the cause, not in the message", te.Message, te.Err)
	}
	if st := p.status("x"); st.State != trunk.SIPOff {
		t.Errorf("Status after a failed Prepare = %+v; want off", st)
	}
}

func TestHandleAIRefusedWithoutBridge(t *testing.T) {
	p := newPlane(t, Config{})
	tr := testTrunk("ai", siptest.FreePort(t, "127.0.0.1"))
	tr.RejectIncomingCalls = false
	tr.InboundRule = trunk.RuleHandleAI
	tr.InboundAIWebsocketURL = "ws://127.0.0.1:1/agent"
	_, err := p.Prepare(context.Background(), tr)
	var te *trunk.Error
	if !errors.As(err, &te) || te.Field != "inbound_rule" || !strings.Contains(te.Message, "no AI bridge") {
		t.Fatalf("Prepare(HANDLE_AI) without a Bridger = %v; want a clear error on inbound_rule", err)
	}
}

func TestPlayAndHangup(t *testing.T) {
	p := newPlane(t, Config{Audio: &fakeAudio{length: 800 * time.Millisecond}})
	port := siptest.FreePort(t, "127.0.0.1")
	tr := testTrunk("play", port)
	tr.RejectIncomingCalls = false
	tr.InboundRule = trunk.RulePlayAndHangup
	tr.InboundAudioURL = "file:///prompt.wav"
	tr.ExternalRTPIP = "203.0.113.9"
	apply(t, p, tr)
	u := newUAC(t, "127.0.0.1")
	d, code := u.call(t, port, diago.InviteOptions{})
	if code != 200 {
		t.Fatalf("INVITE got %d; want 200", code)
	}
	defer d.Close()
	if sdp := string(d.InviteResponse.Body()); !strings.Contains(sdp, "c=IN IP4 203.0.113.9") {
		t.Errorf("answer SDP does not advertise external_rtp_ip:\n%s", sdp)
	}
	if port := mediaPort(d.InviteResponse.Body()); port < int(tr.RTPStartPort) || port > int(tr.RTPEndPort) {
		t.Errorf("media port %d outside the trunk's range %d-%d", port, tr.RTPStartPort, tr.RTPEndPort)
	}
	n := readUntilHangup(t, d)
	// 800 ms of G.711 is 40 packets of 160 bytes.
	if n < 30*160 {
		t.Errorf("received %d audio bytes before the BYE; want about %d", n, 40*160)
	}
}

func mediaPort(sdp []byte) int {
	o, err := parseOffer(sdp)
	if err != nil {
		return -1
	}
	return o.port
}

// readUntilHangup reads audio until the far end hangs up and returns the
// byte count; it fails the test if no BYE comes.
func readUntilHangup(t testing.TB, d *diago.DialogClientSession) int {
	t.Helper()
	r, err := d.AudioReader()
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	go func() {
		buf := make([]byte, 1500)
		for {
			k, err := r.Read(buf)
			n.Add(int64(k))
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-d.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("no BYE from trunkd")
	}
	return int(n.Load())
}

func TestAudioFailureRejects(t *testing.T) {
	p := newPlane(t, Config{Audio: &fakeAudio{err: io.ErrUnexpectedEOF}})
	port := siptest.FreePort(t, "127.0.0.1")
	tr := testTrunk("play", port)
	tr.RejectAudioFile = "https://example.invalid/x.wav"
	tr.RejectSIPCode = 480
	apply(t, p, tr)
	if got := newUAC(t, "127.0.0.1").code(t, port); got != 480 {
		t.Fatalf("INVITE with unfetchable audio got %d; want reject_sip_code 480", got)
	}
}

func TestChannelLimit(t *testing.T) {
	p := newPlane(t, Config{Audio: &fakeAudio{length: 3 * time.Second}})
	port := siptest.FreePort(t, "127.0.0.1")
	tr := testTrunk("small", port)
	tr.ChannelLimit = 2
	tr.RejectAudioFile = "file:///long.wav"
	apply(t, p, tr)
	u := newUAC(t, "127.0.0.1")
	var wg sync.WaitGroup
	for range 2 {
		d, code := u.call(t, port, diago.InviteOptions{})
		if code != 200 {
			t.Fatalf("call within the limit got %d", code)
		}
		wg.Go(func() { readUntilHangup(t, d); d.Close() })
	}
	if st := p.status("small"); st.ActiveCalls != 2 {
		t.Errorf("ActiveCalls = %d; want 2", st.ActiveCalls)
	}
	if got := u.code(t, port); got != 503 {
		t.Errorf("third concurrent call got %d; want 503", got)
	}
	wg.Wait()
	// The caller sees the BYE before trunkd has its 200 OK and frees the
	// slot: wait for trunkd's side of the calls to end.
	waitFor(t, "the calls to end", func() bool { return p.status("small").ActiveCalls == 0 })
	if got := u.code(t, port); got != 200 {
		t.Errorf("call after the others ended got %d; want 200", got)
	}
}

// TestReAddKeepsChannelCount: a trunk removed while its calls run and
// added again under the same id counts those calls against its
// channel_limit until they end.
func TestReAddKeepsChannelCount(t *testing.T) {
	p := newPlane(t, Config{Audio: &fakeAudio{length: 2 * time.Second}})
	port := siptest.FreePort(t, "127.0.0.1")
	tr := testTrunk("again", port)
	tr.ChannelLimit = 2
	tr.RejectAudioFile = "file:///long.wav"
	apply(t, p, tr)
	u := newUAC(t, "127.0.0.1")
	var wg sync.WaitGroup
	for range 2 {
		d, code := u.call(t, port, diago.InviteOptions{})
		if code != 200 {
			t.Fatalf("call within the limit got %d", code)
		}
		wg.Go(func() { readUntilHangup(t, d); d.Close() })
	}
	p.Remove("again")
	apply(t, p, tr.Clone())
	if st := p.status("again"); st.ActiveCalls != 2 {
		t.Errorf("ActiveCalls after remove and re-add = %d; want the 2 calls still running", st.ActiveCalls)
	}
	if got := u.code(t, port); got != 503 {
		t.Errorf("third call after remove and re-add got %d; want 503 (channel_limit 2, 2 calls running)", got)
	}
	wg.Wait()
	// The caller sees the hangup before trunkd has the answer to its BYE
	// and frees the channel.
	waitFor(t, "the ended calls' channels freed", func() bool { return p.status("again").ActiveCalls == 0 })
	if got := u.code(t, port); got != 200 {
		t.Errorf("call after the others ended got %d; want 200", got)
	}
}

func TestLongCallSurvivesUpdateAndRemove(t *testing.T) {
	p := newPlane(t, Config{Audio: &fakeAudio{length: 2 * time.Second}})
	port := siptest.FreePort(t, "127.0.0.1")
	tr := testTrunk("t", port)
	tr.RejectAudioFile = "file:///long.wav"
	apply(t, p, tr)
	u := newUAC(t, "127.0.0.1")
	d, code := u.call(t, port, diago.InviteOptions{})
	if code != 200 {
		t.Fatalf("INVITE got %d", code)
	}
	defer d.Close()
	done := make(chan int)
	go func() { done <- readUntilHangup(t, d) }()
	time.Sleep(300 * time.Millisecond)
	tr2 := tr.Clone()
	tr2.RejectAudioFile = ""
	tr2.RejectSIPCode = 486
	apply(t, p, tr2)
	time.Sleep(300 * time.Millisecond)
	p.Remove("t")
	n := <-done
	if n < 80*160 {
		t.Errorf("call got %d bytes of its 2 s prompt; want it played to the end across Update and Remove", n)
	}
}
