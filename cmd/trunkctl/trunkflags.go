package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/trunkd/trunkd/trunk"
)

// trunkFlags defines one flag per trunk field (--channel-limit for
// channel_limit) plus -f FILE, and builds the trunk they describe.
type trunkFlags struct {
	fs     *flag.FlagSet
	file   string
	data   []byte            // the file's bytes, once loaded
	values map[string]string // field name -> value, for flags given
}

func newTrunkFlags(fs *flag.FlagSet) *trunkFlags {
	tf := &trunkFlags{fs: fs, values: map[string]string{}}
	fs.StringVar(&tf.file, "f", "", "trunk `file`, JSON or YAML with the field names of docs/protocol.md (- for stdin)")
	typ := reflect.TypeFor[trunk.Trunk]()
	def := reflect.ValueOf(trunk.Defaults())
	for i := range typ.NumField() {
		name := trunk.JSONName(typ.Field(i))
		if name == "-" {
			continue
		}
		flagName := strings.ReplaceAll(name, "_", "-")
		fs.Func(flagName, fmt.Sprintf("%s (default %v)", name, defaultText(def.Field(i))), func(v string) error {
			tf.values[name] = v
			return nil
		})
	}
	return tf
}

func defaultText(v reflect.Value) string {
	if v.Kind() == reflect.Slice {
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = v.Index(i).String()
		}
		return strings.Join(parts, ",")
	}
	if v.Kind() == reflect.String && v.String() == "" {
		return `""`
	}
	return fmt.Sprint(v.Interface())
}

// load reads the -f file, if any, so that build can overlay it on
// different bases.
func (tf *trunkFlags) load(stdin io.Reader) error {
	if tf.file == "" {
		return nil
	}
	var err error
	if tf.file == "-" {
		tf.data, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		tf.data, err = os.ReadFile(tf.file)
	}
	return err
}

// build returns base overlaid with the file if given, then with the field
// flags given; the file as decoded (nil without one); and the names of
// the trunk fields the file and the flags set.
func (tf *trunkFlags) build(base trunk.Trunk) (*trunk.Trunk, *trunkFile, map[string]bool, error) {
	given := map[string]bool{}
	var f *trunkFile
	if tf.file != "" {
		var err error
		if f, err = parseTrunkFile(tf.file, tf.data, base); err != nil {
			return nil, nil, nil, err
		}
		base, given = f.doc.Trunk, f.given
	}
	t := base
	v := reflect.ValueOf(&t).Elem()
	for i := range v.NumField() {
		name := trunk.JSONName(v.Type().Field(i))
		if s, ok := tf.values[name]; ok {
			if err := setField(v.Field(i), s); err != nil {
				return nil, nil, nil, fmt.Errorf("--%s: %w", strings.ReplaceAll(name, "_", "-"), err)
			}
			given[name] = true
		}
	}
	if t.TrunkID == "" {
		return nil, nil, nil, fmt.Errorf("a trunk_id is required (--trunk-id or in the file)")
	}
	return &t, f, given, nil
}

func setField(f reflect.Value, s string) error {
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case reflect.Uint16, reflect.Uint32:
		n, err := strconv.ParseUint(s, 10, f.Type().Bits())
		if err != nil {
			return err
		}
		f.SetUint(n)
	case reflect.Int32:
		return setInt(f, s)
	case reflect.Slice:
		list := []string{}
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				list = append(list, p)
			}
		}
		f.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("unsupported field kind %s", f.Kind())
	}
	return nil
}

// named are the int32 enums of the record with their names, which flags
// and files may use instead of the numbers.
var named = map[reflect.Type]func(int32) string{
	reflect.TypeFor[trunk.InboundRule]():     func(n int32) string { return trunk.InboundRule(n).String() },
	reflect.TypeFor[trunk.Transport]():       func(n int32) string { return trunk.Transport(n).String() },
	reflect.TypeFor[trunk.MediaEncryption](): func(n int32) string { return trunk.MediaEncryption(n).String() },
}

// setInt parses an int32 field; inbound_rule, transport and the media
// encryption policies also take their names.
func setInt(f reflect.Value, s string) error {
	if name := named[f.Type()]; name != nil {
		for n := int32(0); n < 8; n++ {
			if strings.EqualFold(s, name(n)) {
				f.SetInt(int64(n))
				return nil
			}
		}
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return err
	}
	f.SetInt(n)
	return nil
}
