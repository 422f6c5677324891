// Package rpctest runs a real admin RPC server for tests of its clients,
// as net/http/httptest does for HTTP: NewServer starts the QUIC server on
// a random loopback port, with a self-signed certificate and an HMAC JWT
// secret written to files, in front of a real control.Service (so requests
// are validated as in production) over an in-memory store and the SIP
// plane the test chooses, usually a controltest.Plane.
//
// The fakes themselves (MemStore, Plane, FakeCalls, FakeStatus) are in
// package controltest, where package rpc's own tests can use them too.
package rpctest
