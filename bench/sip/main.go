// Command sipbench measures trunkd's inbound SIP plane with sipp, side by
// side in one run with a bare diago server answering the same way
// (./bareuas) and with Kamailio replying 603 statefully (the anchor
// configuration in this directory):
//
//   - REJECT: calls per second at stepped rates, p50/p99 setup time,
//     failures and retransmissions; the highest rate each sustains.
//   - PLAY_AND_HANGUP with a 1 s prompt: the same, trunkd against bareuas.
//   - UpdateTrunk to the next INVITE: does the very next call see the change.
//   - Live calls: resident memory per answered call in trunkd.
//
// `make bench-sip` builds the binaries and runs it from the repository root.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/trunkd/trunkd/media/audio"
)

type options struct {
	trunkd, bareuas, kamailioCfg, scenarios string
	rejectRates, playRates, dialRates       []int
	stepDur                                 time.Duration
	liveCalls, heldCalls                    int
	hold                                    time.Duration
	out, jsonOut                            string
	rejectOnly, keepGoing                   bool
}

func main() {
	var o options
	var rejectRates, playRates, dialRates string
	flag.StringVar(&o.trunkd, "trunkd", "bin/trunkd", "trunkd `binary`")
	flag.StringVar(&o.bareuas, "bareuas", "bin/bareuas", "bareuas `binary`")
	flag.StringVar(&o.kamailioCfg, "kamailio-cfg", "bench/sip/kamailio-reject603.cfg", "Kamailio anchor `config` (skipped when kamailio is not installed)")
	flag.StringVar(&o.scenarios, "scenarios", "testdata/sipp", "`dir` of the sipp scenarios")
	flag.StringVar(&rejectRates, "reject-rates", "500,1000,2000,3000,4000,5000,6000,7000,8000,10000,12000,15000,20000", "offered calls/s for REJECT, in steps (each server goes on until it fails one)")
	flag.StringVar(&playRates, "play-rates", "100,200,400,600,800,1000,1200,1500,2000,2500", "offered calls/s for PLAY_AND_HANGUP, in steps (each server goes on until it fails one)")
	flag.StringVar(&dialRates, "dial-rates", "50,100,200,400,600,800,1000", "Dial calls/s through trunkd to a sipp UAS, in steps")
	flag.DurationVar(&o.stepDur, "step", 10*time.Second, "how long each rate step offers calls")
	flag.IntVar(&o.liveCalls, "live-calls", 300, "answered calls held to measure memory per call")
	flag.IntVar(&o.heldCalls, "held-calls", 100, "outbound calls with live RTP held -hold long (0: skip)")
	flag.DurationVar(&o.hold, "hold", time.Minute, "how long the -held-calls stay up")
	flag.BoolVar(&o.rejectOnly, "reject-only", false, "measure only the REJECT ramps (trunkd, bare diago, Kamailio)")
	flag.BoolVar(&o.keepGoing, "keep-going", false, "offer every rate to every server even after it fails one (CPU per call at each rate on a noisy machine)")
	flag.StringVar(&o.out, "out", "", "also write the report to this `file`")
	flag.StringVar(&o.jsonOut, "json", "", "also write every ramp step as JSON to this `file` (make bench plots it)")
	flag.Parse()
	// the in-process SIP client's transport chatter is not the report
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	var err error
	for _, p := range []*string{&o.trunkd, &o.bareuas, &o.kamailioCfg, &o.scenarios} {
		if *p, err = filepath.Abs(*p); err != nil {
			break
		}
	}
	if err == nil {
		o.rejectRates, err = ints(rejectRates)
	}
	if err == nil {
		o.playRates, err = ints(playRates)
	}
	if err == nil {
		o.dialRates, err = ints(dialRates)
	}
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sipbench:", err)
		os.Exit(1)
	}
}

func ints(s string) ([]int, error) {
	var r []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("rate %q is not a positive number", f)
		}
		r = append(r, n)
	}
	return r, nil
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "sipbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	prompt := filepath.Join(dir, "prompt-1s.wav")
	long := filepath.Join(dir, "prompt-120s.wav")
	if err := writeTone(prompt, time.Second); err != nil {
		return err
	}
	if err := writeTone(long, 120*time.Second); err != nil {
		return err
	}
	b := &bench{o: o, dir: dir, prompt: prompt, long: long, rep: &report{}}
	b.rep.machine()
	if err := b.all(); err != nil {
		return err
	}
	text := b.rep.String()
	fmt.Print(text)
	if o.jsonOut != "" {
		if err := os.WriteFile(o.jsonOut, b.rep.json(), 0o644); err != nil {
			return err
		}
	}
	if o.out != "" {
		return os.WriteFile(o.out, []byte(text), 0o644)
	}
	return nil
}

// writeTone writes a 440 Hz tone as 16-bit PCM, 8 kHz mono.
func writeTone(path string, d time.Duration) error {
	n := int(d.Seconds() * 8000)
	s := make([]int16, n)
	for i := range s {
		// a triangle wave near 440 Hz; its exact shape does not matter
		ph := (i * 440 * 4 / 8000) % 4
		v := [4]int16{0, 8000, 0, -8000}[ph]
		s[i] = v
	}
	return os.WriteFile(path, audio.Encode(s, audio.Format{Rate: 8000, Channels: 1}), 0o644)
}

// bench runs the measurements in order, reusing one trunkd.
type bench struct {
	o            options
	dir          string
	prompt, long string
	rep          *report
}

func (b *bench) scenario(name string) (string, error) {
	x, err := os.ReadFile(filepath.Join(b.o.scenarios, name))
	if err != nil {
		return "", err
	}
	s := string(x)
	// time each call from its INVITE to the final response
	s = strings.Replace(s, `<recv response="603"/>`, `<recv response="603" rtd="true"/>`, 1)
	return s, nil
}

// target is one server a ramp offers calls to.
type target struct {
	name string
	srv  *proc
	port int
}

// ramp offers each rate in turn to every target until the target fails
// one; a target's last passing rate is what it sustains. The targets take
// turns at each rate rather than one whole ramp after another, so that
// load from elsewhere on a shared machine falls on all of them alike and
// their ratios at one rate stay comparable.
//
// Each step also measures the server's CPU (its whole process tree:
// Kamailio forks workers) per 1000 calls answered, the figure servers are
// compared by at a fixed offered rate.
func (b *bench) ramp(xml string, ts []target, rates []int) error {
	steps := make([][]step, len(ts))
	failed := make([]bool, len(ts))
	for _, r := range rates {
		for i, t := range ts {
			if failed[i] {
				continue
			}
			s, err := b.step(xml, t, r)
			if err != nil {
				return fmt.Errorf("%s at %d/s: %w", t.name, r, err)
			}
			steps[i], failed[i] = append(steps[i], s), !s.pass() && !b.o.keepGoing
		}
	}
	for i, t := range ts {
		b.rep.ramps = append(b.rep.ramps, ramp{name: t.name, steps: steps[i]})
	}
	return nil
}

// step offers rate calls/s to t for the step's duration.
func (b *bench) step(xml string, t target, rate int) (step, error) {
	cpu0 := t.srv.treeCPUSeconds()
	s, err := sippRun(context.Background(), xml, t.port, rate, rate*int(b.o.stepDur.Seconds()))
	if err != nil {
		return s, err
	}
	if s.ok > 0 {
		s.cpuPer1k = (t.srv.treeCPUSeconds() - cpu0) * 1000 / float64(s.ok) * 1000
	}
	fmt.Fprintf(os.Stderr, "%-22s %5d/s: %s\n", t.name, rate, s)
	return s, nil
}

func (s step) String() string {
	return fmt.Sprintf("%7.1f cps  ok %6d  failed %4d  retrans %5d  p50 %6.1f ms  p99 %7.1f ms  cpu %6.1f ms/1000  pass %v",
		s.cps, s.ok, s.failed, s.retrans, ms(s.p50), ms(s.p99), s.cpuPer1k, s.pass())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
