package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/trunk"
)

// benchDaemon starts trunkd with the embedded HS256 secret and an Ed25519
// public key, and returns it with a signer for EdDSA tokens.
func benchDaemon(b *testing.B, extra ...string) (*Daemon, string, ed25519.PrivateKey) {
	b.Helper()
	dir := b.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	keyFile := filepath.Join(dir, "ed.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	cfg, err := parseConfig([]string{"--listen", "127.0.0.1:0", "--data", dir, "--log-level", "error",
		"--jwt-secret-file", filepath.Join(dir, "jwt.secret"), "--jwt-public-key", "ed=" + keyFile}, func(string) string { return "" }, os.Stderr)
	if err == nil && len(extra) > 0 {
		cfg, err = parseConfig(append([]string{"--listen", "127.0.0.1:0", "--data", dir, "--log-level", "error",
			"--jwt-secret-file", filepath.Join(dir, "jwt.secret"), "--jwt-public-key", "ed=" + keyFile}, extra...), func(string) string { return "" }, os.Stderr)
	}
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(cfg.JWTSecretFile, []byte("bench-secret-bench-secret-bench-secret\n"), 0o600)
	daemonGC(b)
	d, err := Start(cfg, cfg.logger(os.Stderr))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Shutdown(context.Background()) })
	return d, dir, priv
}

func edToken(b *testing.B, priv ed25519.PrivateKey) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"scope": rpc.ScopeManage, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})
	tok.Header["kid"] = "ed"
	s, err := tok.SignedString(priv)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// benchSIPPort is where benchmark trunks listen for SIP.
var benchSIPPort uint16 = 25060

// benchTrunk is a record of realistic size (about 600 bytes on the wire).
func benchTrunk(id string) *trunk.Trunk {
	t := trunk.Defaults()
	t.TrunkID = id
	t.InternalSIPIP, t.SourcePBXPort = "127.0.0.1", benchSIPPort
	t.DisplayName = "Benchmark Carrier"
	t.Domain = "sip.carrier.example"
	t.GatewayIP = "192.0.2.10"
	t.SIPUsername = "user"
	t.SIPPassword = "password"
	t.MediaIPCIDRs = []string{"192.0.2.0/24"}
	return &t
}

// inFlight runs b.N calls of fn from n goroutines (n requests in flight on
// one connection) and reports requests per second, latency quantiles and
// the CPU the process (client and server) used per request.
func inFlight(b *testing.B, n int, fn func(i int64) error) {
	var next atomic.Int64
	lat := make([][]time.Duration, n)
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu := processCPU()
	for w := range n {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				start := time.Now()
				if err := fn(i); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu = processCPU() - cpu
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/req")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRPC measures methods through the whole server path (QUIC,
// envelope codec, JWT check, store) at 1, 16 and 64 requests in flight on
// one connection. Ping is the null method: the ceiling of the path.
func BenchmarkRPC(b *testing.B) {
	d, dir, priv := benchDaemon(b)
	hs := token(&testing.T{}, dir, rpc.ScopeManage)
	ed := edToken(b, priv)
	ctx := context.Background()
	setup := connectB(b, d, dir, hs)
	for i := range 1000 {
		if err := setup.AddTrunk(ctx, benchTrunk(fmt.Sprintf("t%04d", i))); err != nil {
			b.Fatal(err)
		}
	}
	methods := []struct {
		name string
		tok  string
		call func(c *rpc.Client, i int64) error
	}{
		{"Ping", hs, func(c *rpc.Client, i int64) error { return c.Ping(ctx) }},
		{"GetTrunk", hs, func(c *rpc.Client, i int64) error { return get(c, i) }},
		{"GetTrunk-EdDSA", ed, func(c *rpc.Client, i int64) error { return get(c, i) }},
		{"UpdateTrunk", hs, func(c *rpc.Client, i int64) error {
			return c.UpdateTrunk(ctx, benchTrunk(fmt.Sprintf("t%04d", i%1000)))
		}},
	}
	for _, m := range methods {
		for _, n := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/inflight=%d", m.name, n), func(b *testing.B) {
				c := connectB(b, d, dir, m.tok)
				inFlight(b, n, func(i int64) error { return m.call(c, i) })
			})
		}
	}
}

func get(c *rpc.Client, i int64) error {
	id := fmt.Sprintf("t%04d", i%1000)
	_, found, err := c.GetTrunk(context.Background(), id)
	if err == nil && !found {
		err = fmt.Errorf("%s not found", id)
	}
	return err
}

// BenchmarkDialAndCall measures a new connection (QUIC + TLS 1.3 handshake)
// followed by one GetTrunk.
func BenchmarkDialAndCall(b *testing.B) {
	d, dir, _ := benchDaemon(b)
	hs := token(&testing.T{}, dir, rpc.ScopeManage)
	ctx := context.Background()
	connectB(b, d, dir, hs).AddTrunk(ctx, benchTrunk("t0000"))
	tc, _ := rpc.PinnedTLSConfig(filepath.Join(dir, "tls.crt"), "127.0.0.1")
	b.ResetTimer()
	for b.Loop() {
		c, err := rpc.Dial(ctx, d.Addr().String(), tc, hs)
		if err != nil {
			b.Fatal(err)
		}
		if err := get(c, 0); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

func connectB(b *testing.B, d *Daemon, dir, tok string) *rpc.Client {
	b.Helper()
	tc, err := rpc.PinnedTLSConfig(filepath.Join(dir, "tls.crt"), "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	c, err := rpc.Dial(context.Background(), d.Addr().String(), tc, tok)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}
