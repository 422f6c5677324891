package trunk

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestWindowIdleSkipsWalk: a window without an event in it calls f for
// no bucket, and an event after a long idle stretch counts alone.
func TestWindowIdleSkipsWalk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWindow[int](time.Minute, 60)
		sum := func() (calls, total int) {
			w.each(time.Now(), func(v *int) { calls++; total += *v })
			return calls, total
		}
		if calls, _ := sum(); calls != 0 || w.buckets != nil {
			t.Errorf("new window: f called %d times, %d buckets allocated; want 0 and none before an event", calls, len(w.buckets))
		}
		*w.at(time.Now()) += 2
		if _, total := sum(); total != 2 {
			t.Errorf("after one event: total %d; want 2", total)
		}
		time.Sleep(time.Minute)
		if calls, _ := sum(); calls != 0 {
			t.Errorf("a window after its last event left: f called %d times; want 0", calls)
		}
		time.Sleep(time.Hour)
		*w.at(time.Now()) += 5
		if _, total := sum(); total != 5 {
			t.Errorf("event after an idle hour: total %d; want 5", total)
		}
		w.reset()
		if calls, _ := sum(); calls != 0 || w.buckets != nil {
			t.Errorf("after reset: f called %d times; want 0", calls)
		}
	})
}
