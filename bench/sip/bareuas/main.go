// Command bareuas is the baseline trunkd's SIP plane is measured against:
// a bare diago server on one UDP address that treats every INVITE the way
// a trunk's policy would, with none of trunkd's matching, limits, policy
// lookup or per-trunk port pools.
//
//	bareuas -listen 127.0.0.1:5070 -mode reject -code 603
//	bareuas -listen 127.0.0.1:5070 -mode play -wav prompt.wav
//
// reject replies the code and waits for the ACK; play answers with PCMU,
// plays the WAV (16-bit PCM, 8 kHz mono) to the end and sends BYE.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:5070", "UDP `address` to serve SIP on")
	mode := flag.String("mode", "reject", "reject or play")
	code := flag.Int("code", 603, "SIP `code` for -mode reject")
	wavPath := flag.String("wav", "", "WAV `file` for -mode play")
	rtpStart := flag.Int("rtp-start", 20000, "first RTP port")
	rtpEnd := flag.Int("rtp-end", 40000, "last RTP port")
	flag.Parse()
	if err := run(*listen, *mode, *code, *wavPath, *rtpStart, *rtpEnd); err != nil {
		fmt.Fprintln(os.Stderr, "bareuas:", err)
		os.Exit(1)
	}
}

func run(listen, mode string, code int, wavPath string, rtpStart, rtpEnd int) error {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return err
	}
	var wav []byte
	switch mode {
	case "reject":
	case "play":
		if wav, err = os.ReadFile(wavPath); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-mode %q: want reject or play", mode)
	}
	media.RTPPortStart, media.RTPPortEnd = rtpStart, rtpEnd
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("bareuas"))
	if err != nil {
		return err
	}
	defer ua.Close()
	dg := diago.NewDiago(ua,
		diago.WithTransport(diago.Transport{Transport: "udp", BindHost: host, BindPort: port}),
		diago.WithMediaConfig(diago.MediaConfig{Codecs: []media.Codec{media.CodecAudioUlaw}}),
		diago.WithLogger(slog.New(slog.DiscardHandler)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return dg.Serve(ctx, func(d *diago.DialogServerSession) {
		if mode == "reject" {
			_ = d.Respond(code, "Decline", nil)
			return
		}
		play(d, wav)
	})
}

func play(d *diago.DialogServerSession, wav []byte) {
	if err := d.Answer(); err != nil {
		return
	}
	if pb, err := d.PlaybackCreate(); err == nil {
		_, _ = pb.Play(bytes.NewReader(wav), "audio/wav")
	}
	_ = d.Bye(d.Context())
}
