package sipplane

import (
	"slices"
	"sync"
	"time"

	"github.com/trunkd/trunkd/trunk"
)

// health is one trunk's carrier health and call figures. It is kept across
// updates of the trunk (an Update does not reset the breaker or the
// window) and dropped when the trunk is removed; calls in flight keep
// theirs.
type health struct {
	breaker *trunk.Breaker
	quality *trunk.QualityWindow

	mu          sync.Mutex
	calls       map[[2]string]uint64 // {direction, outcome} -> calls since start-up
	transitions map[string]uint64    // breaker state entered -> times
}

// Counters are a trunk's cumulative counts since it was added (or since
// start-up), for metrics.
type Counters struct {
	Calls       map[[2]string]uint64 // {direction, outcome} -> calls
	Transitions map[string]uint64    // breaker state entered -> times
}

// minMOSPackets is how many RTP packets a call needs (one second of 20 ms
// packets) for its MOS to count in the trunk's figure.
const minMOSPackets = 50

func (p *Plane) newHealth(id string) *health {
	h := &health{quality: trunk.NewQualityWindow(p.cfg.QualityWindow),
		calls: map[[2]string]uint64{}, transitions: map[string]uint64{}}
	h.breaker = trunk.NewBreaker(p.cfg.Breaker, func(from, to trunk.BreakerState) {
		switch {
		case to.Tripped() && !from.Tripped():
			p.tripped.Add(1)
		case from.Tripped() && !to.Tripped():
			p.tripped.Add(-1)
		}
		h.mu.Lock()
		h.transitions[string(to)]++
		h.mu.Unlock()
		p.log.Warn("circuit breaker", "trunk_id", id, "from", from, "to", to)
	})
	return h
}

func (h *health) count(direction string, o outcome) {
	h.mu.Lock()
	h.calls[[2]string{direction, string(o)}]++
	h.mu.Unlock()
}

// ended records an answered call's duration and, when its RTP gave
// enough packets, its MOS.
func (h *health) ended(d time.Duration, w *rtpWatch) {
	h.quality.Ended(d)
	if w == nil {
		return
	}
	if mos, ok := w.mos(); ok {
		h.quality.AddMOS(mos)
	}
}

func (h *health) counters() Counters {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := Counters{Calls: make(map[[2]string]uint64, len(h.calls)), Transitions: make(map[string]uint64, len(h.transitions))}
	for k, v := range h.calls {
		c.Calls[k] = v
	}
	for k, v := range h.transitions {
		c.Transitions[k] = v
	}
	return c
}

// TrunkStatus reports everything live about a trunk: SIP state, breaker
// and call figures.
func (p *Plane) TrunkStatus(id string) trunk.Status {
	sip, h := p.statusHealth(id)
	st := trunk.Status{SIP: sip}
	if h == nil {
		return st
	}
	st.Quality = h.quality.Snapshot()
	st.Breaker = h.breaker.State()
	h.mu.Lock()
	st.AIUnavailable = h.calls[[2]string{trunk.Inbound, string(outAIUnavailable)}]
	h.mu.Unlock()
	return st
}

// QualitySeries returns the per-bucket figures of a trunk's quality
// window, oldest first (trunk.QualityWindow.Series); nil for a trunk the
// SIP plane does not run.
func (p *Plane) QualitySeries(id string) []trunk.Quality {
	h := p.healthOf(id)
	if h == nil {
		return nil
	}
	return h.quality.Series()
}

// Counters reports a trunk's cumulative call and breaker counts; ok is
// false for a trunk the SIP plane does not run.
func (p *Plane) Counters(id string) (Counters, bool) {
	h := p.healthOf(id)
	if h == nil {
		return Counters{}, false
	}
	return h.counters(), true
}

// healthOf returns the trunk's health, or nil for a trunk never committed.
func (p *Plane) healthOf(id string) *health {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ts := p.trunks[id]; ts != nil {
		return ts.health
	}
	return nil
}

// TrunkIDs lists the trunks the SIP plane runs or holds as degraded.
func (p *Plane) TrunkIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, 0, len(p.trunks))
	for id, ts := range p.trunks {
		if ts.live != nil || ts.degraded != "" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// QualitySums returns the additive counts of a trunk's quality window on
// this node (zero for a trunk it does not run), for a cluster to sum.
func (p *Plane) QualitySums(id string) trunk.QualitySums {
	h := p.healthOf(id)
	if h == nil {
		return trunk.QualitySums{}
	}
	return h.quality.Sums()
}

// AllQualitySums returns the counts of every trunk with calls in its
// quality window on this node.
func (p *Plane) AllQualitySums() map[string]trunk.QualitySums {
	p.mu.Lock()
	hs := make(map[string]*health, len(p.trunks))
	for id, ts := range p.trunks {
		if ts.health != nil {
			hs[id] = ts.health
		}
	}
	p.mu.Unlock()
	out := map[string]trunk.QualitySums{}
	for id, h := range hs {
		if s := h.quality.Sums(); !s.IsZero() {
			out[id] = s
		}
	}
	return out
}
