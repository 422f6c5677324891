package record

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	fastjson "github.com/segmentio/encoding/json"
	"github.com/trunkd/trunkd/trunk"
)

// Version is the record format Encode writes. Decode reads it and every
// earlier one.
const Version = 2

// MaxSize bounds a stored value; records are a few hundred bytes.
const MaxSize = 1 << 20

// KeySize is the length of the secret key.
const KeySize = 32

// stored is a trunk as stored: the secrets are replaced by their sealed
// form, and the store's bookkeeping follows.
type stored struct {
	trunk.Trunk
	SIPPassword    []byte `json:"sip_password_sealed"`
	APIBearerToken []byte `json:"api_bearer_token_sealed"`

	Revision  revision `json:"revision,omitempty"`
	CreatedAt *stamp   `json:"created_at,omitempty"`
	UpdatedAt *stamp   `json:"updated_at,omitempty"`
}

// stamp is a time.Time read as encoding/json reads one: through its own
// UnmarshalJSON (strict RFC 3339). segmentio's decoder parses a bare
// time.Time with a parser of its own that takes any character where
// the 'T' goes.
type stamp struct{ time.Time }

func (s *stamp) UnmarshalJSON(b []byte) error { return s.Time.UnmarshalJSON(b) }

// revision is a uint64 read through strconv, as encoding/json reads one:
// segmentio's decoder took 20700000000000000000 (above 2^64-1) without
// an error. Both decoders call this method, so they agree.
type revision uint64

func (r *revision) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // as encoding/json: a null leaves the number as it is
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("revision %s: %w", b, err)
	}
	*r = revision(n)
	return nil
}

// Codec encodes and decodes records with one secret key. It is safe for
// concurrent use.
type Codec struct{ aead cipher.AEAD }

// NewCodec returns a Codec sealing secrets with key (KeySize bytes).
func NewCodec(key []byte) (*Codec, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("store: secret key is %d bytes; want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Codec{aead: aead}, nil
}

// Encode returns the current-version record of t, Meta included.
func (c *Codec) Encode(t *trunk.Trunk) ([]byte, error) {
	r := stored{Trunk: *t, Revision: revision(t.Meta.Revision), CreatedAt: timePtr(t.Meta.CreatedAt), UpdatedAt: timePtr(t.Meta.UpdatedAt)}
	r.Trunk.SIPPassword, r.Trunk.APIBearerToken = "", ""
	var err error
	if r.SIPPassword, err = c.sealString(t.TrunkID, "sip_password", t.SIPPassword); err != nil {
		return nil, err
	}
	if r.APIBearerToken, err = c.sealString(t.TrunkID, "api_bearer_token", t.APIBearerToken); err != nil {
		return nil, err
	}
	b, err := json.Marshal(&r)
	if err != nil {
		return nil, fmt.Errorf("store: encode %q: %w", t.TrunkID, err)
	}
	// The version byte goes in front in place: json.Marshal's slice
	// mostly has room for one more byte, so the record is not copied.
	b = append(b, 0)
	copy(b[1:], b)
	b[0] = Version
	return b, nil
}

func timePtr(t time.Time) *stamp {
	if t.IsZero() {
		return nil
	}
	return &stamp{t.UTC()}
}

// Decode reads the record stored under id, of any version up to Version.
func (c *Codec) Decode(id string, v []byte) (*trunk.Trunk, error) {
	r, err := parse(id, v)
	if err != nil {
		return nil, err
	}
	t := r.Trunk
	if t.SIPPassword, err = c.openString(id, "sip_password", r.SIPPassword); err != nil {
		return nil, corrupt(id, err)
	}
	if t.APIBearerToken, err = c.openString(id, "api_bearer_token", r.APIBearerToken); err != nil {
		return nil, corrupt(id, err)
	}
	if t.TrunkID != id {
		return nil, corrupt(id, fmt.Errorf("record names trunk %q", t.TrunkID))
	}
	t.Meta = r.meta()
	t.Normalize()
	return &t, nil
}

// ReadMeta returns the bookkeeping of the record stored under id without
// opening its secrets, for a store's write transaction (if_revision,
// created_at).
func ReadMeta(id string, v []byte) (trunk.Meta, error) {
	r, err := parse(id, v)
	if err != nil {
		return trunk.Meta{}, err
	}
	return r.meta(), nil
}

// VersionOf returns the format version of a stored value.
func VersionOf(v []byte) byte {
	if len(v) == 0 {
		return 0
	}
	return v[0]
}

func parse(id string, v []byte) (*stored, error) {
	if len(v) < 2 || len(v) > MaxSize {
		return nil, corrupt(id, fmt.Errorf("record of %d bytes", len(v)))
	}
	if v[0] == 0 || v[0] > Version {
		return nil, corrupt(id, fmt.Errorf("record format version %d", v[0]))
	}
	var r stored
	if err := fastjson.Unmarshal(v[1:], &r); err != nil {
		return nil, corrupt(id, err)
	}
	return &r, nil
}

func (r *stored) meta() trunk.Meta {
	m := trunk.Meta{Revision: uint64(r.Revision)}
	if r.CreatedAt != nil {
		m.CreatedAt = r.CreatedAt.UTC()
	}
	if r.UpdatedAt != nil {
		m.UpdatedAt = r.UpdatedAt.UTC()
	}
	return m
}

func corrupt(id string, err error) error {
	return fmt.Errorf("store: trunk %q: corrupt record: %w", id, err)
}

// keyCheckField is the additional data of the key check value.
var keyCheckField = []byte("key_check")

// SealCheck seals marker into the value a store keeps to recognise its
// key at open.
func (c *Codec) SealCheck(marker []byte) ([]byte, error) {
	return c.seal(nil, keyCheckField, marker)
}

// OpenCheck reports whether sealed was made by SealCheck with this key.
func (c *Codec) OpenCheck(sealed []byte) bool {
	_, err := c.open(nil, keyCheckField, sealed)
	return err == nil
}

// seal returns nonce||ciphertext of plain, bound to (id, field).
func (c *Codec) seal(id, field, plain []byte) ([]byte, error) {
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(plain)+c.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return c.aead.Seal(nonce, nonce, plain, additional(id, field)), nil
}

func (c *Codec) open(id, field, sealed []byte) ([]byte, error) {
	n := c.aead.NonceSize()
	if len(sealed) < n+c.aead.Overhead() {
		return nil, errors.New("sealed value too short")
	}
	return c.aead.Open(nil, sealed[:n], sealed[n:], additional(id, field))
}

// additional binds a sealed value to its trunk and field. Its "v1" is the
// sealing scheme, not the record version: it never changes with fields.
func additional(id, field []byte) []byte {
	return append(append(append([]byte("trunkd/v1\x00"), id...), 0), field...)
}

// sealString seals a secret; the empty secret stays empty.
func (c *Codec) sealString(id, field, plain string) ([]byte, error) {
	if plain == "" {
		return []byte{}, nil
	}
	return c.seal([]byte(id), []byte(field), []byte(plain))
}

func (c *Codec) openString(id, field string, sealed []byte) (string, error) {
	if len(sealed) == 0 {
		return "", nil
	}
	p, err := c.open([]byte(id), []byte(field), sealed)
	if err != nil {
		return "", fmt.Errorf("%s: cannot decrypt (wrong key or tampered record)", field)
	}
	return string(p), nil
}

// CheckRevision returns trunk.ECONFLICT when want is not 0 and the stored
// revision have differs; every store checks if_revision so,
// inside its write transaction.
func CheckRevision(id string, have, want uint64) error {
	if want == 0 || want == have {
		return nil
	}
	return trunk.Errorf(trunk.ECONFLICT, "trunk %q is at revision %d, not %d: it changed since it was read", id, have, want)
}
