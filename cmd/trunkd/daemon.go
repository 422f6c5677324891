package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/trunkd/trunkd/media/sipplane"
	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/store"
	"github.com/trunkd/trunkd/trunk/control"
	"github.com/trunkd/trunkd/trunk/secretfile"
)

// Daemon is a running trunkd: the store and the admin RPC server.
type Daemon struct {
	cfg    *Config
	log    *slog.Logger
	db     *store.DB
	sip    *sipplane.Plane
	svc    *control.Service
	srv    *rpc.Server
	met    *metrics
	ai     *aiMetrics
	served chan error
}

// Start opens the data dir, the store and the listener, and starts serving.
func Start(cfg *Config, log *slog.Logger) (*Daemon, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	d := &Daemon{cfg: cfg, log: log, served: make(chan error, 1)}
	if err := d.start(); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (d *Daemon) start() error {
	authn, err := d.authenticator()
	if err != nil {
		return err
	}
	key, err := store.LoadOrCreateKey(d.cfg.SecretKeyFile)
	if err != nil {
		return fmt.Errorf("secret key: %w", err)
	}
	d.db, err = store.Open(filepath.Join(d.cfg.DataDir, "trunkd.db"), key)
	if err != nil {
		return err
	}
	cert, err := d.certificate()
	if err != nil {
		return err
	}
	agents, err := d.agentDialer()
	if err != nil {
		return err
	}
	d.ai = newAIMetrics()
	d.sip = sipplane.New(sipplane.Config{Logger: d.log.With("plane", "sip"),
		Breaker: d.cfg.Breaker, QualityWindow: d.cfg.QualityWindow, ProbeInterval: d.cfg.ProbeInterval,
		Bridger: agents, AIConnectTimeout: d.cfg.AIConnectTimeout, AIStats: d.ai.st, AgentHost: d.cfg.AgentSIPHost})
	d.met = newMetrics(d.sip)
	d.met.reg.MustRegister(d.ai)
	if d.cfg.MetricsListen != "" {
		if err := d.met.listen(d.cfg.MetricsListen); err != nil {
			return fmt.Errorf("-metrics-listen: %w", err)
		}
	}
	d.svc = control.New(d.db, sipPlane{d.sip})
	if err := d.svc.UseAgents(context.Background(), d.db, d.sip); err != nil {
		return err
	}
	if err := d.svc.Load(context.Background()); err != nil {
		return err
	}
	d.srv = rpc.NewServer(rpc.Config{Service: d.svc, Auth: authn, Logger: d.log, Observe: d.met.observe,
		RetryAbove: d.cfg.RPCRetryAbove})
	if err := d.srv.Listen(d.cfg.Listen, &tls.Config{Certificates: []tls.Certificate{cert}}); err != nil {
		return err
	}
	go func() { d.served <- d.srv.Serve() }()
	d.met.ready.Store(true)
	n, _ := d.db.Count()
	d.log.Info("trunkd serving", "listen", d.srv.Addr().String(), "data", d.cfg.DataDir, "trunks", n)
	return nil
}

// Addr is the address the admin RPC listens on.
func (d *Daemon) Addr() net.Addr { return d.srv.Addr() }

// MetricsAddr is the address /metrics is served on; nil when off.
func (d *Daemon) MetricsAddr() net.Addr {
	if d.met.ln == nil {
		return nil
	}
	return d.met.ln.Addr()
}

// Shutdown stops taking requests and calls, lets RPCs in flight finish
// (bounded by ctx) and calls drain (bounded by the drain timeout; the rest
// are hung up), and closes the store.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.met.ready.Store(false)
	var wg sync.WaitGroup
	var sipErr error
	wg.Go(func() {
		dctx, cancel := context.WithTimeout(context.Background(), d.cfg.DrainTimeout)
		defer cancel()
		sipErr = d.sip.Shutdown(dctx)
	})
	err := d.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		d.log.Warn("shutdown: requests still in flight were cut off")
	}
	<-d.served
	wg.Wait()
	if sipErr != nil {
		d.log.Warn("shutdown", "err", sipErr)
	}
	return errors.Join(err, d.close())
}

func (d *Daemon) close() error {
	var errs []error
	if d.met != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		errs = append(errs, d.met.close(ctx))
		cancel()
	}
	if d.srv != nil {
		errs = append(errs, d.srv.Close())
	}
	if d.sip != nil {
		// A no-op after Shutdown drained it; else hang up at once.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		d.sip.Shutdown(ctx)
	}
	if d.db != nil {
		errs = append(errs, d.db.Close())
	}
	return errors.Join(errs...)
}

func (d *Daemon) authenticator() (*auth.Authenticator, error) {
	ac := auth.Config{Issuer: d.cfg.JWTIssuer, Audience: d.cfg.JWTAudience}
	if d.cfg.JWTSecretFile != "" {
		if d.cfg.defaultJWTSecret() {
			if err := createSecret(d.cfg.JWTSecretFile, d.log); err != nil {
				return nil, err
			}
		}
		secret, err := auth.LoadSecretFile(d.cfg.JWTSecretFile)
		if err != nil {
			return nil, fmt.Errorf("jwt secret: %w", err)
		}
		ac.Secret = secret
	}
	for _, arg := range d.cfg.JWTPublicKeys {
		pk, err := auth.LoadPublicKeyFlag(arg)
		if err != nil {
			return nil, fmt.Errorf("-jwt-public-key %s: %w", arg, err)
		}
		ac.PublicKeys = append(ac.PublicKeys, pk)
	}
	return auth.NewAuthenticator(ac)
}

// createSecret writes a new random HMAC secret to path (0600) unless the
// file exists.
func createSecret(path string, log *slog.Logger) error {
	if fileExists(path) {
		return nil
	}
	b := make([]byte, 32)
	rand.Read(b)
	if err := secretfile.Create(path, []byte(base64.RawURLEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
		return fmt.Errorf("jwt secret: %w", err)
	}
	log.Info("generated JWT signing secret", "file", path)
	return nil
}

func (d *Daemon) certificate() (tls.Certificate, error) {
	cert, created, err := rpc.LoadOrCreateCert(d.cfg.TLSCert, d.cfg.TLSKey, certHosts(d.cfg.Listen))
	if err != nil {
		return cert, fmt.Errorf("tls: %w", err)
	}
	if created {
		d.log.Info("generated self-signed TLS certificate", "cert", d.cfg.TLSCert, "key", d.cfg.TLSKey)
	}
	return cert, nil
}

// certHosts lists the names a generated certificate is issued for.
func certHosts(listen string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
		hosts = append(hosts, h)
	}
	if name, err := os.Hostname(); err == nil {
		hosts = append(hosts, name)
	}
	return hosts
}

// howToConnect logs what an operator types next.
func (d *Daemon) howToConnect() {
	ctl := trunkctlPath()
	addr := d.srv.Addr().String()
	if d.cfg.JWTSecretFile != "" {
		d.log.Info("mint an admin token",
			"cmd", fmt.Sprintf("export TRUNKD_TOKEN=$(%s token --secret-file %s --scope trunks:manage --ttl 1h)", ctl, d.cfg.JWTSecretFile))
	}
	d.log.Info("then talk to trunkd",
		"cmd", fmt.Sprintf("%s --addr %s --ca %s list", ctl, addr, d.cfg.TLSCert))
}

// trunkctlPath names the trunkctl built beside this trunkd (bin/trunkctl
// after make build), or plain trunkctl.
func trunkctlPath() string {
	exe, err := os.Executable()
	if err != nil {
		return "trunkctl"
	}
	p := filepath.Join(filepath.Dir(exe), "trunkctl")
	if !fileExists(p) {
		return "trunkctl"
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return p
}
