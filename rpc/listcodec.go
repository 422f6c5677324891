package rpc

import (
	"bytes"

	"github.com/trunkd/trunkd/rpc/api"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// A ListTrunks page is the largest answer trunkd sends often: up to 1000
// TrunkConfigs. msgpack's reflective struct encoder builds a new field list
// for every struct with omitempty fields and walks each field through
// reflect; the encoder and decoder here write and read a page's
// TrunkConfigs field by field through the same msgpack.Encoder and
// msgpack.Decoder calls the reflective path makes, so the bytes are the
// same (TestListCodecMatchesReflection) and so is what a decode accepts.

// encodeBody encodes an answer's body: a ListTrunks page by hand, every
// other DTO through msgpack's reflection.
func encodeBody(e *msgpack.Encoder, body any) error {
	switch b := body.(type) {
	case api.ListTrunksResponse:
		return encodeListTrunks(e, &b)
	case *api.ListTrunksResponse:
		if b != nil {
			return encodeListTrunks(e, b)
		}
	}
	return e.Encode(body)
}

// decodeBody decodes an answer's body into resp: a ListTrunks page by
// hand, every other DTO through msgpack's reflection.
func decodeBody(d *msgpack.Decoder, resp any) error {
	if r, ok := resp.(*ListTrunksResponse); ok && r != nil {
		return decodeListTrunks(d, r)
	}
	return d.Decode(resp)
}

func encodeListTrunks(e *msgpack.Encoder, r *api.ListTrunksResponse) error {
	n := 2
	if len(r.Records) > 0 {
		n++
	}
	if err := e.EncodeMapLen(n); err != nil {
		return err
	}
	if err := e.EncodeString("trunks"); err != nil {
		return err
	}
	if err := encodeTrunkConfigs(e, r.Trunks); err != nil {
		return err
	}
	if err := e.EncodeString("next_cursor"); err != nil {
		return err
	}
	if err := e.EncodeString(r.NextCursor); err != nil {
		return err
	}
	if len(r.Records) > 0 {
		if err := e.EncodeString("records"); err != nil {
			return err
		}
		return e.Encode(r.Records)
	}
	return nil
}

// encodeTrunkConfigs writes a nil slice as nil, as msgpack does.
func encodeTrunkConfigs(e *msgpack.Encoder, l []api.TrunkConfig) error {
	if l == nil {
		return e.EncodeNil()
	}
	if err := e.EncodeArrayLen(len(l)); err != nil {
		return err
	}
	for i := range l {
		if err := encodeTrunkConfig(e, &l[i]); err != nil {
			return err
		}
	}
	return nil
}

// fieldWriter writes map entries until the first error.
type fieldWriter struct {
	e   *msgpack.Encoder
	err error
}

// key writes k unless an error came first, and says whether its value
// should follow.
func (w *fieldWriter) key(k string) bool {
	if w.err == nil {
		w.err = w.e.EncodeString(k)
	}
	return w.err == nil
}

func (w *fieldWriter) str(k, v string) {
	if w.key(k) {
		w.err = w.e.EncodeString(v)
	}
}

// trunkConfigAlways is how many TrunkConfig fields have no omitempty.
const trunkConfigAlways = 17

// trunkConfigLen is how many entries t's map has.
func trunkConfigLen(t *api.TrunkConfig) int {
	n := trunkConfigAlways
	for _, set := range [...]bool{
		t.Name != "", t.OrganizationID != "", t.ManagedAccountID != "", t.Revision != 0,
		t.CreatedAt != "", t.UpdatedAt != "", t.Transport != 0, t.SIPTLSPort != 0,
		t.InboundMediaEncryption != 0, t.OutboundMediaEncryption != 0, t.SRTPWithoutTLS,
	} {
		if set {
			n++
		}
	}
	return n
}

// encodeTrunkConfig writes t as appendTrunkConfig does, straight into
// the encoder's buffer when it writes to one.
func encodeTrunkConfig(e *msgpack.Encoder, t *api.TrunkConfig) error {
	if buf, ok := e.Writer().(*bytes.Buffer); ok {
		buf.Write(appendTrunkConfig(buf.AvailableBuffer(), t))
		return nil
	}
	_, err := e.Writer().Write(appendTrunkConfig(nil, t))
	return err
}

// decodeTrunkConfig reads one TrunkConfig as msgpack's struct decoder
// would: nil is the zero value, unknown keys are skipped, and a shape
// other than a map (an array-encoded struct) goes to that decoder.
func decodeTrunkConfig(d *msgpack.Decoder, t *api.TrunkConfig) error {
	return decodeMap(d, t, func(k []byte) error { return decodeTrunkConfigField(d, t, k) })
}

// decodeMap reads a map key by key, field reading each key's value, or
// hands any other shape to msgpack's reflective decoder, into v.
func decodeMap(d *msgpack.Decoder, v any, field func(k []byte) error) error {
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	if !isMap(c) {
		return d.Decode(v)
	}
	n, err := d.DecodeMapLen()
	if err != nil {
		return err
	}
	var key [32]byte
	for range n {
		k, err := decodeKey(d, &key)
		if err != nil {
			return err
		}
		if err := field(k); err != nil {
			return err
		}
	}
	return nil
}

// decodeTrunkConfigField reads the value of key k into its field. The
// integer casts truncate, as reflect's SetUint and SetInt do.
func decodeTrunkConfigField(d *msgpack.Decoder, t *api.TrunkConfig, k []byte) error {
	var err error
	var u uint64
	var i int64
	switch string(k) {
	case "trunk_id":
		t.TrunkID, err = d.DecodeString()
	case "channel_limit":
		u, err = d.DecodeUint64()
		t.ChannelLimit = uint32(u)
	case "display_name":
		t.DisplayName, err = d.DecodeString()
	case "domain":
		t.Domain, err = d.DecodeString()
	case "is_cb_tripped":
		t.IsCBTripped, err = d.DecodeBool()
	case "current_asr":
		t.CurrentASR, err = d.DecodeFloat64()
	case "current_acd":
		u, err = d.DecodeUint64()
		t.CurrentACD = uint32(u)
	case "current_mos":
		t.CurrentMOS, err = d.DecodeFloat64()
	case "calls_attempted":
		t.CallsAttempted, err = d.DecodeUint64()
	case "calls_answered":
		t.CallsAnswered, err = d.DecodeUint64()
	case "current_pdd_ms":
		t.CurrentPDDms, err = d.DecodeFloat64()
	case "breaker_state":
		t.BreakerState, err = d.DecodeString()
	case "sip_state":
		t.SIPState, err = d.DecodeString()
	case "sip_error":
		t.SIPError, err = d.DecodeString()
	case "registration_state":
		t.RegistrationState, err = d.DecodeString()
	case "registration_error":
		t.RegistrationError, err = d.DecodeString()
	case "active_calls":
		u, err = d.DecodeUint64()
		t.ActiveCalls = uint32(u)
	case "name":
		t.Name, err = d.DecodeString()
	case "organization_id":
		t.OrganizationID, err = d.DecodeString()
	case "managed_account_id":
		t.ManagedAccountID, err = d.DecodeString()
	case "revision":
		t.Revision, err = d.DecodeUint64()
	case "created_at":
		t.CreatedAt, err = d.DecodeString()
	case "updated_at":
		t.UpdatedAt, err = d.DecodeString()
	case "transport":
		i, err = d.DecodeInt64()
		t.Transport = int32(i)
	case "sip_tls_port":
		u, err = d.DecodeUint64()
		t.SIPTLSPort = uint16(u)
	case "inbound_media_encryption":
		i, err = d.DecodeInt64()
		t.InboundMediaEncryption = int32(i)
	case "outbound_media_encryption":
		i, err = d.DecodeInt64()
		t.OutboundMediaEncryption = int32(i)
	case "srtp_without_tls":
		t.SRTPWithoutTLS, err = d.DecodeBool()
	default:
		err = d.Skip()
	}
	return err
}

func decodeListTrunks(d *msgpack.Decoder, r *ListTrunksResponse) error {
	return decodeMap(d, r, func(k []byte) error {
		switch string(k) {
		case "trunks":
			return decodeTrunkConfigs(d, &r.Trunks)
		case "next_cursor":
			var err error
			r.NextCursor, err = d.DecodeString()
			return err
		case "records":
			return d.Decode(&r.Records)
		}
		return d.Skip()
	})
}

// decodeTrunkConfigs reads an array (nil leaves a nil slice), growing the
// slice as elements arrive rather than trusting the length field.
func decodeTrunkConfigs(d *msgpack.Decoder, l *[]api.TrunkConfig) error {
	n, err := d.DecodeArrayLen()
	if err != nil || n < 0 {
		*l = nil
		return err
	}
	s := make([]api.TrunkConfig, 0, min(n, MaxListLimit))
	for range n {
		s = append(s, api.TrunkConfig{})
		if err := decodeTrunkConfig(d, &s[len(s)-1]); err != nil {
			return err
		}
	}
	*l = s
	return nil
}

func isMap(c byte) bool { return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32 }

// decodeKey reads a map key into buf. A key longer than buf is no field's:
// it is read through and returned empty, so that its value is skipped. A
// key that is not a string is an error, as in msgpack's struct decoder.
func decodeKey(d *msgpack.Decoder, buf *[32]byte) ([]byte, error) {
	n, err := d.DecodeBytesLen()
	if err != nil || n <= 0 {
		return nil, err
	}
	for n > len(buf) {
		if err := d.ReadFull(buf[:]); err != nil {
			return nil, err
		}
		n -= len(buf)
		if n <= len(buf) {
			return buf[:0], d.ReadFull(buf[:n])
		}
	}
	return buf[:n], d.ReadFull(buf[:n])
}
