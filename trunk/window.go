package trunk

import "time"

// window is a sliding window of n buckets of equal width, each holding a T
// that sums the events of its stretch of time. The window is the current
// bucket and the n−1 before it, so an event leaves it between width×(n−1)
// and width×n after it happened: exactly width×n when it happened at the
// start of a bucket. Buckets start at the window's creation.
//
// The buckets are allocated at the first event: a daemon holds a window
// or two per trunk, and most of 100 000 trunks may never carry a call.
//
// A window is not safe for concurrent use; its owner locks it.
type window[T any] struct {
	origin  time.Time
	width   time.Duration
	n       int
	buckets []T     // nil until the first event
	slots   []int64 // slot number each bucket holds; stale buckets are skipped
	newest  int64   // the highest slot at has returned a bucket for
}

func newWindow[T any](length time.Duration, n int) *window[T] {
	return &window[T]{
		origin: time.Now(),
		width:  max(length/time.Duration(n), 1),
		n:      n,
	}
}

// slot is the number of the bucket-wide stretch that holds now.
func (w *window[T]) slot(now time.Time) int64 {
	return int64(max(now.Sub(w.origin), 0) / w.width)
}

// at returns the bucket for now, emptied first if it held an older slot.
func (w *window[T]) at(now time.Time) *T {
	if w.buckets == nil {
		w.buckets, w.slots = make([]T, w.n), make([]int64, w.n)
	}
	s := w.slot(now)
	i := s % int64(w.n)
	if w.slots[i] != s {
		var zero T
		w.buckets[i], w.slots[i] = zero, s
	}
	w.newest = max(w.newest, s)
	return &w.buckets[i]
}

// each calls f with every bucket still in the window at now. A window
// whose every event has left it (an idle trunk's) costs no walk.
func (w *window[T]) each(now time.Time, f func(*T)) {
	s := w.slot(now)
	n := int64(w.n)
	if w.buckets == nil || w.newest <= s-n {
		return
	}
	for i := range w.buckets {
		if w.slots[i] > s-n && w.slots[i] <= s {
			f(&w.buckets[i])
		}
	}
}

// reset empties every bucket.
func (w *window[T]) reset() {
	w.buckets, w.slots, w.newest = nil, nil, 0
}
