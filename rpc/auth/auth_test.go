package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	testSecret      = []byte("an-hmac-secret-of-at-least-32-bytes!!")
	testNow         = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	rsaKey, _       = rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _        = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edKey, _ = ed25519.GenerateKey(rand.Reader)
)

// claims builds a claim set valid at testNow.
func claims(scope string, edit ...func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"scope": scope, "iat": testNow.Unix(), "exp": testNow.Add(time.Hour).Unix()}
	for _, e := range edit {
		e(c)
	}
	return c
}

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newAuth(t *testing.T, cfg Config) *Authenticator {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	a, err := NewAuthenticator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAuthorize(t *testing.T) {
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&rsaKey.PublicKey))})
	all := Config{Secret: testSecret, PublicKeys: []PublicKey{
		{KID: "rsa1", Key: &rsaKey.PublicKey}, {KID: "ec1", Key: &ecKey.PublicKey}, {Key: edPub},
	}}
	rsaOnly := Config{PublicKeys: []PublicKey{{Key: &rsaKey.PublicKey}}}
	withIss := Config{Secret: testSecret, Issuer: "ops", Audience: "trunkd"}
	noneTok := func() string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(ScopeManage)).SignedString(jwt.UnsafeAllowNoneSignatureType)
		return s
	}()
	tests := []struct {
		name  string
		cfg   Config
		token func(t *testing.T) string
		scope string
		want  error // nil = authorised
	}{
		{"HS256", all, func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, testSecret, claims(ScopeManage), "") }, ScopeManage, nil},
		{"HS384", all, func(t *testing.T) string { return sign(t, jwt.SigningMethodHS384, testSecret, claims(ScopeManage), "") }, ScopeManage, nil},
		{"HS512", all, func(t *testing.T) string { return sign(t, jwt.SigningMethodHS512, testSecret, claims(ScopeManage), "") }, ScopeManage, nil},
		{"RS256 by kid", all, func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, rsaKey, claims(ScopeRead), "rsa1") }, ScopeRead, nil},
		{"PS256 no kid", all, func(t *testing.T) string { return sign(t, jwt.SigningMethodPS256, rsaKey, claims(ScopeRead), "") }, ScopeRead, nil},
		{"ES256", all, func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, ecKey, claims(ScopeRead), "ec1") }, ScopeRead, nil},
		{"EdDSA", all, func(t *testing.T) string { return sign(t, jwt.SigningMethodEdDSA, edKey, claims(ScopeRead), "") }, ScopeRead, nil},
		{"alg none", all, func(t *testing.T) string { return noneTok }, ScopeRead, ErrUnauthenticated},
		{"wrong HMAC key", all, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), claims(ScopeRead), "")
		}, ScopeRead, ErrUnauthenticated},
		{"HS/RS confusion", rsaOnly, func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, rsaPEM, claims(ScopeRead), "") }, ScopeRead, ErrUnauthenticated},
		{"HS with RSA kid", all, func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, rsaPEM, claims(ScopeRead), "rsa1") }, ScopeRead, ErrUnauthenticated},
		{"unknown kid", all, func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, rsaKey, claims(ScopeRead), "nope") }, ScopeRead, ErrUnauthenticated},
		{"kid of another key type", all, func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, rsaKey, claims(ScopeRead), "ec1") }, ScopeRead, ErrUnauthenticated},
		{"other RSA key", all, func(t *testing.T) string {
			other, _ := rsa.GenerateKey(rand.Reader, 2048)
			return sign(t, jwt.SigningMethodRS256, other, claims(ScopeRead), "")
		}, ScopeRead, ErrUnauthenticated},
		{"expired", all, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, testSecret, claims(ScopeRead, func(c jwt.MapClaims) { c["exp"] = testNow.Add(-time.Minute).Unix() }), "")
		}, ScopeRead, ErrUnauthenticated},
		{"expired within leeway", all, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, testSecret, claims(ScopeRead, func(c jwt.MapClaims) { c["exp"] = testNow.Add(-10 * time.Second).Unix() }), "")
		}, ScopeRead, nil},
		{"nbf in future", all, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, testSecret, claims(ScopeRead, func(c jwt.MapClaims) { c["nbf"] = testNow.Add(time.Minute).Unix() }), "")
		}, ScopeRead, ErrUnauthenticated},
		{"iat in future", all, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, testSecret, claims(ScopeRead, func(c jwt.MapClaims) { c["iat"] = testNow.Add(time.Hour).Unix() }), "")
		}, ScopeRead, ErrUnauthenticated},
		{"missing exp", all, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, testSecret, claims(ScopeRead, func(c jwt.MapClaims) { delete(c, "exp") }), "")
		}, ScopeRead, ErrUnauthenticated},
		{"issuer and audience ok", withIss, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, testSecret, claims(ScopeRead, func(c jwt.MapClaims) { c["iss"], c["aud"] = "ops", "trunkd" }), "")
		}, ScopeRead, nil},
		{"wrong issuer", withIss, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, testSecret, claims(ScopeRead, func(c jwt.MapClaims) { c["iss"], c["aud"] = "evil", "trunkd" }), "")
		}, ScopeRead, ErrUnauthenticated},
		{"wrong audience", withIss, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, testSecret, claims(ScopeRead, func(c jwt.MapClaims) { c["iss"], c["aud"] = "ops", "other" }), "")
		}, ScopeRead, ErrUnauthenticated},
		{"missing audience", withIss, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, testSecret, claims(ScopeRead, func(c jwt.MapClaims) { c["iss"] = "ops" }), "")
		}, ScopeRead, ErrUnauthenticated},
		{"garbage", all, func(t *testing.T) string { return "not.a.jwt" }, ScopeRead, ErrUnauthenticated},
		{"empty", all, func(t *testing.T) string { return "" }, ScopeRead, ErrUnauthenticated},
		{"oversize", all, func(t *testing.T) string { return strings.Repeat("a", MaxTokenSize+1) }, ScopeRead, ErrUnauthenticated},
		{"megabyte of dots", all, func(t *testing.T) string { return strings.Repeat(".", 1<<20) }, ScopeRead, ErrUnauthenticated},
		{"read scope writing", all, func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, testSecret, claims(ScopeRead), "") }, ScopeManage, ErrPermissionDenied},
		{"manage scope reading", all, func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, testSecret, claims(ScopeManage), "") }, ScopeRead, nil},
		{"several scopes", all, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, testSecret, claims("openid trunks:read calls:manage"), "")
		}, ScopeCalls, nil},
		{"manage scope placing calls", all, func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, testSecret, claims(ScopeManage), "") }, ScopeCalls, nil},
		{"read scope placing calls", all, func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, testSecret, claims(ScopeRead), "") }, ScopeCalls, ErrPermissionDenied},
		{"calls scope writing trunks", all, func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, testSecret, claims(ScopeCalls), "") }, ScopeManage, ErrPermissionDenied},
		{"calls scope reading", all, func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, testSecret, claims(ScopeCalls), "") }, ScopeRead, ErrPermissionDenied},
		{"no scope", all, func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, testSecret, claims(""), "") }, ScopeRead, ErrPermissionDenied},
		{"scope as array", all, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, testSecret, claims("", func(c jwt.MapClaims) { c["scope"] = []string{ScopeManage} }), "")
		}, ScopeRead, ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAuth(t, tt.cfg)
			err := a.Authorize(tt.token(t), tt.scope)
			if (tt.want == nil) != (err == nil) || !errors.Is(err, tt.want) {
				t.Errorf("Authorize() = %v; want %v", err, tt.want)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestAuthCacheSkipsVerification(t *testing.T) {
	now := testNow
	a := newAuth(t, Config{PublicKeys: []PublicKey{{Key: edPub}}, Now: func() time.Time { return now }})
	tok := sign(t, jwt.SigningMethodEdDSA, edKey, claims(ScopeRead), "")
	for range 5 {
		if err := a.Authorize(tok, ScopeRead); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.verified.Load(); n != 1 {
		t.Errorf("5 requests with one token verified %d signatures; want 1", n)
	}
	if err := a.Authorize(tok, ScopeManage); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("cached read token writing = %v; want %s", err, ErrPermissionDenied)
	}
	now = testNow.Add(2 * time.Hour)
	if err := a.Authorize(tok, ScopeRead); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("cached token after expiry = %v; want %s", err, ErrUnauthenticated)
	}
}

func TestAuthCacheBounded(t *testing.T) {
	a := newAuth(t, Config{Secret: testSecret, CacheSize: 8})
	for i := range 50 {
		tok := sign(t, jwt.SigningMethodHS256, testSecret, claims(ScopeRead, func(c jwt.MapClaims) { c["jti"] = strconv.Itoa(i) }), "")
		if err := a.Authorize(tok, ScopeRead); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(a.cache); n > 8 {
		t.Errorf("cache holds %d tokens; want at most 8", n)
	}
	for range 10 {
		a.Authorize("garbage", ScopeRead)
	}
	if n := len(a.cache); n > 8 {
		t.Errorf("failures were cached: %d entries", n)
	}
}

func TestNewAuthenticatorRefuses(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, cfg := range map[string]Config{
		"no key":       {},
		"short secret": {Secret: []byte("short")},
		"dup kid":      {PublicKeys: []PublicKey{{KID: "a", Key: edPub}, {KID: "a", Key: &ecKey.PublicKey}}},
		"bad type":     {PublicKeys: []PublicKey{{Key: "not a key"}}},
		"small rsa":    {PublicKeys: []PublicKey{{Key: &small.PublicKey}}},
	} {
		if _, err := NewAuthenticator(cfg); err == nil {
			t.Errorf("NewAuthenticator(%s) = nil error; want a refusal", name)
		}
	}
}

func TestLoadKeysAndSecret(t *testing.T) {
	dir := t.TempDir()
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(edPub))})
	path := filepath.Join(dir, "ed.pem")
	os.WriteFile(path, pub, 0o644)
	k, err := LoadPublicKeyFlag("main=" + path)
	if err != nil || k.KID != "main" {
		t.Fatalf("LoadPublicKeyFlag = %+v, %v", k, err)
	}
	if _, err := LoadPublicKeyFlag(path); err != nil {
		t.Errorf("LoadPublicKeyFlag without kid: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "s"), []byte("  \n"+string(testSecret)+"\n\n"), 0o600)
	s, err := LoadSecretFile(filepath.Join(dir, "s"))
	if err != nil || string(s) != string(testSecret) {
		t.Errorf("LoadSecretFile = %q, %v; want the trimmed secret", s, err)
	}
	os.WriteFile(filepath.Join(dir, "e"), []byte(" \n"), 0o600)
	if _, err := LoadSecretFile(filepath.Join(dir, "e")); err == nil {
		t.Error("LoadSecretFile of a blank file succeeded")
	}
	tok, err := MintToken(s, ScopeManage, time.Hour, "", "")
	if err != nil {
		t.Fatal(err)
	}
	a := newAuth(t, Config{Secret: s, Now: time.Now})
	if err := a.Authorize(tok, ScopeManage); err != nil {
		t.Errorf("minted token: %v", err)
	}
}

// FuzzAuthenticate: arbitrary tokens never authorise and never panic.
func FuzzAuthenticate(f *testing.F) {
	f.Add("eyJhbGciOiJub25lIn0.eyJzY29wZSI6InRydW5rczptYW5hZ2UifQ.")
	f.Add("a.b.c")
	f.Add(strings.Repeat(".", 100))
	a, _ := NewAuthenticator(Config{Secret: testSecret, PublicKeys: []PublicKey{{Key: edPub}}})
	f.Fuzz(func(t *testing.T, tok string) {
		if err := a.Authorize(tok, ScopeRead); err == nil {
			t.Fatalf("token %q authorised", tok)
		}
	})
}

func BenchmarkAuthorize(b *testing.B) {
	hs := sign(&testing.T{}, jwt.SigningMethodHS256, testSecret, claims(ScopeRead), "")
	ed := sign(&testing.T{}, jwt.SigningMethodEdDSA, edKey, claims(ScopeRead), "")
	for _, bc := range []struct {
		name  string
		tok   string
		cache int
	}{{"HS256/uncached", hs, -1}, {"HS256/cached", hs, 0}, {"EdDSA/uncached", ed, -1}, {"EdDSA/cached", ed, 0}} {
		b.Run(bc.name, func(b *testing.B) {
			a, _ := NewAuthenticator(Config{Secret: testSecret, PublicKeys: []PublicKey{{Key: edPub}}, CacheSize: bc.cache,
				Now: func() time.Time { return testNow }})
			for b.Loop() {
				if err := a.Authorize(bc.tok, ScopeRead); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
