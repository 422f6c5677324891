package main

import (
	"runtime/debug"
	"testing"
)

func TestCgroupLimit(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"1073741824\n", 1 << 30},
		{"max\n", 0},                 // v2: no limit
		{"9223372036854771712\n", 0}, // v1: no limit
		{"", 0},                      // no such file
		{"-1\n", 0},
	} {
		if got := cgroupLimit(c.in); got != c.want {
			t.Errorf("cgroupLimit(%q) = %d; want %d", c.in, got, c.want)
		}
	}
}

func TestMemTotal(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"MemTotal:        8048576 kB\nMemFree:         1000 kB\n", 8048576 << 10},
		{"MemFree:         1000 kB\n", 0},
		{"MemTotal: lots kB\n", 0},
		{"", 0},
	} {
		if got := memTotal(c.in); got != c.want {
			t.Errorf("memTotal(%q) = %d; want %d", c.in, got, c.want)
		}
	}
}

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
