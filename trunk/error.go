package trunk

import (
	"errors"
	"fmt"
)

// Code classifies an Error. The codes belong to the application; each
// transport maps them to its own wire codes.
type Code string

// Application error codes.
const (
	EINVALID     Code = "invalid"     // a request argument is wrong; Field names it
	EEXISTS      Code = "exists"      // the trunk already exists
	ENOTFOUND    Code = "not_found"   // no such trunk
	ECONFLICT    Code = "conflict"    // the stored revision is not the one the write expected
	EMANAGED     Code = "managed"     // the trunk is managed by the platform: read-only without trunks:admin
	EUNAVAILABLE Code = "unavailable" // a dependency (disk, SIP stack) cannot serve now
	EINTERNAL    Code = "internal"    // a bug or an unexpected failure

	ECHANNELLIMIT Code = "channel_limit" // the trunk has channel_limit calls in flight
	ECIRCUITOPEN  Code = "circuit_open"  // the trunk's circuit breaker is open
	ENOCALL       Code = "no_call"       // no call in flight has that call_id
	ENOAGENT      Code = "no_agent"      // no such agent
	EPRECONDITION Code = "precondition"  // the operation needs a state the resource is not in
)

// Error is a domain error: a code, the field it concerns (if any), a
// message safe to show to the client and, when there is one, the cause.
// Faces send only Code, Field and Message; the cause (OS or library text)
// is for logs and errors.Is/As, never for a client.
type Error struct {
	Code    Code
	Field   string
	Message string
	Err     error // the underlying error, if any; never sent to a client
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the cause, so errors.Is and errors.As see through e.
func (e *Error) Unwrap() error { return e.Err }

// Wrap returns an *Error with the given code and formatted message that
// keeps err as its cause.
func Wrap(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an EINVALID *Error naming field.
func FieldErrorf(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}
