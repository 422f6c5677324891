package rpctest

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/trunk/control"
	"github.com/trunkd/trunkd/trunk/control/controltest"
)

// Secret is the HMAC secret NewServer's tokens are signed with.
var Secret = []byte("0123456789abcdef0123456789abcdef")

// Options configures NewServer. The zero value is a server without a SIP
// plane over an empty store, with files in a new temporary directory.
type Options struct {
	Dir    string        // where tls.crt, tls.key and jwt.secret go; "" for t.TempDir()
	Store  control.Store // nil for a new controltest.MemStore
	Plane  control.Plane // nil for none: the call methods answer ERR_UNAVAILABLE
	Config rpc.Config    // limits, Logger, Observe; Service and Auth are NewServer's

	Agents     control.AgentStore // nil for a new controltest.MemAgents
	AgentPlane control.AgentPlane // nil for a controltest.AgentPlane on host sip.example.com
}

// Server is a running admin RPC server.
type Server struct {
	*rpc.Server
	Addr       string           // "127.0.0.1:port"
	CAFile     string           // the server's certificate, to pin (trunkctl --ca)
	SecretFile string           // the JWT secret (trunkctl token --secret-file)
	Service    *control.Service // what the server serves
}

// NewServer starts a server that t's cleanup stops.
func NewServer(t testing.TB, o Options) *Server {
	t.Helper()
	dir := o.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	s := &Server{CAFile: filepath.Join(dir, "tls.crt"), SecretFile: filepath.Join(dir, "jwt.secret")}
	if err := os.WriteFile(s.SecretFile, append(append([]byte(nil), Secret...), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	authn, err := auth.NewAuthenticator(auth.Config{Secret: Secret})
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := rpc.LoadOrCreateCert(s.CAFile, filepath.Join(dir, "tls.key"), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	store := o.Store
	if store == nil {
		store = controltest.NewMemStore()
	}
	s.Service = control.New(store, o.Plane)
	if o.Agents == nil {
		o.Agents = controltest.NewMemAgents()
	}
	if o.AgentPlane == nil {
		o.AgentPlane = &controltest.AgentPlane{Host: "sip.example.com"}
	}
	if err := s.Service.UseAgents(context.Background(), o.Agents, o.AgentPlane); err != nil {
		t.Fatal(err)
	}
	cfg := o.Config
	cfg.Service, cfg.Auth = s.Service, authn
	s.Server = rpc.NewServer(cfg)
	if err := s.Listen("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}}); err != nil {
		t.Fatal(err)
	}
	s.Addr = s.Server.Addr().String()
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; !errors.Is(err, rpc.ErrServerClosed) {
			t.Errorf("Serve() = %v; want rpc.ErrServerClosed", err)
		}
	})
	return s
}

// Token returns a token granting scope for an hour.
func (s *Server) Token(t testing.TB, scope string) string {
	t.Helper()
	tok, err := auth.MintToken(Secret, scope, time.Hour, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Dial returns a client holding token, connected over the pinned
// certificate; t's cleanup closes it.
func (s *Server) Dial(t testing.TB, token string) *rpc.Client {
	t.Helper()
	tc, err := rpc.PinnedTLSConfig(s.CAFile, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := rpc.Dial(ctx, s.Addr, tc, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
