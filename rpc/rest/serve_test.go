package rest_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/rpc/rest"
	"github.com/trunkd/trunkd/trunk/control"
	"github.com/trunkd/trunkd/trunk/control/controltest"
)

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "trunkd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}, pool
}

// TestListenServesHTTP2AndHTTP3: one --http-listen address answers over
// HTTP/1.1, HTTP/2 (TCP, with Alt-Svc) and HTTP/3 (UDP, same port), the
// same routes with the same answers.
func TestListenServesHTTP2AndHTTP3(t *testing.T) {
	cert, pool := selfSigned(t)
	authn, _ := auth.NewAuthenticator(auth.Config{Secret: secret})
	h := rest.NewServer(rest.Config{Service: control.New(controltest.NewMemStore(), nil), Auth: authn})
	l, err := rest.Listen("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}}, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Serve() }()
	t.Cleanup(func() {
		l.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	base := "https://" + l.Addr().String()
	tok := token(t, auth.ScopeManage)

	h2 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Protocols: new(http.Protocols)}
	h2.Protocols.SetHTTP2(true)
	h1 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Protocols: new(http.Protocols)}
	h1.Protocols.SetHTTP1(true)
	h3 := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(func() { h2.CloseIdleConnections(); h1.CloseIdleConnections(); h3.Close() })
	for _, c := range []struct {
		proto string
		rt    http.RoundTripper
	}{{"HTTP/1.1", h1}, {"HTTP/2.0", h2}, {"HTTP/3.0", h3}} {
		hc := &http.Client{Transport: c.rt, Timeout: 5 * time.Second}
		body := `{"name": "over ` + c.proto + `"}`
		req, _ := http.NewRequest("POST", base+"/core/trunks", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s POST: %v", c.proto, err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Proto != c.proto || resp.StatusCode != http.StatusCreated || !strings.Contains(string(data), c.proto) {
			t.Errorf("POST over %s = %s %d %s", c.proto, resp.Proto, resp.StatusCode, data)
		}
		if c.proto != "HTTP/3.0" && !strings.HasPrefix(resp.Header.Get("Alt-Svc"), `h3=":`) {
			t.Errorf("%s answer lacks Alt-Svc h3: %q", c.proto, resp.Header.Get("Alt-Svc"))
		}
		req, _ = http.NewRequest("GET", base+"/core/trunks/nope", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err = hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET unknown over %s = %d; want 404", c.proto, resp.StatusCode)
		}
	}
}
