package main

import (
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// The report's side-by-side comparisons drawn as SVG charts beside the
// tables, with gonum's plot package (a chart says at once what a long
// table says slowly). Each chart is a set of named series of (x, y) points.

// series is one line of a chart.
type series struct {
	name string
	xy   plotter.XYs
}

// chart is one figure of the report.
type chart struct {
	file, title, x, y string
	logX              bool
	series            []series
}

// palette keeps trunkd's lines the same colour in every chart: trunkd
// first, its anchors after.
var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
}

// save draws c into dir as an SVG; a chart with no points is skipped.
func (c chart) save(dir string) (bool, error) {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = c.title, c.x, c.y
	p.Legend.Top, p.Legend.Left = true, true
	p.Y.Tick.Marker = niceTicks{}
	if c.logX {
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	}
	p.Add(plotter.NewGrid())
	drawn := 0
	for i, s := range c.series {
		if len(s.xy) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(s.xy)
		if err != nil {
			return false, fmt.Errorf("%s: %w", c.file, err)
		}
		col := palette[i%len(palette)]
		l.Color, pts.Color, pts.Shape = col, col, draw.CircleGlyph{}
		l.Width = vg.Points(1.5)
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
		drawn++
	}
	if drawn == 0 {
		return false, nil
	}
	// from 0, with headroom at the top for the legend
	p.Y.Min, p.Y.Max = 0, p.Y.Max*1.3
	return true, p.Save(7*vg.Inch, 4*vg.Inch, filepath.Join(dir, c.file))
}

// rpcCharts are throughput against requests in flight for trunkd's RPC and
// its anchors (the same handler over HTTP/2+JSON, etcd).
func (r *results) rpcCharts() []chart {
	line := func(name, format, unit string) series {
		s := series{name: name}
		for _, n := range []int{1, 16, 64} {
			if v, ok := r.get(fmt.Sprintf(format, n), unit); ok {
				s.xy = append(s.xy, plotter.XY{X: float64(n), Y: v})
			}
		}
		return s
	}
	return []chart{
		{file: "rpc-gettrunk.svg", title: "GetTrunk: requests/s by requests in flight", x: "requests in flight (one connection)", y: "requests/s", logX: true,
			series: []series{line("trunkd QUIC+msgpack", "BenchmarkRPC/GetTrunk/inflight=%d", "req/s"),
				line("same handler, HTTP/2+JSON", "BenchmarkHTTPJSON/GetTrunk/inflight=%d", "req/s"),
				line("etcd serializable get", "etcd/get-serializable/%d", "req/s")}},
		{file: "rpc-updatetrunk.svg", title: "UpdateTrunk (durable): requests/s by requests in flight", x: "requests in flight (one connection)", y: "requests/s", logX: true,
			series: []series{line("trunkd QUIC+msgpack", "BenchmarkRPC/UpdateTrunk/inflight=%d", "req/s"),
				line("same handler, HTTP/2+JSON", "BenchmarkHTTPJSON/UpdateTrunk/inflight=%d", "req/s"),
				line("etcd put", "etcd/put/%d", "req/s")}},
	}
}

// aiCharts are trunkd's share of the AI bridge's latency, each direction's
// p50 and p99, by concurrent bridged calls.
func (r *results) aiCharts() []chart {
	line := func(name, unit string) series {
		s := series{name: name}
		for _, n := range []int{1, 50, 300} {
			if v, ok := r.get(fmt.Sprintf("BenchmarkBridgedCalls/bridge/%d", n), unit); ok {
				s.xy = append(s.xy, plotter.XY{X: float64(n), Y: v})
			}
		}
		return s
	}
	return []chart{{file: "ai-latency.svg", title: "AI bridge: trunkd's added latency by concurrent calls", x: "concurrent bridged calls", y: "ms", logX: true,
		series: []series{line("uplink p50", "up-p50-ms"), line("uplink p99", "up-p99-ms"),
			line("downlink p50 (20 ms frame included)", "down-p50-ms"), line("downlink p99", "down-p99-ms")}}}
}

// sipCharts are server CPU per 1000 calls against the offered rate, for
// the REJECT and PLAY paths, from bench/sip's -json (clean steps only:
// a failing step's CPU is not comparable).
func sipCharts(jsonFile string) ([]chart, error) {
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		return nil, err
	}
	var ramps []struct {
		Name  string
		Steps []struct {
			Offered  int
			CPUPer1k float64 `json:"cpu_ms_per_1000_calls"`
			Pass     bool
		}
	}
	if err := json.Unmarshal(b, &ramps); err != nil {
		return nil, fmt.Errorf("%s: %w", jsonFile, err)
	}
	reject := chart{file: "sip-reject-cpu.svg", title: "REJECT: server CPU per 1000 calls by offered rate", x: "offered calls/s", y: "CPU ms per 1000 calls"}
	play := chart{file: "sip-play-cpu.svg", title: "PLAY_AND_HANGUP (1 s prompt): server CPU per 1000 calls", x: "offered calls/s", y: "CPU ms per 1000 calls"}
	for _, rp := range ramps {
		s := series{name: rp.Name}
		for _, st := range rp.Steps {
			if st.Pass && st.CPUPer1k > 0 {
				s.xy = append(s.xy, plotter.XY{X: float64(st.Offered), Y: st.CPUPer1k})
			}
		}
		switch {
		case strings.Contains(rp.Name, "REJECT") || strings.Contains(rp.Name, "603"):
			reject.series = append(reject.series, s)
		case strings.Contains(rp.Name, "PLAY"):
			play.series = append(play.series, s)
		}
	}
	return []chart{reject, play}, nil
}

// drawCharts saves charts into dir and returns the markdown that shows
// the ones drawn, with paths relative to the report in reportDir.
func drawCharts(charts []chart, dir, reportDir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var md strings.Builder
	for _, c := range charts {
		ok, err := c.save(dir)
		if err != nil {
			return "", err
		}
		if ok {
			rel, _ := filepath.Rel(reportDir, filepath.Join(dir, c.file))
			fmt.Fprintf(&md, "\n![%s](%s)\n", c.title, filepath.ToSlash(rel))
		}
	}
	return md.String(), nil
}

// niceTicks labels an axis from 0 at round steps (1, 2 or 5 × 10^n), about
// five labels, printed without needless decimals.
type niceTicks struct{}

func (niceTicks) Ticks(min, max float64) []plot.Tick {
	step := math.Pow(10, math.Floor(math.Log10(max/5)))
	for _, m := range []float64{2, 5, 10} {
		if max/step <= 6 {
			break
		}
		step = math.Pow(10, math.Floor(math.Log10(max/5))) * m
	}
	var ticks []plot.Tick
	for v := math.Ceil(min/step) * step; v <= max; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
		for i := 1; i < 5; i++ {
			if minor := v + step*float64(i)/5; minor <= max {
				ticks = append(ticks, plot.Tick{Value: minor})
			}
		}
	}
	return ticks
}
