package rtpstats

import (
	"encoding/binary"
	"time"
)

// RTCP layout, RFC 3550 section 6.4.
const (
	typeSR    = 200 // Sender Report
	typeRR    = 201 // Receiver Report
	srBlocks  = 28  // offset of the first report block in an SR
	rrBlocks  = 8   // offset of the first report block in an RR
	blockSize = 24  // size of one report block
)

// maxRTT is the largest round-trip time believed.
const maxRTT = 10 * time.Second

// ntpEpoch is the number of seconds from 1900, where NTP time starts, to
// 1970, where Unix time starts.
const ntpEpoch = 2208988800

// NTPMiddle32 returns the middle 32 bits of t's 64-bit NTP timestamp: the
// low 16 bits of the seconds and the high 16 bits of the fraction, in units
// of 1/65536 second. This is the form of LSR and of the arrival time in the
// RTT calculation of RFC 3550 section 6.4.1.
func NTPMiddle32(t time.Time) uint32 {
	secs := uint64(t.Unix() + ntpEpoch)
	frac := uint64(t.Nanosecond()) << 16 / uint64(time.Second)
	return uint32(secs<<16 | frac)
}

// RTCP reads a compound RTCP packet from the far end that arrived at
// arrival. When one of its SR or RR report blocks answers a Sender Report
// (LSR is not zero), the round-trip time is arrival - LSR - DLSR, all in NTP
// middle-32 form. A negative result, or one above 10 seconds, is ignored, and
// so is a compound packet whose framing is broken.
func (r *Receiver) RTCP(pkt []byte, arrival time.Time) {
	rtt, ok := compoundRTT(pkt, NTPMiddle32(arrival))
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rtt = rtt
	r.hasRTT = true
}

// compoundRTT walks the packets of a compound RTCP packet and returns the
// last sane RTT any of them gives, for a packet that arrived at a.
func compoundRTT(pkt []byte, a uint32) (time.Duration, bool) {
	var rtt time.Duration
	var found bool
	for len(pkt) > 0 {
		if len(pkt) < 4 || pkt[0]>>6 != 2 {
			return 0, false
		}
		n := (int(binary.BigEndian.Uint16(pkt[2:4])) + 1) * 4
		if n > len(pkt) {
			return 0, false
		}
		if d, ok := reportRTT(pkt[:n], a); ok {
			rtt, found = d, true
		}
		pkt = pkt[n:]
	}
	return rtt, found
}

// reportRTT returns the RTT from the first report block of one SR or RR
// that answers a Sender Report and gives a sane value. Blocks that do not
// fit the packet are ignored.
func reportRTT(p []byte, a uint32) (time.Duration, bool) {
	var off int
	switch p[1] {
	case typeSR:
		off = srBlocks
	case typeRR:
		off = rrBlocks
	default:
		return 0, false
	}
	count := int(p[0] & 0x1f)
	for i := 0; i < count && off+blockSize <= len(p); i++ {
		b := p[off : off+blockSize]
		off += blockSize
		lsr := binary.BigEndian.Uint32(b[16:20])
		dlsr := binary.BigEndian.Uint32(b[20:24])
		if lsr == 0 {
			continue
		}
		if d, ok := roundTrip(a, lsr, dlsr); ok {
			return d, true
		}
	}
	return 0, false
}

// roundTrip is A - LSR - DLSR (RFC 3550 section 6.4.1) as a duration, if it
// is between zero and maxRTT.
func roundTrip(a, lsr, dlsr uint32) (time.Duration, bool) {
	v := int32(a - lsr - dlsr)
	if v < 0 {
		return 0, false
	}
	d := time.Duration(v) * time.Second / 65536
	return d, d <= maxRTT
}
