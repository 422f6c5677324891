package rest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// Listener serves a handler over HTTPS on one address: HTTP/1.1 and
// HTTP/2 on TCP, and HTTP/3 (quic-go's http3) on UDP at the same port.
// TCP answers carry Alt-Svc so that clients may move to HTTP/3.
type Listener struct {
	tcp net.Listener
	udp net.PacketConn
	h12 *http.Server
	h3  *http3.Server
}

// Listen binds addr ("host:port"; port 0 picks one free on both TCP and
// UDP) and returns a Listener for h with the certificate of tc.
func Listen(addr string, tc *tls.Config, h http.Handler, log *slog.Logger) (*Listener, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tcp, udp, err := bindBoth(addr)
	if err != nil {
		return nil, err
	}
	l := &Listener{tcp: tcp, udp: udp}
	l.h3 = &http3.Server{Handler: h, TLSConfig: http3.ConfigureTLSConfig(tc.Clone()), Logger: log}
	alt := fmt.Sprintf(`h3=":%d"; ma=86400`, tcp.Addr().(*net.TCPAddr).Port)
	tc12 := tc.Clone()
	tc12.NextProtos = []string{"h2", "http/1.1"}
	l.h12 = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Alt-Svc", alt)
			h.ServeHTTP(w, r)
		}),
		TLSConfig:         tc12,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	l.h12.Protocols = new(http.Protocols)
	l.h12.Protocols.SetHTTP1(true)
	l.h12.Protocols.SetHTTP2(true)
	return l, nil
}

// bindBoth listens on TCP, then on UDP at the port TCP got.
func bindBoth(addr string) (net.Listener, net.PacketConn, error) {
	var last error
	for range 10 {
		tcp, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("--http-listen %s: %w", addr, err)
		}
		host, _, _ := net.SplitHostPort(addr)
		port := tcp.Addr().(*net.TCPAddr).Port
		udp, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err == nil {
			return tcp, udp, nil
		}
		tcp.Close()
		last = err
		if _, p, _ := net.SplitHostPort(addr); p != "0" {
			break
		}
	}
	return nil, nil, fmt.Errorf("--http-listen %s: HTTP/3 needs the same port on UDP: %w", addr, last)
}

// Addr is the bound address (the same port on TCP and UDP).
func (l *Listener) Addr() net.Addr { return l.tcp.Addr() }

// Serve serves until Shutdown or Close; it returns nil then.
func (l *Listener) Serve() error {
	var wg sync.WaitGroup
	var err12, err3 error
	wg.Go(func() { err12 = l.h12.ServeTLS(l.tcp, "", "") })
	wg.Go(func() { err3 = l.h3.Serve(l.udp) })
	wg.Wait()
	if errors.Is(err12, http.ErrServerClosed) {
		err12 = nil
	}
	if errors.Is(err3, http.ErrServerClosed) || errors.Is(err3, net.ErrClosed) {
		err3 = nil
	}
	return errors.Join(err12, err3)
}

// Shutdown stops taking requests and waits for those in flight, up to ctx.
func (l *Listener) Shutdown(ctx context.Context) error {
	err := errors.Join(l.h12.Shutdown(ctx), l.h3.Shutdown(ctx))
	return errors.Join(err, l.Close())
}

// Close stops at once.
func (l *Listener) Close() error {
	err := errors.Join(l.h12.Close(), l.h3.Close())
	if cerr := l.udp.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	return err
}
