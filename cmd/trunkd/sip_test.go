package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/media/audio"
	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/trunk"
)

// inviteCode sends one INVITE from 127.0.0.1 to port and returns the final
// response code.
func inviteCode(t *testing.T, port uint16) int {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("carrier"))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	dg := diago.NewDiago(ua, diago.WithTransport(diago.Transport{Transport: "udp", BindHost: "127.0.0.1", BindPort: 0}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := dg.Invite(ctx, sip.Uri{User: "100", Host: "127.0.0.1", Port: int(port)}, diago.InviteOptions{})
	if err == nil {
		d.Hangup(ctx)
		d.Close()
		return 200
	}
	var re *sipgo.ErrDialogResponse
	if !errors.As(err, &re) {
		t.Fatalf("INVITE: %v", err)
	}
	return re.Res.StatusCode
}

func sipTrunk(id string, port uint16) *trunk.Trunk {
	tr := trunk.Defaults()
	tr.TrunkID, tr.InternalSIPIP, tr.SourcePBXPort, tr.GatewayIP = id, "127.0.0.1", port, "127.0.0.1"
	return &tr
}

// TestSIPFollowsRPC checks that trunk writes over the RPC change the SIP
// side before they are acknowledged, and that a trunk the SIP plane cannot
// run is refused without being stored.
func TestSIPFollowsRPC(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir)
	defer stopDaemon(t, d)
	c := connect(t, d, dir, token(t, dir, "trunks:manage"))
	ctx := context.Background()
	port := freeSIPPort(t)

	tr := sipTrunk("live-1", port)
	if err := c.AddTrunk(ctx, tr); err != nil {
		t.Fatal(err)
	}
	if got := inviteCode(t, port); got != 603 {
		t.Fatalf("INVITE after AddTrunk got %d; want 603", got)
	}
	tr.RejectSIPCode = 486
	if err := c.UpdateTrunk(ctx, tr); err != nil {
		t.Fatal(err)
	}
	if got := inviteCode(t, port); got != 486 {
		t.Fatalf("INVITE right after UpdateTrunk got %d; want 486", got)
	}
	cfg, _, err := c.GetTrunk(ctx, "live-1")
	if err != nil || cfg.SIPState != "active" || cfg.RegistrationState != "off" {
		t.Errorf("GetTrunk = %+v, %v; want sip_state active, registration_state off", cfg, err)
	}
	m, err := c.ExplainMatch(ctx, "127.0.0.1", fmt.Sprintf("127.0.0.1:%d", port), "sip:100@127.0.0.1")
	if err != nil || !m.Matched || m.TrunkID != "live-1" {
		t.Errorf("ExplainMatch = %+v, %v; want live-1", m, err)
	}

	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	bad := sipTrunk("busy-1", uint16(busy.LocalAddr().(*net.UDPAddr).Port))
	err = c.AddTrunk(ctx, bad)
	var re *rpc.Error
	if !errors.As(err, &re) || re.Code != rpc.CodeInvalidArgument || re.Field != "source_pbx_port" {
		t.Fatalf("AddTrunk on a busy port = %v; want ERR_INVALID_ARGUMENT on source_pbx_port", err)
	}
	if _, found, _ := c.GetTrunk(ctx, "busy-1"); found {
		t.Error("a trunk the SIP plane refused was stored")
	}

	if err := c.RemoveTrunk(ctx, "live-1"); err != nil {
		t.Fatal(err)
	}
	if m, _ := c.ExplainMatch(ctx, "127.0.0.1", fmt.Sprintf("127.0.0.1:%d", port), ""); m.Matched {
		t.Errorf("ExplainMatch after RemoveTrunk = %+v; want unmatched", m)
	}
}

// TestDegradedAtStartup stores a trunk whose port is taken by the time
// trunkd restarts: trunkd still starts, and GetTrunk says why the trunk is
// not live.
func TestDegradedAtStartup(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir)
	tok := token(t, dir, "trunks:manage")
	c := connect(t, d, dir, tok)
	port := freeSIPPort(t)
	if err := c.AddTrunk(context.Background(), sipTrunk("later-busy", port)); err != nil {
		t.Fatal(err)
	}
	stopDaemon(t, d)
	var busy net.PacketConn
	var err error
	for range 100 { // the old listener may take a moment to close
		if busy, err = net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	d = startDaemon(t, dir)
	defer stopDaemon(t, d)
	cfg, found, err := connect(t, d, dir, tok).GetTrunk(context.Background(), "later-busy")
	if err != nil || !found || cfg.SIPState != "degraded" || !strings.Contains(cfg.SIPError, "source_pbx_port") {
		t.Fatalf("GetTrunk = %+v, %v, %v; want found, degraded, naming source_pbx_port", cfg, found, err)
	}
}

// TestPlaysRealWAV: a trunk whose reject_audio_file is a 16 kHz stereo
// WAV answers, plays it converted to G.711 through the real audio cache,
// and hangs up.
func TestPlaysRealWAV(t *testing.T) {
	dir := t.TempDir()
	wav := filepath.Join(dir, "closed.wav")
	samples := make([]int16, 2*16000*6/10) // 600 ms of 16 kHz stereo silence
	if err := os.WriteFile(wav, audio.Encode(samples, audio.Format{Rate: 16000, Channels: 2}), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, dir)
	defer stopDaemon(t, d)
	c := connect(t, d, dir, token(t, dir, "trunks:manage"))
	port := freeSIPPort(t)
	tr := sipTrunk("closed", port)
	tr.RejectAudioFile = "file://" + wav
	if err := c.AddTrunk(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("carrier"))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	dg := diago.NewDiago(ua, diago.WithTransport(diago.Transport{Transport: "udp", BindHost: "127.0.0.1", BindPort: int(freeSIPPort(t))}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := dg.ServeBackground(ctx, func(*diago.DialogServerSession) {}); err != nil {
		t.Fatal(err)
	}
	call, err := dg.Invite(ctx, sip.Uri{User: "100", Host: "127.0.0.1", Port: int(port)}, diago.InviteOptions{})
	if err != nil && strings.Contains(err.Error(), "address already in use") {
		// sipgo registers a just-started listener's socket for reuse
		// asynchronously; the first request can race it.
		time.Sleep(50 * time.Millisecond)
		call, err = dg.Invite(ctx, sip.Uri{User: "100", Host: "127.0.0.1", Port: int(port)}, diago.InviteOptions{})
	}
	if err != nil {
		t.Fatalf("INVITE: %v", err)
	}
	defer call.Close()
	r, _ := call.AudioReader()
	n, buf := 0, make([]byte, 1500)
	for {
		k, err := r.Read(buf)
		n += k
		if err != nil {
			break
		}
	}
	<-call.Context().Done()
	// 600 ms of G.711 is 30 packets of 160 bytes.
	if n < 25*160 {
		t.Errorf("heard %d bytes of the prompt before the BYE; want about %d", n, 30*160)
	}
}
