package sipplane

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
	"github.com/trunkd/trunkd/trunk"
)

// testCA is a private certificate authority for TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue signs a leaf certificate for hosts (IP addresses or names).
func (ca *testCA) issue(t testing.TB, hosts ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: hosts[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsPlaneConfig is a plane serving cert and trusting roots.
func tlsPlaneConfig(cert tls.Certificate, roots *x509.CertPool) Config {
	return Config{TLS: TLSConfig{
		Certificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
		Roots:       roots,
	}}
}

// tlsTrunkFor is a trunk sending over TLS to carrier c, with its own TLS
// listener.
func tlsTrunkFor(t *testing.T, id string, c *carrier) *trunk.Trunk {
	tr := dialTrunkFor(t, id, c)
	tr.Transport = trunk.TransportTLS
	tr.SIPTLSPort = siptest.FreePort(t, "127.0.0.1")
	return tr
}

func TestDialOverTLSVerifiesTheCarrier(t *testing.T) {
	ca := newTestCA(t)
	for _, tc := range []struct {
		name     string
		hosts    []string // of the carrier's certificate
		roots    *x509.CertPool
		answered bool
	}{
		{"private CA trusted", []string{"127.0.0.1"}, ca.pool, true},
		{"system roots only", []string{"127.0.0.1"}, nil, false},
		{"wrong name", []string{"carrier.example.net"}, ca.pool, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCarrierOn(t, "tls", &tls.Config{Certificates: []tls.Certificate{ca.issue(t, tc.hosts...)}}, answer)
			p := newDialPlane(t, tlsPlaneConfig(ca.issue(t, "127.0.0.1"), tc.roots))
			apply(t, p, tlsTrunkFor(t, "out", c))
			res := dial(t, p, trunk.DialRequest{TrunkID: "out", To: "100", Timeout: 5 * time.Second, MaxDuration: 100 * time.Millisecond})
			if res.Answered != tc.answered {
				t.Fatalf("Dial = %+v; want answered %v", res, tc.answered)
			}
			if !tc.answered {
				if n, _, _ := c.counts(); n != 0 {
					t.Errorf("carrier got %d INVITEs over a refused TLS connection; want 0", n)
				}
				if !strings.Contains(res.Reason, "certificate") {
					t.Errorf("reason %q; want it to name the certificate", res.Reason)
				}
				return
			}
			inv := c.lastInvite()
			if got := inv.Transport(); got != "TLS" {
				t.Errorf("INVITE arrived over %s; want TLS", got)
			}
			if tr, _ := inv.Recipient.UriParams.Get("transport"); tr != "tls" {
				t.Errorf("Request-URI %s; want ;transport=tls", inv.Recipient.String())
			}
			if ct := inv.Contact(); ct == nil || !isTLSContact(ct, p) {
				t.Errorf("Contact %v; want sip:...;transport=tls on sip_tls_port", ct)
			}
			waitFor(t, "BYE over TLS", func() bool { _, _, b := c.counts(); return b == 1 })
		})
	}
}

func TestDialOverTCP(t *testing.T) {
	c := newCarrierOn(t, "tcp", nil, answer)
	p := newDialPlane(t, Config{})
	tr := dialTrunkFor(t, "out", c)
	tr.Transport = trunk.TransportTCP
	apply(t, p, tr)
	res := dial(t, p, trunk.DialRequest{TrunkID: "out", To: "100", Timeout: 5 * time.Second, MaxDuration: 100 * time.Millisecond})
	if !res.Answered {
		t.Fatalf("Dial over TCP = %+v; want answered", res)
	}
	if got := c.lastInvite().Transport(); got != "TCP" {
		t.Errorf("INVITE arrived over %s; want TCP", got)
	}
	waitFor(t, "BYE over TCP", func() bool { _, _, b := c.counts(); return b == 1 })
}

func TestRegisterAndProbeOverTLS(t *testing.T) {
	ca := newTestCA(t)
	c := newCarrierOn(t, "tls", &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "127.0.0.1")}}, answer)
	cfg := tlsPlaneConfig(ca.issue(t, "127.0.0.1"), ca.pool)
	cfg.ProbeInterval = time.Second
	p := newDialPlane(t, cfg)
	tr := tlsTrunkFor(t, "reg", c)
	tr.RequireRegistration, tr.SIPPassword, tr.RegisterExpiresSec = true, "pw", 300
	apply(t, p, tr)
	waitFor(t, "registered over TLS", func() bool {
		return p.TrunkStatus("reg").SIP.RegistrationState == trunk.RegRegistered
	})
	c.mu.Lock()
	reg := c.registers[0]
	c.mu.Unlock()
	if reg.Transport() != "TLS" {
		t.Errorf("REGISTER over %s; want TLS", reg.Transport())
	}
	if ct := reg.Contact(); ct == nil || !isTLSContact(ct, p) || ct.Address.Port != int(tr.SIPTLSPort) {
		t.Errorf("REGISTER Contact %v; want sip:...;transport=tls on sip_tls_port %d", ct, tr.SIPTLSPort)
	}
	waitFor(t, "an OPTIONS probe", func() bool { _, o, _ := c.counts(); return o > 0 })
	c.mu.Lock()
	got := c.transports[0]
	c.mu.Unlock()
	if got != "TLS" {
		t.Errorf("OPTIONS over %s; want TLS", got)
	}
}

// tlsUAC is a caller over TLS trusting roots.
func tlsUAC(t testing.TB, roots *x509.CertPool) *diago.Diago {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("caller"), sipgo.WithUserAgenTLSConfig(&tls.Config{RootCAs: roots}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	return diago.NewDiago(ua, diago.WithTransport(diago.Transport{Transport: "tls", BindHost: "127.0.0.1", BindPort: int(siptest.FreePort(t, "127.0.0.1"))}))
}

func TestInboundOverTLS(t *testing.T) {
	ca := newTestCA(t)
	p := newPlane(t, tlsPlaneConfig(ca.issue(t, "127.0.0.1"), nil))
	tr := testTrunk("in", siptest.FreePort(t, "127.0.0.1"))
	tr.SIPTLSPort = siptest.FreePort(t, "127.0.0.1")
	tr.RejectSIPCode = 486
	apply(t, p, tr)
	dg := tlsUAC(t, ca.pool)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := dg.Invite(ctx, sip.Uri{Scheme: "sips", User: "100", Host: "127.0.0.1", Port: int(tr.SIPTLSPort)}, diago.InviteOptions{Transport: "tls"})
	var re *sipgo.ErrDialogResponse
	if !errorsAs(err, &re) || re.Res.StatusCode != 486 {
		t.Fatalf("INVITE over TLS = %v; want the trunk's reject code 486", err)
	}
	m, err := p.Explain("127.0.0.1", "127.0.0.1:"+strconv.Itoa(int(tr.SIPTLSPort)), "")
	if err != nil || !m.Matched || m.TrunkID != "in" {
		t.Errorf("Explain on the TLS port = %+v, %v; want trunk in", m, err)
	}
}

func errorsAs(err error, target any) bool { return err != nil && errors.As(err, target) }

// isTLSContact reports whether ct is a sip: URI with ;transport=tls on the
// TLS port of one of p's listeners.
func isTLSContact(ct *sip.ContactHeader, p *Plane) bool {
	tr, _ := ct.Address.UriParams.Get("transport")
	if ct.Address.Scheme != "sip" || tr != "tls" {
		return false
	}
	p.listeners.mu.Lock()
	defer p.listeners.mu.Unlock()
	for _, l := range p.listeners.byKey {
		if l.tlsPort == ct.Address.Port {
			return true
		}
	}
	return false
}
