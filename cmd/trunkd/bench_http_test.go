package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/rpc/rest"
	"github.com/trunkd/trunkd/trunk"
)

// BenchmarkHTTPJSON is BenchmarkRPC's comparison: the same daemon, trunk
// service, store, records and cached JWT authenticator, served by rpc/rest,
// HTTP/2 + JSON with net/http over loopback TLS 1.3, with the same server
// certificate:
//
//	GET /ping          the null endpoint (Ping; no token)
//	GET /v1/trunks/{id}   GetTrunk (trunks:read)
//	PUT /v1/trunks/{id}   UpdateTrunk, durable before 204 (trunks:manage)
//
// at 1, 16 and 64 requests in flight from one http.Client on one HTTP/2
// connection. Sub-benchmark names and metrics (req/s, p50-µs, p99-µs)
// match BenchmarkRPC's, so the two line up in a table.
func BenchmarkHTTPJSON(b *testing.B) {
	d, dir, priv := benchDaemon(b)
	hs := token(&testing.T{}, dir, rpc.ScopeManage)
	ed := edToken(b, priv)
	setup := connectB(b, d, dir, hs)
	for i := range 1000 {
		if err := setup.AddTrunk(context.Background(), benchTrunk(fmt.Sprintf("t%04d", i))); err != nil {
			b.Fatal(err)
		}
	}
	base := serveJSONAPI(b, d, dir)

	methods := []struct {
		name string
		tok  string
		call func(c *jsonAPIClient, i int64) error
	}{
		{"Ping", hs, func(c *jsonAPIClient, i int64) error { return c.ping() }},
		{"GetTrunk", hs, func(c *jsonAPIClient, i int64) error { return c.get(i) }},
		{"GetTrunk-EdDSA", ed, func(c *jsonAPIClient, i int64) error { return c.get(i) }},
		{"UpdateTrunk", hs, func(c *jsonAPIClient, i int64) error {
			return c.update(benchTrunk(fmt.Sprintf("t%04d", i%1000)))
		}},
	}
	for _, m := range methods {
		for _, n := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/inflight=%d", m.name, n), func(b *testing.B) {
				c := newJSONAPIClient(b, base, dir, m.tok)
				inFlight(b, n, func(i int64) error { return m.call(c, i) })
				if got := c.conns.Load(); got != 1 {
					b.Errorf("the client opened %d connections; want 1", got)
				}
			})
		}
	}
}

// serveJSONAPI starts rpc/rest's server in front of d's trunk service,
// with a second authenticator configured like the RPC server's and the
// same metrics observation, and returns its base URL.
func serveJSONAPI(b *testing.B, d *Daemon, dir string) string {
	b.Helper()
	authn, _, err := d.authenticator()
	if err != nil {
		b.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{
		Handler:           rest.NewServer(rest.Config{Service: d.svc, Auth: authn, Logger: d.log, Observe: d.met.observe}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13},
		ReadHeaderTimeout: rpc.DefaultRequestTimeout,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelError),
	}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP2(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.ServeTLS(ln, "", "")
	b.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

// jsonAPIClient is what a user would write against jsonAPI: one
// http.Client speaking HTTP/2 over one pinned TLS connection.
type jsonAPIClient struct {
	base  string
	tok   string
	hc    *http.Client
	conns atomic.Int64 // TCP connections dialled
}

func newJSONAPIClient(b *testing.B, base, dir, tok string) *jsonAPIClient {
	b.Helper()
	tc, err := rpc.PinnedTLSConfig(filepath.Join(dir, "tls.crt"), "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	tc.MinVersion = tls.VersionTLS13
	c := &jsonAPIClient{base: base, tok: tok}
	var dialer net.Dialer
	tr := &http.Transport{
		TLSClientConfig: tc,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c.conns.Add(1)
			return dialer.DialContext(ctx, network, addr)
		},
		IdleConnTimeout: time.Minute,
	}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP2(true)
	c.hc = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	b.Cleanup(tr.CloseIdleConnections)
	// One request first, so that the requests of the run find the
	// connection up instead of racing to dial it.
	if err := c.ping(); err != nil {
		b.Fatal(err)
	}
	return c
}

func (c *jsonAPIClient) do(method, path string, body []byte, want int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if c.tok != "" {
		req.Header.Set("Authorization", "Bearer "+c.tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.ProtoMajor != 2 {
		return nil, fmt.Errorf("%s %s: answered over %s; want HTTP/2", method, path, resp.Proto)
	}
	if resp.StatusCode != want {
		var e rpc.Error
		json.Unmarshal(data, &e)
		return nil, fmt.Errorf("%s %s: %s: %v", method, path, resp.Status, &e)
	}
	return data, nil
}

func (c *jsonAPIClient) ping() error {
	_, err := c.do(http.MethodGet, "/ping", nil, http.StatusNoContent)
	return err
}

func (c *jsonAPIClient) get(i int64) error {
	id := fmt.Sprintf("t%04d", i%1000)
	data, err := c.do(http.MethodGet, "/v1/trunks/"+id, nil, http.StatusOK)
	if err != nil {
		return err
	}
	var cfg rpc.TrunkConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return err
	}
	if cfg.TrunkID != id {
		return fmt.Errorf("GET /v1/trunks/%s returned trunk %q", id, cfg.TrunkID)
	}
	return nil
}

func (c *jsonAPIClient) update(t *trunk.Trunk) error {
	body, err := json.Marshal(t)
	if err != nil {
		return err
	}
	_, err = c.do(http.MethodPut, "/v1/trunks/"+t.TrunkID, body, http.StatusNoContent)
	return err
}
