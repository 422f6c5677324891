package bridge

import "sync"

// MaxQueue is the most agent audio the playout queue holds: 120 s. Audio
// beyond it is dropped and counted.
const MaxQueue = 120 * Rate

// playout is the queue of agent audio waiting to be played, with marks at
// sample offsets. Offsets count from the stream start, so played counts
// every sample written to the caller that came from the agent.
type playout struct {
	mu      sync.Mutex
	buf     []int16
	head    int64 // stream offset of buf[0]
	marks   []pendingMark
	dropped int64 // samples dropped past MaxQueue
}

type pendingMark struct {
	name string
	at   int64 // offset of the sample after which the mark fires
}

// push appends agent audio and reports how many samples were dropped.
func (q *playout) push(s []int16) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	room := MaxQueue - len(q.buf)
	drop := 0
	if len(s) > room {
		drop = len(s) - room
		s = s[:room]
		q.dropped += int64(drop)
	}
	q.buf = append(q.buf, s...)
	return drop
}

// mark places a mark after the queued audio; with nothing queued it is
// played at once and returned.
func (q *playout) mark(name string) (MarkDone, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.buf) == 0 && len(q.marks) == 0 {
		return MarkDone{Name: name, PlayedMS: q.head / (Rate / 1000)}, true
	}
	q.marks = append(q.marks, pendingMark{name: name, at: q.head + int64(len(q.buf))})
	return MarkDone{}, false
}

// next takes the next frame into out (padding the last partial frame with
// silence) and returns the marks it completes; ok is false with nothing
// queued.
func (q *playout) next(out []int16) (done []MarkDone, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(len(out), len(q.buf))
	copy(out, q.buf[:n])
	clear(out[n:])
	q.buf = q.buf[n:]
	if len(q.buf) == 0 {
		q.buf = nil // let the backing array go
	}
	q.head += int64(n)
	for len(q.marks) > 0 && q.marks[0].at <= q.head {
		done = append(done, MarkDone{Name: q.marks[0].name, PlayedMS: q.head / (Rate / 1000)})
		q.marks = q.marks[1:]
	}
	return done, n > 0
}

// clear drops the queued audio and returns the pending marks as cleared.
func (q *playout) clear() []MarkDone {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.buf = nil
	var done []MarkDone
	for _, m := range q.marks {
		done = append(done, MarkDone{Name: m.name, Cleared: true, PlayedMS: q.head / (Rate / 1000)})
	}
	q.marks = nil
	return done
}

// busy reports whether audio is queued.
func (q *playout) busy() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.buf) > 0
}

// playedMS is the agent audio played so far, in ms.
func (q *playout) playedMS() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.head / (Rate / 1000)
}
