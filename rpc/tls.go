package rpc

import (
	"crypto/tls"

	"github.com/trunkd/trunkd/trunk/certs"
)

// SelfSignedCert is certs.SelfSigned, kept for the callers of this
// package.
func SelfSignedCert(hosts []string) (certPEM, keyPEM []byte, err error) {
	return certs.SelfSigned(hosts)
}

// LoadOrCreateCert is certs.LoadOrCreate.
func LoadOrCreateCert(certPath, keyPath string, hosts []string) (cert tls.Certificate, created bool, err error) {
	return certs.LoadOrCreate(certPath, keyPath, hosts)
}

// PinnedTLSConfig is certs.Pinned: a client config that trusts the
// certificates of caFile, pinned or as roots for serverName.
func PinnedTLSConfig(caFile, serverName string) (*tls.Config, error) {
	return certs.Pinned(caFile, serverName)
}
