package rpc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/trunkd/trunkd/rpc/api"
	"github.com/vmihailenco/msgpack/v5"
)

// handler turns request frames into response frames: the MessagePack
// codec around api.Handler. It is transport-free, shared by the QUIC
// server, tests and benchmarks.
type handler struct {
	api *api.Handler
	log *slog.Logger
}

// outcome records what happened to one request, for logs and metrics.
type outcome struct {
	method  string
	code    string // "" for success
	change  string // "added", "updated", "removed" for a write
	trunkID string // the trunk a write changed

	// stream, for a method answered with raw bytes after its response
	// (Backup), is sent by sendStream; serve then returns no frame.
	stream *api.Stream

	// page, a ListTrunks page built while it is written (sendPage); serve
	// then returns no frame.
	page *api.TrunkPage
}

// serve decodes frame, runs the method and returns the encoded response.
func (h *handler) serve(ctx context.Context, frame []byte) ([]byte, outcome) {
	e := encoders.Get().(*encoder)
	defer encoders.Put(e)
	resp, out := h.serveWith(ctx, frame, e)
	return bytes.Clone(resp), out
}

// serveWith is serve encoding the response into e's buffer: it is valid
// until e is used again, so the server writes it before giving e back.
// A page of ListTrunks is tens of KiB that would otherwise be copied.
func (h *handler) serveWith(ctx context.Context, frame []byte, e *encoder) ([]byte, outcome) {
	name, r, err := decodeEnvelope(frame)
	out := outcome{method: name}
	var resp any
	if err == nil {
		resp, err = h.run(ctx, name, r, &out)
	}
	if st, ok := resp.(*api.Stream); ok && err == nil {
		out.stream = st
		return nil, out
	}
	if l, ok := resp.(api.ListTrunksResponse); ok && l.Page != nil && err == nil {
		out.page = l.Page
		return nil, out
	}
	if err != nil {
		fe := h.api.Failed(name, err)
		out.code = fe.Code
		return e.response("Err", fe), out
	}
	return e.response("Ok", resp), out
}

// sendStream writes a streamed answer to w: the Ok envelope holding a
// BackupResponse, then its Size bytes, then their SHA-256 (32 bytes). A
// failure before the head is written is answered as an Err envelope and
// returns its code; a failure after it returns the error, and the caller
// resets the stream so the client sees no digest.
func (h *handler) sendStream(ctx context.Context, out *outcome, w io.Writer) error {
	started := false
	err := out.stream.Send(ctx, func(size int64, write func(io.Writer) error) error {
		head := encodeResponse("Ok", api.BackupResponse{Size: uint64(size), Format: api.BackupFormat})
		started = true
		if _, err := w.Write(head); err != nil {
			return err
		}
		sum := sha256.New()
		cw := &countWriter{w: io.MultiWriter(w, sum)}
		if err := write(cw); err != nil {
			return err
		}
		if cw.n != size {
			return fmt.Errorf("rpc: snapshot wrote %d bytes, announced %d", cw.n, size)
		}
		_, err := w.Write(sum.Sum(nil))
		return err
	})
	if err != nil && !started {
		e := h.api.Failed(out.method, err)
		out.code = e.Code
		_, werr := w.Write(encodeResponse("Err", e))
		return werr
	}
	if err != nil {
		// Most often the client went away or stopped reading.
		out.code = CodeUnavailable
		h.log.Warn("backup cut off", "err", err)
	}
	return err
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// logRequest logs every request at debug, and successful writes at info.
func (h *handler) logRequest(ctx context.Context, out outcome, d time.Duration) {
	if h.log.Enabled(ctx, slog.LevelDebug) {
		code := out.code
		if code == "" {
			code = "OK"
		}
		h.log.Debug("rpc", "method", printable([]byte(out.method)), "code", code, "duration", d)
	}
	if out.code == "" && out.trunkID != "" {
		h.log.Info("trunk "+out.change, "trunk_id", out.trunkID)
	}
}

func (h *handler) run(ctx context.Context, name string, r *reader, out *outcome) (any, error) {
	m, ok := api.Lookup(name)
	if !ok {
		return nil, Errorf(CodeUnknownMethod, "unknown method %q", printable([]byte(name)))
	}
	req := m.NewRequest()
	if err := decodeDTO(r, req); err != nil {
		return nil, err
	}
	if r.remaining() != 0 {
		return nil, malformed("%d bytes after the request envelope", r.remaining())
	}
	out.change, out.trunkID = m.Change, m.Target(req)
	return h.api.Call(ctx, m, req)
}

// decodeEnvelope reads the method name and leaves r at the request body.
// The envelope is serde's externally tagged enum: a one-entry map
// {"Method": body}, or a bare "Method" string for a body-less variant.
func decodeEnvelope(frame []byte) (string, *reader, error) {
	r := &reader{b: frame}
	if len(frame) == 0 {
		return "", nil, malformed("empty request")
	}
	if r.kind() == "string" {
		name, err := r.str()
		if err != nil {
			return "", nil, malformed("envelope: %v", err)
		}
		return name, &reader{b: []byte{0xc0}}, nil
	}
	n, err := r.mapLen()
	if err != nil {
		return "", nil, malformed("envelope: %v", err)
	}
	if n != 1 {
		return "", nil, malformed("envelope must be a map with exactly one entry (the method), got %d", n)
	}
	name, err := r.str()
	if err != nil {
		return "", nil, malformed("envelope method name: %v", err)
	}
	return name, r, nil
}

var encoders = sync.Pool{New: func() any {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetCustomStructTag("json")
	enc.UseCompactInts(true)
	return &encoder{buf: &buf, enc: enc}
}}

type encoder struct {
	buf *bytes.Buffer
	enc *msgpack.Encoder
}

// encodeResponse encodes {tag: body} with body's json tags as keys.
func encodeResponse(tag string, body any) []byte {
	e := encoders.Get().(*encoder)
	defer encoders.Put(e)
	return bytes.Clone(e.response(tag, body))
}

// response encodes {tag: body} into e's buffer and returns it, valid
// until e is used again.
func (e *encoder) response(tag string, body any) []byte {
	e.buf.Reset()
	err := e.enc.EncodeMapLen(1)
	if err == nil {
		err = e.enc.EncodeString(tag)
	}
	if err == nil {
		err = encodeBody(e.enc, body)
	}
	if err != nil {
		// Only a DTO the code itself builds is encoded here.
		panic("rpc: encode response: " + err.Error())
	}
	return e.buf.Bytes()
}
