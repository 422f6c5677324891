package api

import (
	"errors"
	"fmt"

	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/trunk"
)

// Wire error codes: stable strings, part of the protocol (docs/protocol.md).
const (
	CodeMalformed        = "ERR_MALFORMED"
	CodeUnknownMethod    = "ERR_UNKNOWN_METHOD"
	CodeTooLarge         = "ERR_TOO_LARGE"
	CodeUnauthenticated  = "ERR_UNAUTHENTICATED"
	CodePermissionDenied = "ERR_PERMISSION_DENIED"
	CodeInvalidArgument  = "ERR_INVALID_ARGUMENT"
	CodeTrunkExists      = "ERR_TRUNK_EXISTS"
	CodeInvalidTrunk     = "ERR_INVALID_TRUNK"
	CodeConflict         = "ERR_CONFLICT"
	CodeManagedTrunk     = "ERR_MANAGED_TRUNK"
	CodeNotImplemented   = "ERR_NOT_IMPLEMENTED" // a route of a capability not built yet (REST)
	CodeUnavailable      = "ERR_UNAVAILABLE"
	CodeChannelLimit     = "ERR_CHANNEL_LIMIT"
	CodeCircuitOpen      = "ERR_CIRCUIT_OPEN"
	CodeUnknownCall      = "ERR_UNKNOWN_CALL"
	CodeUnknownAgent     = "ERR_UNKNOWN_AGENT"
	CodePrecondition     = "ERR_FAILED_PRECONDITION"
	CodeInternal         = "ERR_INTERNAL"
)

// Error is what a client sees of a failed request: the body of an
// {"Err": ...} response envelope, the JSON body of a REST error, and the
// error rpc.Client returns for one.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the wire code of err when it is (or wraps) an *Error,
// and "" otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// WireError maps any error an operation returns to what goes on the
// wire: a domain error's Code, Field and Message, never its cause.
// Internal details never leave: unknown errors become ERR_INTERNAL with a
// fixed message, and the caller logs the original (Handler.Failed does).
func WireError(err error) (e *Error, internal bool) {
	if errors.As(err, &e) {
		return e, false
	}
	var ae *auth.Error
	if errors.As(err, &ae) {
		if errors.Is(ae.Kind, auth.ErrPermissionDenied) {
			return &Error{Code: CodePermissionDenied, Message: ae.Message}, false
		}
		return &Error{Code: CodeUnauthenticated, Message: ae.Message}, false
	}
	var te *trunk.Error
	if !errors.As(err, &te) {
		return &Error{Code: CodeInternal, Message: "internal error"}, true
	}
	switch te.Code {
	case trunk.EINVALID:
		msg := te.Message
		if te.Field != "" {
			msg = te.Field + ": " + msg
		}
		return &Error{Code: CodeInvalidArgument, Message: msg, Field: te.Field}, false
	case trunk.EEXISTS:
		return &Error{Code: CodeTrunkExists, Message: te.Message}, false
	case trunk.ENOTFOUND:
		return &Error{Code: CodeInvalidTrunk, Message: te.Message}, false
	case trunk.ECONFLICT:
		return &Error{Code: CodeConflict, Message: te.Message}, false
	case trunk.EMANAGED:
		return &Error{Code: CodeManagedTrunk, Message: te.Message}, false
	case trunk.EUNAVAILABLE:
		return &Error{Code: CodeUnavailable, Message: te.Message}, false
	case trunk.ECHANNELLIMIT:
		return &Error{Code: CodeChannelLimit, Message: te.Message}, false
	case trunk.ECIRCUITOPEN:
		return &Error{Code: CodeCircuitOpen, Message: te.Message}, false
	case trunk.ENOCALL:
		return &Error{Code: CodeUnknownCall, Message: te.Message}, false
	case trunk.ENOAGENT:
		return &Error{Code: CodeUnknownAgent, Message: te.Message}, false
	case trunk.EPRECONDITION:
		return &Error{Code: CodePrecondition, Message: te.Message}, false
	}
	return &Error{Code: CodeInternal, Message: "internal error"}, true
}

// cause returns the cause a domain error keeps, or nil.
func cause(err error) error {
	var te *trunk.Error
	if errors.As(err, &te) {
		return te.Err
	}
	return nil
}
