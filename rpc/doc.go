// Package rpc is trunkd's admin RPC over QUIC: the server, the Go client
// and the MessagePack envelope codec, as docs/protocol.md specifies.
//
// One request per client-initiated bidirectional stream: the client
// writes {"Method": body} and closes its side; the server answers
// {"Ok": response} or {"Err": {code, message, field}} and closes. TLS 1.3
// with ALPN "trunkd/1"; a bearer JWT travels in each request body's
// admin_token.
//
// Client calls trunkd:
//
//	tc, _ := rpc.PinnedTLSConfig("tls.crt", "127.0.0.1")
//	c, err := rpc.Dial(ctx, "127.0.0.1:7443", tc, token)
//	...
//	err = c.AddTrunk(ctx, &t) // *rpc.Error with a wire code on refusal
//
// Server serves a control.Service to clients: it bounds each request's
// size and arrival time, resets one stream on a panic, validates client
// addresses with QUIC Retry under handshake load (admission.go), and shuts
// down in two phases (Shutdown, then Close).
//
// What the methods do, their scopes, DTOs and wire codes belong to package
// api, shared with the other faces; rpc re-exports the names a client
// needs (names.go). The token checks are package auth.
//
// Where it can hurt: the decoder is strict (unknown, repeated or
// mistyped fields are ERR_INVALID_ARGUMENT naming the field) and bounded
// by the frame's size before it allocates; a Dial holds its stream until
// the call's outcome, up to timeout_sec + DialDeadlineMargin.
package rpc
