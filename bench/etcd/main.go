// Command etcdbench measures etcd on loopback the way cmd/trunkd's
// BenchmarkRPC measures trunkd: serializable gets and durable puts of a
// record the size of a trunk, at 1, 16 and 64 requests in flight on one
// client connection. It is its own module so that trunkd does not depend
// on etcd's client. Run it through `make bench-etcd`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func main() {
	endpoint := flag.String("endpoint", "127.0.0.1:23790", "etcd client endpoint")
	dur := flag.Duration("duration", 3*time.Second, "time per measurement")
	size := flag.Int("value-size", 600, "bytes per value (a trunk record is about 600 on the wire)")
	only := flag.String("only", "", "comma-separated `measurements` to run (such as put/1); all when empty")
	flag.Parse()
	wanted := func(name string) bool { return *only == "" || slices.Contains(strings.Split(*only, ","), name) }
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{*endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdbench:", err)
		os.Exit(1)
	}
	defer cli.Close()
	ctx := context.Background()
	value := strings.Repeat("x", *size)
	for i := range 1000 {
		if _, err := cli.Put(ctx, key(int64(i)), value); err != nil {
			fmt.Fprintln(os.Stderr, "etcdbench: load:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("%-22s %10s %10s %10s\n", "etcd "+*endpoint, "req/s", "p50-µs", "p99-µs")
	for _, n := range []int{1, 16, 64} {
		if name := fmt.Sprintf("get-serializable/%d", n); wanted(name) {
			report(name, run(n, *dur, func(i int64) error {
				_, err := cli.Get(ctx, key(i), clientv3.WithSerializable())
				return err
			}))
		}
	}
	for _, n := range []int{1, 16, 64} {
		if name := fmt.Sprintf("put/%d", n); wanted(name) {
			report(name, run(n, *dur, func(i int64) error {
				_, err := cli.Put(ctx, key(i), value)
				return err
			}))
		}
	}
}

func key(i int64) string { return fmt.Sprintf("/trunks/t%04d", i%1000) }

type result struct {
	n        int
	elapsed  time.Duration
	p50, p99 time.Duration
}

// run calls fn from n goroutines for d and collects latencies.
func run(n int, d time.Duration, fn func(i int64) error) result {
	var seq atomic.Int64
	lat := make([][]time.Duration, n)
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				t := time.Now()
				if err := fn(seq.Add(1)); err != nil {
					fmt.Fprintln(os.Stderr, "etcdbench:", err)
					os.Exit(1)
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		})
	}
	wg.Wait()
	all := slices.Concat(lat...)
	slices.Sort(all)
	return result{n: len(all), elapsed: time.Since(start), p50: all[len(all)/2], p99: all[len(all)*99/100]}
}

func report(name string, r result) {
	fmt.Printf("%-22s %10.0f %10d %10d\n", name, float64(r.n)/r.elapsed.Seconds(), r.p50.Microseconds(), r.p99.Microseconds())
}
