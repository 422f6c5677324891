package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trunkd/trunkd/rpc/api"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
)

// DefaultMaxBodySize bounds a request body, as the QUIC face bounds a
// request.
const DefaultMaxBodySize = 64 << 10

// Config configures a Server.
type Config struct {
	Service *control.Service // required
	Auth    api.Authorizer   // required
	Logger  *slog.Logger     // optional

	// Observe, optional, is called once per request answered with the api
	// method name, the wire code ("" for success) and the time it took.
	Observe func(method, code string, d time.Duration)

	MaxBodySize int64 // bytes; 0 means DefaultMaxBodySize
}

// Server is the REST face, an http.Handler.
type Server struct {
	api     *api.Handler
	log     *slog.Logger
	observe func(method, code string, d time.Duration)
	maxBody int64
	mux     *http.ServeMux
	routes  []string
}

// NewServer returns a Server for cfg.
func NewServer(cfg Config) *Server {
	s := &Server{log: cfg.Logger, observe: cfg.Observe, maxBody: cfg.MaxBodySize, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.observe == nil {
		s.observe = func(string, string, time.Duration) {}
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodySize
	}
	s.api = api.NewHandler(cfg.Service, cfg.Auth, s.log)
	s.route("GET /ping", "Ping", s.ping, noContent)
	s.route("GET /v1/trunks", "ListTrunks", s.listTrunks, ok)
	s.routeFunc("POST /v1/trunks", "AddTrunk", s.addNative)
	s.route("GET /v1/trunks/{id}", "GetTrunk", s.trunkID, nativeFound)
	s.routeFunc("PUT /v1/trunks/{id}", "UpdateTrunk", s.updateNative)
	s.route("DELETE /v1/trunks/{id}", "RemoveTrunk", s.trunkID, noContent)
	s.route("GET /core/trunks", "ListTrunks", s.listCore, coreList)
	s.routeFunc("POST /core/trunks", "AddTrunk", s.addCore)
	s.route("GET /core/trunks/{id}", "GetTrunk", s.trunkID, coreFound)
	s.routeFunc("PUT /core/trunks/{id}", "UpdateTrunk", s.updateCore)
	s.route("DELETE /core/trunks/{id}", "RemoveTrunk", s.trunkID, noContent)
	s.route("POST /core/agents/{id}/deploy-as-sip", "DeployAgentAsSip", agentID, ok)
	s.route("DELETE /core/agents/{id}/deploy-as-sip", "UndeployAgentAsSip", agentID, ok)
	s.routeFunc("GET /v1/backup", "Backup", s.backup)
	s.route("POST /v1/reload", "Reload", s.reload, ok)
	s.mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	s.routes = append(s.routes, "GET /openapi.json")
	s.mux.HandleFunc("/", s.notFound)
	return s
}

// Routes lists the routes served, "METHOD /path", for the OpenAPI check.
func (s *Server) Routes() []string { return s.routes }

// ServeHTTP routes r.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// route serves pattern with the api method name: decode builds its
// request DTO from r (token and organization set), write answers its
// response.
func (s *Server) route(pattern, name string, decode func(w http.ResponseWriter, r *http.Request, c caller) (any, error), write func(w http.ResponseWriter, req, resp any) error) {
	m, known := api.Lookup(name)
	if !known {
		panic("rest: no api method " + name)
	}
	s.routeFunc(pattern, name, func(w http.ResponseWriter, r *http.Request, c caller) error {
		req, err := decode(w, r, c)
		if err != nil {
			return err
		}
		resp, err := s.call(r.Context(), m, req)
		if err != nil {
			return err
		}
		return write(w, req, resp)
	})
}

// routeFunc serves pattern with fn, which may make several api calls (a
// read-modify-write); name is what Observe sees.
func (s *Server) routeFunc(pattern, name string, fn func(w http.ResponseWriter, r *http.Request, c caller) error) {
	s.routes = append(s.routes, pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		code := ""
		if err := fn(w, r, caller{token: bearer(r), org: r.Header.Get(OrgHeader)}); err != nil {
			code = s.fail(w, name, err)
		}
		s.observe(name, code, time.Since(start))
	})
}

// call runs one api method and logs a trunk write.
func (s *Server) call(ctx context.Context, m api.Method, req any) (any, error) {
	resp, err := s.api.Call(ctx, m, req)
	if err == nil {
		if target := m.Target(req); target != "" {
			s.log.Info("trunk "+m.Change, "trunk_id", target)
		}
	}
	return resp, err
}

// OrgHeader names the organization a request acts for, as the QUIC
// face's org field does.
const OrgHeader = "X-Trunkd-Org"

// caller is who sends a request: its bearer token and the organization
// it names.
type caller struct{ token, org string }

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.fail(w, "", api.Errorf(api.CodeUnknownMethod, "no route %s %s (see /openapi.json)", r.Method, r.URL.Path))
}

// agentID is the request of the agent routes: the agent named in the path.
func agentID(_ http.ResponseWriter, r *http.Request, c caller) (any, error) {
	return &api.AgentIDRequest{AdminToken: c.token, Org: c.org, AgentID: r.PathValue("id")}, nil
}

// bearer returns the token of an "Authorization: Bearer" header, or "".
func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request, c caller) (any, error) {
	return &api.PingRequest{}, nil
}

// trunkID is the request of GetTrunk and RemoveTrunk: the path's id, and
// If-Match as if_revision.
func (s *Server) trunkID(w http.ResponseWriter, r *http.Request, c caller) (any, error) {
	rev, err := ifMatch(r)
	return &api.TrunkIDRequest{AdminToken: c.token, Org: c.org, TrunkID: r.PathValue("id"), IfRevision: rev}, err
}

// ifMatch reads If-Match: a revision, quoted (an ETag) or not; 0 when
// absent.
func ifMatch(r *http.Request) (uint64, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(strings.Trim(strings.TrimPrefix(v, "W/"), `"`), 10, 64)
	if err != nil || n == 0 {
		return 0, trunk.FieldErrorf("If-Match", "%q is not a revision (the ETag of GET)", v)
	}
	return n, nil
}

// listQuery is ListTrunks' request from the query string.
func listQuery(r *http.Request, c caller) (*api.ListTrunksRequest, error) {
	q := r.URL.Query()
	req := &api.ListTrunksRequest{AdminToken: c.token, Org: c.org, Cursor: q.Get("cursor"),
		Name: q.Get("name"), NamePrefix: q.Get("name_prefix"),
		CreatedAfter: q.Get("created_after"), CreatedBefore: q.Get("created_before"),
		UpdatedAfter: q.Get("updated_after"), UpdatedBefore: q.Get("updated_before")}
	for k := range q {
		if !slices.Contains(listParams, k) {
			return nil, trunk.FieldErrorf(k, "unknown query parameter (known: %s)", strings.Join(listParams, ", "))
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, trunk.FieldErrorf("limit", "%q is not a count", v)
		}
		req.Limit = uint32(n)
	}
	return req, nil
}

var listParams = []string{"limit", "cursor", "name", "name_prefix", "created_after", "created_before", "updated_after", "updated_before"}

func (s *Server) listTrunks(w http.ResponseWriter, r *http.Request, c caller) (any, error) {
	req, err := listQuery(r, c)
	if err == nil {
		req.Records = true
	}
	return req, err
}

// decodeBody decodes the body, one JSON object, into v, which holds the
// defaults: absent fields keep them, as in the QUIC face. Unknown fields
// are refused naming the field; no decoder text reaches the client.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		return api.Errorf(api.CodeMalformed, "request body: data after the JSON object")
	}
	var tooBig *http.MaxBytesError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return api.Errorf(api.CodeTooLarge, "request body is larger than %d bytes", tooBig.Limit)
	case errors.As(err, &typ):
		return trunk.FieldErrorf(jsonPath(typ.Field), "must be %s, not %s", typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return &api.Error{Code: api.CodeInvalidArgument, Field: name, Message: fmt.Sprintf("unknown field %q", name)}
	}
	return api.Errorf(api.CodeMalformed, "request body is not a JSON object")
}

// jsonPath drops from a decoder's field path the Go names of embedded
// structs ("Trunk.channel_limit" is channel_limit on the wire).
func jsonPath(p string) string {
	parts := strings.Split(p, ".")
	parts = slices.DeleteFunc(parts, func(s string) bool { return s != "" && s[0] >= 'A' && s[0] <= 'Z' })
	return strings.Join(parts, ".")
}

func noContent(w http.ResponseWriter, _, _ any) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func ok(w http.ResponseWriter, _, resp any) error { return writeJSON(w, http.StatusOK, resp) }

// found returns GetTrunk's answer, or ENOTFOUND (404) for an unknown id
// (the QUIC face answers found=false).
func found(req, resp any) (api.GetTrunkResponse, error) {
	g := resp.(api.GetTrunkResponse)
	if !g.Found {
		return g, trunk.Errorf(trunk.ENOTFOUND, "trunk %q not found", req.(*api.TrunkIDRequest).TrunkID)
	}
	return g, nil
}

// fail answers err with its status and api.Error body, and returns the
// wire code. api.Handler.Failed logs what the client does not see.
func (s *Server) fail(w http.ResponseWriter, method string, err error) string {
	e := s.api.Failed(method, err)
	status := Status(e.Code)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="trunkd"`)
	}
	writeJSON(w, status, e)
	return e.Code
}

// Status is the HTTP status of a wire error code.
func Status(code string) int {
	switch code {
	case api.CodeMalformed, api.CodeInvalidArgument:
		return http.StatusBadRequest
	case api.CodeUnauthenticated:
		return http.StatusUnauthorized
	case api.CodePermissionDenied:
		return http.StatusForbidden
	case api.CodeInvalidTrunk, api.CodeUnknownCall, api.CodeUnknownMethod, api.CodeUnknownAgent:
		return http.StatusNotFound
	case api.CodeTrunkExists, api.CodePrecondition:
		return http.StatusConflict
	case api.CodeConflict:
		return http.StatusPreconditionFailed
	case api.CodeManagedTrunk:
		return http.StatusBadRequest
	case api.CodeNotImplemented:
		return http.StatusNotImplemented
	case api.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case api.CodeChannelLimit:
		return http.StatusTooManyRequests
	case api.CodeUnavailable, api.CodeCircuitOpen:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
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
