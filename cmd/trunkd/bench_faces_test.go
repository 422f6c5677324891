package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"github.com/trunkd/trunkd/rpc"
)

// BenchmarkGetTrunkFaces puts the three faces of one daemon side by side:
// GetTrunk over the QUIC RPC (MessagePack), and GET /v1/trunks/{id} over
// the REST face (--http-listen) on HTTP/2 (TCP + TLS 1.3) and on HTTP/3
// (QUIC), each from one client on one connection at 1, 16 and 64 requests
// in flight. Same store, records, cached JWT check and trunk service; the
// REST answer is the whole record (about 1.5 KB of JSON) where the RPC's
// is the record in MessagePack.
func BenchmarkGetTrunkFaces(b *testing.B) {
	d, dir, _ := benchDaemon(b, "--http-listen", "127.0.0.1:0")
	tok := token(&testing.T{}, dir, rpc.ScopeManage)
	setup := connectB(b, d, dir, tok)
	for i := range 1000 {
		if err := setup.AddTrunk(context.Background(), benchTrunk(fmt.Sprintf("t%04d", i))); err != nil {
			b.Fatal(err)
		}
	}
	base := "https://" + d.HTTPAddr().String()
	tc, err := rpc.PinnedTLSConfig(filepath.Join(dir, "tls.crt"), "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	h2 := &http.Transport{TLSClientConfig: tc.Clone(), Protocols: new(http.Protocols), IdleConnTimeout: time.Minute}
	h2.Protocols.SetHTTP2(true)
	h3 := &http3.Transport{TLSClientConfig: tc.Clone()}
	b.Cleanup(func() { h2.CloseIdleConnections(); h3.Close() })
	faces := []struct {
		name string
		get  func(i int64) error
	}{
		{"quic-rpc", func(i int64) error { return get(setup, i) }},
		{"http2", restGet(&http.Client{Transport: h2, Timeout: 10 * time.Second}, base, tok, "HTTP/2.0")},
		{"http3", restGet(&http.Client{Transport: h3, Timeout: 10 * time.Second}, base, tok, "HTTP/3.0")},
	}
	for _, n := range []int{1, 16, 64} {
		for _, f := range faces {
			b.Run(fmt.Sprintf("%s/inflight=%d", f.name, n), func(b *testing.B) {
				inFlight(b, n, f.get)
			})
		}
	}
}

// restGet returns a GetTrunk over the REST face that checks the protocol
// and the trunk it got.
func restGet(hc *http.Client, base, tok, proto string) func(i int64) error {
	return func(i int64) error {
		id := fmt.Sprintf("t%04d", i%1000)
		req, err := http.NewRequest(http.MethodGet, base+"/v1/trunks/"+id, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		var rec struct {
			TrunkID string `json:"trunk_id"`
		}
		if resp.StatusCode != http.StatusOK || resp.Proto != proto || json.Unmarshal(data, &rec) != nil || rec.TrunkID != id {
			return fmt.Errorf("GET /v1/trunks/%s = %s %d %.80s", id, resp.Proto, resp.StatusCode, data)
		}
		return nil
	}
}
