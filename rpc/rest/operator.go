package rest

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"

	"github.com/trunkd/trunkd/rpc/api"
)

// backup streams a consistent copy of the store (GET /v1/backup) as
// application/octet-stream with its length and its SHA-256 in a
// Repr-Digest header (RFC 9530). The digest must be known before the
// body, so the snapshot is read twice, both times from the same read
// view: once to hash, once to send.
func (s *Server) backup(w http.ResponseWriter, r *http.Request, c caller) error {
	m, _ := api.Lookup("Backup")
	resp, err := s.api.Call(r.Context(), m, &api.BackupRequest{AdminToken: c.token})
	if err != nil {
		return err
	}
	started := false
	err = resp.(*api.Stream).Send(r.Context(), func(size int64, write func(io.Writer) error) error {
		h := sha256.New()
		if err := write(h); err != nil {
			return err
		}
		started = true
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.Header().Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(h.Sum(nil))+":")
		w.Header().Set("Content-Disposition", `attachment; filename="trunkd.db"`)
		w.Header().Set("X-Trunkd-Backup-Format", api.BackupFormat)
		w.WriteHeader(http.StatusOK)
		return write(w)
	})
	if err != nil && started {
		// Headers are gone: cut the connection so the client sees a short body.
		s.log.Warn("backup cut off", "err", err)
		panic(http.ErrAbortHandler)
	}
	return err
}

// reload re-reads keys and certificates (POST /v1/reload, optional JSON
// body {"log_level": "debug"}).
func (s *Server) reload(w http.ResponseWriter, r *http.Request, c caller) (any, error) {
	req := &api.ReloadRequest{AdminToken: c.token}
	if r.ContentLength > 0 {
		if err := s.decodeBody(w, r, req); err != nil {
			return nil, err
		}
		req.AdminToken = c.token
	}
	return req, nil
}
