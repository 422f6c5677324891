package rpc

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"

	"github.com/trunkd/trunkd/rpc/api"
)

// decodeListFrame reads an Ok answer to ListTrunks straight from its frame:
// no msgpack.Decoder, no per-byte reader calls, no checkFrame walk first.
// It reads every byte of the frame, checking each length as checkFrame
// does and skipping unknown values at the depth checkFrame gives them, so
// a frame it accepts is one checkFrame accepts. It takes only the shapes the server writes (a map body, str keys
// and strings, unsigned integers, float64s, booleans, nil) and reports
// ok false for anything else — an Err answer, records, another integer
// width, a duplicate "trunks" — leaving resp as it was so that msgpack's
// decoder reads the frame as it always did (TestListDecodeOddShapes
// compares both paths).
func decodeListFrame(frame []byte, resp *ListTrunksResponse) (ok bool) {
	r := &reader{b: frame}
	if n, err := r.mapLen(); err != nil || n != 1 {
		return false
	}
	if tag, err := r.strBytes(); err != nil || string(tag) != "Ok" {
		return false
	}
	var l ListTrunksResponse
	if err := readListTrunks(r, &l); err != nil || r.remaining() != 0 {
		return false
	}
	*resp = l
	return true
}

// errBail sends a frame to msgpack's decoder.
var errBail = errors.New("not a shape decodeListFrame reads")

func readListTrunks(r *reader, resp *ListTrunksResponse) error {
	n, err := r.mapLen()
	if err != nil {
		return errBail
	}
	return readListEntries(r, resp, n, false)
}

// readListEntries reads n entries of the answer's body; seen says whether
// its "trunks" entry was read already.
func readListEntries(r *reader, resp *ListTrunksResponse, n int, seen bool) error {
	for range n {
		k, err := r.strBytes()
		if err != nil {
			return errBail
		}
		switch string(k) {
		case "trunks":
			if seen {
				return errBail
			}
			seen = true
			err = readTrunkConfigs(r, &resp.Trunks)
		case "next_cursor":
			resp.NextCursor, err = frameStr(r)
		case "records":
			return errBail
		default:
			err = r.skip(2) // envelope 0, body 1, its entries 2
		}
		if err != nil {
			return errBail
		}
	}
	return nil
}

func readTrunkConfigs(r *reader, l *[]api.TrunkConfig) error {
	if r.isNil() {
		*l = nil
		return nil
	}
	n, err := r.arrayLen()
	if err != nil {
		return errBail
	}
	s := make([]api.TrunkConfig, 0, min(n, MaxListLimit)) // n is the peer's word
	for range n {
		s = append(s, api.TrunkConfig{})
		if err := readTrunkConfig(r, &s[len(s)-1]); err != nil {
			return err
		}
	}
	*l = s
	return nil
}

func readTrunkConfig(r *reader, t *api.TrunkConfig) error {
	n, err := r.mapLen()
	if err != nil {
		return errBail
	}
	var strs configStrs
	for range n {
		k, err := r.strBytes()
		if err != nil {
			return errBail
		}
		if err := readTrunkConfigField(r, t, k, &strs); err != nil {
			return errBail
		}
	}
	strs.make()
	return nil
}

// configStrs makes the strings of one TrunkConfig from one allocation:
// its fields are noted as they are read, and made once the TrunkConfig is
// read, as parts of one string. One by one, a page of 100 made 900 small
// strings. A field keeps its TrunkConfig's other strings alive with it (a
// few hundred bytes).
type configStrs struct {
	dst  [16]*string
	src  [16][]byte // in the frame, which stays as it is meanwhile
	n    int
	size int
}

// add notes that *dst is to be b. A field given again is set again,
// in order: the last one read wins.
func (c *configStrs) add(dst *string, b []byte) {
	if c.n == len(c.dst) { // a TrunkConfig with repeated fields
		c.make()
	}
	c.dst[c.n], c.src[c.n] = dst, b
	c.n++
	c.size += len(b)
}

// make sets every string noted, in the order noted, and forgets them.
func (c *configStrs) make() {
	var all strings.Builder
	all.Grow(c.size)
	for _, b := range c.src[:c.n] {
		all.Write(b)
	}
	s := all.String()
	for i, b := range c.src[:c.n] {
		*c.dst[i], s = s[:len(b)], s[len(b):]
		c.src[i] = nil
	}
	c.n, c.size = 0, 0
}

// readStr notes the str or nil ("") that *dst is to be.
func readStr(r *reader, dst *string, strs *configStrs) error {
	var b []byte
	var err error
	if !r.isNil() {
		b, err = r.strBytes()
	}
	if err == nil {
		strs.add(dst, b)
	}
	return err
}

// readTrunkConfigField is decodeTrunkConfigField over the frame; its
// strings are made by strs.
func readTrunkConfigField(r *reader, t *api.TrunkConfig, k []byte, strs *configStrs) error {
	var err error
	var u uint64
	switch string(k) {
	case "trunk_id":
		err = readStr(r, &t.TrunkID, strs)
	case "channel_limit":
		u, err = frameUint(r, math.MaxUint32)
		t.ChannelLimit = uint32(u)
	case "display_name":
		err = readStr(r, &t.DisplayName, strs)
	case "domain":
		err = readStr(r, &t.Domain, strs)
	case "is_cb_tripped":
		t.IsCBTripped, err = frameBool(r)
	case "current_asr":
		t.CurrentASR, err = frameFloat(r)
	case "current_acd":
		u, err = frameUint(r, math.MaxUint32)
		t.CurrentACD = uint32(u)
	case "current_mos":
		t.CurrentMOS, err = frameFloat(r)
	case "calls_attempted":
		t.CallsAttempted, err = frameUint(r, math.MaxUint64)
	case "calls_answered":
		t.CallsAnswered, err = frameUint(r, math.MaxUint64)
	case "current_pdd_ms":
		t.CurrentPDDms, err = frameFloat(r)
	case "breaker_state":
		err = readStr(r, &t.BreakerState, strs)
	case "sip_state":
		err = readStr(r, &t.SIPState, strs)
	case "sip_error":
		err = readStr(r, &t.SIPError, strs)
	case "registration_state":
		err = readStr(r, &t.RegistrationState, strs)
	case "registration_error":
		err = readStr(r, &t.RegistrationError, strs)
	case "active_calls":
		u, err = frameUint(r, math.MaxUint32)
		t.ActiveCalls = uint32(u)
	case "name":
		err = readStr(r, &t.Name, strs)
	case "organization_id":
		err = readStr(r, &t.OrganizationID, strs)
	case "managed_account_id":
		err = readStr(r, &t.ManagedAccountID, strs)
	case "revision":
		t.Revision, err = frameUint(r, math.MaxUint64)
	case "created_at":
		err = readStr(r, &t.CreatedAt, strs)
	case "updated_at":
		err = readStr(r, &t.UpdatedAt, strs)
	case "transport":
		u, err = frameUint(r, math.MaxInt32)
		t.Transport = int32(u)
	case "sip_tls_port":
		u, err = frameUint(r, math.MaxUint16)
		t.SIPTLSPort = uint16(u)
	case "inbound_media_encryption":
		u, err = frameUint(r, math.MaxInt32)
		t.InboundMediaEncryption = int32(u)
	case "outbound_media_encryption":
		u, err = frameUint(r, math.MaxInt32)
		t.OutboundMediaEncryption = int32(u)
	case "srtp_without_tls":
		t.SRTPWithoutTLS, err = frameBool(r)
	default:
		err = r.skip(4) // trunks 2, its elements 3, their entries 4
	}
	return err
}

// frameStr reads a str or nil ("").
func frameStr(r *reader) (string, error) {
	if r.isNil() {
		return "", nil
	}
	return r.str()
}

// frameUint reads a non-negative integer up to most, or nil (0): an
// unsigned MessagePack integer of any width holding such a value.
func frameUint(r *reader, most uint64) (uint64, error) {
	if r.isNil() {
		return 0, nil
	}
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c <= 0x7f:
		r.off++
		n = uint64(c)
	case c >= 0xcc && c <= 0xcf:
		r.off++
		n, err = r.uint(1 << (c - 0xcc))
	default:
		return 0, errBail
	}
	if err != nil || n > most {
		return 0, errBail
	}
	return n, nil
}

// frameFloat reads a float64, or nil (0).
func frameFloat(r *reader) (float64, error) {
	if r.isNil() {
		return 0, nil
	}
	if c, err := r.peek(); err != nil || c != 0xcb {
		return 0, errBail
	}
	r.off++
	p, err := r.take(8)
	if err != nil {
		return 0, err
	}
	return math.Float64frombits(binary.BigEndian.Uint64(p)), nil
}

// frameBool reads a boolean, or nil (false).
func frameBool(r *reader) (bool, error) {
	if r.isNil() {
		return false, nil
	}
	return r.bool()
}
