// Package siptest is the test kit for the SIP plane, as net/http/httptest
// is for net/http: a free port to bind a listener on, and sipp, the
// external SIP peer the tests and benchmarks drive trunkd with.
//
// It is imported by the SIP plane's tests, by cmd/trunkd's end-to-end
// tests and by the bench/sip command, never by the daemon itself. sipp
// must be installed (`make deps`, Debian package sip-tester).
package siptest
