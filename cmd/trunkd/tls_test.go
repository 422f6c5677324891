package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/trunkd/trunkd/trunk/certs"
)

// peerCert is the certificate the SIP TLS listener on port presents.
func peerCert(t *testing.T, port uint16) []byte {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp",
		net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

// TestSIPCertificateHotReload checks that the SIP TLS listener serves the
// generated certificate, and a new pair written over it once reloaded
// (SIGHUP calls ReloadCertificates), without a restart.
func TestSIPCertificateHotReload(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir)
	defer stopDaemon(t, d)
	c := connect(t, d, dir, token(t, dir, "trunks:manage"))
	tr := sipTrunk("tls-1", freeSIPPort(t))
	tr.SIPTLSPort = freeSIPPort(t)
	if err := c.AddTrunk(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	generated, err := os.ReadFile(filepath.Join(dir, "sip-tls.crt"))
	if err != nil {
		t.Fatalf("no generated SIP certificate: %v", err)
	}
	first := peerCert(t, tr.SIPTLSPort)
	gen, _ := tls.X509KeyPair(generated, mustRead(t, filepath.Join(dir, "sip-tls.key")))
	if !bytes.Equal(first, gen.Certificate[0]) {
		t.Fatal("the SIP TLS listener does not present DATA/sip-tls.crt")
	}

	crt, key, err := certs.SelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sip-tls.key"), key)
	writeFile(t, filepath.Join(dir, "sip-tls.crt"), crt)
	d.ReloadCertificates()
	if bytes.Equal(peerCert(t, tr.SIPTLSPort), first) {
		t.Fatal("the listener still presents the old certificate after a reload")
	}

	// A broken pair leaves the last good one serving.
	second := peerCert(t, tr.SIPTLSPort)
	writeFile(t, filepath.Join(dir, "sip-tls.crt"), []byte("junk"))
	d.ReloadCertificates()
	if !bytes.Equal(peerCert(t, tr.SIPTLSPort), second) {
		t.Fatal("a broken pair replaced the certificate")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
