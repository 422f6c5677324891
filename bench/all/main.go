// Command benchall is `make bench`: it runs every benchmark of trunkd —
// the Go benchmarks several times each (medians reported), etcd on
// loopback measured like trunkd's RPC, and the SIP comparisons with sipp
// (bench/sip) — and writes one report, docs/benchmarks.md, with the
// machine it ran on. Ratios compare figures measured in the same run.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

type options struct {
	count    int
	out      string
	sipFlags string
	skipSIP  bool
}

func main() {
	var o options
	flag.IntVar(&o.count, "count", 5, "runs of each Go benchmark (the median is reported)")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "report `file`")
	flag.StringVar(&o.sipFlags, "sip-flags", "", "extra flags for bench/sip")
	flag.BoolVar(&o.skipSIP, "skip-sip", false, "leave out the sipp comparisons (minutes long)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "benchall:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	start := time.Now()
	r := &results{med: map[string]map[string]float64{}, raw: map[string]map[string][]float64{}}
	etcd, err := r.sideBySide(o.count)
	if err != nil {
		return err
	}
	for _, g := range goBenchmarks(o.count) {
		if err := r.goBench(g); err != nil {
			return err
		}
	}
	sip, sipJSON := "", ""
	if !o.skipSIP {
		if sip, sipJSON, err = sipReport(o.sipFlags); err != nil {
			return err
		}
		defer os.Remove(sipJSON)
	}
	figs, err := r.figures(o.out, sipJSON)
	if err != nil {
		return err
	}
	text := r.report(o, etcd, sip, figs, time.Since(start))
	fmt.Print(text)
	return os.WriteFile(o.out, []byte(text), 0o644)
}

// goBench is one `go test -bench` invocation.
type goBench struct {
	pkg, pattern, benchtime string
	count                   int
}

// anchored are the benchmarks whose figures are set against etcd's:
// sideBySide runs them and etcd in turns.
var anchored = []goBench{
	{"./cmd/trunkd", "^BenchmarkRPC$", "1s", 1},
	{"./store", "^(BenchmarkUpdateTrunk|BenchmarkDiskFsync)$", "1s", 1},
}

// sideBySide runs the anchored benchmarks and etcd's measurement in
// turns, count rounds, so that both sides of a ratio see the machine in
// the same state (on a shared VM, a run 20 minutes later can be 20%
// faster or slower). It returns etcd's version, "" when etcd is missing
// or failed (the benchmarks run all the same).
func (r *results) sideBySide(count int) (string, error) {
	version, err := etcdVersion()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchall: etcd comparison left out:", err)
	}
	r.one = pickOneCPU()
	for range count {
		for _, g := range anchored {
			if err := r.goBench(g); err != nil {
				return "", err
			}
		}
		if version != "" {
			if err := r.etcdOnce(etcdAll); err != nil {
				fmt.Fprintln(os.Stderr, "benchall: etcd comparison left out:", err)
				version = ""
			}
		}
		if r.one.ok {
			if err := r.oneCPURound(version != ""); err != nil {
				return "", err
			}
		}
	}
	return version, nil
}

func goBenchmarks(count int) []goBench {
	return []goBench{
		{"./cmd/trunkd", "^(BenchmarkHTTPJSON|BenchmarkGetTrunkFaces|BenchmarkDialAndCall)$", "1s", count},
		{"./store", "^(BenchmarkGetTrunk|BenchmarkListFiltered100k|BenchmarkSnapshot)$", "1s", count},
		{"./rpc/auth", "^BenchmarkAuthorize$", "1s", count},
		{"./rpc/status", "^BenchmarkView$", "1s", count},
		{"./rpc", "^BenchmarkBackupOverQUIC$", "1s", count},
		{"./media/sipplane", "^(BenchmarkQualityTracking|BenchmarkInboundReject|BenchmarkRejectDecide)$", "1s", count},
		{"./media/sipplane", "^(BenchmarkLiveCalls|BenchmarkBreakerReaction)$", "1x", max(count/2, 1)},
		{"./media/sipplane", "^(BenchmarkRejectTLSvsUDP|BenchmarkTLSHandshake|BenchmarkSRTPPerPacket)$", "1s", count},
		{"./media/bridge", "^BenchmarkBargeinReaction$", "1x", max(count/2, 1)},
		{"./media/bridge", "^(BenchmarkClearToSilence|BenchmarkAnswerStart)$", "20x", count},
		{"./media/bridge/denoise", "^BenchmarkDenoise$", "1s", count},
		{"./media/sipplane", "^BenchmarkAgentConnectWhileRinging$", "50x", count},
		{"./media/sipplane", "^BenchmarkBridgedCalls$", "1x", max(count/2, 1)},
		{"./media/rtpstats", "^BenchmarkPacket$", "1s", count},
		{"./media/audio", "^BenchmarkConvert$", "1s", count},
		{"./cmd/trunkd", "^BenchmarkGetTrunkUnderSIPLoad$", "1x", max(count/2, 1)},
		{"./cmd/trunkd", "^BenchmarkScale100k$", "1x", count}, // one sample of a p50 swings by half
		{"./store/etcd", "^BenchmarkBackends$", "1s", count},
		{"./store/etcd", "^BenchmarkDecideQuiet100k$", "100x", count},
		{"./cmd/trunkd", "^BenchmarkClusterWriteToLive$", "300x", count},
		{"./cmd/trunkd", "^BenchmarkClusterStartup100k$", "1x", 1},
	}
}

// results holds the median of every benchmark figure, by benchmark name
// (without the -GOMAXPROCS suffix) and unit.
type results struct {
	med map[string]map[string]float64
	raw map[string]map[string][]float64 // every figure of every run, for med
	env []string
	one oneCPU // where the one-CPU round ran
}

func (r *results) goBench(g goBench) error { return r.goBenchUnder(g, "", "") }

// goBenchUnder runs g's test binary under wrap (go test -exec; none when
// empty) and names its figures after prefix.
func (r *results) goBenchUnder(g goBench, wrap, prefix string) error {
	fmt.Fprintf(os.Stderr, "benchall: %s %s (×%d)\n", g.pkg, g.pattern, g.count)
	args := []string{"test", "-run", "^$", "-bench", g.pattern, "-benchtime", g.benchtime,
		"-count", strconv.Itoa(g.count), "-timeout", "60m"}
	if wrap != "" {
		args = append(args, "-exec", wrap)
	}
	cmd := exec.Command("go", append(args, g.pkg)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go test %s: %v\n%s", g.pkg, err, out)
	}
	r.parse(prefix, out)
	return nil
}

// parse collects `go test -bench` lines, their names after prefix, and
// keeps medians over every run parsed so far.
func (r *results) parse(prefix string, out []byte) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			if len(f) > 1 && f[0] == "cpu:" {
				r.env = append(r.env, strings.Join(f[1:], " "))
			}
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			r.add(prefix+name, f[i+1], v)
		}
	}
}

// add records one figure and updates its median.
func (r *results) add(name, unit string, v float64) {
	if r.raw[name] == nil {
		r.raw[name], r.med[name] = map[string][]float64{}, map[string]float64{}
	}
	r.raw[name][unit] = append(r.raw[name][unit], v)
	r.med[name][unit] = median(r.raw[name][unit])
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// get returns a median figure, or NaN-like false when it was not measured.
func (r *results) get(name, unit string) (float64, bool) {
	v, ok := r.med[name][unit]
	return v, ok
}

// etcdVersion is the first line of `etcd --version`; an error when etcd
// is not installed.
func etcdVersion() (string, error) {
	if _, err := exec.LookPath("etcd"); err != nil {
		return "", fmt.Errorf("etcd is not installed (Debian: etcd-server)")
	}
	out, err := exec.Command("etcd", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("etcd --version: %w", err)
	}
	return strings.SplitN(string(out), "\n", 2)[0], nil
}

// etcdRun is one measurement of etcd: the command prefix etcd and its
// client run under (taskset, for the one-CPU round; none otherwise), the
// measurements bench/etcd makes (all when empty) and the prefix of the
// figures' names.
type etcdRun struct {
	wrap []string
	only string
	name string
}

var etcdAll = etcdRun{name: "etcd/"}

// etcdOnce runs bench/etcd's measurement once against etcd on loopback
// and adds its figures under names like etcd/get/16.
func (r *results) etcdOnce(er etcdRun) error {
	out, err := runEtcdOnce(er)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || strings.HasPrefix(f[0], "etcd") {
			continue
		}
		for i, u := range []string{"req/s", "p50-µs", "p99-µs"} {
			v, _ := strconv.ParseFloat(f[i+1], 64)
			r.add(er.name+f[0], u, v)
		}
	}
	return nil
}

// runEtcdOnce starts a fresh etcd, measures it, and stops it.
func runEtcdOnce(er etcdRun) ([]byte, error) {
	dir, err := os.MkdirTemp("", "benchall-etcd")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	args := append(slices.Clone(er.wrap), "etcd", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://127.0.0.1:23790", "--advertise-client-urls", "http://127.0.0.1:23790",
		"--listen-peer-urls", "http://127.0.0.1:23800", "--initial-advertise-peer-urls", "http://127.0.0.1:23800",
		"--initial-cluster", "default=http://127.0.0.1:23800", "--log-level", "error")
	etcd := exec.Command(args[0], args[1:]...)
	if err := etcd.Start(); err != nil {
		return nil, err
	}
	defer func() { _ = etcd.Process.Kill(); _ = etcd.Wait() }()
	time.Sleep(2 * time.Second)
	args = []string{"run"}
	if len(er.wrap) > 0 {
		args = append(args, "-exec", strings.Join(er.wrap, " "))
	}
	args = append(args, ".", "-duration", "2s", "-only", er.only)
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Join("bench", "etcd")
	cmd.Stderr = os.Stderr
	return cmd.Output()
}

// sipReport runs the sipp comparisons and returns their markdown.
// sipReport runs bench/sip and returns its report and the name of the
// JSON file of its ramps (for the charts), which the caller removes.
func sipReport(flags string) (string, string, error) {
	f, err := os.CreateTemp("", "benchall-sip-*.md")
	if err != nil {
		return "", "", err
	}
	f.Close()
	defer os.Remove(f.Name())
	jsonFile := strings.TrimSuffix(f.Name(), ".md") + ".json"
	args := append([]string{"run", "./bench/sip", "-out", f.Name(), "-json", jsonFile}, strings.Fields(flags)...)
	cmd := exec.Command("go", args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("bench/sip: %w", err)
	}
	b, err := os.ReadFile(f.Name())
	return string(b), jsonFile, err
}

// figures are the charts of one report, as markdown to place beside the
// tables they draw.
type figures struct{ rpc, sip, ai string }

// figures draws the report's charts into the directory "benchmarks" next
// to the report file out.
func (r *results) figures(out, sipJSON string) (figures, error) {
	dir := filepath.Join(filepath.Dir(out), "benchmarks")
	var f figures
	var err error
	if f.rpc, err = drawCharts(r.rpcCharts(), dir, filepath.Dir(out)); err != nil {
		return f, err
	}
	if f.ai, err = drawCharts(r.aiCharts(), dir, filepath.Dir(out)); err != nil {
		return f, err
	}
	if sipJSON == "" {
		return f, nil
	}
	charts, err := sipCharts(sipJSON)
	if err != nil {
		return f, err
	}
	f.sip, err = drawCharts(charts, dir, filepath.Dir(out))
	return f, err
}
