package rpc

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/trunkd/trunkd/trunk"
	"github.com/vmihailenco/msgpack/v5"
)

// Trunks is what the server needs from the trunk service behind it: the
// store, or the layer that applies trunks to the SIP plane and then stores
// them. Trunks handed to AddTrunk and UpdateTrunk are already validated.
type Trunks interface {
	AddTrunk(ctx context.Context, t *trunk.Trunk) error
	UpdateTrunk(ctx context.Context, t *trunk.Trunk) error
	RemoveTrunk(ctx context.Context, id string) error
	GetTrunk(ctx context.Context, id string) (*trunk.Trunk, error)
	ListTrunks(ctx context.Context, after string, limit int) ([]*trunk.Trunk, error)
}

// Matcher explains which trunk an inbound call would belong to.
type Matcher interface {
	ExplainMatch(ctx context.Context, sourceIP, listener, requestURI string) (trunk.Match, error)
}

// StatusSource reports a trunk's live figures.
type StatusSource interface {
	TrunkStatus(id string) trunk.Status
}

// Authorizer checks that a token grants a scope; *Authenticator is one.
type Authorizer interface {
	Authorize(token, scope string) error
}

// method is one RPC: the scope its token needs ("" for none), how to
// decode its body, and what it does.
type method struct {
	scope  string
	decode func(r *reader) (any, error)
	call   func(ctx context.Context, h *handler, req any) (any, error)
}

// def builds a method from a typed handler. newReq returns the request
// DTO holding its defaults.
func def[Req, Resp any](scope string, newReq func() *Req, fn func(h *handler, ctx context.Context, req *Req) (Resp, error)) method {
	return method{
		scope: scope,
		decode: func(r *reader) (any, error) {
			req := newReq()
			return req, decodeDTO(r, req)
		},
		call: func(ctx context.Context, h *handler, req any) (any, error) {
			return fn(h, ctx, req.(*Req))
		},
	}
}

var methods = map[string]method{
	"Ping":         def("", func() *PingRequest { return &PingRequest{} }, (*handler).ping),
	"AddTrunk":     def(ScopeManage, newTrunkRequest, (*handler).addTrunk),
	"UpdateTrunk":  def(ScopeManage, newTrunkRequest, (*handler).updateTrunk),
	"RemoveTrunk":  def(ScopeManage, func() *TrunkIDRequest { return &TrunkIDRequest{} }, (*handler).removeTrunk),
	"GetTrunk":     def(ScopeRead, func() *TrunkIDRequest { return &TrunkIDRequest{} }, (*handler).getTrunk),
	"ListTrunks":   def(ScopeRead, func() *ListTrunksRequest { return &ListTrunksRequest{} }, (*handler).listTrunks),
	"ExplainMatch": def(ScopeRead, func() *ExplainMatchRequest { return &ExplainMatchRequest{} }, (*handler).explainMatch),
}

func newTrunkRequest() *TrunkRequest { return &TrunkRequest{Trunk: trunk.Defaults()} }

// handler turns request frames into response frames. It is the transport-
// free core of the server, shared by the QUIC server and benchmarks.
type handler struct {
	trunks Trunks
	status StatusSource
	match  Matcher
	auth   Authorizer
	log    *slog.Logger
}

// outcome records what happened to one request, for logs and metrics.
type outcome struct {
	method  string
	code    string // "" for success
	change  string // "added", "updated", "removed" for a write
	trunkID string // the trunk a write changed
}

// serve decodes frame, runs the method and returns the encoded response.
func (h *handler) serve(ctx context.Context, frame []byte) ([]byte, outcome) {
	name, r, err := decodeEnvelope(frame)
	out := outcome{method: name}
	var resp any
	if err == nil {
		resp, err = h.run(ctx, name, r, &out)
	}
	if err != nil {
		e, internal := wireError(err)
		if internal {
			h.log.Error("request failed", "method", name, "err", err)
		}
		out.code = e.Code
		return encodeResponse("Err", e), out
	}
	return encodeResponse("Ok", resp), out
}

// logRequest logs every request at debug, and successful writes at info.
func (h *handler) logRequest(ctx context.Context, out outcome, d time.Duration) {
	if h.log.Enabled(ctx, slog.LevelDebug) {
		code := out.code
		if code == "" {
			code = "OK"
		}
		h.log.Debug("rpc", "method", printable([]byte(out.method)), "code", code, "duration", d)
	}
	if out.code == "" && out.trunkID != "" {
		h.log.Info("trunk "+out.change, "trunk_id", out.trunkID)
	}
}

func (h *handler) run(ctx context.Context, name string, r *reader, out *outcome) (any, error) {
	m, ok := methods[name]
	if !ok {
		return nil, Errorf(CodeUnknownMethod, "unknown method %q", printable([]byte(name)))
	}
	req, err := m.decode(r)
	if err != nil {
		return nil, err
	}
	if r.remaining() != 0 {
		return nil, malformed("%d bytes after the request envelope", r.remaining())
	}
	if m.scope != "" {
		if err := h.auth.Authorize(req.(interface{ token() string }).token(), m.scope); err != nil {
			return nil, err
		}
	}
	if c, ok := changes[name]; ok {
		out.change, out.trunkID = c, req.(interface{ id() string }).id()
	}
	return m.call(ctx, h, req)
}

// changes names the writes logged at info.
var changes = map[string]string{"AddTrunk": "added", "UpdateTrunk": "updated", "RemoveTrunk": "removed"}

// decodeEnvelope reads the method name and leaves r at the request body.
// The envelope is serde's externally tagged enum: a one-entry map
// {"Method": body}, or a bare "Method" string for a body-less variant.
func decodeEnvelope(frame []byte) (string, *reader, error) {
	r := &reader{b: frame}
	if len(frame) == 0 {
		return "", nil, malformed("empty request")
	}
	if r.kind() == "string" {
		name, err := r.str()
		if err != nil {
			return "", nil, malformed("envelope: %v", err)
		}
		return name, &reader{b: []byte{0xc0}}, nil
	}
	n, err := r.mapLen()
	if err != nil {
		return "", nil, malformed("envelope: %v", err)
	}
	if n != 1 {
		return "", nil, malformed("envelope must be a map with exactly one entry (the method), got %d", n)
	}
	name, err := r.str()
	if err != nil {
		return "", nil, malformed("envelope method name: %v", err)
	}
	return name, r, nil
}

var encoders = sync.Pool{New: func() any {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetCustomStructTag("json")
	enc.UseCompactInts(true)
	return &encoder{buf: &buf, enc: enc}
}}

type encoder struct {
	buf *bytes.Buffer
	enc *msgpack.Encoder
}

// encodeResponse encodes {tag: body} with body's json tags as keys.
func encodeResponse(tag string, body any) []byte {
	e := encoders.Get().(*encoder)
	defer encoders.Put(e)
	e.buf.Reset()
	err := e.enc.EncodeMapLen(1)
	if err == nil {
		err = e.enc.EncodeString(tag)
	}
	if err == nil {
		err = e.enc.Encode(body)
	}
	if err != nil {
		// Only a DTO the code itself builds is encoded here.
		panic("rpc: encode response: " + err.Error())
	}
	return bytes.Clone(e.buf.Bytes())
}

func (h *handler) ping(ctx context.Context, req *PingRequest) (Empty, error) {
	return Empty{}, nil
}

func (h *handler) addTrunk(ctx context.Context, req *TrunkRequest) (Empty, error) {
	t := &req.Trunk
	t.Normalize()
	if err := t.Validate(); err != nil {
		return Empty{}, err
	}
	return Empty{}, h.trunks.AddTrunk(ctx, t)
}

func (h *handler) updateTrunk(ctx context.Context, req *TrunkRequest) (Empty, error) {
	t := &req.Trunk
	t.Normalize()
	if err := t.Validate(); err != nil {
		return Empty{}, err
	}
	return Empty{}, h.trunks.UpdateTrunk(ctx, t)
}

func (h *handler) removeTrunk(ctx context.Context, req *TrunkIDRequest) (Empty, error) {
	if err := trunk.ValidateID(req.TrunkID); err != nil {
		return Empty{}, err
	}
	return Empty{}, h.trunks.RemoveTrunk(ctx, req.TrunkID)
}

func (h *handler) getTrunk(ctx context.Context, req *TrunkIDRequest) (GetTrunkResponse, error) {
	if err := trunk.ValidateID(req.TrunkID); err != nil {
		return GetTrunkResponse{}, err
	}
	t, err := h.trunks.GetTrunk(ctx, req.TrunkID)
	if trunk.ErrorCode(err) == trunk.ENOTFOUND {
		return GetTrunkResponse{}, nil
	}
	if err != nil {
		return GetTrunkResponse{}, err
	}
	return GetTrunkResponse{Found: true, Config: NewTrunkConfig(t, h.statusOf(t.TrunkID))}, nil
}

func (h *handler) listTrunks(ctx context.Context, req *ListTrunksRequest) (ListTrunksResponse, error) {
	limit := int(req.Limit)
	switch {
	case limit == 0:
		limit = DefaultListLimit
	case limit > MaxListLimit:
		return ListTrunksResponse{}, trunk.FieldErrorf("limit", "%d is above the maximum of %d", limit, MaxListLimit)
	}
	list, err := h.trunks.ListTrunks(ctx, req.Cursor, limit+1)
	if err != nil {
		return ListTrunksResponse{}, err
	}
	resp := ListTrunksResponse{Trunks: make([]TrunkConfig, 0, min(len(list), limit))}
	for i, t := range list {
		if i == limit {
			resp.NextCursor = list[i-1].TrunkID
			break
		}
		resp.Trunks = append(resp.Trunks, NewTrunkConfig(t, h.statusOf(t.TrunkID)))
	}
	return resp, nil
}

func (h *handler) statusOf(id string) trunk.Status {
	if h.status == nil {
		return trunk.Status{SIP: trunk.SIPStatus{State: trunk.SIPOff, RegistrationState: trunk.RegOff}}
	}
	return h.status.TrunkStatus(id)
}

func (h *handler) explainMatch(ctx context.Context, req *ExplainMatchRequest) (ExplainMatchResponse, error) {
	if h.match == nil {
		return ExplainMatchResponse{}, trunk.Errorf(trunk.EUNAVAILABLE, "this server has no SIP plane")
	}
	m, err := h.match.ExplainMatch(ctx, req.SourceIP, req.Listener, req.RequestURI)
	if err != nil {
		return ExplainMatchResponse{}, err
	}
	return ExplainMatchResponse{Matched: m.Matched, TrunkID: m.TrunkID, Reason: m.Reason}, nil
}
