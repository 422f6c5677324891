package rpc

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"

	"github.com/trunkd/trunkd/trunk"
)

// A field of a request DTO, found by its wire name.
type field struct {
	name  string
	index []int
	pos   int // 0, 1, ... in the table: the field's bit in a seen set
}

// fieldTables caches, per DTO type, its fields by wire name. Wire names come
// from json tags; anonymous struct fields are flattened, as serde's
// #[serde(flatten)] and Go's encoding/json do.
var fieldTables sync.Map // reflect.Type -> map[string]field

func fieldsOf(t reflect.Type) map[string]field {
	if m, ok := fieldTables.Load(t); ok {
		return m.(map[string]field)
	}
	m := map[string]field{}
	collectFields(t, nil, m)
	fieldTables.Store(t, m)
	return m
}

func collectFields(t reflect.Type, prefix []int, m map[string]field) {
	for i := range t.NumField() {
		f := t.Field(i)
		index := append(append([]int(nil), prefix...), i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			collectFields(f.Type, index, m)
			continue
		}
		name := trunk.JSONName(f)
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		pos := len(m)
		if shadowed, ok := m[name]; ok {
			pos = shadowed.pos // the name's bit stays its own
		}
		m[name] = field{name: name, index: index, pos: pos}
	}
}

// decodeDTO decodes a map into the struct dst points to. dst holds the
// defaults: absent and nil fields keep them. Unknown fields, repeated
// fields, wrong types and out-of-range integers are refused with
// ERR_INVALID_ARGUMENT naming the field; broken MessagePack with
// ERR_MALFORMED.
func decodeDTO(r *reader, dst any) error {
	if r.isNil() {
		return nil
	}
	n, err := r.mapLen()
	if err != nil {
		return malformed("request body: %v", err)
	}
	v := reflect.ValueOf(dst).Elem()
	fields := fieldsOf(v.Type())
	var small [4]uint64
	seen := small[:]
	if len(fields) > 64*len(small) {
		seen = make([]uint64, (len(fields)+63)/64)
	}
	for range n {
		key, err := r.strBytes()
		if err != nil {
			return malformed("request body: field name: %v", err)
		}
		f, ok := fields[string(key)]
		if !ok {
			name := printable(key)
			return &Error{Code: CodeInvalidArgument, Field: name, Message: fmt.Sprintf("unknown field %q", name)}
		}
		word, bit := f.pos/64, uint64(1)<<(f.pos%64)
		if seen[word]&bit != 0 {
			return invalidField(f.name, "field given more than once")
		}
		seen[word] |= bit
		if err := decodeValue(r, v.FieldByIndex(f.index), f.name); err != nil {
			return err
		}
	}
	return nil
}

// decodeValue decodes one field value into v. nil leaves v as it is.
func decodeValue(r *reader, v reflect.Value, name string) error {
	if r.isNil() {
		return nil
	}
	got := r.kind()
	var err error
	switch v.Kind() {
	case reflect.String:
		var s string
		if s, err = r.str(); err == nil {
			v.SetString(s)
		}
	case reflect.Bool:
		var b bool
		if b, err = r.bool(); err == nil {
			v.SetBool(b)
		}
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return decodeUint(r, v, name)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return decodeInt(r, v, name)
	case reflect.Float32, reflect.Float64:
		var f float64
		if f, err = r.float(); err == nil {
			v.SetFloat(f)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			panic("rpc: DTO slice of " + v.Type().Elem().String())
		}
		return decodeStrings(r, v, name)
	default:
		panic("rpc: DTO field of kind " + v.Kind().String())
	}
	return fieldErr(err, name, got, v.Type())
}

// fieldErr classifies a failure to read a field's value: a value of another
// type is the client's argument error; a value of the right type that is
// cut short or lies about its length is a malformed frame.
func fieldErr(err error, name, got string, t reflect.Type) error {
	if err == nil {
		return nil
	}
	if got == wireKind(t) || got == "end of frame" {
		return malformed("field %s: %v", name, err)
	}
	return invalidField(name, "expected %s, got %s", typeName(t), got)
}

// wireKind is the MessagePack family a Go type is read from.
func wireKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice:
		return "array"
	case reflect.Float32, reflect.Float64:
		return "float"
	}
	return "integer"
}

func decodeUint(r *reader, v reflect.Value, name string) error {
	got := r.kind()
	neg, abs, err := r.integer()
	if err != nil {
		return fieldErr(err, name, got, v.Type())
	}
	limit := uint64(1)<<(v.Type().Bits()-1)<<1 - 1
	if neg || abs > limit {
		return invalidField(name, "%s is out of range for %s", signed(neg, abs), typeName(v.Type()))
	}
	v.SetUint(abs)
	return nil
}

func decodeInt(r *reader, v reflect.Value, name string) error {
	got := r.kind()
	neg, abs, err := r.integer()
	if err != nil {
		return fieldErr(err, name, got, v.Type())
	}
	bits := v.Type().Bits()
	maxPos := uint64(1)<<(bits-1) - 1
	if !neg && abs > maxPos || neg && abs > maxPos+1 {
		return invalidField(name, "%s is out of range for %s", signed(neg, abs), typeName(v.Type()))
	}
	if neg {
		v.SetInt(-int64(abs-1) - 1)
	} else {
		v.SetInt(int64(abs))
	}
	return nil
}

func decodeStrings(r *reader, v reflect.Value, name string) error {
	got := r.kind()
	n, err := r.arrayLen()
	if err != nil {
		return fieldErr(err, name, got, v.Type())
	}
	list := make([]string, 0, n)
	for i := range n {
		got := r.kind()
		s, err := r.str()
		if err != nil {
			return fieldErr(err, fmt.Sprintf("%s[%d]", name, i), got, reflect.TypeFor[string]())
		}
		list = append(list, s)
	}
	v.Set(reflect.ValueOf(list).Convert(v.Type()))
	return nil
}

func signed(neg bool, abs uint64) string {
	if neg {
		if abs > math.MaxInt64 {
			return "-9223372036854775808"
		}
		return fmt.Sprintf("-%d", abs)
	}
	return fmt.Sprintf("%d", abs)
}

// typeName gives the Rust-style name clients see in errors.
func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("uint%d", t.Bits())
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("int%d", t.Bits())
	case reflect.Float32, reflect.Float64:
		return fmt.Sprintf("float%d", t.Bits())
	}
	return t.String()
}

// printable makes a client-supplied name safe to echo: valid UTF-8 (serde
// clients reject anything else in a String) and at most 128 bytes.
func printable(b []byte) string {
	if len(b) > 128 {
		b = b[:128]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func malformed(format string, args ...any) *Error {
	return Errorf(CodeMalformed, format, args...)
}

func invalidField(name, format string, args ...any) *Error {
	e := Errorf(CodeInvalidArgument, "%s: "+format, append([]any{name}, args...)...)
	e.Field = name
	return e
}
