package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
)

// swapAuth is the Authorizer every face holds: a reload swaps the
// authenticator behind it at once for all of them. A request checks its
// token against the old keys or the new ones, never a mix.
type swapAuth struct {
	cur atomic.Pointer[auth.Authenticator]
}

// Authenticate checks token with the current authenticator.
func (s *swapAuth) Authenticate(token, scope string) (auth.Principal, error) {
	return s.cur.Load().Authenticate(token, scope)
}

// reloader is what a reload changes: the authenticator, the log level
// and both planes' certificates (through the Daemon's Reloaders).
type reloader struct {
	mu    sync.Mutex // one reload at a time
	auth  swapAuth
	level *slog.LevelVar // nil when the logger was not built by Config.logger
}

// Reload re-reads the JWT verification keys (the secret file, every
// --jwt-public-key file and every *.pem in --jwt-public-key-dir) and both
// planes' certificates, and sets the log level r names. Everything is
// loaded and checked first; only when all of it is good is it swapped in,
// so a reload that fails changes nothing and says why. Calls in flight and
// requests in progress are untouched: the SIP plane is not involved.
func (d *Daemon) Reload(ctx context.Context, r control.ReloadRequest) (control.ReloadReport, error) {
	d.rl.mu.Lock()
	defer d.rl.mu.Unlock()
	level, err := d.newLevel(r.LogLevel)
	if err != nil {
		return control.ReloadReport{}, err
	}
	authn, keys, err := d.authenticator()
	if err != nil {
		return control.ReloadReport{}, d.refused(err)
	}
	pairs := [][2]string{{d.cfg.TLSCert, d.cfg.TLSKey}, {d.cfg.SIPTLS.Cert, d.cfg.SIPTLS.Key}}
	for _, p := range pairs {
		if _, err := tls.LoadX509KeyPair(p[0], p[1]); err != nil {
			return control.ReloadReport{}, d.refused(fmt.Errorf("certificate %s: %w", p[0], err))
		}
	}
	d.rl.auth.cur.Store(authn)
	if d.rl.level != nil {
		d.rl.level.Set(level)
	}
	errs := []error{d.adminCert.Reload(), d.sipCert.Reload()}
	if err := errors.Join(errs...); err != nil { // the files changed since they were checked
		return control.ReloadReport{}, d.refused(err)
	}
	rep := control.ReloadReport{JWTKeys: keys, LogLevel: level.String(), Certs: []string{d.cfg.TLSCert, d.cfg.SIPTLS.Cert}}
	d.log.Info("configuration reloaded", "jwt_keys", rep.JWTKeys, "log_level", rep.LogLevel, "certificates", strings.Join(rep.Certs, ","))
	return rep, nil
}

// newLevel parses the level a reload asks for; "" keeps the current one.
func (d *Daemon) newLevel(s string) (slog.Level, error) {
	cur := d.cfg.LogLevel
	if d.rl.level != nil {
		cur = d.rl.level.Level()
	}
	if s == "" {
		return cur, nil
	}
	if d.rl.level == nil {
		return cur, trunk.FieldErrorf("log_level", "this trunkd's log level cannot be changed while it runs")
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil || !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(s)) {
		return cur, trunk.FieldErrorf("log_level", "%q is not debug, info, warn or error", s)
	}
	return l, nil
}

// refused logs a failed reload and returns it as the error a face
// answers: nothing was changed.
func (d *Daemon) refused(err error) error {
	d.log.Error("reload refused; the previous configuration stays", "err", err)
	return trunk.Errorf(trunk.EUNAVAILABLE, "reload refused, the previous configuration stays: %v", err)
}

// reloadOnSignal is SIGHUP's reload: the files only, the log level kept.
func (d *Daemon) reloadOnSignal() {
	d.Reload(context.Background(), control.ReloadRequest{})
}

// publicKeyArgs lists the --jwt-public-key arguments and, for every
// *.pem file in --jwt-public-key-dir, "NAME=FILE" (its kid is the file
// name without .pem).
func (c *Config) publicKeyArgs() ([]string, error) {
	args := slices.Clone(c.JWTPublicKeys)
	if c.JWTPublicKeyDir == "" {
		return args, nil
	}
	files, err := filepath.Glob(filepath.Join(c.JWTPublicKeyDir, "*.pem"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(c.JWTPublicKeyDir); err != nil {
		return nil, fmt.Errorf("-jwt-public-key-dir: %w", err)
	}
	for _, f := range files {
		args = append(args, strings.TrimSuffix(filepath.Base(f), ".pem")+"="+f)
	}
	return args, nil
}
