package rtpstats

import (
	"math"
	"sync"
	"time"
)

// Limits from RFC 3550 appendix A.1.
const (
	maxDropout    = 3000    // largest forward jump taken as loss
	maxMisorder   = 100     // largest backward step taken as a late packet
	minSequential = 2       // packets in sequence before a stream counts
	seqMod        = 1 << 16 // sequence numbers are 16 bits
)

// maxStep is the largest transit-time difference, in seconds of media, taken
// as jitter; anything larger is a timestamp discontinuity.
const maxStep = 10

// Receiver gathers the receive statistics of one RTP stream. It is safe for
// concurrent use.
type Receiver struct {
	mu   sync.Mutex
	rate float64 // RTP clock rate, timestamp units per second

	// Sequence state, as in RFC 3550 appendix A.1.
	started   bool
	probation int    // packets in sequence still needed before counting
	maxSeq    uint16 // highest sequence number seen
	badSeq    uint32 // sequence number that would confirm a jump; seqMod+1 if none
	cycles    int64  // times the sequence number wrapped
	baseSeq   uint16 // first counted sequence number
	received  int64

	// Totals from before the source restarted.
	priorExpected int64
	priorReceived int64

	// Jitter state, as in RFC 3550 appendix A.8.
	hasLast     bool
	lastTS      uint32
	lastArrival time.Time
	jitter      float64 // timestamp units

	rtt    time.Duration
	hasRTT bool
}

// Stats are a Receiver's figures at one moment.
type Stats struct {
	Received int64         // packets received, duplicates and late ones included
	Expected int64         // packets the sequence numbers say were sent
	Lost     int64         // Expected - Received, never below zero
	LossPct  float64       // Lost as a percentage of Expected
	Jitter   time.Duration // RFC 3550 interarrival jitter
	RTT      time.Duration // latest round-trip time; valid when HasRTT
	HasRTT   bool
}

// NewReceiver returns a Receiver for a stream whose RTP timestamps run at
// clockRate units per second (8000 for PCMU and PCMA, 48000 for Opus). A
// clockRate below 1 is taken as 8000.
func NewReceiver(clockRate int) *Receiver {
	if clockRate < 1 {
		clockRate = 8000
	}
	return &Receiver{rate: float64(clockRate)}
}

// Packet records one received RTP packet with its sequence number, its RTP
// timestamp and the time it arrived.
func (r *Receiver) Packet(seq uint16, ts uint32, arrival time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.updateSeq(seq) {
		r.updateJitter(ts, arrival)
	}
}

// Snapshot returns the figures so far.
func (r *Receiver) Snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{
		Received: r.priorReceived + r.received,
		Expected: r.priorExpected + r.expected(),
		Jitter:   time.Duration(math.Round(r.jitter / r.rate * float64(time.Second))),
		RTT:      r.rtt,
		HasRTT:   r.hasRTT,
	}
	s.Lost = max(s.Expected-s.Received, 0)
	if s.Expected > 0 {
		s.LossPct = float64(s.Lost) / float64(s.Expected) * 100
	}
	return s
}

// updateSeq is RFC 3550's update_seq. It reports whether the packet belongs
// to the stream; the first packet after a large jump does not, until the
// next one confirms the jump.
func (r *Receiver) updateSeq(seq uint16) bool {
	if !r.started {
		r.started = true
		r.probation = minSequential
		r.maxSeq = seq - 1
		r.badSeq = seqMod + 1
	}
	if r.probation > 0 {
		r.probe(seq)
		return true
	}
	delta := seq - r.maxSeq
	switch {
	case delta < maxDropout: // in order, perhaps after a gap
		if seq < r.maxSeq {
			r.cycles++
		}
		r.maxSeq = seq
	case delta <= seqMod-maxMisorder: // a large jump
		if uint32(seq) != r.badSeq {
			r.badSeq = uint32(seq + 1)
			return false
		}
		r.restart(seq)
	}
	// Otherwise a duplicate or a late packet: counted, maxSeq unchanged.
	r.received++
	return true
}

// probe handles a packet while the stream is on probation: it starts
// counting after minSequential packets in sequence.
func (r *Receiver) probe(seq uint16) {
	if seq != r.maxSeq+1 {
		r.probation = minSequential - 1
		r.maxSeq = seq
		return
	}
	r.probation--
	r.maxSeq = seq
	if r.probation == 0 {
		r.initSeq(seq)
		r.received++
	}
}

// restart begins counting afresh at seq after the sender restarted its
// sequence, keeping the totals so far.
func (r *Receiver) restart(seq uint16) {
	r.priorExpected += r.expected()
	r.priorReceived += r.received
	r.initSeq(seq)
	r.hasLast = false
}

// initSeq is RFC 3550's init_seq: count from seq.
func (r *Receiver) initSeq(seq uint16) {
	r.baseSeq = seq
	r.maxSeq = seq
	r.badSeq = seqMod + 1
	r.cycles = 0
	r.received = 0
}

// expected is the number of packets expected since counting began.
func (r *Receiver) expected() int64 {
	if !r.started || r.probation > 0 {
		return 0
	}
	return r.cycles*seqMod + int64(r.maxSeq) - int64(r.baseSeq) + 1
}

// updateJitter folds one packet into the jitter estimate:
// J += (|D| - J) / 16, with D the difference between this packet's transit
// time and the previous one's, in timestamp units.
func (r *Receiver) updateJitter(ts uint32, arrival time.Time) {
	if r.hasLast {
		gap := float64(arrival.Sub(r.lastArrival)) * r.rate / float64(time.Second)
		d := math.Abs(gap - float64(int32(ts-r.lastTS)))
		if d <= maxStep*r.rate {
			r.jitter += (d - r.jitter) / 16
		}
	}
	r.hasLast = true
	r.lastTS = ts
	r.lastArrival = arrival
}
