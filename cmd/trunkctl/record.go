package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/trunk"
	"sigs.k8s.io/yaml"
)

// recordDoc is what `get -o json|yaml` prints and `update -f` and `edit`
// read back: the bookkeeping, the whole record (without secret values),
// and the live figures. revision becomes if_revision; created_at,
// updated_at, status and the *_set flags are read-only and ignored on
// input.
type recordDoc struct {
	Revision  uint64 `json:"revision,omitempty"`
	CreatedAt string `json:"created_at,omitempty"`
	UpdatedAt string `json:"updated_at,omitempty"`
	*rpc.TrunkRecord
	Status *rpc.TrunkConfig `json:"status,omitempty"`
}

func newRecordDoc(r rpc.GetTrunkResponse) recordDoc {
	return recordDoc{Revision: r.Revision, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, TrunkRecord: r.Record, Status: &r.Config}
}

// inputDoc is a trunk file as read: a recordDoc whose record fields land
// in a trunk.
type inputDoc struct {
	Revision          uint64          `json:"revision"`
	CreatedAt         string          `json:"created_at"`
	UpdatedAt         string          `json:"updated_at"`
	SIPPasswordSet    bool            `json:"sip_password_set"`
	APIBearerTokenSet bool            `json:"api_bearer_token_set"`
	Status            json.RawMessage `json:"status"`
	trunk.Trunk
}

// readOnlyKeys are the keys of a recordDoc that are not trunk fields.
var readOnlyKeys = []string{"revision", "created_at", "updated_at", "sip_password_set", "api_bearer_token_set", "status"}

// trunkFile is a decoded trunk file: the values it sets over base, the
// trunk fields it names, and the revision and secret flags it carries.
type trunkFile struct {
	doc   inputDoc
	given map[string]bool // trunk field names present in the file
}

func parseTrunkFile(path string, data []byte, base trunk.Trunk) (*trunkFile, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f := &trunkFile{doc: inputDoc{Trunk: base}, given: map[string]bool{}}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f.doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(js, &keys); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for k := range keys {
		if !slices.Contains(readOnlyKeys, k) {
			f.given[k] = true
		}
	}
	return f, nil
}

// revision returns the revision the file names, 0 without one (or
// without a file).
func (f *trunkFile) revision() uint64 {
	if f == nil {
		return 0
	}
	return f.doc.Revision
}

// keepSecrets reports whether the file came from a record that had a
// secret set and does not give it: its stored value must be kept.
func (f *trunkFile) keepSecrets() bool {
	if f == nil {
		return false
	}
	return (f.doc.SIPPasswordSet && !f.given["sip_password"]) || (f.doc.APIBearerTokenSet && !f.given["api_bearer_token"])
}

// resets lists the fields of old that t would change although the
// command line did not name them: what a full replacement resets.
func resets(old *rpc.TrunkRecord, t *trunk.Trunk, given map[string]bool) []string {
	var out []string
	ov, nv := reflect.ValueOf(old.Trunk), reflect.ValueOf(*t)
	for i := range ov.NumField() {
		name := trunk.JSONName(ov.Type().Field(i))
		if name == "-" || given[name] {
			continue
		}
		a, b := ov.Field(i).Interface(), nv.Field(i).Interface()
		if !reflect.DeepEqual(a, b) && !(isEmptyList(a) && isEmptyList(b)) {
			out = append(out, fmt.Sprintf("%s (%s -> %s)", name, show(a), show(b)))
		}
	}
	if old.SIPPasswordSet && t.SIPPassword == "" && !given["sip_password"] {
		out = append(out, "sip_password (set -> cleared)")
	}
	if old.APIBearerTokenSet && t.APIBearerToken == "" && !given["api_bearer_token"] {
		out = append(out, "api_bearer_token (set -> cleared)")
	}
	return out
}

func isEmptyList(v any) bool {
	l, ok := v.([]string)
	return ok && len(l) == 0
}

func show(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case []string:
		return "[" + strings.Join(v, ",") + "]"
	}
	return fmt.Sprint(v)
}

// encodeDoc renders a recordDoc as JSON (indented, in record field order)
// or YAML (keys sorted): the same bytes for the same record every time.
func encodeDoc(d recordDoc, format string) ([]byte, error) {
	if format == "json" {
		b, err := json.MarshalIndent(d, "", "  ")
		return append(b, '\n'), err
	}
	return yaml.Marshal(d)
}
