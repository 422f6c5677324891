package trunk

import (
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestQualityZero(t *testing.T) {
	q := NewQualityWindow(time.Hour)
	if got := q.Snapshot(); got != (Quality{}) {
		t.Errorf("Snapshot() of an empty window = %+v; want the zero Quality", got)
	}
}

func TestQualityFigures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQualityWindow(30 * time.Minute)
		q.Attempt(true, 2*time.Second)
		q.Attempt(true, 0) // no 180/183: not in the PDD mean
		q.Attempt(false, 4*time.Second)
		q.Attempt(false, 0)
		q.Ended(60 * time.Second)
		time.Sleep(10 * time.Minute)
		q.Ended(30 * time.Second)
		q.AddMOS(4.0)
		q.AddMOS(3.0)
		q.AddMOS(math.NaN())
		got := q.Snapshot()
		want := Quality{Attempted: 4, Answered: 2, ASR: 50, ACD: 45, MOS: 3.5, PDDms: 3000}
		if got != want {
			t.Errorf("Snapshot() = %+v; want %+v", got, want)
		}
	})
}

func TestQualityMeansAreFractional(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQualityWindow(time.Minute)
		q.Attempt(true, 1500*time.Microsecond)
		q.Attempt(false, 0)
		q.Attempt(false, 0)
		q.Ended(1500 * time.Millisecond)
		got := q.Snapshot()
		if !near(got.ASR, 100.0/3) || !near(got.PDDms, 1.5) || !near(got.ACD, 1.5) {
			t.Errorf("Snapshot() = %+v; want ASR 33.3…, PDDms 1.5, ACD 1.5", got)
		}
	})
}

// TestQualityAgesOut: the window is 60 buckets of 30 s; an event made at
// the start of a bucket leaves exactly 30 min later, one made inside a
// bucket leaves with its bucket.
func TestQualityAgesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQualityWindow(30 * time.Minute)
		q.Attempt(true, time.Second)
		q.Ended(time.Minute)
		q.AddMOS(4)
		time.Sleep(10 * time.Minute)
		q.Attempt(false, 3*time.Second)
		q.Ended(3 * time.Minute)
		q.AddMOS(2)

		time.Sleep(20*time.Minute - time.Nanosecond) // 30 min less 1 ns after the first events
		want := Quality{Attempted: 2, Answered: 1, ASR: 50, ACD: 120, MOS: 3, PDDms: 2000}
		if got := q.Snapshot(); got != want {
			t.Errorf("at 29:59.999999999: Snapshot() = %+v; want %+v", got, want)
		}
		time.Sleep(time.Nanosecond)
		want = Quality{Attempted: 1, Answered: 0, ASR: 0, ACD: 180, MOS: 2, PDDms: 3000}
		if got := q.Snapshot(); got != want {
			t.Errorf("at 30:00: Snapshot() = %+v; want %+v", got, want)
		}
		time.Sleep(10 * time.Minute)
		if got := q.Snapshot(); got != (Quality{}) {
			t.Errorf("at 40:00: Snapshot() = %+v; want the zero Quality", got)
		}
	})
}

func TestQualityAgesOutWithItsBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQualityWindow(30 * time.Minute)
		time.Sleep(20 * time.Second) // inside the first 30 s bucket
		q.Attempt(true, 0)
		time.Sleep(30*time.Minute - 20*time.Second - time.Nanosecond)
		if got := q.Snapshot().Attempted; got != 1 {
			t.Errorf("at 29:59.999999999: Attempted = %d; want 1", got)
		}
		time.Sleep(time.Nanosecond)
		if got := q.Snapshot().Attempted; got != 0 {
			t.Errorf("at 30:00 (29:40 after the call): Attempted = %d; want 0", got)
		}
	})
}

func TestQualityBucketReused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQualityWindow(30 * time.Minute)
		q.Attempt(true, 0)
		time.Sleep(30 * time.Minute) // same bucket, next lap
		q.Attempt(false, 0)
		if got := q.Snapshot(); got.Attempted != 1 || got.Answered != 0 {
			t.Errorf("Snapshot() = %+v; want only the second attempt", got)
		}
	})
}

func TestQualityDefaultWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQualityWindow(0)
		q.Attempt(true, 0)
		time.Sleep(DefaultQualityWindow - time.Nanosecond)
		if got := q.Snapshot().Attempted; got != 1 {
			t.Errorf("NewQualityWindow(0) after %v: Attempted = %d; want 1", DefaultQualityWindow-1, got)
		}
		time.Sleep(time.Nanosecond)
		if got := q.Snapshot().Attempted; got != 0 {
			t.Errorf("NewQualityWindow(0) after %v: Attempted = %d; want 0", DefaultQualityWindow, got)
		}
	})
}

func TestQualityConcurrent(t *testing.T) {
	q := NewQualityWindow(time.Hour)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 500 {
				q.Attempt(i%2 == 0, time.Millisecond)
				q.Ended(time.Second)
				q.AddMOS(4)
				q.Snapshot()
			}
		})
	}
	wg.Wait()
	got := q.Snapshot()
	want := Quality{Attempted: 4000, Answered: 2000, ASR: 50, ACD: 1, MOS: 4, PDDms: 1}
	if got != want {
		t.Errorf("Snapshot() = %+v; want %+v", got, want)
	}
}

// TestQualitySumsAdd: figures of summed windows are those of all their
// calls (ASR = Σanswered/Σattempted), and Sums().Quality() is Snapshot.
func TestQualitySumsAdd(t *testing.T) {
	a, b := NewQualityWindow(time.Hour), NewQualityWindow(time.Hour)
	a.Attempt(true, 100*time.Millisecond)
	a.Ended(10 * time.Second)
	a.AddMOS(4.0)
	for range 3 {
		b.Attempt(false, 300*time.Millisecond)
	}
	if got, want := a.Sums().Quality(), a.Snapshot(); got != want {
		t.Errorf("Sums().Quality() = %+v; want Snapshot %+v", got, want)
	}
	got := a.Sums().Add(b.Sums()).Quality()
	want := Quality{Attempted: 4, Answered: 1, ASR: 25, ACD: 10, MOS: 4, PDDms: 250}
	if got != want {
		t.Errorf("summed quality = %+v; want %+v", got, want)
	}
}

// TestQualitySeries: each bucket's own figures, oldest first, the newest
// last; buckets that left the window are zero.
func TestQualitySeries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQualityWindow(60 * time.Minute) // 1-minute buckets
		q.Attempt(false, 0)                     // minute 0: leaves the window by minute 60
		time.Sleep(30 * time.Minute)
		q.Attempt(true, time.Second) // minute 30
		q.Attempt(false, 0)
		time.Sleep(29 * time.Minute)
		q.AddMOS(4.2) // minute 59
		s := q.Series()
		if len(s) != 60 {
			t.Fatalf("len(Series()) = %d; want 60", len(s))
		}
		if s[0].Attempted != 1 || s[30] != (Quality{Attempted: 2, Answered: 1, ASR: 50, PDDms: 1000}) || s[59].MOS != 4.2 {
			t.Errorf("Series()[0, 30, 59] = %+v, %+v, %+v; want 1 attempt, ASR 50 with PDD 1000, MOS 4.2", s[0], s[30], s[59])
		}
		time.Sleep(time.Minute)
		s = q.Series()
		if s[0] != (Quality{}) || s[29].ASR != 50 || s[58].MOS != 4.2 || s[59] != (Quality{}) {
			t.Errorf("Series() a minute later = %+v … %+v, %+v, %+v; want the first gone and the rest one step older", s[0], s[29], s[58], s[59])
		}
	})
}

// TestQualityBucketsMadeAtFirstEvent: a window that never saw a call
// answers every read with zeros and holds no buckets (a node keeps one per
// trunk, most of them idle); the first event makes them.
func TestQualityBucketsMadeAtFirstEvent(t *testing.T) {
	q := NewQualityWindow(time.Minute)
	if got := q.Snapshot(); got != (Quality{}) {
		t.Errorf("Snapshot() of an empty window = %+v; want zero", got)
	}
	if got := q.Sums(); !got.IsZero() {
		t.Errorf("Sums() of an empty window = %+v; want zero", got)
	}
	if got := q.Series(); len(got) != qualityBuckets || got[qualityBuckets-1] != (Quality{}) {
		t.Errorf("Series() of an empty window = %d figures, last %+v; want %d zeros", len(got), got[len(got)-1], qualityBuckets)
	}
	if q.w.buckets != nil {
		t.Errorf("an empty window holds %d buckets after reads; want none", len(q.w.buckets))
	}
	q.Attempt(true, 0)
	if got := q.Sums(); got.Attempted != 1 || got.Answered != 1 {
		t.Errorf("Sums() after one answered attempt = %+v; want 1 attempted, 1 answered", got)
	}
	if got := q.Series(); got[qualityBuckets-1].Attempted != 1 {
		t.Errorf("Series() after one attempt ends with %+v; want 1 attempted", got[qualityBuckets-1])
	}
}
