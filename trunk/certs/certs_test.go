package certs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReloaderSwapsAndKeepsOldOnError(t *testing.T) {
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key")
	r, err := NewReloader(crt, key, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	first := r.Certificate().Certificate[0]
	if r.Changed() {
		t.Fatal("Changed() = true right after loading")
	}

	// A new pair written in place is picked up by Watch.
	c2, k2, err := SelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := make(chan error, 4)
	go r.Watch(ctx, 10*time.Millisecond, func(err error) { results <- err })
	time.Sleep(20 * time.Millisecond) // distinct modification times
	writeFile(t, key, k2)
	writeFile(t, crt, c2)
	// The watcher may catch the pair half written (a failed attempt); it
	// must then succeed once both files are in place.
	for ok := false; !ok; {
		select {
		case err := <-results:
			ok = err == nil
		case <-time.After(5 * time.Second):
			t.Fatal("the changed pair was not reloaded")
		}
	}
	got, _ := r.GetCertificate(nil)
	if bytes.Equal(got.Certificate[0], first) {
		t.Fatal("GetCertificate returns the old certificate after a reload")
	}

	// A broken file leaves the last good pair serving.
	second := got.Certificate[0]
	writeFile(t, crt, []byte("not a certificate"))
	if err := r.Reload(); err == nil {
		t.Fatal("Reload of a broken file = nil; want an error")
	}
	if got, _ := r.GetClientCertificate(nil); !bytes.Equal(got.Certificate[0], second) {
		t.Fatal("a failed reload replaced the certificate")
	}
}

func TestRootsAddsTheCA(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := SelfSigned([]string{"ca.example"})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "ca.pem")
	writeFile(t, f, ca)
	if _, err := Roots(f); err != nil {
		t.Fatalf("Roots(%s) = %v", f, err)
	}
	writeFile(t, f, []byte("junk"))
	if _, err := Roots(f); err == nil {
		t.Fatal("Roots of a file without certificates = nil; want an error")
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
