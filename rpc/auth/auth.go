package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Scopes a token's space-separated "scope" claim may grant.
const (
	ScopeRead   = "trunks:read"   // GetTrunk, ListTrunks, ExplainMatch, ListCalls
	ScopeManage = "trunks:manage" // everything
	ScopeCalls  = "calls:manage"  // Dial, Hangup
	ScopeAdmin  = "trunks:admin"  // the operator: everything, in every organization, managed trunks too

	ScopeAgentsRead   = "agents:read"   // GetAgent, ListAgents
	ScopeAgentsManage = "agents:manage" // the agent reads plus PutAgent, RemoveAgent, DeployAgentAsSip, UndeployAgentAsSip
)

// Token limits.
const (
	MaxTokenSize     = 8 << 10
	DefaultLeeway    = 30 * time.Second
	DefaultCacheSize = 4096
	MinSecretSize    = 32
)

// PublicKey is a verification key for asymmetric tokens, optionally named by
// the kid header.
type PublicKey struct {
	KID string
	Key crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// Config configures an Authenticator.
type Config struct {
	Secret     []byte // HMAC secret for HS256/384/512; nil for none
	PublicKeys []PublicKey
	Issuer     string        // required iss, when set
	Audience   string        // required aud, when set
	Leeway     time.Duration // for exp, nbf and iat; 0 means DefaultLeeway
	CacheSize  int           // verified tokens kept; 0 means DefaultCacheSize, <0 disables
	Now        func() time.Time
}

// Authenticator verifies admin JWTs and checks their scopes. Verified
// tokens are cached until they expire, so a client that sends the same
// token on every request pays for one signature check.
type Authenticator struct {
	secret  []byte
	keys    []PublicKey
	byKID   map[string]PublicKey
	parser  *jwt.Parser
	leeway  time.Duration
	now     func() time.Time
	maxSize int

	mu       sync.Mutex
	cache    map[[32]byte]grant
	verified atomic.Int64 // signature checks done, for tests
}

// grant is what a verified token allows, and until when.
type grant struct {
	scopes scopeSet
	exp    time.Time
	org    string   // the org claim
	orgs   []string // the orgs claim
}

type scopeSet uint8

const (
	grantRead scopeSet = 1 << iota
	grantManage
	grantCalls
	grantAdmin
	grantAgentsRead
	grantAgentsManage
)

// NewAuthenticator checks cfg and returns an Authenticator for it.
func NewAuthenticator(cfg Config) (*Authenticator, error) {
	a := &Authenticator{
		secret:  cfg.Secret,
		byKID:   map[string]PublicKey{},
		leeway:  cfg.Leeway,
		now:     cfg.Now,
		maxSize: cfg.CacheSize,
		cache:   map[[32]byte]grant{},
	}
	if a.leeway <= 0 {
		a.leeway = DefaultLeeway
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.maxSize == 0 {
		a.maxSize = DefaultCacheSize
	}
	if err := a.addKeys(cfg); err != nil {
		return nil, err
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(a.methods()), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithLeeway(a.leeway), jwt.WithTimeFunc(a.now), jwt.WithStrictDecoding(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	a.parser = jwt.NewParser(opts...)
	return a, nil
}

func (a *Authenticator) addKeys(cfg Config) error {
	if len(cfg.Secret) == 0 && len(cfg.PublicKeys) == 0 {
		return errors.New("jwt: no key configured: give a secret file or a public key")
	}
	if len(cfg.Secret) > 0 && len(cfg.Secret) < MinSecretSize {
		return fmt.Errorf("jwt: the HMAC secret is %d bytes; at least %d random bytes are required", len(cfg.Secret), MinSecretSize)
	}
	for _, k := range cfg.PublicKeys {
		if len(algsOf(k.Key)) == 0 {
			return fmt.Errorf("jwt: key %q: unsupported key type %T", k.KID, k.Key)
		}
		if rk, ok := k.Key.(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
			return fmt.Errorf("jwt: key %q: RSA keys under 2048 bits are refused", k.KID)
		}
		if k.KID != "" {
			if _, dup := a.byKID[k.KID]; dup {
				return fmt.Errorf("jwt: key id %q is given twice", k.KID)
			}
			a.byKID[k.KID] = k
		}
		a.keys = append(a.keys, k)
	}
	return nil
}

// methods lists the algorithms the configured keys verify.
func (a *Authenticator) methods() []string {
	var algs []string
	if len(a.secret) > 0 {
		algs = append(algs, "HS256", "HS384", "HS512")
	}
	for _, k := range a.keys {
		algs = append(algs, algsOf(k.Key)...)
	}
	return algs
}

// algsOf lists the JWS algorithms a public key verifies.
func algsOf(key crypto.PublicKey) []string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}
		case elliptic.P384():
			return []string{"ES384"}
		case elliptic.P521():
			return []string{"ES512"}
		}
	case ed25519.PublicKey:
		return []string{"EdDSA"}
	}
	return nil
}

func fits(alg string, key crypto.PublicKey) bool {
	for _, a := range algsOf(key) {
		if a == alg {
			return true
		}
	}
	return false
}

// Authorize verifies token and checks that it grants scope. It returns nil
// or an *Error wrapping ErrUnauthenticated or ErrPermissionDenied.
func (a *Authenticator) Authorize(token, scope string) error {
	_, err := a.Authenticate(token, scope)
	return err
}

// Authenticate is Authorize that also returns who the token speaks for.
func (a *Authenticator) Authenticate(token, scope string) (Principal, error) {
	g, err := a.verify(token)
	if err != nil {
		return Principal{}, err
	}
	if !g.scopes.allows(scope) {
		return Principal{}, &Error{Kind: ErrPermissionDenied, Message: "token lacks scope " + scope}
	}
	return Principal{Org: g.org, Orgs: g.orgs, Admin: g.scopes&grantAdmin != 0}, nil
}

func (s scopeSet) allows(scope string) bool {
	if s&grantAdmin != 0 {
		return true
	}
	switch scope {
	case ScopeRead:
		return s&(grantRead|grantManage) != 0
	case ScopeManage:
		return s&grantManage != 0
	case ScopeCalls:
		return s&(grantCalls|grantManage) != 0
	case ScopeAgentsRead:
		return s&(grantAgentsRead|grantAgentsManage|grantManage) != 0
	case ScopeAgentsManage:
		return s&(grantAgentsManage|grantManage) != 0
	}
	return false
}

func parseScopes(claim string) scopeSet {
	var s scopeSet
	for _, f := range strings.Fields(claim) {
		switch f {
		case ScopeRead:
			s |= grantRead
		case ScopeManage:
			s |= grantManage
		case ScopeCalls:
			s |= grantCalls
		case ScopeAdmin:
			s |= grantAdmin
		case ScopeAgentsRead:
			s |= grantAgentsRead
		case ScopeAgentsManage:
			s |= grantAgentsManage
		}
	}
	return s
}

func unauthenticated(msg string) *Error { return &Error{Kind: ErrUnauthenticated, Message: msg} }

// verify returns the grant of a valid token, from the cache when it can.
func (a *Authenticator) verify(token string) (grant, error) {
	if token == "" {
		return grant{}, unauthenticated("admin_token is required")
	}
	if len(token) > MaxTokenSize {
		return grant{}, unauthenticated(fmt.Sprintf("token is larger than %d bytes", MaxTokenSize))
	}
	key := sha256.Sum256([]byte(token))
	if g, ok := a.cached(key); ok {
		return g, nil
	}
	var c tokenClaims
	a.verified.Add(1)
	if _, err := a.parser.ParseWithClaims(token, &c, a.keyFor); err != nil {
		return grant{}, unauthenticated(describe(err))
	}
	g := grant{scopes: parseScopes(c.Scope), exp: c.ExpiresAt.Time, org: c.Org, orgs: c.Orgs}
	a.remember(key, g)
	return g, nil
}

type tokenClaims struct {
	jwt.RegisteredClaims
	Scope string   `json:"scope"`
	Org   string   `json:"org,omitempty"`  // an organization key: acts for this organization only
	Orgs  []string `json:"orgs,omitempty"` // a personal token: acts for the one the request names
}

func (a *Authenticator) cached(key [32]byte) (grant, bool) {
	if a.maxSize < 0 {
		return grant{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	g, ok := a.cache[key]
	if !ok {
		return grant{}, false
	}
	if !a.now().Before(g.exp.Add(a.leeway)) {
		delete(a.cache, key)
		return grant{}, false
	}
	return g, true
}

func (a *Authenticator) remember(key [32]byte, g grant) {
	if a.maxSize < 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= a.maxSize {
		a.evict()
	}
	a.cache[key] = g
}

// evict drops expired entries, or one arbitrary entry when none has
// expired. The caller holds a.mu.
func (a *Authenticator) evict() {
	now := a.now()
	for k, g := range a.cache {
		if !now.Before(g.exp.Add(a.leeway)) {
			delete(a.cache, k)
		}
	}
	for k := range a.cache {
		if len(a.cache) < a.maxSize {
			return
		}
		delete(a.cache, k)
	}
}

// keyFor picks the verification key for a token: by kid when it names
// one, else every configured key of the token's algorithm family.
func (a *Authenticator) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if raw, ok := t.Header["kid"]; ok {
		kid, _ := raw.(string)
		k, found := a.byKID[kid]
		if !found {
			return nil, errUnknownKID
		}
		if !fits(alg, k.Key) {
			return nil, errWrongAlg
		}
		return k.Key, nil
	}
	if strings.HasPrefix(alg, "HS") {
		if len(a.secret) == 0 {
			return nil, errWrongAlg
		}
		return a.secret, nil
	}
	var set jwt.VerificationKeySet
	for _, k := range a.keys {
		if fits(alg, k.Key) {
			set.Keys = append(set.Keys, k.Key)
		}
	}
	if len(set.Keys) == 0 {
		return nil, errWrongAlg
	}
	return set, nil
}

var (
	errUnknownKID = errors.New("unknown key id")
	errWrongAlg   = errors.New("no configured key for the token's algorithm")
)

// describe turns a parse failure into a message that helps the client and
// reveals nothing about the keys.
func describe(err error) string {
	switch {
	case errors.Is(err, errUnknownKID):
		return "token names an unknown key id"
	case errors.Is(err, errWrongAlg):
		return "token algorithm not accepted"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token issued in the future (iat)"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token lacks a required claim (exp, or iss/aud when configured)"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "token issuer not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "token audience not accepted"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "token signature invalid"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return "token claims invalid"
	}
	return "invalid token"
}

// MintToken returns an HS256 token granting scope for ttl, with iat, and
// iss and aud when given.
func MintToken(secret []byte, scope string, ttl time.Duration, issuer, audience string) (string, error) {
	return MintOrgToken(secret, scope, ttl, issuer, audience, "", nil)
}

// MintOrgToken is MintToken with the org claim (an organization key) or
// the orgs claim (a personal token) when given.
func MintOrgToken(secret []byte, scope string, ttl time.Duration, issuer, audience, org string, orgs []string) (string, error) {
	now := time.Now()
	c := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Scope: scope,
		Org:   org,
		Orgs:  orgs,
	}
	if audience != "" {
		c.Audience = jwt.ClaimStrings{audience}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// LoadSecretFile reads an HMAC secret: the file's content with surrounding
// whitespace trimmed.
func LoadSecretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := []byte(strings.TrimSpace(string(b)))
	if len(s) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// LoadPublicKeyFlag loads the key of a --jwt-public-key argument,
// "[KID=]FILE".
func LoadPublicKeyFlag(arg string) (PublicKey, error) {
	kid, file, ok := strings.Cut(arg, "=")
	if !ok {
		kid, file = "", arg
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return PublicKey{}, err
	}
	key, err := ParsePublicKeyPEM(data)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%s: %w", file, err)
	}
	return PublicKey{KID: kid, Key: key}, nil
}

// ParsePublicKeyPEM parses the first PEM block: a PKIX "PUBLIC KEY", a
// PKCS #1 "RSA PUBLIC KEY" or a "CERTIFICATE".
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return c.PublicKey, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a public key or certificate", block.Type)
}
