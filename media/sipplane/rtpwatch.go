package sipplane

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/emiago/diago/media"
	"github.com/pion/rtcp"
	"github.com/trunkd/trunkd/media/rtpstats"
	"github.com/trunkd/trunkd/trunk"
)

// rtpWatch reads a call's incoming RTP for its quality figures: loss from
// sequence numbers and RFC 3550 jitter, computed here because diago's
// receive statistics are wrong after a sequence wrap.
type rtpWatch struct {
	rx *rtpstats.Receiver
}

// watchRTP starts reading r until the call's media closes. Nobody else
// reads a call's incoming audio (calls play or idle), so this goroutine
// also keeps the socket drained.
// RTCP from the far end, when its session runs diago's RTCP monitor,
// gives the round-trip time.
func watchRTP(r *media.RTPPacketReader, rs *media.RTPSession, clockRate int) *rtpWatch {
	w := &rtpWatch{rx: rtpstats.NewReceiver(clockRate)}
	if rs != nil {
		rs.OnReadRTCP(func(pkt rtcp.Packet, _ media.RTPReadStats) {
			if b, err := pkt.Marshal(); err == nil {
				w.rx.RTCP(b, time.Now())
			}
		})
	}
	if r == nil {
		return w
	}
	go w.read(r)
	return w
}

// read feeds every packet with a payload to the statistics until the
// media closes. A malformed packet is skipped; diago panics on some, which
// must not take the daemon down.
func (w *rtpWatch) read(r *media.RTPPacketReader) {
	defer func() { _ = recover() }()
	buf := make([]byte, media.RTPBufSize)
	for bad := 0; bad < 1000; {
		n, err := r.Read(buf)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
			return
		case err != nil:
			bad++
		case n > 0:
			bad = 0
			h := r.PacketHeader
			w.rx.Packet(h.SequenceNumber, h.Timestamp, time.Now())
		}
	}
}

// mos is the call's MOS by the simplified E-model, when it received
// enough packets to judge.
func (w *rtpWatch) mos() (float64, bool) {
	s := w.rx.Snapshot()
	if s.Received < minMOSPackets {
		return 0, false
	}
	return trunk.MOS(s.RTT, s.Jitter, s.LossPct), true
}
