package rpc

import (
	"encoding/binary"
	"math"
)

// The mp helpers build MessagePack by hand for tests, sharing no code with
// the codec under test. Each returns the encoding of one value.

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func mpStr(s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		return append([]byte{0xa0 | byte(n)}, s...)
	case n < 256:
		return append([]byte{0xd9, byte(n)}, s...)
	case n < 65536:
		return append([]byte{0xda, byte(n >> 8), byte(n)}, s...)
	}
	b := []byte{0xdb, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(n))
	return append(b, s...)
}

// mpMap encodes a map header for n entries followed by the given pairs.
func mpMap(pairs ...[]byte) []byte {
	n := len(pairs) / 2
	var h []byte
	if n < 16 {
		h = []byte{0x80 | byte(n)}
	} else {
		h = []byte{0xde, byte(n >> 8), byte(n)}
	}
	return cat(append([][]byte{h}, pairs...)...)
}

func mpArr(elems ...[]byte) []byte {
	return cat(append([][]byte{{0x90 | byte(len(elems))}}, elems...)...)
}

func mpNil() []byte         { return []byte{0xc0} }
func mpFix(v uint8) []byte  { return []byte{v} } // positive fixint, v < 128
func mpU8(v uint8) []byte   { return []byte{0xcc, v} }
func mpU16(v uint16) []byte { return []byte{0xcd, byte(v >> 8), byte(v)} }
func mpU32(v uint32) []byte {
	b := []byte{0xce, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], v)
	return b
}
func mpU64(v uint64) []byte {
	b := make([]byte, 9)
	b[0] = 0xcf
	binary.BigEndian.PutUint64(b[1:], v)
	return b
}
func mpI8(v int8) []byte   { return []byte{0xd0, byte(v)} }
func mpI16(v int16) []byte { return []byte{0xd1, byte(uint16(v) >> 8), byte(v)} }
func mpI32(v int32) []byte {
	b := []byte{0xd2, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(v))
	return b
}
func mpI64(v int64) []byte {
	b := make([]byte, 9)
	b[0] = 0xd3
	binary.BigEndian.PutUint64(b[1:], uint64(v))
	return b
}
func mpNegFix(v int8) []byte { return []byte{byte(v)} } // -32 <= v < 0
func mpF64(v float64) []byte {
	b := make([]byte, 9)
	b[0] = 0xcb
	binary.BigEndian.PutUint64(b[1:], math.Float64bits(v))
	return b
}

// env wraps a body in the one-entry request envelope.
func env(method string, body []byte) []byte { return mpMap(mpStr(method), body) }
