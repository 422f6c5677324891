package trunk

import (
	"math"
	"sync"
	"time"
)

// qualityBuckets is how many buckets a QualityWindow has.
const qualityBuckets = 60

// DefaultQualityWindow is the length of the quality window when none is
// given.
const DefaultQualityWindow = 30 * time.Minute

// figures is one bucket of a QualityWindow.
type figures struct {
	attempted, answered uint64
	pddSum              time.Duration
	pddCount            uint64
	endedSum            time.Duration
	endedCount          uint64
	mosSum              float64
	mosCount            uint64
}

func (f *figures) add(g *figures) {
	f.attempted += g.attempted
	f.answered += g.answered
	f.pddSum += g.pddSum
	f.pddCount += g.pddCount
	f.endedSum += g.endedSum
	f.endedCount += g.endedCount
	f.mosSum += g.mosSum
	f.mosCount += g.mosCount
}

// QualityWindow holds one trunk's call figures (ASR, ACD, MOS, PDD) over a
// sliding window. It is safe for concurrent use.
//
// The window is kept in 60 buckets of a 60th of its length each, starting
// at NewQualityWindow: an event leaves the figures between 59/60 of the
// window and the whole window after it happened.
type QualityWindow struct {
	mu sync.Mutex
	w  *window[figures]
}

// NewQualityWindow returns an empty window of the given length;
// DefaultQualityWindow when length is zero or less.
func NewQualityWindow(length time.Duration) *QualityWindow {
	if length <= 0 {
		length = DefaultQualityWindow
	}
	return &QualityWindow{w: newWindow[figures](length, qualityBuckets)}
}

// Attempt records that one outbound call's setup ended, answered or not.
// pdd is the time from the INVITE to the first 180 or 183; 0 when none
// came, and then it is left out of the mean.
func (q *QualityWindow) Attempt(answered bool, pdd time.Duration) {
	q.add(func(f *figures) {
		f.attempted++
		if answered {
			f.answered++
		}
		if pdd > 0 {
			f.pddSum += pdd
			f.pddCount++
		}
	})
}

// Ended records that an answered call, in either direction, ended after d.
func (q *QualityWindow) Ended(d time.Duration) {
	q.add(func(f *figures) {
		f.endedSum += max(d, 0)
		f.endedCount++
	})
}

// AddMOS records one call's MOS. NaN and infinities are ignored.
func (q *QualityWindow) AddMOS(m float64) {
	if math.IsNaN(m) || math.IsInf(m, 0) {
		return
	}
	q.add(func(f *figures) {
		f.mosSum += m
		f.mosCount++
	})
}

func (q *QualityWindow) add(f func(*figures)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	f(q.w.at(time.Now()))
}

// Snapshot returns the figures of the window as it is now.
func (q *QualityWindow) Snapshot() Quality {
	var sum figures
	q.mu.Lock()
	q.w.each(time.Now(), sum.add)
	q.mu.Unlock()
	return sum.quality()
}

// Series returns the figures of each bucket of the window as it is now,
// oldest first: one Quality per 60th of the window, the zero Quality for
// a stretch without calls. The last is the bucket now filling. It draws
// the window's history (a sparkline); Snapshot is the window's figure.
func (q *QualityWindow) Series() []Quality {
	out := make([]Quality, q.w.n)
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	s := q.w.slot(now)
	n := int64(q.w.n)
	for i := range q.w.buckets { // none before the first event
		// A bucket never used holds slot 0 without being slot 0's.
		if slot := q.w.slots[i]; slot > s-n && slot <= s && slot%n == int64(i) {
			out[n-1-(s-slot)] = q.w.buckets[i].quality()
		}
	}
	return out
}

// quality turns summed figures into rates and means.
func (f *figures) quality() Quality {
	return Quality{
		Attempted: f.attempted,
		Answered:  f.answered,
		ASR:       mean(float64(f.answered)*100, f.attempted),
		ACD:       mean(f.endedSum.Seconds(), f.endedCount),
		MOS:       mean(f.mosSum, f.mosCount),
		PDDms:     mean(float64(f.pddSum)/float64(time.Millisecond), f.pddCount),
	}
}

// mean is sum/n, or 0 when n is 0.
func mean(sum float64, n uint64) float64 {
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// QualitySums are the additive counts behind a Quality: the sums of
// several windows (the nodes of a cluster) give the figures of all their
// calls, never a mean of means.
type QualitySums struct {
	Attempted  uint64  `json:"attempted,omitempty"`
	Answered   uint64  `json:"answered,omitempty"`
	PDDSumMs   float64 `json:"pdd_sum_ms,omitempty"`
	PDDCount   uint64  `json:"pdd_count,omitempty"`
	EndedSumS  float64 `json:"ended_sum_s,omitempty"`
	EndedCount uint64  `json:"ended_count,omitempty"`
	MOSSum     float64 `json:"mos_sum,omitempty"`
	MOSCount   uint64  `json:"mos_count,omitempty"`
}

// Sums returns the counts of the window as it is now.
func (q *QualityWindow) Sums() QualitySums {
	var sum figures
	q.mu.Lock()
	q.w.each(time.Now(), sum.add)
	q.mu.Unlock()
	return QualitySums{
		Attempted: sum.attempted, Answered: sum.answered,
		PDDSumMs: float64(sum.pddSum) / float64(time.Millisecond), PDDCount: sum.pddCount,
		EndedSumS: sum.endedSum.Seconds(), EndedCount: sum.endedCount,
		MOSSum: sum.mosSum, MOSCount: sum.mosCount,
	}
}

// Add returns s plus o.
func (s QualitySums) Add(o QualitySums) QualitySums {
	return QualitySums{
		Attempted: s.Attempted + o.Attempted, Answered: s.Answered + o.Answered,
		PDDSumMs: s.PDDSumMs + o.PDDSumMs, PDDCount: s.PDDCount + o.PDDCount,
		EndedSumS: s.EndedSumS + o.EndedSumS, EndedCount: s.EndedCount + o.EndedCount,
		MOSSum: s.MOSSum + o.MOSSum, MOSCount: s.MOSCount + o.MOSCount,
	}
}

// IsZero reports whether s counts nothing.
func (s QualitySums) IsZero() bool { return s == QualitySums{} }

// Quality returns the figures of s.
func (s QualitySums) Quality() Quality {
	return Quality{
		Attempted: s.Attempted,
		Answered:  s.Answered,
		ASR:       mean(float64(s.Answered)*100, s.Attempted),
		ACD:       mean(s.EndedSumS, s.EndedCount),
		MOS:       mean(s.MOSSum, s.MOSCount),
		PDDms:     mean(s.PDDSumMs, s.PDDCount),
	}
}
