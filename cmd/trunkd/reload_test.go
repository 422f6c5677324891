package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/trunk/certs"
)

// edKey writes a new Ed25519 public key to dir/kid.pem and returns a
// trunks:manage token signed with its private key, naming kid.
func edKey(t *testing.T, dir, kid string) string {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	writeFile(t, filepath.Join(dir, kid+".pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"scope": rpc.ScopeManage, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReloadKeepsCallsUp: with a call up through sipp, a JWT key is
// rotated (old and new valid together, then the old dropped), the
// certificate replaced and the log level changed, by the Reload RPC and
// by SIGHUP's reload; failed reloads change nothing and say why; the call
// stays up through all of it and ends normally.
func TestReloadKeepsCallsUp(t *testing.T) {
	dir, keys := t.TempDir(), t.TempDir()
	oldTok := edKey(t, keys, "old")
	d := startDaemonArgs(t, dir, "--drain-timeout", "1s", "--jwt-secret-file", filepath.Join(dir, "jwt.secret"), "--jwt-public-key-dir", keys)
	defer stopDaemon(t, d)
	admin := connect(t, d, dir, token(t, dir, auth.ScopeAdmin))
	ctx := context.Background()

	f := startFarEnd(t, "uas_answer.xml", 1)
	addCarrierTrunk(t, admin, "carrier", f, nil)
	call := placeCall(t, admin, rpc.DialRequest{TrunkID: "carrier", To: "+15551230", TimeoutSec: 5})
	if !call.Answered {
		t.Fatalf("Dial = %+v; want answered", call)
	}

	valid := func(tok string) error {
		_, err := connect(t, d, dir, tok).ListCalls(ctx, "")
		return err
	}
	if err := valid(oldTok); err != nil {
		t.Fatalf("old key's token before rotation: %v", err)
	}
	newTok := edKey(t, keys, "new")
	if err := valid(newTok); rpc.ErrorCode(err) != rpc.CodeUnauthenticated {
		t.Fatalf("new key's token before the reload = %v; want ERR_UNAUTHENTICATED", err)
	}
	rep, err := admin.Reload(ctx, "debug")
	if err != nil || rep.JWTKeys != 3 || rep.LogLevel != "DEBUG" || len(rep.Certificates) != 2 {
		t.Fatalf("Reload = %+v, %v; want 3 keys (secret, old, new), DEBUG, 2 certificates", rep, err)
	}
	if !d.log.Enabled(ctx, slog.LevelDebug) {
		t.Error("log level debug not in force after Reload(debug)")
	}
	for name, tok := range map[string]string{"old": oldTok, "new": newTok} {
		if err := valid(tok); err != nil {
			t.Errorf("%s key's token while both are configured: %v", name, err)
		}
	}

	os.Remove(filepath.Join(keys, "old.pem"))
	crt, key, _ := certs.SelfSigned([]string{"127.0.0.1"})
	writeFile(t, filepath.Join(dir, "tls.key"), key)
	writeFile(t, filepath.Join(dir, "tls.crt"), crt)
	d.reloadOnSignal() // SIGHUP
	if err := valid(oldTok); rpc.ErrorCode(err) != rpc.CodeUnauthenticated {
		t.Errorf("old key's token after it was removed and reloaded = %v; want ERR_UNAUTHENTICATED", err)
	}
	if err := valid(newTok); err != nil {
		t.Errorf("new key's token after SIGHUP: %v", err)
	}
	if !bytes.Equal(d.adminCert.Certificate().Certificate[0], mustPair(t, crt, key)) {
		t.Error("admin certificate not replaced by SIGHUP's reload")
	}
	if !d.log.Enabled(ctx, slog.LevelDebug) {
		t.Error("SIGHUP changed the log level; want it kept")
	}

	// Failed reloads: nothing changes, the answer says why.
	admin = connect(t, d, dir, token(t, dir, auth.ScopeAdmin)) // pins the new certificate
	writeFile(t, filepath.Join(keys, "broken.pem"), []byte("not a key"))
	_, err = admin.Reload(ctx, "info")
	if e := (*rpc.Error)(nil); !errors.As(err, &e) || e.Code != rpc.CodeUnavailable || !strings.Contains(e.Message, "broken.pem") {
		t.Errorf("Reload with a broken key file = %v; want ERR_UNAVAILABLE naming broken.pem", err)
	}
	if !d.log.Enabled(ctx, slog.LevelDebug) {
		t.Error("a failed reload changed the log level")
	}
	if err := valid(newTok); err != nil {
		t.Errorf("new key's token after a failed reload: %v", err)
	}
	os.Remove(filepath.Join(keys, "broken.pem"))
	_, err = admin.Reload(ctx, "loud")
	if e := (*rpc.Error)(nil); !errors.As(err, &e) || e.Code != rpc.CodeInvalidArgument || e.Field != "log_level" {
		t.Errorf("Reload(loud) = %v; want ERR_INVALID_ARGUMENT on log_level", err)
	}
	if _, err := connect(t, d, dir, token(t, dir, rpc.ScopeManage)).Reload(ctx, ""); rpc.ErrorCode(err) != rpc.CodePermissionDenied {
		t.Errorf("Reload with trunks:manage = %v; want ERR_PERMISSION_DENIED", err)
	}

	if _, err := admin.Reload(ctx, "warn"); err != nil { // sipgo's logger is process-wide: quiet it for the next tests
		t.Errorf("Reload(warn) = %v", err)
	}

	// The call went through every reload.
	if l := listCalls(t, admin, "carrier"); len(l) != 1 || l[0].CallID != call.CallID || l[0].State != "answered" {
		t.Fatalf("ListCalls after the reloads = %+v; want call %s still answered", l, call.CallID)
	}
	hangup(t, admin, call.CallID)
	waitTrunk(t, admin, "carrier", "the call to end", func(cfg rpc.TrunkConfig) bool { return cfg.ActiveCalls == 0 })
	f.stop()
	if st := f.stats(); st["SuccessfulCall(C)"] != 1 || st["FailedCall(C)"] != 0 {
		t.Errorf("sipp: %d successful, %d failed calls; want the one call completed\n%s", st["SuccessfulCall(C)"], st["FailedCall(C)"], f.trace())
	}
}

func mustPair(t *testing.T, crt, key []byte) []byte {
	t.Helper()
	p, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return p.Certificate[0]
}

// TestSIGHUPReloads sends the process a real SIGHUP while run serves, as
// systemctl reload does: systemd hears RELOADING=1 then READY=1, and a
// key added to -jwt-public-key-dir is valid afterwards, without a restart.
func TestSIGHUPReloads(t *testing.T) {
	sock, got := notifySocket(t)
	dir, keys := t.TempDir(), t.TempDir()
	edKey(t, keys, "old")
	addr := fmt.Sprintf("127.0.0.1:%d", freeSIPPort(t))
	env := map[string]string{"NOTIFY_SOCKET": sock}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--listen", addr, "--data", dir, "--jwt-public-key-dir", keys, "--log-level", "warn"},
			func(k string) string { return env[k] }, &stderrSync{w: &stderr})
	}()
	waitState(t, got, "READY=1")
	newTok := edKey(t, keys, "new")
	listCalls := func() error {
		tc, err := rpc.PinnedTLSConfig(filepath.Join(dir, "tls.crt"), "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		c, err := rpc.Dial(context.Background(), addr, tc, newTok)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.ListCalls(context.Background(), "")
		return err
	}
	if err := listCalls(); rpc.ErrorCode(err) != rpc.CodeUnauthenticated {
		t.Fatalf("new key before SIGHUP = %v; want ERR_UNAUTHENTICATED", err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitState(t, got, "RELOADING=1")
	waitState(t, got, "READY=1")
	if err := listCalls(); err != nil {
		t.Errorf("new key after SIGHUP = %v; want it valid", err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("run exited %d; stderr:\n%s", code, stderr.String())
	}
}

// stderrSync serialises writes to a buffer the test reads at the end.
type stderrSync struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *stderrSync) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
