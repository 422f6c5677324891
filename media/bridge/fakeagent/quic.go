package fakeagent

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"sync"
	"time"

	quicgo "github.com/quic-go/quic-go"
	"github.com/trunkd/trunkd/media/bridge/quic"
	"github.com/trunkd/trunkd/media/bridge/ws"
)

// QUICListener is a fake agent listening for QUIC on 127.0.0.1 with a
// self-signed certificate; RootCAs trusts it.
type QUICListener struct {
	URL     string // quic://127.0.0.1:port/agent
	RootCAs *x509.CertPool
	ln      *quicgo.Listener
}

// Close stops listening.
func (l *QUICListener) Close() error { return l.ln.Close() }

// ListenQUIC serves the script over QUIC on addr ("127.0.0.1:0" for any
// port) until ctx ends or the listener is closed.
func (s *Server) ListenQUIC(ctx context.Context, addr string) (*QUICListener, error) {
	cert, pool, err := selfSigned()
	if err != nil {
		return nil, err
	}
	ln, err := quicgo.ListenAddr(addr, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{quic.ALPN}, MinVersion: tls.VersionTLS13},
		&quicgo.Config{EnableDatagrams: true, MaxIdleTimeout: 15 * time.Second})
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			conn, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			go s.serveQUIC(ctx, conn)
		}
	}()
	return &QUICListener{URL: "quic://" + ln.Addr().String() + "/agent", RootCAs: pool, ln: ln}, nil
}

// serveQUIC runs one call: JSON events and agent audio on the stream,
// caller audio from datagrams.
func (s *Server) serveQUIC(ctx context.Context, conn *quicgo.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := conn.AcceptStream(ctx)
	if err != nil {
		return
	}
	call := s.newCall(http.Header{}, quic.ALPN)
	defer close(call.done)
	defer conn.CloseWithError(quic.CloseNormal, "")
	o := &quicOut{st: st, conn: conn}
	sc := s.Script
	r := bufio.NewReader(st)
	for {
		typ, b, err := quic.ReadFrame(r)
		if err != nil {
			return
		}
		if typ != quic.FrameJSON {
			continue
		}
		var m ws.Message
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		if m.Event == "start" {
			var auth quic.StartAuth
			_ = json.Unmarshal(b, &auth)
			if sc.Token != "" && auth.Authorization != "Bearer "+sc.Token {
				conn.CloseWithError(quic.CloseUnauthorized, "bad token")
				return
			}
			call.Header.Set("Authorization", auth.Authorization)
			call.begin(m)
			o.stream = m.StreamSID
			go s.datagrams(ctx, conn, call, o)
			go s.script(ctx, o)
			if sc.NoRead {
				<-ctx.Done()
				return
			}
			continue
		}
		call.record(m)
		if m.Event == "stop" {
			return
		}
	}
}

// datagrams takes the caller's audio.
func (s *Server) datagrams(ctx context.Context, conn *quicgo.Conn, call *Call, o *quicOut) {
	for {
		b, err := conn.ReceiveDatagram(ctx)
		if err != nil {
			return
		}
		_, _, l16, err := quic.ParseDatagram(b)
		if err != nil {
			continue
		}
		pcm, _ := quic.PCM(l16)
		call.hear(pcm)
		if s.Script.Echo {
			o.media(ctx, pcm)
		}
	}
}

// quicOut is out over QUIC.
type quicOut struct {
	mu     sync.Mutex
	st     *quicgo.Stream
	conn   *quicgo.Conn
	stream string
}

func (o *quicOut) streamSID() string { return o.stream }

func (o *quicOut) write(typ byte, b []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_ = quic.WriteFrame(o.st, typ, b)
}

func (o *quicOut) event(_ context.Context, m ws.Message) {
	b, _ := json.Marshal(m)
	o.write(quic.FrameJSON, b)
}

func (o *quicOut) media(_ context.Context, pcm []int16) { o.write(quic.FrameAudio, quic.L16(pcm)) }

func (o *quicOut) garbage(_ context.Context, text string, bin []byte) {
	if text != "" {
		o.write(quic.FrameJSON, []byte(text))
	}
	if bin != nil {
		o.write(7, bin) // an unknown frame type
	}
}

func (o *quicOut) hangup(ctx context.Context) {
	o.event(ctx, ws.Message{Event: "hangup", StreamSID: o.stream, Hangup: &ws.HangupBody{Reason: "done"}})
}

func (o *quicOut) drop() { o.conn.CloseWithError(quic.CloseProtocol, "dropped by script") }

// selfSigned makes a certificate for 127.0.0.1 and localhost and a pool
// that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fakeagent"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}, pool, nil
}
