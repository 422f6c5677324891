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
	EUNAVAILABLE Code = "unavailable" // a dependency (disk, SIP stack) cannot serve now
	EINTERNAL    Code = "internal"    // a bug or an unexpected failure

	ECHANNELLIMIT Code = "channel_limit" // the trunk has channel_limit calls in flight
	ECIRCUITOPEN  Code = "circuit_open"  // the trunk's circuit breaker is open
	ENOCALL       Code = "no_call"       // no call in flight has that call_id
)

// Error is a domain error: a code, the field it concerns (if any) and a
// message safe to show to the client.
type Error struct {
	Code    Code
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
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
