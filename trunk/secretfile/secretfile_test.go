package secretfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestCreate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret")
	if err := Create(path, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatalf("Create(%s) = %v; want nil", path, err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "s3cret\n" {
		t.Errorf("file holds %q, %v; want %q", got, err, "s3cret\n")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode = %o; want 600", perm)
	}
}

func TestCreateRefusesExisting(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Create(path, []byte("new"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create over an existing file = %v; want fs.ErrExist", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("existing file now holds %q; want it untouched", got)
	}
}

func TestCreateMissingDir(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "no", "such", "secret")
	if err := Create(path, []byte("x"), 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Create in a missing directory = %v; want fs.ErrNotExist", err)
	}
}
