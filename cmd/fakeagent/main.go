// Command fakeagent is a stand-in AI agent for trying trunkd's AI bridge:
// a WebSocket server speaking Twilio Media Streams (or trunkd.ai.v1 with
// -profile) that echoes the caller, or greets with a tone or a WAV, marks
// it, and optionally hangs up. It logs each call's events.
//
//	go run ./cmd/fakeagent -listen 127.0.0.1:8765            # echo
//	go run ./cmd/fakeagent -tone 440 -tone-ms 2000 -echo=false
//	go run ./cmd/fakeagent -wav greeting.wav -hangup-after 10s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/trunkd/trunkd/media/audio"
	"github.com/trunkd/trunkd/media/bridge/fakeagent"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fakeagent:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakeagent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8765", "TCP `address` to serve WebSocket agents on (any path)")
	var s fakeagent.Script
	fs.BoolVar(&s.Echo, "echo", true, "send the caller's audio back at once")
	tone := fs.Float64("tone", 0, "greet with a tone of this many `Hz`")
	toneMS := fs.Int("tone-ms", 1000, "length of the tone in `ms`")
	wav := fs.String("wav", "", "greet with this WAV `file` (any rate; converted to 8 kHz mono)")
	fs.StringVar(&s.Mark, "mark", "greeting", "mark `name` sent after the greeting")
	fs.BoolVar(&s.Burst, "burst", false, "send the greeting at once rather than in real time")
	fs.DurationVar(&s.ClearAfter, "clear-after", 0, "send clear this long after start")
	fs.DurationVar(&s.HangupAfter, "hangup-after", 0, "end the call this long after start")
	fs.StringVar(&s.Profile, "profile", "", "trunkd.ai.v1 subprotocol to select when offered (e.g. trunkd.ai.v1+pcmu); empty: plain Twilio")
	fs.StringVar(&s.Token, "token", "", "require Authorization: Bearer `TOKEN` (the trunk's api_bearer_token)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	switch {
	case *wav != "":
		pcm, err := loadWAV(*wav)
		if err != nil {
			return err
		}
		s.Play = pcm
	case *tone > 0:
		s.Play = toneOf(*tone, *toneMS)
	}
	fa := fakeagent.New(s)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go logCalls(ctx, fa, log)
	srv := &http.Server{Handler: fa, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	log.Info("fake agent listening", "url", "ws://"+ln.Addr().String()+"/agent", "echo", s.Echo, "greeting_ms", len(s.Play)/8)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// logCalls logs each call's start and, when it ends, what it saw.
func logCalls(ctx context.Context, fa *fakeagent.Server, log *slog.Logger) {
	for {
		c, ok := fa.Next(ctx)
		if !ok {
			return
		}
		go func() {
			if st, ok := c.Started(ctx); ok {
				p := st.Start.CustomParameters
				log.Info("call started", "stream", st.StreamSID, "from", p["from_number"], "to", p["to_number"], "trunk_id", p["trunk_id"], "agent_id", p["agent_id"], "profile", c.Proto)
			}
			c.Done(ctx)
			var names []string
			for _, e := range c.Events() {
				names = append(names, e.Event)
			}
			log.Info("call ended", "caller_audio_ms", len(c.Audio())/8, "events", names)
		}()
	}
}

func toneOf(hz float64, ms int) []int16 {
	pcm := make([]int16, ms*8)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*hz*float64(i)/8000))
	}
	return pcm
}

// loadWAV reads a WAV file as 8 kHz mono PCM.
func loadWAV(path string) ([]int16, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := audio.New(audio.Options{}).WAV(ctx, path, audio.Format{Rate: 8000, Channels: 1})
	if err != nil {
		return nil, err
	}
	if len(b) < 44 {
		return nil, fmt.Errorf("%s: too short", path)
	}
	b = b[44:]
	pcm := make([]int16, len(b)/2)
	for i := range pcm {
		pcm[i] = int16(uint16(b[2*i]) | uint16(b[2*i+1])<<8)
	}
	return pcm, nil
}
