package rpc

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trunkd/trunkd/rpc/auth"
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

// Calls places, ends and lists calls on the SIP plane.
//
// Dial returns once the INVITE has a final outcome. A call the carrier
// refuses or does not answer is a DialResult with Answered false, not an
// error; errors are for calls never placed (trunk.ENOTFOUND,
// ECHANNELLIMIT, ECIRCUITOPEN, EINVALID naming the field, EUNAVAILABLE).
// ctx bounds the call's setup only: the server gives it a deadline of
// r.Timeout plus DialDeadlineMargin, and cancels it when the client's
// connection goes away; an answered call outlives it.
//
// Hangup ends a call in flight in either direction, or returns
// trunk.ENOCALL. ListCalls lists the calls in flight of one trunk, or of
// all when trunkID is "".
type Calls interface {
	Dial(ctx context.Context, r trunk.DialRequest) (trunk.DialResult, error)
	Hangup(ctx context.Context, callID string) error
	ListCalls(trunkID string) []trunk.Call
}

// StatusSource reports a trunk's live figures.
type StatusSource interface {
	TrunkStatus(id string) trunk.Status
}

// Authorizer checks that a token grants a scope; *auth.Authenticator is
// one.
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

// Scopes a token's "scope" claim may grant (see package auth).
const (
	ScopeRead   = auth.ScopeRead   // GetTrunk, ListTrunks, ExplainMatch, ListCalls
	ScopeManage = auth.ScopeManage // everything
	ScopeCalls  = auth.ScopeCalls  // Dial, Hangup
)

var methods = map[string]method{
	"Ping":         def("", func() *PingRequest { return &PingRequest{} }, (*handler).ping),
	"AddTrunk":     def(ScopeManage, newTrunkRequest, (*handler).addTrunk),
	"UpdateTrunk":  def(ScopeManage, newTrunkRequest, (*handler).updateTrunk),
	"RemoveTrunk":  def(ScopeManage, func() *TrunkIDRequest { return &TrunkIDRequest{} }, (*handler).removeTrunk),
	"GetTrunk":     def(ScopeRead, func() *TrunkIDRequest { return &TrunkIDRequest{} }, (*handler).getTrunk),
	"ListTrunks":   def(ScopeRead, func() *ListTrunksRequest { return &ListTrunksRequest{} }, (*handler).listTrunks),
	"ExplainMatch": def(ScopeRead, func() *ExplainMatchRequest { return &ExplainMatchRequest{} }, (*handler).explainMatch),
	"Dial":         def(ScopeCalls, func() *DialRequest { return &DialRequest{} }, (*handler).dial),
	"Hangup":       def(ScopeCalls, func() *CallIDRequest { return &CallIDRequest{} }, (*handler).hangup),
	"ListCalls":    def(ScopeRead, func() *ListCallsRequest { return &ListCallsRequest{} }, (*handler).listCalls),
}

func newTrunkRequest() *TrunkRequest { return &TrunkRequest{Trunk: trunk.Defaults()} }

// handler turns request frames into response frames. It is the transport-
// free core of the server, shared by the QUIC server and benchmarks.
type handler struct {
	trunks Trunks
	status StatusSource
	match  Matcher
	calls  Calls
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
		switch {
		case internal:
			h.log.Error("request failed", logArgs(name, err)...)
		case e.Code == CodeUnavailable:
			// the client sees only ERR_UNAVAILABLE; the operator needs the
			// cause (disk full, I/O error, SIP plane closing)
			h.log.Warn("request refused: unavailable", logArgs(name, err)...)
		}
		out.code = e.Code
		return encodeResponse("Err", e), out
	}
	return encodeResponse("Ok", resp), out
}

// logArgs are the attributes of a failed request's log line: the error
// and, when a domain error keeps one, its cause (the OS or library error
// a client never sees).
func logArgs(method string, err error) []any {
	args := []any{"method", method, "err", err}
	var te *trunk.Error
	if errors.As(err, &te) && te.Err != nil {
		args = append(args, "cause", te.Err)
	}
	return args
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
		return ExplainMatchResponse{}, errNoSIPPlane
	}
	m, err := h.match.ExplainMatch(ctx, req.SourceIP, req.Listener, req.RequestURI)
	if err != nil {
		return ExplainMatchResponse{}, err
	}
	return ExplainMatchResponse{Matched: m.Matched, TrunkID: m.TrunkID, Reason: m.Reason}, nil
}

// errNoSIPPlane answers the methods of the SIP plane on a server without one.
var errNoSIPPlane = trunk.Errorf(trunk.EUNAVAILABLE, "this server has no SIP plane")

func (h *handler) dial(ctx context.Context, req *DialRequest) (DialResponse, error) {
	timeout, err := req.validate()
	if err != nil {
		return DialResponse{}, err
	}
	if h.calls == nil {
		return DialResponse{}, errNoSIPPlane
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+DialDeadlineMargin)
	defer cancel()
	res, err := h.calls.Dial(ctx, trunk.DialRequest{
		TrunkID:     req.TrunkID,
		To:          req.To,
		From:        req.From,
		Timeout:     timeout,
		AudioURL:    req.AudioURL,
		MaxDuration: time.Duration(req.MaxDurationSec) * time.Second,
	})
	if err != nil {
		return DialResponse{}, err
	}
	return DialResponse{
		CallID:   res.CallID,
		Answered: res.Answered,
		SIPCode:  uint16(min(max(res.SIPCode, 0), math.MaxUint16)),
		Reason:   res.Reason,
		SetupMs:  uint32(min(max(res.Setup.Milliseconds(), 0), math.MaxUint32)),
	}, nil
}

// validate checks a Dial's fields in wire order and returns its ring time.
func (r *DialRequest) validate() (time.Duration, error) {
	if err := trunk.ValidateID(r.TrunkID); err != nil {
		return 0, err
	}
	if r.To == "" {
		return 0, trunk.FieldErrorf("to", "is required")
	}
	for _, f := range []struct{ name, value string }{{"to", r.To}, {"from", r.From}} {
		if len(f.value) > maxDialText {
			return 0, trunk.FieldErrorf(f.name, "is %d bytes long; at most %d are allowed", len(f.value), maxDialText)
		}
		if err := trunk.CheckText(f.name, f.value); err != nil {
			return 0, err
		}
	}
	sec := r.TimeoutSec
	switch {
	case sec == 0:
		sec = DefaultDialTimeoutSec
	case sec > MaxDialTimeoutSec:
		return 0, trunk.FieldErrorf("timeout_sec", "%d is above the maximum of %d", sec, MaxDialTimeoutSec)
	}
	if err := trunk.CheckText("audio_url", r.AudioURL); err != nil {
		return 0, err
	}
	return time.Duration(sec) * time.Second, nil
}

func (h *handler) hangup(ctx context.Context, req *CallIDRequest) (Empty, error) {
	if req.CallID == "" {
		return Empty{}, trunk.FieldErrorf("call_id", "is required")
	}
	if err := trunk.CheckText("call_id", req.CallID); err != nil {
		return Empty{}, err
	}
	if h.calls == nil {
		return Empty{}, errNoSIPPlane
	}
	return Empty{}, h.calls.Hangup(ctx, req.CallID)
}

func (h *handler) listCalls(ctx context.Context, req *ListCallsRequest) (ListCallsResponse, error) {
	if req.TrunkID != "" {
		if err := trunk.ValidateID(req.TrunkID); err != nil {
			return ListCallsResponse{}, err
		}
	}
	if h.calls == nil {
		return ListCallsResponse{}, errNoSIPPlane
	}
	list := h.calls.ListCalls(req.TrunkID)
	resp := ListCallsResponse{Calls: make([]CallInfo, 0, len(list))}
	for _, c := range list {
		resp.Calls = append(resp.Calls, NewCallInfo(c))
	}
	slices.SortFunc(resp.Calls, func(a, b CallInfo) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return strings.Compare(a.CallID, b.CallID)
	})
	return resp, nil
}
