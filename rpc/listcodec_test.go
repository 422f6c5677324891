package rpc

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/trunkd/trunkd/rpc/api"
	"github.com/vmihailenco/msgpack/v5"
)

// randomFill sets each field of the struct v points to, or leaves it zero,
// at random; integers take values of every MessagePack width.
func randomFill(r *rand.Rand, v reflect.Value) {
	v = v.Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if r.IntN(3) == 0 {
			continue
		}
		bits := []uint{3, 7, 8, 15, 16, 31, 32, 63, 64}[r.IntN(9)]
		switch f.Kind() {
		case reflect.String:
			f.SetString(string(bytes.Repeat([]byte{'a' + byte(r.IntN(26))}, []int{r.IntN(40), 255 + r.IntN(3), 65535 + r.IntN(3)}[r.IntN(3)])))
		case reflect.Bool:
			f.SetBool(r.IntN(2) == 0)
		case reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(r.Uint64() >> (64 - min(bits, uint(f.Type().Bits()))))
		case reflect.Int32:
			n := int64(r.Uint64() >> (64 - min(bits, 31)))
			if r.IntN(2) == 0 {
				n = -n
			}
			f.SetInt(n)
		case reflect.Float64:
			f.SetFloat([]float64{0, 1.5, -3, r.Float64() * 1e6, math.MaxFloat64}[r.IntN(5)])
		default:
			panic("randomFill: add " + f.Kind().String())
		}
	}
}

func reflectiveEncoder(buf *bytes.Buffer) *msgpack.Encoder {
	enc := msgpack.NewEncoder(buf)
	enc.SetCustomStructTag("json")
	enc.UseCompactInts(true)
	return enc
}

// TestListCodecMatchesReflection: the hand-written ListTrunks encoder
// writes the bytes msgpack's reflective encoder writes for the same page,
// and the hand-written decoder reads them back as the reflective one does.
func TestListCodecMatchesReflection(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pages := []api.ListTrunksResponse{{}, {Trunks: []api.TrunkConfig{}, NextCursor: "x"}}
	for range 200 {
		p := api.ListTrunksResponse{Trunks: make([]api.TrunkConfig, r.IntN(5))}
		for i := range p.Trunks {
			randomFill(r, reflect.ValueOf(&p.Trunks[i]))
		}
		if r.IntN(2) == 0 {
			p.NextCursor = "carrier-000123"
		}
		if r.IntN(4) == 0 {
			p.Records = []*api.TrunkRecord{{SIPPasswordSet: true}}
			p.Records[0].TrunkID = "t1"
		}
		pages = append(pages, p)
	}
	for i, p := range pages {
		var want, got bytes.Buffer
		if err := reflectiveEncoder(&want).Encode(p); err != nil {
			t.Fatal(err)
		}
		if err := encodeBody(reflectiveEncoder(&got), p); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("page %d: encodeBody wrote\n%x\nmsgpack writes\n%x\nfor %+v", i, got.Bytes(), want.Bytes(), p)
		}
		if err := encodeBody(reflectiveEncoder(&got), &p); err != nil || !bytes.Equal(got.Bytes()[len(want.Bytes()):], want.Bytes()) {
			t.Fatalf("page %d: encodeBody of a pointer differs (%v)", i, err)
		}
		checkDecodeLikeReflection(t, want.Bytes())
	}
}

// checkDecodeLikeReflection decodes b with decodeBody and with msgpack's
// reflective decoder and fails when the results or errors differ.
func checkDecodeLikeReflection(t *testing.T, b []byte) {
	t.Helper()
	var got, want ListTrunksResponse
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	dec.SetCustomStructTag("json")
	errGot := decodeBody(dec, &got)
	dec.Reset(bytes.NewReader(b))
	dec.SetCustomStructTag("json")
	errWant := dec.Decode(&want)
	if (errGot == nil) != (errWant == nil) {
		t.Fatalf("decode of %x: decodeBody error %v; msgpack error %v", b, errGot, errWant)
	}
	if errWant == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("decode of %x:\ndecodeBody %+v\nmsgpack    %+v", b, got, want)
	}
	// The same body in an Ok envelope, through decodeResponse and so
	// through decodeListFrame first.
	var viaFrame ListTrunksResponse
	errFrame := decodeResponse(append([]byte{0x81, 0xa2, 'O', 'k'}, b...), &viaFrame)
	if (errFrame == nil) != (errWant == nil) {
		t.Fatalf("decodeResponse of {Ok: %x}: error %v; msgpack error %v", b, errFrame, errWant)
	}
	if errWant == nil && !reflect.DeepEqual(viaFrame, want) {
		t.Fatalf("decodeResponse of {Ok: %x}:\ngot     %+v\nmsgpack %+v", b, viaFrame, want)
	}
	checkStreamLikeWhole(t, append([]byte{0x81, 0xa2, 'O', 'k'}, b...))
}

// checkStreamLikeWhole feeds frame to a listStream in pieces of several
// sizes (1 byte at a time among them) and fails unless finish gives what
// decodeListFrame gives for the whole frame.
func checkStreamLikeWhole(t *testing.T, frame []byte) {
	t.Helper()
	var want ListTrunksResponse
	wantOK := decodeListFrame(frame, &want)
	for _, size := range []int{1, 3, 17, 100, 1300, len(frame) + 1} {
		var s listStream
		for n := size; n < len(frame); n += size {
			s.feed(frame[:n])
		}
		got := ListTrunksResponse{NextCursor: "untouched"}
		if ok := s.finish(frame, &got); ok != wantOK || ok && !reflect.DeepEqual(got, want) {
			t.Fatalf("frame %x fed %d bytes at a time: finish = %v, %+v; decodeListFrame = %v, %+v", frame, size, ok, got, wantOK, want)
		} else if !ok && got.NextCursor != "untouched" {
			t.Fatalf("frame %x fed %d bytes at a time: finish failed but changed the answer", frame, size)
		}
	}
}

// TestListFrameReadsServerPages: a page as the server writes it (records
// aside) is read by decodeListFrame itself, not handed on to msgpack.
func TestListFrameReadsServerPages(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 100 {
		p := api.ListTrunksResponse{Trunks: make([]api.TrunkConfig, r.IntN(5)), NextCursor: "c"}
		for j := range p.Trunks {
			randomFill(r, reflect.ValueOf(&p.Trunks[j]))
			p.Trunks[j].Transport = max(p.Trunks[j].Transport, 0) // the server's enums are never negative
			p.Trunks[j].InboundMediaEncryption = max(p.Trunks[j].InboundMediaEncryption, 0)
			p.Trunks[j].OutboundMediaEncryption = max(p.Trunks[j].OutboundMediaEncryption, 0)
		}
		var got ListTrunksResponse
		if ok := decodeListFrame(encodeResponse("Ok", p), &got); !ok || !reflect.DeepEqual(got, p) {
			t.Fatalf("page %d: decodeListFrame = %v, %+v; want true, %+v", i, ok, got, p)
		}
		checkStreamLikeWhole(t, encodeResponse("Ok", p))
	}
}

// TestListDecodeOddShapes: shapes this encoder never writes but a peer
// may — unknown and long keys, nil, other integer and float widths, an
// array-encoded TrunkConfig, wrong types — decode as msgpack decodes them.
func TestListDecodeOddShapes(t *testing.T) {
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	long := string(bytes.Repeat([]byte("k"), 100))
	cases := map[string]any{
		"nil":              nil,
		"nil trunks":       map[string]any{"trunks": nil, "next_cursor": "c"},
		"unknown keys":     map[string]any{"future": []any{1, "x", map[string]any{"a": 1}}, long: 2, "trunks": []any{map[string]any{"zz": 1, long: "v", "trunk_id": "t"}}},
		"32-byte key":      map[string]any{"trunks": []any{map[string]any{"registration_error_and_more_keys": 1, "domain": "d"}}},
		"wide ints":        map[string]any{"trunks": []any{map[string]any{"channel_limit": uint64(1 << 40), "transport": int64(-1 << 40), "sip_tls_port": int64(70000), "current_asr": int64(7), "current_mos": float32(2.5)}}},
		"nil fields":       map[string]any{"trunks": []any{map[string]any{"trunk_id": nil, "channel_limit": nil, "is_cb_tripped": nil, "current_asr": nil}}},
		"nil element":      map[string]any{"trunks": []any{nil, map[string]any{"trunk_id": "t"}}},
		"array element":    map[string]any{"trunks": []any{[]any{"t"}}},
		"empty array elem": map[string]any{"trunks": []any{[]any{}}},
		"string for int":   map[string]any{"trunks": []any{map[string]any{"channel_limit": "10"}}},
		"int for string":   map[string]any{"trunks": []any{map[string]any{"trunk_id": 10}}},
		"int key":          map[int]any{1: "x"},
		"trunks not array": map[string]any{"trunks": "x"},
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) { checkDecodeLikeReflection(t, enc(v)) })
	}
	binKey := append([]byte{0x81, 0xc4, 6}, "trunks\x91\x81\xc4\x06domain\xa1d"...) // keys as bin 8
	checkDecodeLikeReflection(t, binKey)
	checkDecodeLikeReflection(t, repeatedFields(t, 40)) // more strings than a TrunkConfig has fields
	b := enc(cases["unknown keys"])
	for n := range len(b) { // every truncation fails in both, or in neither
		checkDecodeLikeReflection(t, b[:n])
	}
}

// repeatedFields is a body of one TrunkConfig giving its string fields n
// times over, with other values each time: the last one read counts.
func repeatedFields(t *testing.T, n int) []byte {
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	keys := []string{"trunk_id", "domain", "sip_error", "created_at"}
	err := errors.Join(e.EncodeMapLen(1), e.EncodeString("trunks"), e.EncodeArrayLen(1), e.EncodeMapLen(n))
	for i := range n {
		err = errors.Join(err, e.EncodeString(keys[i%len(keys)]), e.EncodeString(fmt.Sprint("v", i)))
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestListFrameDepthAsCheckFrame: decodeListFrame runs before checkFrame,
// so it must refuse exactly the nesting checkFrame refuses: an unknown
// value nested k deep, in the page and in a TrunkConfig.
func TestListFrameDepthAsCheckFrame(t *testing.T) {
	nest := func(k int) any {
		var v any = 1
		for range k {
			v = []any{v}
		}
		return v
	}
	for k := range 36 {
		for name, body := range map[string]any{
			"page":  map[string]any{"future": nest(k), "trunks": []any{}, "next_cursor": ""},
			"trunk": map[string]any{"trunks": []any{map[string]any{"trunk_id": "t", "future": nest(k)}}, "next_cursor": ""},
		} {
			frame, err := msgpack.Marshal(map[string]any{"Ok": body})
			if err != nil {
				t.Fatal(err)
			}
			var got ListTrunksResponse
			ok, checked := decodeListFrame(frame, &got), checkFrame(frame) == nil
			if ok != checked {
				t.Errorf("%s, unknown value %d deep: decodeListFrame %v, checkFrame accepts %v; want the same", name, k, ok, checked)
			}
		}
	}
}

// BenchmarkEncodeListPage encodes a page of 100 TrunkConfigs like those
// of a trunk with its 1.1 fields set.
func BenchmarkEncodeListPage(b *testing.B) {
	p := api.ListTrunksResponse{Trunks: make([]api.TrunkConfig, 100), NextCursor: "carrier-000100"}
	for i := range p.Trunks {
		p.Trunks[i] = api.TrunkConfig{TrunkID: fmt.Sprintf("carrier-%06d", i), ChannelLimit: 50,
			DisplayName: "Carrier", Domain: "sip.carrier.example", CurrentASR: 0.5, CurrentMOS: 4.2,
			BreakerState: "closed", SIPState: "active", RegistrationState: "off", Name: "carrier",
			OrganizationID: "default", Revision: uint64(1000 + i), CreatedAt: "2026-11-30T20:00:00Z", UpdatedAt: "2026-11-30T20:00:00Z"}
	}
	var buf bytes.Buffer
	enc := reflectiveEncoder(&buf)
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := encodeListTrunks(enc, &p); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(buf.Len()))
}

// TestListStreamLongTrunkConfig: a TrunkConfig far longer than one read
// is read over only a few times, not once per read.
func TestListStreamLongTrunkConfig(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	frame := encodeResponse("Ok", api.ListTrunksResponse{Trunks: []api.TrunkConfig{{TrunkID: "t", DisplayName: long}}})
	var s listStream
	var tries int
	for n := 1200; n < len(frame); n += 1200 {
		before := s.tried
		s.feed(frame[:n])
		if s.tried != before {
			tries++
		}
	}
	if tries > 20 {
		t.Errorf("the TrunkConfig was tried %d times over %d reads; want about log2 of them", tries, len(frame)/1200)
	}
	var got ListTrunksResponse
	if !s.finish(frame, &got) || len(got.Trunks) != 1 || got.Trunks[0].DisplayName != long {
		t.Error("the long TrunkConfig was not read")
	}
}
