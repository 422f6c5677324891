package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/trunkd/trunkd/trunk/secretfile"
)

// SelfSigned returns a new ECDSA P-256 certificate for hosts (DNS names
// or IP addresses), valid for ten years, PEM-encoded with its key. It may
// serve as a server and as a client certificate.
func SelfSigned(hosts []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "trunkd"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// LoadOrCreate loads the key pair at certPath and keyPath. When neither
// file exists it generates a self-signed pair for hosts and writes them
// (the key with mode 0600). created reports that it did.
func LoadOrCreate(certPath, keyPath string, hosts []string) (cert tls.Certificate, created bool, err error) {
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	if errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist) {
		certPEM, keyPEM, err := SelfSigned(hosts)
		if err != nil {
			return cert, false, fmt.Errorf("generate certificate: %w", err)
		}
		if err := secretfile.Create(keyPath, keyPEM, 0o600); err != nil {
			return cert, false, err
		}
		if err := secretfile.Create(certPath, certPEM, 0o644); err != nil {
			return cert, false, err
		}
		created = true
	}
	cert, err = tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return cert, false, fmt.Errorf("load certificate %s / %s: %w", certPath, keyPath, err)
	}
	return cert, created, nil
}

// readPEMCerts parses every CERTIFICATE block of a PEM file.
func readPEMCerts(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return out, nil
}

// Pinned returns a client TLS config that trusts the certificates in the
// PEM file caFile: the server is accepted when its leaf certificate is one
// of them (pinning a self-signed certificate, whatever address is dialled)
// or chains to one of them for serverName.
func Pinned(caFile, serverName string) (*tls.Config, error) {
	list, err := readPEMCerts(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	var pinned [][]byte
	for _, c := range list {
		pool.AddCert(c)
		pinned = append(pinned, c.Raw)
	}
	return &tls.Config{
		InsecureSkipVerify: true, // replaced by verifyPinned below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyPinned(raw, pinned, pool, serverName)
		},
	}, nil
}

func verifyPinned(raw, pinned [][]byte, roots *x509.CertPool, serverName string) error {
	if len(raw) == 0 {
		return errors.New("server sent no certificate")
	}
	for _, p := range pinned {
		if bytes.Equal(raw[0], p) {
			return nil
		}
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, r := range raw[1:] {
		if c, err := x509.ParseCertificate(r); err == nil {
			inter.AddCert(c)
		}
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: serverName})
	return err
}

// Roots returns the system roots plus the certificates of the PEM files
// given (an operator's private CA), for verifying peers by name.
func Roots(caFiles ...string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, f := range caFiles {
		if f == "" {
			continue
		}
		list, err := readPEMCerts(f)
		if err != nil {
			return nil, err
		}
		for _, c := range list {
			pool.AddCert(c)
		}
	}
	return pool, nil
}
