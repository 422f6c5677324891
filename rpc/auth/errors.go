package auth

import "errors"

// The kinds of refusal; an *Error from Authorize wraps one of them, so
// test with errors.Is.
var (
	ErrUnauthenticated  = errors.New("unauthenticated")   // no token, or one that does not verify
	ErrPermissionDenied = errors.New("permission denied") // a valid token without the scope
)

// Error is a refused token. Message says why in words safe for the client
// (nothing about the keys); Kind is ErrUnauthenticated or
// ErrPermissionDenied. Each face maps the kind to its own code.
type Error struct {
	Kind    error
	Message string
}

func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Message }

// Unwrap returns the kind.
func (e *Error) Unwrap() error { return e.Kind }
