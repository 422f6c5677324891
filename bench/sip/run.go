package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/trunk"
)

func (b *bench) all() error {
	reject, err := b.scenario("uac_reject.xml")
	if err != nil {
		return err
	}
	play, err := b.scenario("uac_answer_wait_bye.xml")
	if err != nil {
		return err
	}
	d, err := startTrunkd(b.o.trunkd, filepath.Join(b.dir, "t1"))
	if err != nil {
		return err
	}
	defer d.stop()
	port := freePort()
	t := benchTrunk(port)
	if err := d.c.AddTrunk(context.Background(), t); err != nil {
		return err
	}
	if err := b.rejectPath(d, t, reject); err != nil || b.o.rejectOnly {
		return err
	}
	if err := b.updateToInvite(d, t, port); err != nil {
		return err
	}
	if err := b.playPath(d, t, play); err != nil {
		return err
	}
	if err := b.outbound(d); err != nil {
		return err
	}
	d.stop()
	if err := b.liveCalls(play); err != nil {
		return err
	}
	return b.held(b.o.heldCalls, b.o.hold)
}

func (b *bench) rejectPath(d *trunkd, t *trunk.Trunk, xml string) error {
	ts := []target{{"trunkd REJECT", d.proc, int(t.SourcePBXPort)}}
	bare, err := startBare(b.o.bareuas, mkdir(b.dir, "bare-reject"), "reject", b.prompt)
	if err != nil {
		return err
	}
	defer bare.stop()
	ts = append(ts, target{"bare diago REJECT", bare, bare.port})
	if _, err := exec.LookPath("kamailio"); err != nil {
		b.rep.notes = append(b.rep.notes, "Kamailio is not installed (Debian: kamailio); its row is missing.")
	} else {
		k, err := startKamailio(b.o.kamailioCfg, mkdir(b.dir, "kamailio"))
		if err != nil {
			return err
		}
		defer k.stop()
		ts = append(ts, target{"Kamailio 603 stateful", k, k.port})
	}
	return b.ramp(xml, ts, b.o.rejectRates)
}

func (b *bench) playPath(d *trunkd, t *trunk.Trunk, xml string) error {
	t.RejectIncomingCalls, t.InboundRule, t.InboundAudioURL = false, trunk.RulePlayAndHangup, "file://"+b.prompt
	if err := d.c.UpdateTrunk(context.Background(), t); err != nil {
		return err
	}
	bare, err := startBare(b.o.bareuas, mkdir(b.dir, "bare-play"), "play", b.prompt)
	if err != nil {
		return err
	}
	defer bare.stop()
	return b.ramp(xml, []target{{"trunkd PLAY_AND_HANGUP", d.proc, int(t.SourcePBXPort)}, {"bare diago PLAY", bare, bare.port}}, b.o.playRates)
}

// updateToInvite changes the reject code with UpdateTrunk and sends an
// INVITE the moment the acknowledgement arrives: every call must get the
// new code.
func (b *bench) updateToInvite(d *trunkd, t *trunk.Trunk, port int) error {
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("sipbench"))
	if err != nil {
		return err
	}
	defer ua.Close()
	dg := diago.NewDiago(ua, diago.WithTransport(diago.Transport{Transport: "udp", BindHost: "127.0.0.1", BindPort: 0}))
	const n = 200
	u := update{n: n}
	for i := range n {
		t.RejectSIPCode = []uint16{486, 603}[i%2]
		start := time.Now()
		if err := d.c.UpdateTrunk(context.Background(), t); err != nil {
			return err
		}
		acked := time.Now()
		code, err := inviteCode(dg, port)
		if err != nil {
			return err
		}
		u.rpc = append(u.rpc, acked.Sub(start))
		u.next = append(u.next, time.Since(acked))
		if code != int(t.RejectSIPCode) {
			u.stale++
		}
	}
	b.rep.update = &u
	return nil
}

func inviteCode(dg *diago.Diago, port int) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dl, err := dg.Invite(ctx, sip.Uri{User: "100", Host: "127.0.0.1", Port: port}, diago.InviteOptions{})
	if err == nil {
		dl.Hangup(ctx)
		dl.Close()
		return 200, nil
	}
	var re *sipgo.ErrDialogResponse
	if !errors.As(err, &re) {
		return 0, fmt.Errorf("INVITE: %w", err)
	}
	return re.Res.StatusCode, nil
}

// liveCalls holds answered calls on a fresh trunkd (a 120 s prompt keeps
// them up) and reads its resident memory before and with them.
func (b *bench) liveCalls(xml string) error {
	d, err := startTrunkd(b.o.trunkd, filepath.Join(b.dir, "t2"))
	if err != nil {
		return err
	}
	defer d.stop()
	port := freePort()
	t := benchTrunk(port)
	t.RejectIncomingCalls, t.InboundRule, t.InboundAudioURL = false, trunk.RulePlayAndHangup, "file://"+b.long
	if err := d.c.AddTrunk(context.Background(), t); err != nil {
		return err
	}
	// one call first, so the prompt is cached and the listener warm
	if _, err := sippRun(context.Background(), xml, port, 1, 1, "-recv_timeout", "200000"); err != nil {
		return err
	}
	time.Sleep(time.Second)
	before := d.rssKiB()
	n := b.o.liveCalls
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go sippRun(ctx, xml, port, 100, n, "-recv_timeout", "200000")
	deadline := time.Now().Add(time.Duration(n/100+30) * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		cfg, _, err := d.c.GetTrunk(context.Background(), t.TrunkID)
		if err != nil {
			return err
		}
		if int(cfg.ActiveCalls) >= n {
			time.Sleep(2 * time.Second) // let every call's playback start
			b.rep.live = &live{calls: n, beforeKiB: before, withKiB: d.rssKiB()}
			return nil
		}
	}
	return fmt.Errorf("live calls: trunkd never reached %d active calls", n)
}

func mkdir(dir, name string) string {
	p := filepath.Join(dir, name)
	_ = os.MkdirAll(p, 0o755)
	return p
}
