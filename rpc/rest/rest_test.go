package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trunkd/trunkd/rpc/api"
	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/rpc/rest"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
	"github.com/trunkd/trunkd/trunk/control/controltest"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

// fixture is a REST server over HTTP/2 and TLS in front of a real
// control.Service with an in-memory store and a fake SIP plane.
type fixture struct {
	svc   *control.Service
	url   string
	hc    *http.Client
	store *controltest.MemStore
	plane *controltest.Plane
	logs  *logBuf
}

// logBuf is a log the server writes while the test reads it.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	authn, err := auth.NewAuthenticator(auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: controltest.NewMemStore(), plane: &controltest.Plane{}, logs: &logBuf{}}
	svc := control.New(f.store, f.plane)
	f.svc = svc
	if err := svc.UseAgents(context.Background(), controltest.NewMemAgents(), &controltest.AgentPlane{Host: "sip.example.com"}); err != nil {
		t.Fatal(err)
	}
	srv := rest.NewServer(rest.Config{Service: svc, Auth: authn,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil))})
	ts := httptest.NewUnstartedServer(srv)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	f.url, f.hc = ts.URL, ts.Client()
	return f
}

func token(t *testing.T, scope string) string {
	t.Helper()
	tok, err := auth.MintToken(secret, scope, time.Hour, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// do sends method path with body (nil for none) and token ("" for none),
// and returns the status and body. Every answer must be HTTP/2.
func (f *fixture) do(t *testing.T, method, path, tok string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, f.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("%s %s answered over %s; want HTTP/2", method, path, resp.Proto)
	}
	return resp.StatusCode, data
}

// wantError checks an error answer: its status, code and field.
func wantError(t *testing.T, what string, status int, body []byte, wantStatus int, wantCode, wantField string) {
	t.Helper()
	var e api.Error
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("%s: body %q is not an error: %v", what, body, err)
	}
	if status != wantStatus || e.Code != wantCode || e.Field != wantField {
		t.Errorf("%s = %d %s field %q (%s); want %d %s field %q", what, status, e.Code, e.Field, e.Message, wantStatus, wantCode, wantField)
	}
}

func sample(id string) trunk.Trunk {
	t := trunk.Defaults()
	t.TrunkID = id
	t.DisplayName = "Acme Carrier"
	t.Domain = "sip.example.com"
	t.SIPPassword = "s3cret"
	return t
}

func TestTrunkLifecycle(t *testing.T) {
	f := newFixture(t)
	manage := token(t, auth.ScopeManage)

	if status, body := f.do(t, "GET", "/ping", "", nil); status != http.StatusNoContent {
		t.Errorf("GET /ping = %d %s; want 204", status, body)
	}
	if status, body := f.do(t, "POST", "/v1/trunks", manage, sample("c1")); status != http.StatusCreated {
		t.Fatalf("POST /trunks = %d %s; want 201", status, body)
	}
	status, body := f.do(t, "GET", "/v1/trunks/c1", manage, nil)
	var cfg api.TrunkConfig
	if status != http.StatusOK || json.Unmarshal(body, &cfg) != nil || cfg.TrunkID != "c1" || cfg.DisplayName != "Acme Carrier" {
		t.Errorf("GET /trunks/c1 = %d %s; want 200 and c1", status, body)
	}
	if bytes.Contains(body, []byte("s3cret")) {
		t.Errorf("GET /trunks/c1 = %s; it shows the SIP password", body)
	}
	up := sample("")
	up.ChannelLimit = 7
	if status, body := f.do(t, "PUT", "/v1/trunks/c1", manage, up); status != http.StatusNoContent {
		t.Errorf("PUT /trunks/c1 = %d %s; want 204", status, body)
	}
	if got := f.store.Trunk("c1"); got == nil || got.ChannelLimit != 7 {
		t.Errorf("stored after PUT: %+v; want channel_limit 7", got)
	}
	status, body = f.do(t, "GET", "/v1/trunks?limit=10", manage, nil)
	var list api.ListTrunksResponse
	if status != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list.Trunks) != 1 {
		t.Errorf("GET /trunks = %d %s; want one trunk", status, body)
	}
	if status, body := f.do(t, "DELETE", "/v1/trunks/c1", manage, nil); status != http.StatusNoContent {
		t.Errorf("DELETE /trunks/c1 = %d %s; want 204", status, body)
	}
	if got := strings.Join(f.plane.Events(), ","); got != "prepare c1,commit c1,prepare c1,commit c1,remove c1" {
		t.Errorf("plane events = %s; want add, update, remove of c1", got)
	}
	if !strings.Contains(f.logs.String(), "trunk added") || !strings.Contains(f.logs.String(), "trunk removed") {
		t.Errorf("log lacks the writes:\n%s", f.logs.String())
	}
}

func TestAuthRefused(t *testing.T) {
	f := newFixture(t)
	status, body := f.do(t, "GET", "/v1/trunks/c1", "", nil)
	wantError(t, "GET without a token", status, body, http.StatusUnauthorized, api.CodeUnauthenticated, "")
	status, body = f.do(t, "GET", "/v1/trunks/c1", "not.a.jwt", nil)
	wantError(t, "GET with a bad token", status, body, http.StatusUnauthorized, api.CodeUnauthenticated, "")
	status, body = f.do(t, "POST", "/v1/trunks", token(t, auth.ScopeRead), sample("c1"))
	wantError(t, "POST with a read token", status, body, http.StatusForbidden, api.CodePermissionDenied, "")
	if n := f.store.Len(); n != 0 || len(f.plane.Events()) != 0 {
		t.Errorf("refused requests left %d trunks, plane events %q", n, f.plane.Events())
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	manage := token(t, auth.ScopeManage)
	bad := sample("c1")
	bad.RejectSIPCode = 200
	status, body := f.do(t, "POST", "/v1/trunks", manage, bad)
	wantError(t, "POST reject_sip_code 200", status, body, http.StatusBadRequest, api.CodeInvalidArgument, "reject_sip_code")
	status, body = f.do(t, "POST", "/v1/trunks", manage, map[string]any{"trunk_id": "c1", "colour": "red"})
	wantError(t, "POST unknown field", status, body, http.StatusBadRequest, api.CodeInvalidArgument, "colour")
	status, body = f.do(t, "POST", "/v1/trunks", manage, map[string]any{"trunk_id": "c1", "channel_limit": "ten"})
	wantError(t, "POST channel_limit as string", status, body, http.StatusBadRequest, api.CodeInvalidArgument, "channel_limit")
	status, body = f.do(t, "PUT", "/v1/trunks/c1", manage, sample("c2"))
	wantError(t, "PUT id mismatch", status, body, http.StatusBadRequest, api.CodeInvalidArgument, "trunk_id")
	if f.store.Len() != 0 {
		t.Errorf("invalid requests stored %d trunks", f.store.Len())
	}

	status, body = f.do(t, "GET", "/v1/trunks/nope", manage, nil)
	wantError(t, "GET unknown", status, body, http.StatusNotFound, api.CodeInvalidTrunk, "")
	status, body = f.do(t, "PUT", "/v1/trunks/nope", manage, sample("nope"))
	wantError(t, "PUT unknown", status, body, http.StatusNotFound, api.CodeInvalidTrunk, "")
	status, body = f.do(t, "DELETE", "/v1/trunks/nope", manage, nil)
	wantError(t, "DELETE unknown", status, body, http.StatusNotFound, api.CodeInvalidTrunk, "")

	f.do(t, "POST", "/v1/trunks", manage, sample("c1"))
	status, body = f.do(t, "POST", "/v1/trunks", manage, sample("c1"))
	wantError(t, "POST existing", status, body, http.StatusConflict, api.CodeTrunkExists, "")
}

// TestCauseNotSent checks that a store failure is 503 with the domain
// message, its cause logged and never in the body.
func TestCauseNotSent(t *testing.T) {
	f := newFixture(t)
	const marker = "disk-marker: input/output error"
	f.store.FailWrites(trunk.Wrap(trunk.EUNAVAILABLE, errors.New(marker), "store unavailable: cannot write to disk"))
	status, body := f.do(t, "POST", "/v1/trunks", token(t, auth.ScopeManage), sample("c1"))
	wantError(t, "POST on a failing store", status, body, http.StatusServiceUnavailable, api.CodeUnavailable, "")
	if bytes.Contains(body, []byte("disk-marker")) {
		t.Errorf("body %s carries the cause", body)
	}
	if !strings.Contains(f.logs.String(), marker) {
		t.Errorf("log lacks the cause:\n%s", f.logs.String())
	}
}

func TestStatus(t *testing.T) {
	for code, want := range map[string]int{
		api.CodeInvalidArgument: 400, api.CodeMalformed: 400, api.CodeUnauthenticated: 401, api.CodePermissionDenied: 403,
		api.CodeInvalidTrunk: 404, api.CodeTrunkExists: 409, api.CodeTooLarge: 413, api.CodeUnavailable: 503, api.CodeInternal: 500,
	} {
		if got := rest.Status(code); got != want {
			t.Errorf("Status(%s) = %d; want %d", code, got, want)
		}
	}
}
