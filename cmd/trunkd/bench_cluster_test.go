package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trunkd/trunkd/store"
	"github.com/trunkd/trunkd/store/etcd/etcdtest"
	"github.com/trunkd/trunkd/store/record"
	"github.com/trunkd/trunkd/trunk/control"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkClusterWriteToLive: UpdateTrunk over the RPC on node 1 of two
// nodes on a 3-member etcd (loopback), then the time until node 2's SIP
// plane runs that revision, from node 1's acknowledgement and from the
// start of the write. Then the CPU an idle node spends watching.
//
//	ack-to-peer-p50-µs, ack-to-peer-p99-µs      acknowledgement -> live on node 2
//	write-to-peer-p50-µs, write-to-peer-p99-µs  start of the write -> live on node 2
//	idle-cpu-ms/s                               per node, 5 s with nothing to do
func BenchmarkClusterWriteToLive(b *testing.B) {
	ec := etcdtest.Start(b, 3)
	tc := startTestCluster(b, ec, "/bench-live/", 2)
	ctx := context.Background()
	tr := sipTrunk("bench-live", freeSIPPort(b))
	tr.InternalSIPIP = "127.0.0.2"
	if err := tc.nodes[0].c.AddTrunk(ctx, tr); err != nil {
		b.Fatal(err)
	}
	peer := tc.nodes[1].d.svc
	var fromAck, fromStart []time.Duration
	b.ResetTimer()
	for i := range b.N {
		tr.DisplayName = fmt.Sprint("write ", i)
		start := time.Now()
		if err := tc.nodes[0].c.UpdateTrunk(ctx, tr); err != nil {
			b.Fatal(err)
		}
		acked := time.Now()
		r, err := tc.nodes[0].d.svc.GetTrunk(ctx, "bench-live", control.Access{})
		if err != nil {
			b.Fatal(err)
		}
		reread := time.Since(acked)
		for {
			if rev, _ := peer.AppliedRevision(); rev >= r.Meta.Revision {
				break
			}
			if time.Since(acked) > 10*time.Second {
				b.Fatal("node 2 did not apply the write within 10s")
			}
		}
		// The re-read of the revision happened after the acknowledgement:
		// take it off, never below zero.
		live := max(0, time.Since(acked)-reread)
		fromAck = append(fromAck, live)
		fromStart = append(fromStart, acked.Sub(start)+live)
	}
	b.StopTimer()
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	b.ReportMetric(us(percentile(fromAck, .5)), "ack-to-peer-p50-µs")
	b.ReportMetric(us(percentile(fromAck, .99)), "ack-to-peer-p99-µs")
	b.ReportMetric(us(percentile(fromStart, .5)), "write-to-peer-p50-µs")
	b.ReportMetric(us(percentile(fromStart, .99)), "write-to-peer-p99-µs")
	b.ReportMetric(idleCPU(b, 5*time.Second)/2, "idle-cpu-ms/s")
}

// idleProfile names a file for a CPU profile of every idleCPU window
// (the last window wins): go test -bench X -args -idle-profile idle.pprof
var idleProfile = flag.String("idle-profile", "", "write a CPU profile of the idle window to this file")

// idleCPU is the CPU time (user+system) this process spends per second
// over d, in milliseconds. With -idle-profile it also profiles the window.
func idleCPU(b testing.TB, d time.Duration) float64 {
	if *idleProfile != "" {
		f, err := os.Create(*idleProfile)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	start := processCPU()
	time.Sleep(d)
	return float64((processCPU() - start).Milliseconds()) / d.Seconds()
}

// processCPU is the CPU time this process has used (user+system, all
// threads).
func processCPU() time.Duration {
	var r syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r)
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}

// fullGCCPU is the CPU time (user+system, all threads) of one full
// garbage collection of this process, in milliseconds: the runtime
// forces one at least every 2 minutes, so an idle node pays it at
// least that often.
func fullGCCPU() float64 {
	start := processCPU()
	runtime.GC()
	return float64((processCPU() - start).Microseconds()) / 1e3
}

// BenchmarkClusterStartup100k: a node starting on an etcd holding
// 100 000 trunks (written outside the timer, 100 a transaction, the
// records BenchmarkScale100k uses, all on one SIP bind): from Start to
// the first RPC answered, with every trunk live on its SIP plane. Run
// with -benchtime 1x.
//
//	startup-ms   Start -> serving, every trunk loaded
//	idle-cpu-ms/s  the node idle for 10 s afterwards, watching 100 000 trunks
//	gc-cpu-ms      one full garbage collection of the idle node
func BenchmarkClusterStartup100k(b *testing.B) {
	ec := etcdtest.Start(b, 3)
	key := make([]byte, store.KeySize)
	codec, _ := record.NewCodec(key)
	cli, err := clientv3.New(clientv3.Config{Endpoints: ec.Endpoints(), Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	port := freeSIPPort(b)
	built := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for base := w * 100; base < scaleTrunks; base += 1600 {
				var ops []clientv3.Op
				for i := base; i < min(base+100, scaleTrunks); i++ {
					t := scaleTrunk(i, port)
					v, err := codec.Encode(t)
					if err != nil {
						errs <- err
						return
					}
					ops = append(ops, clientv3.OpPut("/bench-100k/trunks/"+t.TrunkID, string(v)))
				}
				if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %d trunks to etcd in %v", scaleTrunks, time.Since(built).Round(time.Millisecond))
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		tc := newTestClusterWithKey(b, ec, "/bench-100k/", key)
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "startup-ms")
		b.StopTimer()
		b.ReportMetric(idleCPU(b, 10*time.Second), "idle-cpu-ms/s")
		b.ReportMetric(fullGCCPU(), "gc-cpu-ms")
		for _, n := range tc.nodes {
			tc.stop(n)
		}
	}
}

// newTestClusterWithKey is startTestCluster with one node and the given
// secret key.
func newTestClusterWithKey(b *testing.B, ec *etcdtest.Cluster, prefix string, key []byte) *testCluster {
	tc := &testCluster{t: b, etcd: ec, shared: b.TempDir(), prefix: prefix}
	if err := writeKeyFile(tc.shared, key); err != nil {
		b.Fatal(err)
	}
	tc.nodes = append(tc.nodes, tc.start(0))
	return tc
}

// writeKeyFile writes key as dir/secret.key, as trunkd keeps it.
func writeKeyFile(dir string, key []byte) error {
	return os.WriteFile(filepath.Join(dir, "secret.key"), []byte(hex.EncodeToString(key)+"\n"), 0o600)
}
