// Package certs is trunkd's certificate handling for both planes: the admin
// RPC (QUIC) and SIP over TLS. It generates a self-signed pair on first
// start, loads an operator's pair, reloads it without a restart
// (Reloader, for SIGHUP or a changed file), and builds client
// configurations that pin a certificate or trust extra roots.
//
// It imports only the standard library (and trunk/secretfile, itself std
// only), so the faces and the SIP plane can share it without importing
// each other.
package certs
