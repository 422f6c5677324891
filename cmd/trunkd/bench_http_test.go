package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/rpc/api"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
)

// BenchmarkHTTPJSON is BenchmarkRPC's comparison: the same daemon, trunk
// service, store, records and cached JWT authenticator, served the way one
// would otherwise build it, HTTP/2 + JSON with net/http over loopback TLS
// 1.3, with the same server certificate:
//
//	GET /ping          the null endpoint (Ping; no token)
//	GET /trunks/{id}   GetTrunk (trunks:read)
//	PUT /trunks/{id}   UpdateTrunk, durable before 204 (trunks:manage)
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

// jsonAPI serves the trunk service over HTTP + JSON, as BenchmarkRPC's
// server does over QUIC + MessagePack: the same checks in the same order,
// the same metrics observation, the same sanitised TrunkConfig view.
type jsonAPI struct {
	trunks  *control.Service
	auth    rpc.Authorizer
	log     *slog.Logger
	observe func(method, code string, d time.Duration)
}

// maxJSONBody bounds a request body as the RPC server bounds a request.
const maxJSONBody = rpc.DefaultMaxRequestSize

// serveJSONAPI starts the HTTP server in front of d's store and SIP plane
// and returns its base URL.
func serveJSONAPI(b *testing.B, d *Daemon, dir string) string {
	b.Helper()
	auth, err := d.authenticator() // a second one, configured like the RPC server's
	if err != nil {
		b.Fatal(err)
	}
	api := &jsonAPI{trunks: d.svc, auth: auth, log: d.log, observe: d.met.observe}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{
		Handler:           api.routes(),
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

func (a *jsonAPI) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", a.handle("Ping", "", a.ping))
	mux.HandleFunc("GET /trunks/{id}", a.handle("GetTrunk", rpc.ScopeRead, a.getTrunk))
	mux.HandleFunc("PUT /trunks/{id}", a.handle("UpdateTrunk", rpc.ScopeManage, a.updateTrunk))
	return mux
}

// handle wraps an endpoint with the bearer-token check, the error mapping
// and the metrics observation.
func (a *jsonAPI) handle(method, scope string, fn func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var err error
		if scope != "" {
			err = a.auth.Authorize(bearer(r), scope)
		}
		if err == nil {
			err = fn(w, r)
		}
		code := ""
		if err != nil {
			code = a.writeError(w, method, err)
		}
		a.observe(method, code, time.Since(start))
	}
}

// bearer returns the token of an "Authorization: Bearer" header, or "".
func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func (a *jsonAPI) ping(w http.ResponseWriter, r *http.Request) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *jsonAPI) getTrunk(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := trunk.ValidateID(id); err != nil {
		return err
	}
	t, err := a.trunks.GetTrunk(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.NewTrunkConfig(t, a.trunks.TrunkStatus(t.TrunkID)))
}

func (a *jsonAPI) updateTrunk(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := trunk.ValidateID(id); err != nil {
		return err
	}
	t := trunk.Defaults() // absent fields take their defaults, as in the RPC
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return badBody(err)
	}
	if dec.More() {
		return badBody(errors.New("data after the JSON object"))
	}
	if t.TrunkID == "" {
		t.TrunkID = id
	}
	if t.TrunkID != id {
		return trunk.FieldErrorf("trunk_id", "%q does not match the path's %q", t.TrunkID, id)
	}
	if err := a.trunks.UpdateTrunk(r.Context(), &t); err != nil {
		return err
	}
	a.log.Info("trunk updated", "trunk_id", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// badBody is a request body that is not a trunk record.
func badBody(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &httpError{http.StatusRequestEntityTooLarge, rpc.Errorf(rpc.CodeTooLarge, "request body is larger than %d bytes", tooBig.Limit)}
	}
	return &httpError{http.StatusBadRequest, rpc.Errorf(rpc.CodeMalformed, "request body: %v", err)}
}

// httpError is an error with its own status.
type httpError struct {
	status int
	body   *rpc.Error
}

func (e *httpError) Error() string { return e.body.Error() }

// writeError answers err with its status and a JSON body shaped like the
// RPC's Err (code, message, field), and returns the wire code.
func (a *jsonAPI) writeError(w http.ResponseWriter, method string, err error) string {
	status, body := httpStatus(err)
	if status == http.StatusInternalServerError {
		a.log.Error("request failed", "method", method, "err", err)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="trunkd"`)
	}
	writeJSON(w, status, body)
	return body.Code
}

// httpStatus maps an error to its status and wire body; internal details
// never leave.
func httpStatus(err error) (int, *rpc.Error) {
	var he *httpError
	if errors.As(err, &he) {
		return he.status, he.body
	}
	var re *rpc.Error
	if errors.As(err, &re) {
		switch re.Code {
		case rpc.CodeUnauthenticated:
			return http.StatusUnauthorized, re
		case rpc.CodePermissionDenied:
			return http.StatusForbidden, re
		}
		return http.StatusBadRequest, re
	}
	var te *trunk.Error
	if errors.As(err, &te) {
		switch te.Code {
		case trunk.EINVALID:
			return http.StatusUnprocessableEntity, &rpc.Error{Code: rpc.CodeInvalidArgument, Message: te.Message, Field: te.Field}
		case trunk.ENOTFOUND:
			return http.StatusNotFound, &rpc.Error{Code: rpc.CodeInvalidTrunk, Message: te.Message}
		case trunk.EEXISTS:
			return http.StatusConflict, &rpc.Error{Code: rpc.CodeTrunkExists, Message: te.Message}
		case trunk.EUNAVAILABLE:
			return http.StatusServiceUnavailable, &rpc.Error{Code: rpc.CodeUnavailable, Message: te.Message}
		}
	}
	return http.StatusInternalServerError, &rpc.Error{Code: rpc.CodeInternal, Message: "internal error"}
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
	return nil
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
	data, err := c.do(http.MethodGet, "/trunks/"+id, nil, http.StatusOK)
	if err != nil {
		return err
	}
	var cfg rpc.TrunkConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return err
	}
	if cfg.TrunkID != id {
		return fmt.Errorf("GET /trunks/%s returned trunk %q", id, cfg.TrunkID)
	}
	return nil
}

func (c *jsonAPIClient) update(t *trunk.Trunk) error {
	body, err := json.Marshal(t)
	if err != nil {
		return err
	}
	_, err = c.do(http.MethodPut, "/trunks/"+t.TrunkID, body, http.StatusNoContent)
	return err
}
