package rpc

import (
	"github.com/trunkd/trunkd/rpc/api"
	"github.com/trunkd/trunkd/rpc/auth"
)

// The protocol's vocabulary lives in package api, shared by every face.
// rpc re-exports the names a Client's user needs, so that one import is
// enough to call trunkd; each is the api (or auth) name itself.

// Request and response bodies (docs/protocol.md).
type (
	Empty                = api.Empty
	PingRequest          = api.PingRequest
	TrunkRequest         = api.TrunkRequest
	TrunkIDRequest       = api.TrunkIDRequest
	ListTrunksRequest    = api.ListTrunksRequest
	TrunkConfig          = api.TrunkConfig
	GetTrunkResponse     = api.GetTrunkResponse
	TrunkRecord          = api.TrunkRecord
	ListTrunksResponse   = api.ListTrunksResponse
	ExplainMatchRequest  = api.ExplainMatchRequest
	ExplainMatchResponse = api.ExplainMatchResponse
	DialRequest          = api.DialRequest
	DialResponse         = api.DialResponse
	CallIDRequest        = api.CallIDRequest
	ListCallsRequest     = api.ListCallsRequest
	CallInfo             = api.CallInfo
	ListCallsResponse    = api.ListCallsResponse
)

// Error is the body of an {"Err": ...} response, and the error the Client
// returns for one.
type Error = api.Error

// Authorizer checks that a token grants a scope; *auth.Authenticator is
// one.
type Authorizer = api.Authorizer

// Wire error codes (docs/protocol.md).
const (
	CodeMalformed        = api.CodeMalformed
	CodeUnknownMethod    = api.CodeUnknownMethod
	CodeTooLarge         = api.CodeTooLarge
	CodeUnauthenticated  = api.CodeUnauthenticated
	CodePermissionDenied = api.CodePermissionDenied
	CodeInvalidArgument  = api.CodeInvalidArgument
	CodeTrunkExists      = api.CodeTrunkExists
	CodeInvalidTrunk     = api.CodeInvalidTrunk
	CodeConflict         = api.CodeConflict
	CodeManagedTrunk     = api.CodeManagedTrunk
	CodeUnavailable      = api.CodeUnavailable
	CodeChannelLimit     = api.CodeChannelLimit
	CodeCircuitOpen      = api.CodeCircuitOpen
	CodeUnknownCall      = api.CodeUnknownCall
	CodeInternal         = api.CodeInternal
)

// Scopes a token's "scope" claim may grant.
const (
	ScopeRead   = auth.ScopeRead   // GetTrunk, ListTrunks, ExplainMatch, ListCalls
	ScopeManage = auth.ScopeManage // everything
	ScopeCalls  = auth.ScopeCalls  // Dial, Hangup
)

// Limits of ListTrunks and Dial.
const (
	DefaultListLimit      = api.DefaultListLimit
	MaxListLimit          = api.MaxListLimit
	DefaultDialTimeoutSec = api.DefaultDialTimeoutSec
	MaxDialTimeoutSec     = api.MaxDialTimeoutSec
	DialDeadlineMargin    = api.DialDeadlineMargin
)

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error { return api.Errorf(code, format, args...) }

// ErrorCode returns the wire code of err when it is (or wraps) an *Error,
// and "" otherwise.
func ErrorCode(err error) string { return api.ErrorCode(err) }
