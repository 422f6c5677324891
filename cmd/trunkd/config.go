package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/trunk"
)

// Config is everything trunkd is started with.
type Config struct {
	Listen          string
	DataDir         string
	TLSCert         string
	TLSKey          string
	JWTSecretFile   string
	JWTPublicKeys   []string
	JWTPublicKeyDir string
	JWTIssuer       string
	JWTAudience     string
	SecretKeyFile   string
	LogLevel        slog.Level
	levelVar        *slog.LevelVar // set by logger; Reload changes it
	LogFormat       string
	ShutdownTimeout time.Duration
	DrainTimeout    time.Duration
	RPCRetryAbove   int

	MetricsListen string
	HTTPListen    string
	StatusPage    bool
	Breaker       trunk.BreakerConfig
	QualityWindow time.Duration
	ProbeInterval time.Duration

	SIPTLS sipTLSFlags

	Store   string // bolt://path or etcd://host:port[,host:port...]
	Cluster ClusterConfig

	AICA             string        // PEM roots for wss:// agents; system roots when empty
	AIConnectTimeout time.Duration // agent connect while the call rings
	AgentSIPHost     string        // host of deployed agents' SIP URIs
}

// sipTLSFlags configure SIP over TLS.
type sipTLSFlags struct {
	Cert, Key        string        // listeners' certificate; generated in DATA when absent
	CA               string        // extra roots for carriers' certificates
	HandshakeTimeout time.Duration // inbound handshake bound
	MaxPerSource     int           // inbound TLS connections per source IP per listener
	MaxConns         int           // inbound TLS connections per listener
	IdleTimeout      time.Duration // inbound TLS connection idle bound
	ReloadCheck      time.Duration // how often certificate files are checked for changes
}

// ClusterConfig is how a node joins an etcd cluster (--store etcd://...).
type ClusterConfig struct {
	Endpoints      []string
	Prefix         string
	CA, Cert, Key  string
	User           string
	PasswordFile   string
	Node           string
	NodeTTL        time.Duration
	Settle         time.Duration
	Resync         time.Duration
	StatsInterval  time.Duration
	Ack            string
	AckTimeout     time.Duration
	IPMap          map[string]string // stored address -> this node's
	StartupTimeout time.Duration
	RequestTimeout time.Duration
	ipMapFlag      listFlag
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// parseConfig reads flags, then TRUNKD_<FLAG> environment variables for
// flags not given, then fills the defaults that depend on the data dir.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*Config, error) {
	cfg := &Config{}
	var keys listFlag
	var level string
	fs := flag.NewFlagSet("trunkd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:7443", "UDP `address` of the admin RPC (QUIC)")
	fs.IntVar(&cfg.RPCRetryAbove, "rpc-retry-above", rpc.DefaultRetryAbove, "admin `handshakes` in progress above which new connections must validate their address (QUIC Retry); -1: always")
	fs.StringVar(&cfg.DataDir, "data", "./trunkd-data", "data `dir`: database, generated certificate and secrets")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate `file` (default: DATA/tls.crt, generated self-signed when absent)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "TLS key `file` (default: DATA/tls.key)")
	fs.StringVar(&cfg.JWTSecretFile, "jwt-secret-file", "", "HMAC `file` for HS256/384/512 tokens (default with no JWT key flags: DATA/jwt.secret, generated when absent)")
	fs.Var(&keys, "jwt-public-key", "`[KID=]FILE` PEM public key (RSA, ECDSA, Ed25519) for tokens; repeatable")
	fs.StringVar(&cfg.JWTPublicKeyDir, "jwt-public-key-dir", "", "`dir` of PEM public keys, one per *.pem file, its kid the file name without .pem; re-read on SIGHUP and Reload (rotate by adding the new key, reloading, later removing the old)")
	fs.StringVar(&cfg.JWTIssuer, "jwt-issuer", "", "required token `iss` (unchecked when empty)")
	fs.StringVar(&cfg.JWTAudience, "jwt-audience", "", "required token `aud` (unchecked when empty)")
	fs.StringVar(&cfg.SecretKeyFile, "secret-key-file", "", "AES-256 key `file` for secrets at rest (default: DATA/secret.key, generated when absent)")
	fs.StringVar(&level, "log-level", "info", "log `level`: debug, info, warn, error")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log `format`: text or json")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long SIGTERM waits for requests in flight")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 30*time.Second, "how long SIGTERM lets calls in flight run before hanging them up")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "TCP `address` for Prometheus /metrics, /healthz and /readyz (off when empty), e.g. 127.0.0.1:9464")
	fs.StringVar(&cfg.HTTPListen, "http-listen", "", "`address` of the REST face (off when empty), e.g. 127.0.0.1:8443: HTTPS with the admin certificate, HTTP/1.1 and HTTP/2 on TCP, HTTP/3 on UDP, same port")
	fs.BoolVar(&cfg.StatusPage, "status-page", false, "serve the live status page at / on --http-listen (it asks for a token with scope trunks:read)")
	breakerFlags(fs, &cfg.Breaker)
	fs.DurationVar(&cfg.QualityWindow, "quality-window", 30*time.Minute, "sliding window of the ASR, ACD, MOS and PDD figures")
	fs.DurationVar(&cfg.ProbeInterval, "probe-interval", 0, "send OPTIONS to every trunk's carrier this often, feeding its breaker (0: only to test an open breaker)")
	fs.StringVar(&cfg.SIPTLS.Cert, "sip-tls-cert", "", "SIP over TLS certificate `file` (default: DATA/sip-tls.crt, generated self-signed when absent); reloaded on SIGHUP or when it changes")
	fs.StringVar(&cfg.SIPTLS.Key, "sip-tls-key", "", "SIP over TLS key `file` (default: DATA/sip-tls.key)")
	fs.StringVar(&cfg.SIPTLS.CA, "sip-tls-ca", "", "PEM `file` of CAs trusted for carriers' certificates besides the system roots")
	fs.DurationVar(&cfg.SIPTLS.HandshakeTimeout, "sip-tls-handshake-timeout", 5*time.Second, "longest inbound SIP TLS handshake")
	fs.IntVar(&cfg.SIPTLS.MaxPerSource, "sip-tls-max-conns-per-source", 64, "inbound SIP TLS connections per source IP address and listener")
	fs.IntVar(&cfg.SIPTLS.MaxConns, "sip-tls-max-conns", 4096, "inbound SIP TLS connections per listener")
	fs.DurationVar(&cfg.SIPTLS.IdleTimeout, "sip-tls-idle-timeout", 10*time.Minute, "close an inbound SIP TLS connection idle this long")
	fs.DurationVar(&cfg.SIPTLS.ReloadCheck, "tls-reload-check", 10*time.Second, "how often both planes' certificate files are checked for changes (SIGHUP reloads at once)")
	clusterFlags(fs, cfg)
	fs.StringVar(&cfg.AICA, "ai-ca", "", "PEM `file` of the CAs that sign wss:// AI agents' certificates (default: the system roots)")
	fs.DurationVar(&cfg.AIConnectTimeout, "ai-connect-timeout", 3*time.Second, "how long a HANDLE_AI call rings while its agent connects before the caller gets 503")
	fs.StringVar(&cfg.AgentSIPHost, "agent-sip-host", "", "`host` in deployed agents' SIP URIs, sip:AGENT_ID@HOST (default: the first interface address)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := applyEnv(fs, getenv); err != nil {
		return nil, err
	}
	cfg.JWTPublicKeys = keys
	if err := cfg.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		return nil, fmt.Errorf("-log-format: %q is not text or json", cfg.LogFormat)
	}
	if err := cfg.Breaker.Validate(); err != nil {
		return nil, fmt.Errorf("breaker flags: %w", err)
	}
	if cfg.StatusPage && cfg.HTTPListen == "" {
		return nil, errors.New("-status-page: needs -http-listen (the page is served on the REST face's listener)")
	}
	if cfg.QualityWindow < time.Minute {
		return nil, errors.New("-quality-window: must be at least 1m")
	}
	if cfg.RPCRetryAbove < -1 || cfg.RPCRetryAbove == 0 {
		return nil, errors.New("-rpc-retry-above: must be at least 1, or -1 to validate every connection")
	}
	if t := cfg.SIPTLS; t.HandshakeTimeout <= 0 || t.MaxPerSource < 1 || t.MaxConns < 1 || t.IdleTimeout <= 0 || t.ReloadCheck <= 0 {
		return nil, errors.New("-sip-tls-* limits and -tls-reload-check must be positive")
	}
	cfg.fillDefaults()
	if err := cfg.parseStore(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// breakerFlags binds the circuit breaker's settings, defaulting to
// trunk.DefaultBreakerConfig.
func breakerFlags(fs *flag.FlagSet, b *trunk.BreakerConfig) {
	d := trunk.DefaultBreakerConfig()
	fs.IntVar(&b.ConsecutiveFaults, "breaker-faults", d.ConsecutiveFaults, "consecutive carrier faults that open a trunk's breaker")
	fs.Float64Var(&b.FaultRatio, "breaker-ratio", d.FaultRatio, "share of faulty calls in -breaker-window that opens the breaker")
	fs.IntVar(&b.MinAttempts, "breaker-min-attempts", d.MinAttempts, "calls in -breaker-window before -breaker-ratio applies")
	fs.DurationVar(&b.Window, "breaker-window", d.Window, "window of the fault ratio")
	fs.DurationVar(&b.Cooldown, "breaker-cooldown", d.Cooldown, "how long an open breaker waits before probing (doubles after each failed probe)")
	fs.DurationVar(&b.MaxCooldown, "breaker-max-cooldown", d.MaxCooldown, "the longest cooldown")
}

// applyEnv sets every flag not given on the command line from its
// TRUNKD_<NAME> variable (dashes become underscores). A repeatable flag
// takes a comma-separated list.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := "TRUNKD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v := getenv(env)
		if given[f.Name] || v == "" {
			return
		}
		values := []string{v}
		if _, ok := f.Value.(*listFlag); ok {
			values = strings.Split(v, ",")
		}
		for _, one := range values {
			if err := fs.Set(f.Name, strings.TrimSpace(one)); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	return errors.Join(errs...)
}

func (c *Config) fillDefaults() {
	inData := func(p *string, name string) {
		if *p == "" {
			*p = filepath.Join(c.DataDir, name)
		}
	}
	inData(&c.TLSCert, "tls.crt")
	inData(&c.TLSKey, "tls.key")
	inData(&c.SIPTLS.Cert, "sip-tls.crt")
	inData(&c.SIPTLS.Key, "sip-tls.key")
	inData(&c.SecretKeyFile, "secret.key")
	if len(c.JWTPublicKeys) == 0 && c.JWTPublicKeyDir == "" {
		inData(&c.JWTSecretFile, "jwt.secret")
	}
}

// defaultJWTSecret reports whether the JWT secret is the embedded default
// (generated in the data dir when absent) rather than one the operator named.
func (c *Config) defaultJWTSecret() bool {
	return c.JWTSecretFile == filepath.Join(c.DataDir, "jwt.secret")
}

// logger builds the daemon's logger; its level is a LevelVar that Reload
// can change.
func (c *Config) logger(w io.Writer) *slog.Logger {
	c.levelVar = new(slog.LevelVar)
	c.levelVar.Set(c.LogLevel)
	opts := &slog.HandlerOptions{Level: c.levelVar}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// fileExists reports whether path exists.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
