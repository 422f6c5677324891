package rpc

import (
	"bytes"
	"context"
	"testing"

	"github.com/trunkd/trunkd/rpc/api"
)

// FuzzDecodeEnvelope feeds arbitrary frames to the request path. Whatever
// the input, the server must answer with a well-formed envelope and never
// panic; checkFrame bounds every allocation by the frame's size.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, b := range goldenFrames(f) {
		f.Add(b)
	}
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x81, 0xa4, 'P', 'i', 'n', 'g', 0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, frame []byte) {
		h := newTestHandler()
		resp, out := h.serve(context.Background(), frame)
		if out.stream != nil { // Backup: the in-memory store answers an Err envelope
			var buf bytes.Buffer
			if err := h.sendStream(context.Background(), &out, &buf); err != nil {
				t.Fatalf("streamed answer to % x: %v", frame, err)
			}
			resp = buf.Bytes()
		}
		if err := checkFrame(resp); err != nil {
			t.Fatalf("response to % x is malformed: %v", frame, err)
		}
		if out.code == CodeInternal {
			t.Fatalf("frame % x caused an internal error", frame)
		}
	})
}

// FuzzDecodeTrunkDTO decodes arbitrary bodies as an AddTrunk request. It
// must return a value or an error, never panic, and a decoded trunk must
// survive validation without panicking.
func FuzzDecodeTrunkDTO(f *testing.F) {
	for _, b := range goldenFrames(f) {
		if _, r, err := decodeEnvelope(b); err == nil {
			f.Add(r.b[r.off:])
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := api.NewTrunkRequest()
		r := &reader{b: body}
		if err := decodeDTO(r, req); err != nil {
			return
		}
		req.Trunk.Normalize()
		_ = req.Trunk.Validate()
	})
}
