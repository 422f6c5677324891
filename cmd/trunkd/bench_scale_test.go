package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/store"
	"github.com/trunkd/trunkd/trunk"
)

// BenchmarkScale100k settings.
const (
	scaleTrunks       = 100_000
	scaleGetRequests  = 10_000 // GetTrunks measured, each on a different trunk
	scaleListRequests = 1_000  // ListTrunks pages of 100 measured
)

// BenchmarkScale100k measures trunkd holding 100 000 trunks, with the
// collector set as trunkd's main sets it (daemonGC). The bbolt
// file is built through the store, 1000 trunks a commit, outside the
// timer. Every trunk shares one SIP bind (127.0.0.1 and one free port), so
// start-up opens one listener, not 100 000; each has its own gateway_ip.
// Then, in one fixed sequence (b.N is not used; run it with -benchtime 1x):
//
//	startup-ms              a restart on the full data dir: Start until a
//	                        new client's Ping is answered
//	idle-cpu-ms/s           the node idle for 10 s after it (the process's
//	                        CPU, user+system)
//	gc-cpu-ms               one full garbage collection of the idle node
//	                        (forced by the runtime at least every 2 min)
//	list-all-ms             the first full listing after it, 1000 a page
//	get-p50-µs, get-p99-µs  GetTrunk over the RPC, 1 in flight, 10 000
//	                        different trunks spread over the key space
//	list-p50-µs, list-p99-µs  ListTrunks of one 100-trunk page after a
//	                        cursor spread over the key space, 1 in flight
//	db-MiB                  the size of the bbolt file
func BenchmarkScale100k(b *testing.B) {
	daemonGC(b)
	dir := b.TempDir()
	cfg := scaleConfig(b, dir)
	buildStart := time.Now()
	size := buildScaleStore(b, dir, freeSIPPort(b))
	b.Logf("built %d trunks in %v: %.1f MiB", scaleTrunks, time.Since(buildStart).Round(time.Millisecond), float64(size)/(1<<20))
	tok := token(&testing.T{}, dir, rpc.ScopeManage)
	ctx := context.Background()
	b.ResetTimer()

	start := time.Now()
	d, c := scaleStart(b, cfg, dir, tok)
	startup := time.Since(start)
	defer func() {
		c.Close()
		scaleStop(b, d)
	}()
	b.StopTimer()
	idle := idleCPU(b, 10*time.Second)
	gc := fullGCCPU()
	b.StartTimer()

	start = time.Now()
	if n := scaleListAll(b, c); n != scaleTrunks {
		b.Fatalf("the full listing returned %d trunks; want %d", n, scaleTrunks)
	}
	listAll := time.Since(start)

	get := scaleSample(b, scaleGetRequests, func(i int) error {
		id := scaleID(spread(i, scaleTrunks))
		_, found, err := c.GetTrunk(ctx, id)
		if err == nil && !found {
			err = fmt.Errorf("GetTrunk %s: not found", id)
		}
		return err
	})
	list := scaleSample(b, scaleListRequests, func(i int) error {
		after := scaleID(spread(i, scaleTrunks-100))
		page, _, err := c.ListTrunks(ctx, after, 100)
		if err == nil && len(page) != 100 {
			err = fmt.Errorf("ListTrunks after %s returned %d trunks; want 100", after, len(page))
		}
		return err
	})
	b.StopTimer()

	getP50, getP99 := quantiles(get)
	listP50, listP99 := quantiles(list)
	b.ReportMetric(float64(startup.Milliseconds()), "startup-ms")
	b.ReportMetric(idle, "idle-cpu-ms/s")
	b.ReportMetric(gc, "gc-cpu-ms")
	b.ReportMetric(float64(listAll.Milliseconds()), "list-all-ms")
	b.ReportMetric(float64(getP50.Microseconds()), "get-p50-µs")
	b.ReportMetric(float64(getP99.Microseconds()), "get-p99-µs")
	b.ReportMetric(float64(listP50.Microseconds()), "list-p50-µs")
	b.ReportMetric(float64(listP99.Microseconds()), "list-p99-µs")
	b.ReportMetric(float64(size)/(1<<20), "db-MiB")
	b.ReportMetric(0, "ns/op")
}

// scaleSample runs fn n times, one call at a time, and returns each
// call's latency.
func scaleSample(b *testing.B, n int, fn func(i int) error) []time.Duration {
	lat := make([]time.Duration, 0, n)
	for i := range n {
		start := time.Now()
		if err := fn(i); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	return lat
}

// spread maps the i-th request to a key index in [0, n), visiting the key
// space out of order and, for i < n, never twice: 7919 is a prime that
// divides neither 100 000 nor 99 900.
func spread(i, n int) int { return i * 7919 % n }

func scaleID(i int) string { return fmt.Sprintf("carrier-%06d", i) }

// scaleTrunk is a record like benchTrunk's, with its own id, gateway,
// domain, credentials and carrier port, on the shared SIP bind.
func scaleTrunk(i int, sipPort uint16) *trunk.Trunk {
	t := benchTrunk(scaleID(i))
	t.SourcePBXPort = sipPort
	gw := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	t.GatewayIP = gw.String()
	t.MediaIPCIDRs = []string{netip.PrefixFrom(gw, 32).String()}
	t.DestinationSBCPort = uint16(5060 + i%4000)
	t.DisplayName = fmt.Sprintf("Carrier %d", i)
	t.Domain = fmt.Sprintf("sip%d.carrier.example", i)
	t.SIPUsername = fmt.Sprintf("user%06d", i)
	t.SIPPassword = fmt.Sprintf("pw-%06d-secret", i)
	return t
}

// scaleConfig is benchDaemon's configuration for dir, with the JWT secret
// and TLS certificate created up front so that start-up is a restart.
func scaleConfig(b *testing.B, dir string) *Config {
	b.Helper()
	cfg, err := parseConfig([]string{"--listen", "127.0.0.1:0", "--data", dir, "--log-level", "error",
		"--jwt-secret-file", filepath.Join(dir, "jwt.secret")}, func(string) string { return "" }, os.Stderr)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(cfg.JWTSecretFile, []byte("bench-secret-bench-secret-bench-secret\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	if _, _, err := rpc.LoadOrCreateCert(cfg.TLSCert, cfg.TLSKey, certHosts(cfg.Listen)); err != nil {
		b.Fatal(err)
	}
	return cfg
}

// buildScaleStore writes scaleTrunks trunks into dir's database, 1000
// concurrent adds at a time so that the store groups each thousand into
// one commit, and returns the file's size.
func buildScaleStore(b *testing.B, dir string, sipPort uint16) int64 {
	b.Helper()
	key, err := store.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "trunkd.db")
	db, err := store.Open(path, key)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const batch = 1000
	errs := make([]error, batch)
	for base := 0; base < scaleTrunks; base += batch {
		var wg sync.WaitGroup
		for j := range batch {
			wg.Go(func() { errs[j] = db.AddTrunk(ctx, scaleTrunk(base+j, sipPort)) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				db.Close()
				b.Fatal(err)
			}
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// scaleStart starts the daemon and returns it once a client's Ping is
// answered, with that client.
func scaleStart(b *testing.B, cfg *Config, dir, tok string) (*Daemon, *rpc.Client) {
	b.Helper()
	d, err := Start(cfg, cfg.logger(os.Stderr))
	if err != nil {
		b.Fatal(err)
	}
	tc, err := rpc.PinnedTLSConfig(filepath.Join(dir, "tls.crt"), "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpc.Dial(ctx, d.Addr().String(), tc, tok)
	if err == nil {
		err = c.Ping(ctx)
	}
	if err != nil {
		scaleStop(b, d)
		b.Fatal(err)
	}
	return d, c
}

func scaleStop(b *testing.B, d *Daemon) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		b.Errorf("Shutdown: %v", err)
	}
}

// scaleListAll pages through every trunk, 1000 a page, and returns how
// many it saw.
func scaleListAll(b *testing.B, c *rpc.Client) int {
	var n int
	for cursor := ""; ; {
		page, next, err := c.ListTrunks(context.Background(), cursor, rpc.MaxListLimit)
		if err != nil {
			b.Fatal(err)
		}
		n += len(page)
		if next == "" {
			break
		}
		cursor = next
	}
	return n
}

// daemonGC sets the garbage collector as trunkd's main does (gcDefaults:
// GOGC 400 and a soft memory limit, unless the environment sets them) for
// a benchmark that runs the daemon in its process, and puts the test
// binary's settings back after it.
func daemonGC(b *testing.B) {
	percent, limit := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1)
	debug.SetGCPercent(percent)
	gcDefaults(os.Getenv, slog.New(slog.DiscardHandler))
	b.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
}
