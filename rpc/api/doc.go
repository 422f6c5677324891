// Package api is the admin protocol without a codec: the typed operations
// (AddTrunk, GetTrunk, Dial, ...), the scope each needs, the request and
// response DTOs whose json tags are the wire names, and the wire error
// codes with the one mapping from domain errors to them (WireError).
// docs/protocol.md is the contract it implements.
//
// Faces are thin codecs over it: package rpc decodes MessagePack envelopes
// into the DTO a Method's NewRequest returns and encodes the answer;
// package rest does the same with JSON over HTTP and maps the codes to
// HTTP statuses. Neither re-checks a token, validates a trunk or maps an
// error on its own.
//
// api calls *control.Service directly rather than through an interface of
// its own: the service is the one façade every face calls, it sits inward
// (faces -> control -> trunk), and its own dependencies (Store, Plane) are
// the seams tests replace, with controltest's fakes. An interface here
// would have one implementation and would let a test (or a future face)
// put a store behind the protocol that skips validation, which is the bug
// "Trunks handed to AddTrunk are already validated" used to invite.
//
// # Adding a method
//
// A new RPC method goes here, in four steps: its request and response
// DTOs in dto.go (json tags are the wire names; the request gets a token()
// method when it needs a scope); a typed operation func (h *Handler)
// name(ctx, *Req) (Resp, error) in api.go that validates what is
// wire-specific and calls the Service; one def(...) line in the methods
// table with its scope; and its section in docs/protocol.md with a golden
// envelope in rpc/golden_test.go. rpc serves it with no change; rest needs
// a route.
package api
