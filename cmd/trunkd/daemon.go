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
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trunkd/trunkd/media/sipplane"
	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/rpc/rest"
	"github.com/trunkd/trunkd/rpc/status"
	"github.com/trunkd/trunkd/store"
	"github.com/trunkd/trunkd/store/etcd"
	"github.com/trunkd/trunkd/trunk/certs"
	"github.com/trunkd/trunkd/trunk/control"
	"github.com/trunkd/trunkd/trunk/secretfile"
)

// Daemon is a running trunkd: the store and the admin RPC server.
type Daemon struct {
	cfg    *Config
	log    *slog.Logger
	db     *store.DB // nil on etcd
	sip    *sipplane.Plane
	svc    *control.Service
	srv    *rpc.Server
	http   *rest.Listener // nil without --http-listen
	met    *metrics
	ai     *aiMetrics
	served chan error

	adminCert, sipCert *certs.Reloader
	stopWatch          context.CancelFunc
	// On etcd (--store etcd://):
	etcd          *etcd.Store
	members       *etcd.Members
	membersP      atomic.Pointer[etcd.Members]
	stopReconcile context.CancelFunc
	reconciled    chan struct{}
	rl            reloader
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
	authn, _, err := d.authenticator()
	if err != nil {
		return err
	}
	d.rl.auth.cur.Store(authn)
	d.rl.level = d.cfg.levelVar
	key, err := store.LoadOrCreateKey(d.cfg.SecretKeyFile)
	if err != nil {
		return fmt.Errorf("secret key: %w", err)
	}
	if err := d.certificates(); err != nil {
		return err
	}
	sipTLS, err := d.sipTLS()
	if err != nil {
		return err
	}
	sc := sipplane.Config{Logger: d.log.With("plane", "sip"),
		Breaker: d.cfg.Breaker, QualityWindow: d.cfg.QualityWindow, ProbeInterval: d.cfg.ProbeInterval, TLS: sipTLS}
	clustered := strings.HasPrefix(d.cfg.Store, "etcd://")
	if clustered {
		sipConfigForCluster(&sc, d.membersP.Load)
	}
	agents, err := d.agentDialer()
	if err != nil {
		return err
	}
	d.ai = newAIMetrics()
	sc.Bridger, sc.AIConnectTimeout, sc.AIStats, sc.AgentHost = agents, d.cfg.AIConnectTimeout, d.ai.st, d.cfg.AgentSIPHost
	d.sip = sipplane.New(sc)
	d.met = newMetrics(d.sip)
	d.met.reg.MustRegister(d.ai)
	if d.cfg.MetricsListen != "" {
		if err := d.met.listen(d.cfg.MetricsListen); err != nil {
			return fmt.Errorf("-metrics-listen: %w", err)
		}
	}
	if clustered {
		// Agents live in the bbolt store; on etcd their operations
		// answer ERR_UNAVAILABLE (docs/operations.md, known limits).
		if err := d.startCluster(key); err != nil {
			return err
		}
		d.met.cluster(d.svc, d.members)
	} else {
		d.db, err = store.Open(strings.TrimPrefix(d.cfg.Store, "bolt://"), key)
		if err != nil {
			return err
		}
		if n := d.db.Replayed(); n > 0 {
			d.log.Info("store: writes acknowledged before a crash replayed from the write-ahead log", "writes", n)
		}
		d.log.Debug("store: write-ahead log flushes", "with", d.db.LogFlush())
		d.svc = control.New(d.db, sipPlane{d.sip})
		if err := d.svc.UseAgents(context.Background(), d.db, d.sip); err != nil {
			return err
		}
		restore := holdGC()
		err = d.svc.Load(context.Background())
		restore()
		if err != nil {
			return err
		}
	}
	d.svc.SetReloader(d)
	d.srv = rpc.NewServer(rpc.Config{Service: d.svc, Auth: &d.rl.auth, Logger: d.log, Observe: d.met.observe,
		RetryAbove: d.cfg.RPCRetryAbove})
	if err := d.srv.Listen(d.cfg.Listen, &tls.Config{GetCertificate: d.adminCert.GetCertificate}); err != nil {
		return err
	}
	go func() { d.served <- d.srv.Serve() }()
	if d.cfg.HTTPListen != "" {
		if err := d.serveHTTP(&d.rl.auth); err != nil {
			return err
		}
	}
	d.met.ready.Store(true)
	d.log.Info("trunkd serving", "listen", d.srv.Addr().String(), "data", d.cfg.DataDir, "store", d.storeName(), "trunks", d.count())
	return nil
}

// serveHTTP starts the REST face on --http-listen, with the admin
// certificate (reloaded with it).
func (d *Daemon) serveHTTP(authn *swapAuth) error {
	var h http.Handler = rest.NewServer(rest.Config{Service: d.svc, Auth: authn, Logger: d.log.With("face", "rest"), Observe: d.met.observe})
	if d.cfg.StatusPage {
		mux := http.NewServeMux()
		page := status.New(d.svc, authn, d.log.With("face", "status"))
		for _, p := range status.Routes {
			mux.Handle(p, page)
		}
		mux.Handle("/", h)
		h = mux
	}
	l, err := rest.Listen(d.cfg.HTTPListen, &tls.Config{GetCertificate: d.adminCert.GetCertificate, MinVersion: tls.VersionTLS12}, h, d.log)
	if err != nil {
		return err
	}
	d.http = l
	go func() {
		if err := l.Serve(); err != nil {
			d.log.Error("REST face stopped", "err", err)
		}
	}()
	d.log.Info("REST face serving", "listen", l.Addr().String(), "protocols", "HTTP/1.1, HTTP/2, HTTP/3")
	return nil
}

// HTTPAddr is the address of the REST face; nil when off.
func (d *Daemon) HTTPAddr() net.Addr {
	if d.http == nil {
		return nil
	}
	return d.http.Addr()
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
	if d.members != nil {
		// Registrations move first: peers take over while calls drain.
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := d.members.Leave(lctx); err != nil {
			d.log.Warn("leave the cluster", "err", err)
		}
		cancel()
	}
	var wg sync.WaitGroup
	var sipErr error
	wg.Go(func() {
		dctx, cancel := context.WithTimeout(context.Background(), d.cfg.DrainTimeout)
		defer cancel()
		sipErr = d.sip.Shutdown(dctx)
	})
	err := d.srv.Shutdown(ctx)
	if d.http != nil {
		err = errors.Join(err, d.http.Shutdown(ctx))
		d.http = nil
	}
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
	if d.stopWatch != nil {
		d.stopWatch()
	}
	if d.met != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		errs = append(errs, d.met.close(ctx))
		cancel()
	}
	if d.srv != nil {
		errs = append(errs, d.srv.Close())
	}
	if d.http != nil {
		errs = append(errs, d.http.Close())
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
	errs = append(errs, d.stopCluster())
	return errors.Join(errs...)
}

// storeName says where trunks are kept, for the log (never a password).
func (d *Daemon) storeName() string {
	if d.etcd != nil {
		return "etcd " + strings.Join(d.cfg.Cluster.Endpoints, ",") + " as node " + d.cfg.Cluster.Node
	}
	return d.db.Path()
}

// count is the number of stored trunks, -1 when unknown.
func (d *Daemon) count() int {
	var n int
	var err error
	if d.etcd != nil {
		n, err = d.etcd.Count(context.Background())
	} else {
		n, err = d.db.Count()
	}
	if err != nil {
		return -1
	}
	return n
}

// authenticator reads every configured verification key and returns an
// authenticator for them and how many there are.
func (d *Daemon) authenticator() (*auth.Authenticator, int, error) {
	ac := auth.Config{Issuer: d.cfg.JWTIssuer, Audience: d.cfg.JWTAudience}
	if d.cfg.JWTSecretFile != "" {
		if d.cfg.defaultJWTSecret() {
			if err := createSecret(d.cfg.JWTSecretFile, d.log); err != nil {
				return nil, 0, err
			}
		}
		secret, err := auth.LoadSecretFile(d.cfg.JWTSecretFile)
		if err != nil {
			return nil, 0, fmt.Errorf("jwt secret: %w", err)
		}
		ac.Secret = secret
	}
	args, err := d.cfg.publicKeyArgs()
	if err != nil {
		return nil, 0, err
	}
	for _, arg := range args {
		pk, err := auth.LoadPublicKeyFlag(arg)
		if err != nil {
			return nil, 0, fmt.Errorf("-jwt-public-key %s: %w", arg, err)
		}
		ac.PublicKeys = append(ac.PublicKeys, pk)
	}
	a, err := auth.NewAuthenticator(ac)
	if err != nil {
		return nil, 0, err
	}
	return a, len(ac.PublicKeys) + min(len(ac.Secret), 1), nil
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

// certificates loads (or generates) both planes' certificates and
// watches their files for changes.
func (d *Daemon) certificates() error {
	load := func(name, cert, key string) (*certs.Reloader, error) {
		generated := !fileExists(cert) && !fileExists(key)
		r, err := certs.NewReloader(cert, key, certHosts(d.cfg.Listen))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if generated {
			d.log.Info("generated self-signed TLS certificate", "plane", name, "cert", cert, "key", key)
		}
		return r, nil
	}
	var err error
	if d.adminCert, err = load("tls", d.cfg.TLSCert, d.cfg.TLSKey); err != nil {
		return err
	}
	if d.sipCert, err = load("sip-tls", d.cfg.SIPTLS.Cert, d.cfg.SIPTLS.Key); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.stopWatch = cancel
	for name, r := range map[string]*certs.Reloader{"admin": d.adminCert, "sip": d.sipCert} {
		go r.Watch(ctx, d.cfg.SIPTLS.ReloadCheck, func(err error) { d.logReload(name, err) })
	}
	return nil
}

// ReloadCertificates reloads both planes' certificates only (Reload does
// it along with the keys); a pair that fails to load leaves the old one
// serving.
func (d *Daemon) ReloadCertificates() {
	d.logReload("admin", d.adminCert.Reload())
	d.logReload("sip", d.sipCert.Reload())
}

func (d *Daemon) logReload(plane string, err error) {
	if err != nil {
		d.log.Error("certificate not reloaded; the previous one stays", "plane", plane, "err", err)
		return
	}
	d.log.Info("certificate reloaded", "plane", plane)
}

// sipTLS is the SIP plane's TLS: our certificate, the carriers' roots
// and the inbound limits.
func (d *Daemon) sipTLS() (sipplane.TLSConfig, error) {
	c := d.cfg.SIPTLS
	roots, err := certs.Roots(c.CA)
	if err != nil {
		return sipplane.TLSConfig{}, fmt.Errorf("-sip-tls-ca: %w", err)
	}
	return sipplane.TLSConfig{Certificate: d.sipCert.GetCertificate, Roots: roots,
		HandshakeTimeout: c.HandshakeTimeout, MaxConnsPerSource: c.MaxPerSource, MaxConns: c.MaxConns,
		IdleTimeout: c.IdleTimeout}, nil
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
	if d.http != nil {
		d.log.Info("or with curl (REST face)",
			"cmd", fmt.Sprintf(`curl --cacert %s -H "Authorization: Bearer $TRUNKD_TOKEN" https://%s/core/trunks`, d.cfg.TLSCert, d.http.Addr()))
		if d.cfg.StatusPage {
			d.log.Info("status page (give it a trunks:read token)", "url", fmt.Sprintf("https://%s/", d.http.Addr()))
		}
	} else {
		d.log.Info("the REST face (curl) is off; turn it on with --http-listen 127.0.0.1:8443 (or TRUNKD_HTTP_LISTEN)")
	}
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
