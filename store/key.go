package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/trunkd/trunkd/trunk/secretfile"
)

// LoadOrCreateKey reads the secret key stored hex-encoded at path. When the
// file does not exist it generates a key and writes it with mode 0600. A
// file with other content, or readable by group or others, is refused.
func LoadOrCreateKey(path string) ([]byte, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return createKey(path)
	}
	return ReadKey(path)
}

// ReadKey reads the secret key stored hex-encoded at path, refusing a
// file readable by group or others; it never creates one.
func ReadKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %o; the secret key must not be readable by others (chmod 600)", path, fi.Mode().Perm())
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("%s does not hold a %d-byte hex-encoded key", path, KeySize)
	}
	return key, nil
}

func createKey(path string) ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := secretfile.Create(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return key, nil
}
