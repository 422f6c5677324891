package rest

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
	s.handle("GET /ping", "Ping", s.ping, noContent)
	s.handle("GET /trunks", "ListTrunks", s.listTrunks, ok)
	s.handle("POST /trunks", "AddTrunk", s.addTrunk, created)
	s.handle("GET /trunks/{id}", "GetTrunk", s.trunkID, found)
	s.handle("PUT /trunks/{id}", "UpdateTrunk", s.updateTrunk, noContent)
	s.handle("DELETE /trunks/{id}", "RemoveTrunk", s.trunkID, noContent)
	return s
}

// ServeHTTP routes r.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// handle serves pattern with the api method name: decode builds its
// request DTO from r (the token set), write answers its response.
func (s *Server) handle(pattern, name string, decode func(w http.ResponseWriter, r *http.Request, tok string) (any, error), write func(w http.ResponseWriter, req, resp any) error) {
	m, known := api.Lookup(name)
	if !known {
		panic("rest: no api method " + name)
	}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		req, err := decode(w, r, bearer(r))
		var resp any
		if err == nil {
			resp, err = s.api.Call(r.Context(), m, req)
		}
		if err == nil {
			err = write(w, req, resp)
		}
		code := ""
		if err != nil {
			code = s.fail(w, name, err)
		} else if target := m.Target(req); target != "" {
			s.log.Info("trunk "+m.Change, "trunk_id", target)
		}
		s.observe(name, code, time.Since(start))
	})
}

// bearer returns the token of an "Authorization: Bearer" header, or "".
func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request, tok string) (any, error) {
	return &api.PingRequest{}, nil
}

func (s *Server) trunkID(w http.ResponseWriter, r *http.Request, tok string) (any, error) {
	return &api.TrunkIDRequest{AdminToken: tok, TrunkID: r.PathValue("id")}, nil
}

func (s *Server) listTrunks(w http.ResponseWriter, r *http.Request, tok string) (any, error) {
	req := &api.ListTrunksRequest{AdminToken: tok, Cursor: r.URL.Query().Get("cursor")}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, trunk.FieldErrorf("limit", "%q is not a count", v)
		}
		req.Limit = uint32(n)
	}
	return req, nil
}

func (s *Server) addTrunk(w http.ResponseWriter, r *http.Request, tok string) (any, error) {
	req := api.NewTrunkRequest()
	req.AdminToken = tok
	return req, s.decodeTrunk(w, r, &req.Trunk)
}

func (s *Server) updateTrunk(w http.ResponseWriter, r *http.Request, tok string) (any, error) {
	req := api.NewTrunkRequest()
	req.AdminToken = tok
	if err := s.decodeTrunk(w, r, &req.Trunk); err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	if req.TrunkID == "" {
		req.TrunkID = id
	}
	if req.TrunkID != id {
		return nil, trunk.FieldErrorf("trunk_id", "%q does not match the path's %q", req.TrunkID, id)
	}
	return req, nil
}

// decodeTrunk decodes the body, one JSON object, into t, which holds the
// defaults: absent fields keep them, as in the QUIC face. Unknown fields
// are refused naming the field; no decoder text reaches the client.
func (s *Server) decodeTrunk(w http.ResponseWriter, r *http.Request, t *trunk.Trunk) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(t)
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
		return trunk.FieldErrorf(typ.Field, "must be %s, not %s", typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return &api.Error{Code: api.CodeInvalidArgument, Field: name, Message: fmt.Sprintf("unknown field %q", name)}
	}
	return api.Errorf(api.CodeMalformed, "request body is not a JSON object")
}

func noContent(w http.ResponseWriter, _, _ any) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func created(w http.ResponseWriter, _, _ any) error {
	w.WriteHeader(http.StatusCreated)
	return nil
}

func ok(w http.ResponseWriter, _, resp any) error { return writeJSON(w, http.StatusOK, resp) }

// found answers GetTrunk: the trunk, or 404 for an unknown id (the QUIC
// face answers found=false).
func found(w http.ResponseWriter, req, resp any) error {
	g := resp.(api.GetTrunkResponse)
	if !g.Found {
		return trunk.Errorf(trunk.ENOTFOUND, "trunk %q not found", req.(*api.TrunkIDRequest).TrunkID)
	}
	return writeJSON(w, http.StatusOK, g.Config)
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
