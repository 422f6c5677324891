package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/trunkd/trunkd/trunk"
)

// record is a trunk as stored, JSON-encoded behind a schema version byte:
// the secrets are replaced by their sealed form.
type record struct {
	trunk.Trunk
	SIPPassword    []byte `json:"sip_password_sealed"`
	APIBearerToken []byte `json:"api_bearer_token_sealed"`
}

// maxRecord bounds a stored value; records are a few hundred bytes.
const maxRecord = 1 << 20

func (db *DB) encode(t *trunk.Trunk) ([]byte, error) {
	r := record{Trunk: *t}
	r.Trunk.SIPPassword, r.Trunk.APIBearerToken = "", ""
	var err error
	if r.SIPPassword, err = db.crypt.sealString(t.TrunkID, "sip_password", t.SIPPassword); err != nil {
		return nil, err
	}
	if r.APIBearerToken, err = db.crypt.sealString(t.TrunkID, "api_bearer_token", t.APIBearerToken); err != nil {
		return nil, err
	}
	b, err := json.Marshal(&r)
	if err != nil {
		return nil, fmt.Errorf("store: encode %q: %w", t.TrunkID, err)
	}
	return append([]byte{SchemaVersion}, b...), nil
}

// decode reads a stored record. The file is only semi-trusted: a corrupt
// value is an error, never a panic, and encoding/json allocates only in
// proportion to the bytes it reads (unlike msgpack/v5's decoder, which
// trusts declared lengths).
func (db *DB) decode(id string, v []byte) (*trunk.Trunk, error) {
	if len(v) < 2 || len(v) > maxRecord {
		return nil, corrupt(id, fmt.Errorf("record of %d bytes", len(v)))
	}
	if v[0] != SchemaVersion {
		return nil, corrupt(id, fmt.Errorf("record schema version %d", v[0]))
	}
	var r record
	if err := json.Unmarshal(v[1:], &r); err != nil {
		return nil, corrupt(id, err)
	}
	t := r.Trunk
	var err error
	if t.SIPPassword, err = db.crypt.openString(id, "sip_password", r.SIPPassword); err != nil {
		return nil, corrupt(id, err)
	}
	if t.APIBearerToken, err = db.crypt.openString(id, "api_bearer_token", r.APIBearerToken); err != nil {
		return nil, corrupt(id, err)
	}
	if t.TrunkID != id {
		return nil, corrupt(id, fmt.Errorf("record names trunk %q", t.TrunkID))
	}
	t.Normalize()
	return &t, nil
}

func corrupt(id string, err error) error {
	return fmt.Errorf("store: trunk %q: corrupt record: %w", id, err)
}

// sealer encrypts secrets with AES-256-GCM.
type sealer struct{ aead cipher.AEAD }

// KeySize is the length of the secret key.
const KeySize = 32

func newSealer(key []byte) (*sealer, error) {
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
	return &sealer{aead: aead}, nil
}

// seal returns nonce||ciphertext of plain, bound to (id, field).
func (s *sealer) seal(id, field, plain []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, plain, additional(id, field)), nil
}

func (s *sealer) open(id, field, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errors.New("sealed value too short")
	}
	return s.aead.Open(nil, sealed[:n], sealed[n:], additional(id, field))
}

func additional(id, field []byte) []byte {
	return append(append(append([]byte("trunkd/v1\x00"), id...), 0), field...)
}

// sealString seals a secret; the empty secret stays empty.
func (s *sealer) sealString(id, field, plain string) ([]byte, error) {
	if plain == "" {
		return []byte{}, nil
	}
	return s.seal([]byte(id), []byte(field), []byte(plain))
}

func (s *sealer) openString(id, field string, sealed []byte) (string, error) {
	if len(sealed) == 0 {
		return "", nil
	}
	p, err := s.open([]byte(id), []byte(field), sealed)
	if err != nil {
		return "", fmt.Errorf("%s: cannot decrypt (wrong key or tampered record)", field)
	}
	return string(p), nil
}
