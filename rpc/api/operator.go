package api

import (
	"context"
	"io"

	"github.com/trunkd/trunkd/trunk/control"
)

// BackupRequest is the body of Backup.
type BackupRequest struct {
	AdminToken string `json:"admin_token"`
}

// BackupResponse is the head of Backup's answer: Size bytes of the store
// follow it on the stream, then their 32-byte SHA-256.
type BackupResponse struct {
	Size   uint64 `json:"size"`   // bytes of the store that follow
	Format string `json:"format"` // "bbolt": a trunkd.db file
}

// BackupFormat is the Format of a bbolt store's backup.
const BackupFormat = "bbolt"

// ReloadRequest is the body of Reload.
type ReloadRequest struct {
	AdminToken string `json:"admin_token"`
	// LogLevel, when not "", sets the log level (debug, info, warn, error)
	// until the next reload that names one, or a restart.
	LogLevel string `json:"log_level"`
}

// ReloadResponse says what a Reload took in.
type ReloadResponse struct {
	JWTKeys      uint32   `json:"jwt_keys"`     // verification keys now valid
	LogLevel     string   `json:"log_level"`    // the level now in force
	Certificates []string `json:"certificates"` // the certificate files reloaded
}

func (r *BackupRequest) token() string { return r.AdminToken }
func (r *BackupRequest) org() string   { return "" }
func (r *ReloadRequest) token() string { return r.AdminToken }
func (r *ReloadRequest) org() string   { return "" }

// Stream is the answer of a method whose response is followed by raw
// bytes (Backup). Nothing is read until a face calls Send.
type Stream struct {
	svc *control.Service
}

// Send opens a consistent snapshot of the store and calls fn with its
// size and a function copying it to w (as often as fn calls it, always
// the same bytes). An error before fn is called (no snapshot possible)
// is a domain error the face answers as usual.
func (s *Stream) Send(ctx context.Context, fn func(size int64, write func(w io.Writer) error) error) error {
	return s.svc.Snapshot(ctx, fn)
}

func (h *Handler) backup(ctx context.Context, req *BackupRequest) (*Stream, error) {
	return &Stream{svc: h.svc}, nil
}

func (h *Handler) reload(ctx context.Context, req *ReloadRequest) (ReloadResponse, error) {
	rep, err := h.svc.Reload(ctx, control.ReloadRequest{LogLevel: req.LogLevel})
	if err != nil {
		return ReloadResponse{}, err
	}
	certs := rep.Certs
	if certs == nil {
		certs = []string{}
	}
	return ReloadResponse{JWTKeys: uint32(rep.JWTKeys), LogLevel: rep.LogLevel, Certificates: certs}, nil
}
