package api

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
)

// Authorizer checks that a token grants a scope and says who it speaks
// for; *auth.Authenticator is one. A refusal is an *auth.Error.
type Authorizer interface {
	Authenticate(token, scope string) (auth.Principal, error)
}

// Handler runs the protocol's operations on the trunk service. It is the
// codec-free core every face shares: a face decodes a request into the DTO
// Method.NewRequest returns, calls Call, and encodes the response or, for
// an error, Failed's *Error.
type Handler struct {
	svc  *control.Service
	auth Authorizer
	log  *slog.Logger
}

// NewHandler returns a Handler serving svc, checking tokens with auth and
// logging failures to log (nil for none).
func NewHandler(svc *control.Service, auth Authorizer, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{svc: svc, auth: auth, log: log}
}

// Method is one operation of the protocol.
type Method struct {
	Name   string
	Scope  string // the scope its token needs; "" for none
	Change string // "added", "updated" or "removed" for a trunk write, else ""
	newReq func() any
	call   func(h *Handler, ctx context.Context, req any) (any, error)
}

// NewRequest returns a pointer to a new request DTO of the method, holding
// its defaults: absent fields keep them.
func (m Method) NewRequest() any { return m.newReq() }

// Target returns the trunk id a trunk write names, or "".
func (m Method) Target(req any) string {
	if r, ok := req.(interface{ id() string }); ok && m.Change != "" {
		return r.id()
	}
	return ""
}

// def builds a method from a typed operation. newReq returns the request
// DTO holding its defaults.
func def[Req, Resp any](name, scope, change string, newReq func() *Req, fn func(h *Handler, ctx context.Context, req *Req) (Resp, error)) Method {
	return Method{
		Name:   name,
		Scope:  scope,
		Change: change,
		newReq: func() any { return newReq() },
		call: func(h *Handler, ctx context.Context, req any) (any, error) {
			return fn(h, ctx, req.(*Req))
		},
	}
}

// methods is the protocol: every method, the scope it needs and what it
// does. docs/protocol.md describes each.
var methods = map[string]Method{}

func init() {
	for _, m := range []Method{
		def("Ping", "", "", func() *PingRequest { return &PingRequest{} }, (*Handler).ping),
		def("AddTrunk", auth.ScopeManage, "added", NewTrunkRequest, (*Handler).addTrunk),
		def("UpdateTrunk", auth.ScopeManage, "updated", NewTrunkRequest, (*Handler).updateTrunk),
		def("RemoveTrunk", auth.ScopeManage, "removed", func() *TrunkIDRequest { return &TrunkIDRequest{} }, (*Handler).removeTrunk),
		def("GetTrunk", auth.ScopeRead, "", func() *TrunkIDRequest { return &TrunkIDRequest{} }, (*Handler).getTrunk),
		def("ListTrunks", auth.ScopeRead, "", func() *ListTrunksRequest { return &ListTrunksRequest{} }, (*Handler).listTrunks),
		def("ExplainMatch", auth.ScopeRead, "", func() *ExplainMatchRequest { return &ExplainMatchRequest{} }, (*Handler).explainMatch),
		def("Dial", auth.ScopeCalls, "", func() *DialRequest { return &DialRequest{} }, (*Handler).dial),
		def("Hangup", auth.ScopeCalls, "", func() *CallIDRequest { return &CallIDRequest{} }, (*Handler).hangup),
		def("ListCalls", auth.ScopeRead, "", func() *ListCallsRequest { return &ListCallsRequest{} }, (*Handler).listCalls),
		def("PutAgent", auth.ScopeAgentsManage, "", func() *AgentRequest { return &AgentRequest{} }, (*Handler).putAgent),
		def("GetAgent", auth.ScopeAgentsRead, "", func() *AgentIDRequest { return &AgentIDRequest{} }, (*Handler).getAgent),
		def("ListAgents", auth.ScopeAgentsRead, "", func() *ListAgentsRequest { return &ListAgentsRequest{} }, (*Handler).listAgents),
		def("RemoveAgent", auth.ScopeAgentsManage, "", func() *AgentIDRequest { return &AgentIDRequest{} }, (*Handler).removeAgent),
		def("DeployAgentAsSip", auth.ScopeAgentsManage, "", func() *AgentIDRequest { return &AgentIDRequest{} }, (*Handler).deployAgent),
		def("UndeployAgentAsSip", auth.ScopeAgentsManage, "", func() *AgentIDRequest { return &AgentIDRequest{} }, (*Handler).undeployAgent),
		def("Backup", auth.ScopeAdmin, "", func() *BackupRequest { return &BackupRequest{} }, (*Handler).backup),
		def("Reload", auth.ScopeAdmin, "", func() *ReloadRequest { return &ReloadRequest{} }, (*Handler).reload),
	} {
		methods[m.Name] = m
	}
}

// Lookup returns the method called name.
func Lookup(name string) (Method, bool) {
	m, ok := methods[name]
	return m, ok
}

// NewTrunkRequest returns the body of AddTrunk and UpdateTrunk holding the
// trunk defaults.
func NewTrunkRequest() *TrunkRequest { return &TrunkRequest{Trunk: trunk.Defaults()} }

// Call checks that req's token grants m's scope and may act for the
// organization req names, then runs m. req is what m.NewRequest returned,
// decoded.
func (h *Handler) Call(ctx context.Context, m Method, req any) (any, error) {
	if m.Scope != "" {
		p, err := h.auth.Authenticate(req.(interface{ token() string }).token(), m.Scope)
		if err != nil {
			return nil, err
		}
		org, err := p.ActFor(req.(interface{ org() string }).org())
		if err != nil {
			return nil, err
		}
		ctx = context.WithValue(ctx, accessKey{}, control.Access{Org: org, Operator: p.Admin})
	}
	return m.call(h, ctx, req)
}

type accessKey struct{}

// access is who the request in ctx acts for.
func access(ctx context.Context) control.Access {
	a, _ := ctx.Value(accessKey{}).(control.Access)
	return a
}

// Failed maps err to what a client may see and logs what it may not:
// an internal error at error level, an unavailable one at warn with its
// cause (disk full, I/O error, SIP plane closing). Only Code, Field and
// Message of a domain error leave; its cause never does.
func (h *Handler) Failed(method string, err error) *Error {
	e, internal := WireError(err)
	switch {
	case internal:
		h.log.Error("request failed", logArgs(method, err)...)
	case e.Code == CodeUnavailable:
		h.log.Warn("request refused: unavailable", logArgs(method, err)...)
	}
	return e
}

// logArgs are the attributes of a failed request's log line: the error
// and, when a domain error keeps one, its cause.
func logArgs(method string, err error) []any {
	args := []any{"method", method, "err", err}
	if c := cause(err); c != nil {
		args = append(args, "cause", c)
	}
	return args
}

func (h *Handler) ping(ctx context.Context, req *PingRequest) (Empty, error) {
	return Empty{}, nil
}

func (h *Handler) addTrunk(ctx context.Context, req *TrunkRequest) (Empty, error) {
	return Empty{}, h.svc.AddTrunk(ctx, &req.Trunk, req.options(ctx))
}

func (h *Handler) updateTrunk(ctx context.Context, req *TrunkRequest) (Empty, error) {
	return Empty{}, h.svc.UpdateTrunk(ctx, &req.Trunk, req.options(ctx))
}

func (r *TrunkRequest) options(ctx context.Context) control.WriteOptions {
	return control.WriteOptions{Access: access(ctx), IfRevision: r.IfRevision, KeepSecrets: r.KeepSecrets}
}

func (h *Handler) removeTrunk(ctx context.Context, req *TrunkIDRequest) (Empty, error) {
	return Empty{}, h.svc.RemoveTrunk(ctx, req.TrunkID, control.WriteOptions{Access: access(ctx), IfRevision: req.IfRevision})
}

func (h *Handler) getTrunk(ctx context.Context, req *TrunkIDRequest) (GetTrunkResponse, error) {
	t, err := h.svc.GetTrunk(ctx, req.TrunkID, access(ctx))
	if trunk.ErrorCode(err) == trunk.ENOTFOUND {
		return GetTrunkResponse{}, nil
	}
	if err != nil {
		return GetTrunkResponse{}, err
	}
	return GetTrunkResponse{
		Found:     true,
		Config:    NewTrunkConfig(t, h.svc.TrunkStatus(t.TrunkID)),
		Record:    NewTrunkRecord(t),
		Revision:  t.Meta.Revision,
		CreatedAt: Timestamp(t.Meta.CreatedAt),
		UpdatedAt: Timestamp(t.Meta.UpdatedAt),

		Name:           t.Name,
		OrganizationID: t.Org(),
	}, nil
}

func (h *Handler) listTrunks(ctx context.Context, req *ListTrunksRequest) (ListTrunksResponse, error) {
	p, err := h.pageTrunks(ctx, req)
	if err != nil {
		return ListTrunksResponse{}, err
	}
	if lazy, _ := ctx.Value(lazyKey{}).(bool); lazy {
		return ListTrunksResponse{NextCursor: p.NextCursor, Page: p}, nil
	}
	return p.Response(), nil
}

// pageTrunks finds the trunks of the page req asks for.
func (h *Handler) pageTrunks(ctx context.Context, req *ListTrunksRequest) (*TrunkPage, error) {
	limit := int(req.Limit)
	switch {
	case limit == 0:
		limit = DefaultListLimit
	case limit > MaxListLimit:
		return nil, trunk.FieldErrorf("limit", "%d is above the maximum of %d", limit, MaxListLimit)
	}
	f, err := req.filter()
	if err != nil {
		return nil, err
	}
	p := &TrunkPage{Trunks: make([]*trunk.Trunk, 0, min(limit, DefaultListLimit)), Records: req.Records, Statuses: h.svc.TrunkStatuses}
	err = h.svc.ViewTrunks(ctx, req.Cursor, limit+1, f, access(ctx), func(t *trunk.Trunk) {
		if len(p.Trunks) == limit { // the one after the page: there is a next page
			p.NextCursor = p.Trunks[limit-1].TrunkID
			return
		}
		p.Trunks = append(p.Trunks, t) // kept: a stored record is never changed in place
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

type lazyKey struct{}

// WithLazyPages marks ctx so that ListTrunks answers with the page's
// records (ListTrunksResponse.Page) and leaves Trunks and Records for the
// caller to build while it writes them: the QUIC face sends a page while
// building it.
func WithLazyPages(ctx context.Context) context.Context {
	return context.WithValue(ctx, lazyKey{}, true)
}

func (h *Handler) explainMatch(ctx context.Context, req *ExplainMatchRequest) (ExplainMatchResponse, error) {
	m, err := h.svc.ExplainMatch(ctx, req.SourceIP, req.Listener, req.RequestURI, access(ctx))
	if err != nil {
		return ExplainMatchResponse{}, err
	}
	return ExplainMatchResponse{Matched: m.Matched, TrunkID: m.TrunkID, Reason: m.Reason}, nil
}

// dial places the call with a deadline of timeout_sec plus
// DialDeadlineMargin; ctx also ends when the client goes away.
func (h *Handler) dial(ctx context.Context, req *DialRequest) (DialResponse, error) {
	timeout, err := req.validate()
	if err != nil {
		return DialResponse{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+DialDeadlineMargin)
	defer cancel()
	res, err := h.svc.Dial(ctx, trunk.DialRequest{
		TrunkID:     req.TrunkID,
		To:          req.To,
		From:        req.From,
		Timeout:     timeout,
		AudioURL:    req.AudioURL,
		AIURL:       req.AIURL,
		AgentID:     req.AgentID,
		MaxDuration: time.Duration(req.MaxDurationSec) * time.Second,
	}, access(ctx))
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
	for _, f := range []struct{ name, value string }{{"audio_url", r.AudioURL}, {"ai_url", r.AIURL}, {"agent_id", r.AgentID}} {
		if err := trunk.CheckText(f.name, f.value); err != nil {
			return 0, err
		}
	}
	if r.AIURL != "" && r.AudioURL != "" {
		return 0, trunk.FieldErrorf("ai_url", "audio_url and ai_url are exclusive: a call plays a file or talks to an agent")
	}
	return time.Duration(sec) * time.Second, nil
}

func (h *Handler) hangup(ctx context.Context, req *CallIDRequest) (Empty, error) {
	if req.CallID == "" {
		return Empty{}, trunk.FieldErrorf("call_id", "is required")
	}
	if err := trunk.CheckText("call_id", req.CallID); err != nil {
		return Empty{}, err
	}
	return Empty{}, h.svc.Hangup(ctx, req.CallID, access(ctx))
}

func (h *Handler) listCalls(ctx context.Context, req *ListCallsRequest) (ListCallsResponse, error) {
	if req.TrunkID != "" {
		if err := trunk.ValidateID(req.TrunkID); err != nil {
			return ListCallsResponse{}, err
		}
	}
	list, err := h.svc.ListCalls(ctx, req.TrunkID, access(ctx))
	if err != nil {
		return ListCallsResponse{}, err
	}
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

// filter checks the list filters and returns them as a trunk.Filter.
func (r *ListTrunksRequest) filter() (trunk.Filter, error) {
	f := trunk.Filter{Name: r.Name, NamePrefix: r.NamePrefix}
	for _, b := range []struct {
		field, value string
		dst          *time.Time
	}{
		{"created_after", r.CreatedAfter, &f.CreatedAfter},
		{"created_before", r.CreatedBefore, &f.CreatedBefore},
		{"updated_after", r.UpdatedAfter, &f.UpdatedAfter},
		{"updated_before", r.UpdatedBefore, &f.UpdatedBefore},
	} {
		if b.value == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, b.value)
		if err != nil {
			return f, trunk.FieldErrorf(b.field, "%q is not an RFC 3339 time (2026-03-01T10:00:00Z)", b.value)
		}
		*b.dst = t
	}
	for _, s := range []struct{ field, value string }{{"name", r.Name}, {"name_prefix", r.NamePrefix}} {
		if err := trunk.CheckText(s.field, s.value); err != nil {
			return f, err
		}
	}
	return f, nil
}
