package rtpstats

import (
	"encoding/binary"
	"testing"
	"time"
)

// reportBlock builds one RFC 3550 report block about ssrc.
func reportBlock(ssrc, lsr, dlsr uint32) []byte {
	b := make([]byte, blockSize)
	binary.BigEndian.PutUint32(b[0:], ssrc)
	b[4] = 12                                  // fraction lost
	binary.BigEndian.PutUint32(b[8:], 0x10005) // extended highest sequence
	binary.BigEndian.PutUint32(b[12:], 40)     // jitter
	binary.BigEndian.PutUint32(b[16:], lsr)
	binary.BigEndian.PutUint32(b[20:], dlsr)
	return b
}

// rtcpPacket frames body (everything after the common header) as one RTCP
// packet of type pt with count in the low five bits.
func rtcpPacket(pt byte, count int, body []byte) []byte {
	p := make([]byte, 4, 4+len(body))
	p[0] = 2<<6 | byte(count)
	p[1] = pt
	binary.BigEndian.PutUint16(p[2:], uint16((4+len(body))/4-1))
	return append(p, body...)
}

// receiverReport is an RR from SSRC 0x2222 with one block about 0x1111.
func receiverReport(lsr, dlsr uint32) []byte {
	body := binary.BigEndian.AppendUint32(nil, 0x2222)
	return rtcpPacket(typeRR, 1, append(body, reportBlock(0x1111, lsr, dlsr)...))
}

// senderReport is an SR from SSRC 0x2222 with the given report blocks.
func senderReport(blocks ...[]byte) []byte {
	body := binary.BigEndian.AppendUint32(nil, 0x2222)
	body = append(body, make([]byte, 20)...) // NTP, RTP time, counts
	for _, b := range blocks {
		body = append(body, b...)
	}
	return rtcpPacket(typeSR, len(blocks), body)
}

// sdes is an SDES packet with one CNAME chunk, padded to a word.
func sdes() []byte {
	chunk := binary.BigEndian.AppendUint32(nil, 0x2222)
	chunk = append(chunk, 1, 4, 'p', 'e', 'e', 'r', 0, 0)
	return rtcpPacket(202, 1, chunk)
}

// dlsrOf converts a delay to the 1/65536 s units of DLSR.
func dlsrOf(d time.Duration) uint32 { return uint32(d * 65536 / time.Second) }

func TestNTPMiddle32(t *testing.T) {
	tests := []struct {
		t    time.Time
		want uint32
	}{
		// 1970 is NTP second 2208988800 = 0x83AA7E80.
		{time.Unix(0, 0), 0x7E800000},
		{time.Unix(0, 500_000_000), 0x7E808000},
		{time.Unix(1, 250_000_000), 0x7E814000},
		{time.Unix(0, 999_999_999), 0x7E80FFFF},
		// Low 16 bits of the seconds wrap.
		{time.Unix(0x8180, 0), 0x00000000},
		{time.Unix(0x817F, 0), 0xFFFF0000},
	}
	for _, tt := range tests {
		if got := NTPMiddle32(tt.t); got != tt.want {
			t.Errorf("NTPMiddle32(%v) = %#08x; want %#08x", tt.t.UTC(), got, tt.want)
		}
	}
}

func TestRTT(t *testing.T) {
	sent := t0.Add(123456789 * time.Nanosecond)
	lsr := NTPMiddle32(sent)
	hold := 500 * time.Millisecond // the far end held our SR this long
	rtt := 80 * time.Millisecond
	arrival := sent.Add(hold + rtt)
	tests := []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"RR", receiverReport(lsr, dlsrOf(hold)), true},
		{"SR", senderReport(reportBlock(0x1111, lsr, dlsrOf(hold))), true},
		{"SR then SDES", append(senderReport(reportBlock(0x1111, lsr, dlsrOf(hold))), sdes()...), true},
		{"SR without blocks then RR", append(senderReport(), receiverReport(lsr, dlsrOf(hold))...), true},
		{"second block", senderReport(reportBlock(0x3333, 0, 0), reportBlock(0x1111, lsr, dlsrOf(hold))), true},
		{"no SR yet", receiverReport(0, 0), false},
		{"negative", receiverReport(lsr, dlsrOf(hold+time.Second)), false},
		{"over 10 s", receiverReport(lsr-dlsrOf(11*time.Second), dlsrOf(hold)), false},
		{"only SDES", sdes(), false},
		{"truncated", receiverReport(lsr, dlsrOf(hold))[:20], false},
		{"version 1", append([]byte{1 << 6}, receiverReport(lsr, dlsrOf(hold))[1:]...), false},
		{"broken trailer", append(receiverReport(lsr, dlsrOf(hold)), 0x80, 0xc9, 0, 9), false},
		{"count beyond length", rtcpPacket(typeRR, 3, receiverReport(lsr, dlsrOf(hold))[4:]), true},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReceiver(rate)
			r.RTCP(tt.pkt, arrival)
			got := r.Snapshot()
			if got.HasRTT != tt.ok {
				t.Fatalf("HasRTT = %v; want %v", got.HasRTT, tt.ok)
			}
			// NTP middle-32 has 1/65536 s steps; three truncations.
			if diff := got.RTT - rtt; tt.ok && (diff < -50*time.Microsecond || diff > 50*time.Microsecond) {
				t.Errorf("RTT = %v; want %v", got.RTT, rtt)
			}
		})
	}
}

// A later absurd report keeps the last sane RTT.
func TestRTTKeepsLastSane(t *testing.T) {
	r := NewReceiver(rate)
	lsr := NTPMiddle32(t0)
	r.RTCP(receiverReport(lsr, 0), t0.Add(30*time.Millisecond))
	r.RTCP(receiverReport(lsr, dlsrOf(time.Second)), t0.Add(40*time.Millisecond))
	got := r.Snapshot()
	if !got.HasRTT || got.RTT < 29*time.Millisecond || got.RTT > 31*time.Millisecond {
		t.Errorf("Snapshot() = RTT %v, HasRTT %v; want about 30ms, true", got.RTT, got.HasRTT)
	}
}

// FuzzRTCP feeds arbitrary bytes as a compound RTCP packet. It must not
// panic, and any RTT it reports must be sane.
func FuzzRTCP(f *testing.F) {
	lsr := NTPMiddle32(t0)
	f.Add(receiverReport(lsr, dlsrOf(time.Second)))
	f.Add(append(senderReport(reportBlock(1, lsr, 0)), sdes()...))
	f.Add(rtcpPacket(typeRR, 31, nil))
	f.Add([]byte{0x80, 0xc8, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReceiver(rate)
		r.RTCP(b, t0.Add(1500*time.Millisecond))
		if s := r.Snapshot(); s.HasRTT && (s.RTT < 0 || s.RTT > maxRTT) {
			t.Fatalf("RTCP(% x) gave RTT %v", b, s.RTT)
		}
	})
}
