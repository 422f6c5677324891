package certs

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// Reloader serves a key pair from files and swaps it atomically when the
// files change: handshakes in progress keep the pair they started with,
// the next ones get the new pair. A pair that fails to load leaves the
// old one serving.
type Reloader struct {
	certPath, keyPath string
	cur               atomic.Pointer[tls.Certificate]
	stamp             atomic.Value // fileStamp of the loaded pair
}

type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// NewReloader loads the pair at certPath and keyPath, generating a
// self-signed one for hosts when neither file exists.
func NewReloader(certPath, keyPath string, hosts []string) (*Reloader, error) {
	r := &Reloader{certPath: certPath, keyPath: keyPath}
	cert, _, err := LoadOrCreate(certPath, keyPath, hosts)
	if err != nil {
		return nil, err
	}
	r.cur.Store(&cert)
	r.stamp.Store(r.statFiles())
	return r, nil
}

// Certificate returns the pair in use.
func (r *Reloader) Certificate() *tls.Certificate { return r.cur.Load() }

// GetCertificate is for tls.Config.GetCertificate (servers).
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate: the same
// pair is offered when a server asks for a client certificate.
func (r *Reloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// Reload loads the files again and swaps the pair in; on error the old
// pair stays.
func (r *Reloader) Reload() error {
	st := r.statFiles()
	cert, err := tls.LoadX509KeyPair(r.certPath, r.keyPath)
	if err != nil {
		return fmt.Errorf("reload certificate %s / %s: %w", r.certPath, r.keyPath, err)
	}
	r.cur.Store(&cert)
	r.stamp.Store(st)
	return nil
}

// Changed reports whether the files differ (time or size) from the pair
// last loaded.
func (r *Reloader) Changed() bool {
	return r.statFiles() != r.stamp.Load().(fileStamp)
}

func (r *Reloader) statFiles() fileStamp {
	var s fileStamp
	if fi, err := os.Stat(r.certPath); err == nil {
		s.certMod, s.certSize = fi.ModTime(), fi.Size()
	}
	if fi, err := os.Stat(r.keyPath); err == nil {
		s.keyMod, s.keySize = fi.ModTime(), fi.Size()
	}
	return s
}

// Watch reloads the pair whenever the files change, checking every
// interval, until ctx ends; onReload is told each attempt's result.
func (r *Reloader) Watch(ctx context.Context, interval time.Duration, onReload func(error)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !r.Changed() {
			continue
		}
		before := r.statFiles()
		err := r.Reload()
		if err != nil {
			// Retry only when the files change again: a pair caught half
			// written is retried once the writer finishes (its last write
			// changes the stamp taken before this attempt).
			r.stamp.Store(before)
		}
		if onReload != nil {
			onReload(err)
		}
	}
}
