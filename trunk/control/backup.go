package control

import (
	"context"
	"io"

	"github.com/trunkd/trunkd/trunk"
)

// Snapshotter is a store that can copy itself out consistently while
// writes go on (bbolt: Tx.WriteTo inside a read transaction). It is
// optional: the Service type-asserts its Store, and a store without it
// answers Snapshot with EUNAVAILABLE.
//
// Snapshot opens a consistent view of the whole store and calls fn with
// its size in bytes and a function that writes exactly those bytes to w;
// write may be called more than once (e.g. once to hash, once to send),
// always copying the same view. The view is released when fn returns.
type Snapshotter interface {
	Snapshot(ctx context.Context, fn func(size int64, write func(w io.Writer) error) error) error
}

// Reloader re-reads the configuration that may change while trunkd runs
// (verification keys, certificates, log level) and swaps it in whole, or
// keeps the old one and says why. It is optional: a Service without one
// answers Reload with EUNAVAILABLE.
type Reloader interface {
	Reload(ctx context.Context, r ReloadRequest) (ReloadReport, error)
}

// ReloadRequest is what a Reload may change besides the files it re-reads.
type ReloadRequest struct {
	// LogLevel, when not "", sets the log level (debug, info, warn,
	// error) until the next reload or restart.
	LogLevel string
}

// ReloadReport says what a Reload took in.
type ReloadReport struct {
	JWTKeys  int    // verification keys now valid (secret and public keys)
	LogLevel string // the log level now in force
	Certs    []string
}

var (
	errNoSnapshot = trunk.Errorf(trunk.EUNAVAILABLE, "this store cannot take an online backup (not supported by this store yet); back it up with its own tools")
	errNoReload   = trunk.Errorf(trunk.EUNAVAILABLE, "this server cannot reload its configuration")
)

// SetReloader makes r answer Reload. It is called once, before serving.
func (s *Service) SetReloader(r Reloader) { s.reloader = r }

// Snapshot opens a consistent snapshot of the whole store, every
// organization's trunks: the face lets only the operator (trunks:admin)
// call it. See Snapshotter.
func (s *Service) Snapshot(ctx context.Context, fn func(size int64, write func(w io.Writer) error) error) error {
	sn, ok := s.store.(Snapshotter)
	if !ok {
		return errNoSnapshot
	}
	return sn.Snapshot(ctx, fn)
}

// Reload re-reads the reloadable configuration; the face lets only the
// operator (trunks:admin) call it.
func (s *Service) Reload(ctx context.Context, r ReloadRequest) (ReloadReport, error) {
	if s.reloader == nil {
		return ReloadReport{}, errNoReload
	}
	return s.reloader.Reload(ctx, r)
}

// QualityHistory is a Plane that keeps each trunk's quality window bucket
// by bucket (for the status page's sparklines). It is optional.
type QualityHistory interface {
	QualitySeries(id string) []trunk.Quality
}

// QualitySeries returns the per-bucket figures of trunk id's quality
// window, oldest first; nil when the plane keeps none for it.
func (s *Service) QualitySeries(id string) []trunk.Quality {
	if h, ok := s.plane.(QualityHistory); ok {
		return h.QualitySeries(id)
	}
	return nil
}
