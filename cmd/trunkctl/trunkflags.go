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
	"sigs.k8s.io/yaml"
)

// trunkFlags defines one flag per trunk field (--channel-limit for
// channel_limit) plus -f FILE, and builds the trunk they describe.
type trunkFlags struct {
	fs     *flag.FlagSet
	file   string
	values map[string]string // flag name -> value, for flags given
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

// trunk returns the defaults, overlaid with the file if given, overlaid
// with the field flags given.
func (tf *trunkFlags) trunk(stdin io.Reader) (*trunk.Trunk, error) {
	t := trunk.Defaults()
	if tf.file != "" {
		if err := readTrunkFile(tf.file, stdin, &t); err != nil {
			return nil, err
		}
	}
	v := reflect.ValueOf(&t).Elem()
	for i := range v.NumField() {
		name := trunk.JSONName(v.Type().Field(i))
		if s, ok := tf.values[name]; ok {
			if err := setField(v.Field(i), s); err != nil {
				return nil, fmt.Errorf("--%s: %w", strings.ReplaceAll(name, "_", "-"), err)
			}
		}
	}
	if t.TrunkID == "" {
		return nil, fmt.Errorf("a trunk_id is required (--trunk-id or in the file)")
	}
	return &t, nil
}

// readTrunkFile decodes a JSON or YAML trunk strictly: unknown fields are
// refused, absent ones keep what t holds.
func readTrunkFile(path string, stdin io.Reader, t *trunk.Trunk) error {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return err
	}
	if err := yaml.UnmarshalStrict(data, t); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
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

// setInt parses an int32 field; inbound_rule also takes its names.
func setInt(f reflect.Value, s string) error {
	if f.Type() == reflect.TypeFor[trunk.InboundRule]() {
		for r := trunk.RuleReject; r <= trunk.RuleHandleAI; r++ {
			if strings.EqualFold(s, r.String()) {
				f.SetInt(int64(r))
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
