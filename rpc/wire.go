package rpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// reader is a strict MessagePack reader over one complete frame. Every
// length it reads is checked against the bytes that remain before anything
// is allocated for it, so a hostile length field (msgpack allocation bombs)
// costs nothing.
type reader struct {
	b   []byte
	off int
}

// maxDepth bounds nesting in frames the server skips over.
const maxDepth = 32

var errShort = errors.New("frame ends inside a value")

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) peek() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errShort
	}
	return r.b[r.off], nil
}

func (r *reader) take(n int) ([]byte, error) {
	if n < 0 || n > r.remaining() {
		return nil, errShort
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p, nil
}

func (r *reader) uint(size int) (uint64, error) {
	p, err := r.take(size)
	if err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(p)), nil
	}
	return binary.BigEndian.Uint64(p), nil
}

// isNil consumes a nil and reports whether there was one.
func (r *reader) isNil() bool {
	if c, err := r.peek(); err == nil && c == 0xc0 {
		r.off++
		return true
	}
	return false
}

// kind names the MessagePack family of the next value, for error messages.
func (r *reader) kind() string {
	c, err := r.peek()
	if err != nil {
		return "end of frame"
	}
	switch {
	case c <= 0x7f || c >= 0xe0 || c >= 0xcc && c <= 0xd3:
		return "integer"
	case c >= 0x80 && c <= 0x8f || c == 0xde || c == 0xdf:
		return "map"
	case c >= 0x90 && c <= 0x9f || c == 0xdc || c == 0xdd:
		return "array"
	case c >= 0xa0 && c <= 0xbf || c >= 0xd9 && c <= 0xdb:
		return "string"
	case c == 0xc0:
		return "nil"
	case c == 0xc2 || c == 0xc3:
		return "boolean"
	case c == 0xca || c == 0xcb:
		return "float"
	case c >= 0xc4 && c <= 0xc6:
		return "binary"
	}
	return "extension"
}

// mapLen reads a map header. Each entry needs at least two bytes, so a
// count larger than half the remaining bytes is refused.
func (r *reader) mapLen() (int, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c >= 0x80 && c <= 0x8f:
		r.off++
		n = uint64(c & 0x0f)
	case c == 0xde:
		r.off++
		n, err = r.uint(2)
	case c == 0xdf:
		r.off++
		n, err = r.uint(4)
	default:
		return 0, fmt.Errorf("expected map, got %s", r.kind())
	}
	if err != nil {
		return 0, err
	}
	if n > uint64(r.remaining()/2) {
		return 0, fmt.Errorf("map claims %d entries but only %d bytes remain", n, r.remaining())
	}
	return int(n), nil
}

// arrayLen reads an array header; each element needs at least one byte.
func (r *reader) arrayLen() (int, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c >= 0x90 && c <= 0x9f:
		r.off++
		n = uint64(c & 0x0f)
	case c == 0xdc:
		r.off++
		n, err = r.uint(2)
	case c == 0xdd:
		r.off++
		n, err = r.uint(4)
	default:
		return 0, fmt.Errorf("expected array, got %s", r.kind())
	}
	if err != nil {
		return 0, err
	}
	if n > uint64(r.remaining()) {
		return 0, fmt.Errorf("array claims %d elements but only %d bytes remain", n, r.remaining())
	}
	return int(n), nil
}

// strBytes reads a string and returns its bytes, aliasing the frame.
func (r *reader) strBytes() ([]byte, error) {
	c, err := r.peek()
	if err != nil {
		return nil, err
	}
	var n uint64
	switch {
	case c >= 0xa0 && c <= 0xbf:
		r.off++
		n = uint64(c & 0x1f)
	case c >= 0xd9 && c <= 0xdb:
		r.off++
		n, err = r.uint(1 << (c - 0xd9))
	default:
		return nil, fmt.Errorf("expected string, got %s", r.kind())
	}
	if err != nil {
		return nil, err
	}
	if n > uint64(r.remaining()) {
		return nil, fmt.Errorf("string claims %d bytes but only %d remain", n, r.remaining())
	}
	return r.take(int(n))
}

func (r *reader) str() (string, error) {
	p, err := r.strBytes()
	return string(p), err
}

func (r *reader) bool() (bool, error) {
	c, err := r.peek()
	if err != nil {
		return false, err
	}
	if c != 0xc2 && c != 0xc3 {
		return false, fmt.Errorf("expected boolean, got %s", r.kind())
	}
	r.off++
	return c == 0xc3, nil
}

// integer reads an integer of any MessagePack width. neg reports a negative
// value, whose magnitude is in abs.
func (r *reader) integer() (neg bool, abs uint64, err error) {
	c, err := r.peek()
	if err != nil {
		return false, 0, err
	}
	switch {
	case c <= 0x7f:
		r.off++
		return false, uint64(c), nil
	case c >= 0xe0:
		r.off++
		return true, uint64(-int64(int8(c))), nil
	case c >= 0xcc && c <= 0xcf:
		r.off++
		u, err := r.uint(1 << (c - 0xcc))
		return false, u, err
	case c >= 0xd0 && c <= 0xd3:
		r.off++
		size := 1 << (c - 0xd0)
		u, err := r.uint(size)
		if err != nil {
			return false, 0, err
		}
		v := signExtend(u, size)
		if v < 0 {
			return true, uint64(-(v + 1)) + 1, nil
		}
		return false, uint64(v), nil
	}
	return false, 0, fmt.Errorf("expected integer, got %s", r.kind())
}

func signExtend(u uint64, size int) int64 {
	switch size {
	case 1:
		return int64(int8(u))
	case 2:
		return int64(int16(u))
	case 4:
		return int64(int32(u))
	}
	return int64(u)
}

// float reads a float32, float64 or integer as a float64.
func (r *reader) float() (float64, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	switch c {
	case 0xca:
		r.off++
		u, err := r.uint(4)
		return float64(math.Float32frombits(uint32(u))), err
	case 0xcb:
		r.off++
		u, err := r.uint(8)
		return math.Float64frombits(u), err
	}
	neg, abs, err := r.integer()
	if err != nil {
		return 0, fmt.Errorf("expected number, got %s", r.kind())
	}
	if neg {
		return -float64(abs), nil
	}
	return float64(abs), nil
}

// skip consumes one value of any type, checking every length on the way.
func (r *reader) skip(depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("values nested deeper than %d", maxDepth)
	}
	c, err := r.peek()
	if err != nil {
		return err
	}
	switch r.kind() {
	case "integer":
		_, _, err = r.integer()
	case "float":
		_, err = r.float()
	case "nil", "boolean":
		r.off++
	case "string":
		_, err = r.strBytes()
	case "binary":
		r.off++
		var n uint64
		if n, err = r.uint(1 << (c - 0xc4)); err == nil {
			_, err = r.take(int(min(n, uint64(r.remaining())+1)))
		}
	case "array":
		err = r.skipArray(depth)
	case "map":
		err = r.skipMap(depth)
	default:
		err = r.skipExt(c)
	}
	return err
}

func (r *reader) skipArray(depth int) error {
	n, err := r.arrayLen()
	for i := 0; err == nil && i < n; i++ {
		err = r.skip(depth + 1)
	}
	return err
}

func (r *reader) skipMap(depth int) error {
	n, err := r.mapLen()
	for i := 0; err == nil && i < 2*n; i++ {
		err = r.skip(depth + 1)
	}
	return err
}

func (r *reader) skipExt(c byte) error {
	r.off++
	var n uint64
	var err error
	switch c {
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		n = 1 << (c - 0xd4)
	case 0xc7, 0xc8, 0xc9:
		n, err = r.uint(1 << (c - 0xc7))
	default:
		return fmt.Errorf("invalid MessagePack type byte 0x%02x", c)
	}
	if err != nil {
		return err
	}
	_, err = r.take(int(min(n, uint64(r.remaining())+1)) + 1) // type byte + data
	return err
}

// checkFrame walks a whole frame without allocating and reports whether it
// is exactly one well-formed value with every length in bounds. Decoders
// that may allocate by a declared length run it first.
func checkFrame(b []byte) error {
	r := reader{b: b}
	if err := r.skip(0); err != nil {
		return err
	}
	if r.remaining() != 0 {
		return fmt.Errorf("%d bytes after the value", r.remaining())
	}
	return nil
}
