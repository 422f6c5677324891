package rpc

import (
	"encoding/binary"
	"math"

	"github.com/trunkd/trunkd/rpc/api"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// The append functions write what msgpack.Encoder writes (with compact
// integers) for the same value, straight into a byte slice: a page's
// TrunkConfigs are about 30 map entries each, and each entry through the
// Encoder is two io.Writer calls.

func appendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, msgpcode.FixedStrLow|byte(n))
	case n < 256:
		b = append(b, msgpcode.Str8, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, msgpcode.Str16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, msgpcode.Str32), uint32(n))
	}
	return append(b, s...)
}

func appendUint(b []byte, n uint64) []byte {
	switch {
	case n <= math.MaxInt8:
		return append(b, byte(n))
	case n <= math.MaxUint8:
		return append(b, msgpcode.Uint8, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, msgpcode.Uint16), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, msgpcode.Uint32), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, msgpcode.Uint64), n)
}

func appendInt(b []byte, n int64) []byte {
	switch {
	case n >= 0:
		return appendUint(b, uint64(n))
	case n >= int64(int8(msgpcode.NegFixedNumLow)):
		return append(b, byte(n))
	case n >= math.MinInt8:
		return append(b, msgpcode.Int8, byte(n))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, msgpcode.Int16), uint16(n))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, msgpcode.Int32), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, msgpcode.Int64), uint64(n))
}

func appendFloat(b []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, msgpcode.Double), math.Float64bits(f))
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, msgpcode.True)
	}
	return append(b, msgpcode.False)
}

func appendMapLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, msgpcode.FixedMapLow|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, msgpcode.Map16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, msgpcode.Map32), uint32(n))
}

// appendTrunkConfig appends t as msgpack's struct encoder writes it: its
// fields in declaration order, the omitempty ones left out at their zero
// value.
func appendTrunkConfig(b []byte, t *api.TrunkConfig) []byte {
	b = appendMapLen(b, trunkConfigLen(t))
	b = appendStr(appendStr(b, "trunk_id"), t.TrunkID)
	b = appendUint(appendStr(b, "channel_limit"), uint64(t.ChannelLimit))
	b = appendStr(appendStr(b, "display_name"), t.DisplayName)
	b = appendStr(appendStr(b, "domain"), t.Domain)
	b = appendBool(appendStr(b, "is_cb_tripped"), t.IsCBTripped)
	b = appendFloat(appendStr(b, "current_asr"), t.CurrentASR)
	b = appendUint(appendStr(b, "current_acd"), uint64(t.CurrentACD))
	b = appendFloat(appendStr(b, "current_mos"), t.CurrentMOS)
	b = appendUint(appendStr(b, "calls_attempted"), t.CallsAttempted)
	b = appendUint(appendStr(b, "calls_answered"), t.CallsAnswered)
	b = appendFloat(appendStr(b, "current_pdd_ms"), t.CurrentPDDms)
	b = appendStr(appendStr(b, "breaker_state"), t.BreakerState)
	b = appendStr(appendStr(b, "sip_state"), t.SIPState)
	b = appendStr(appendStr(b, "sip_error"), t.SIPError)
	b = appendStr(appendStr(b, "registration_state"), t.RegistrationState)
	b = appendStr(appendStr(b, "registration_error"), t.RegistrationError)
	b = appendUint(appendStr(b, "active_calls"), uint64(t.ActiveCalls))
	return appendTrunkConfigOptional(b, t)
}

// appendTrunkConfigOptional appends t's omitempty fields that are set.
func appendTrunkConfigOptional(b []byte, t *api.TrunkConfig) []byte {
	if t.Name != "" {
		b = appendStr(appendStr(b, "name"), t.Name)
	}
	if t.OrganizationID != "" {
		b = appendStr(appendStr(b, "organization_id"), t.OrganizationID)
	}
	if t.ManagedAccountID != "" {
		b = appendStr(appendStr(b, "managed_account_id"), t.ManagedAccountID)
	}
	if t.Revision != 0 {
		b = appendUint(appendStr(b, "revision"), t.Revision)
	}
	if t.CreatedAt != "" {
		b = appendStr(appendStr(b, "created_at"), t.CreatedAt)
	}
	if t.UpdatedAt != "" {
		b = appendStr(appendStr(b, "updated_at"), t.UpdatedAt)
	}
	if t.Transport != 0 {
		b = appendInt(appendStr(b, "transport"), int64(t.Transport))
	}
	if t.SIPTLSPort != 0 {
		b = appendUint(appendStr(b, "sip_tls_port"), uint64(t.SIPTLSPort))
	}
	if t.InboundMediaEncryption != 0 {
		b = appendInt(appendStr(b, "inbound_media_encryption"), int64(t.InboundMediaEncryption))
	}
	if t.OutboundMediaEncryption != 0 {
		b = appendInt(appendStr(b, "outbound_media_encryption"), int64(t.OutboundMediaEncryption))
	}
	if t.SRTPWithoutTLS {
		b = appendBool(appendStr(b, "srtp_without_tls"), true)
	}
	return b
}
