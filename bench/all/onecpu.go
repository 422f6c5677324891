package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// The one-CPU round: the durable write and the read at 1 in flight again,
// trunkd's (client and server, one process) and etcd's (server and
// client, two processes) each confined by taskset to the CPU that takes
// the disk's interrupts. Set beside the figures without confinement it
// shows how much of a lone request's time goes to waking threads on the
// other CPU, which a virtual machine can make expensive (see wakeRoundTrip).

// oneCPU is where the round runs, or ok false when it cannot (one CPU, no
// taskset).
type oneCPU struct {
	cpu int
	why string // how cpu was chosen, for the report
	ok  bool

	across, same time.Duration // wakeRoundTrip between two CPUs and on cpu alone
}

func pickOneCPU() oneCPU {
	if runtime.NumCPU() < 2 {
		return oneCPU{}
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		fmt.Fprintln(os.Stderr, "benchall: one-CPU round left out: no taskset (Debian: util-linux)")
		return oneCPU{}
	}
	o := oneCPU{cpu: runtime.NumCPU() - 1, why: "the last CPU: the disk's interrupts were not found", ok: true}
	b, _ := os.ReadFile("/proc/interrupts")
	if cpu, ok := diskCPU(string(b)); ok {
		o.cpu, o.why = cpu, "the CPU that took most of the disk's interrupts"
	}
	other := (o.cpu + 1) % runtime.NumCPU()
	var err error
	if o.across, err = wakeRoundTrip(other, o.cpu, wakeRounds); err == nil {
		o.same, err = wakeRoundTrip(o.cpu, o.cpu, wakeRounds)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchall: wake-up cost not measured:", err)
		o.across, o.same = 0, 0
	}
	return o
}

const wakeRounds = 10000

// diskCPU reads /proc/interrupts and returns the CPU that took the most
// interrupts of block devices (virtio-blk and virtio-scsi queues, NVMe,
// AHCI).
func diskCPU(interrupts string) (int, bool) {
	lines := strings.Split(interrupts, "\n")
	if len(lines) < 2 {
		return 0, false
	}
	ncpu := len(strings.Fields(lines[0]))
	sums := make([]uint64, ncpu)
	found := false
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < ncpu+2 || !isDiskIRQ(f[len(f)-1]) {
			continue
		}
		for i := range ncpu {
			n, err := strconv.ParseUint(f[1+i], 10, 64)
			if err != nil {
				break
			}
			sums[i] += n
			found = true
		}
	}
	best := 0
	for i, n := range sums {
		if n > sums[best] {
			best = i
		}
	}
	return best, found && sums[best] > 0
}

func isDiskIRQ(name string) bool {
	return strings.Contains(name, "-req.") || strings.Contains(name, "-request") ||
		strings.HasPrefix(name, "nvme") || strings.HasPrefix(name, "ahci")
}

// oneCPURound measures trunkd's RPC and, when etcd runs, etcd at 1 in
// flight (the methods of etcdTwins), confined to r.one.cpu; figures are
// named onecpu/....
func (r *results) oneCPURound(etcd bool) error {
	wrap := []string{"taskset", "-c", strconv.Itoa(r.one.cpu)}
	var methods, twins []string
	for _, m := range etcdTwins {
		methods, twins = append(methods, m.name), append(twins, m.etcd+"/1")
	}
	g := goBench{"./cmd/trunkd", "^BenchmarkRPC$/^(" + strings.Join(methods, "|") + ")$/^inflight=1$", "1s", 1}
	if err := r.goBenchUnder(g, strings.Join(wrap, " "), "onecpu/"); err != nil {
		return err
	}
	if !etcd {
		return nil
	}
	return r.etcdOnce(etcdRun{wrap: wrap, only: strings.Join(twins, ","), name: "onecpu/etcd/"})
}

// oneCPUTable reports the one-CPU round beside the same figures measured
// without confinement.
func (r *results) oneCPUTable(b *strings.Builder) {
	if !r.one.ok {
		return
	}
	fmt.Fprintf(b, "\n### One CPU, 1 in flight\n\nThe same requests with each side confined by taskset to CPU %d,\n%s: trunkd's client and server in their one\nprocess, etcd and its client in theirs.", r.one.cpu, r.one.why)
	if r.one.across > 0 {
		fmt.Fprintf(b, " A round trip between two threads through pipes (two wake-ups)\ntakes %.1f µs across CPUs and %.1f µs on one CPU.", us(r.one.across), us(r.one.same))
	}
	b.WriteString("\n\n| method | trunkd req/s | etcd req/s | trunkd / etcd | not confined: trunkd / etcd |\n|---|---:|---:|---:|---:|\n")
	for _, m := range etcdTwins {
		t := "BenchmarkRPC/" + m.name + "/inflight=1"
		e := "etcd/" + m.etcd + "/1"
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", m.name, r.cell("onecpu/"+t, "req/s", "%.0f"), r.cell("onecpu/"+e, "req/s", "%.0f"),
			r.ratio("onecpu/"+t, "req/s", "onecpu/"+e, "req/s"), r.ratio(t, "req/s", e, "req/s"))
	}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
