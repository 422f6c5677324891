package rpc

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/trunkd/trunkd/rpc/api"
	"github.com/vmihailenco/msgpack/v5"
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

// FuzzListFrame feeds arbitrary response frames to the client's ListTrunks
// decoding: whatever decodeListFrame takes must decode as checkFrame and
// msgpack's decoder would have decoded it, and anything else must get
// their answer.
func FuzzListFrame(f *testing.F) {
	page := api.ListTrunksResponse{NextCursor: "c", Trunks: []api.TrunkConfig{
		{TrunkID: "t1", ChannelLimit: 30, CurrentASR: 50, BreakerState: "closed", Revision: 7, Transport: 2},
		{TrunkID: "t2", SRTPWithoutTLS: true, CreatedAt: "2026-01-01T00:00:00Z"},
	}}
	f.Add(encodeResponse("Ok", page))
	f.Add(encodeResponse("Ok", api.ListTrunksResponse{}))
	f.Add(encodeResponse("Err", &Error{Code: CodeInvalidArgument, Message: "limit"}))
	f.Fuzz(func(t *testing.T, frame []byte) {
		var got, want ListTrunksResponse
		errGot := decodeResponse(frame, &got)
		errWant := reflectiveAnswer(frame, &want)
		if (errGot == nil) != (errWant == nil) {
			t.Fatalf("frame % x: decodeResponse error %v; checkFrame and msgpack %v", frame, errGot, errWant)
		}
		if errGot == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("frame % x:\ndecodeResponse %+v\nmsgpack        %+v", frame, got, want)
		}
	})
}

// reflectiveAnswer decodes a response frame as the client did before its
// hand-written ListTrunks decoders: checkFrame, then msgpack's reflection.
func reflectiveAnswer(frame []byte, resp any) error {
	if err := checkFrame(frame); err != nil {
		return err
	}
	dec := msgpack.NewDecoder(bytes.NewReader(frame))
	dec.SetCustomStructTag("json")
	if n, err := dec.DecodeMapLen(); err != nil || n != 1 {
		return errors.New("want a one-entry map")
	}
	tag, err := dec.DecodeString()
	if err != nil {
		return err
	}
	switch tag {
	case "Ok":
		return dec.Decode(resp)
	case "Err":
		e := new(Error)
		if err := dec.Decode(e); err != nil {
			return err
		}
		return e
	}
	return errors.New("unknown tag")
}
