package main

import (
	"runtime/debug"
	"testing"
)

// TestHoldGC: the load's target applies until restore, which puts the
// previous one back; a higher target or GOGC=off is left alone.
func TestHoldGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	for _, c := range []struct{ before, during int }{{100, loadGCPercent}, {50, loadGCPercent}, {800, 800}, {-1, -1}} {
		debug.SetGCPercent(c.before)
		restore := holdGC()
		got := debug.SetGCPercent(c.during)
		restore()
		after := debug.SetGCPercent(c.before)
		if got != c.during || after != c.before {
			t.Errorf("GOGC %d: during the load %d, after %d; want %d, %d", c.before, got, after, c.during, c.before)
		}
	}
}
