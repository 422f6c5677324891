package main

import (
	"bufio"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// gcPercent is the collector's target (GOGC) when the environment does
// not set one: the heap may grow to 5x what is live before a collection,
// not 2x. trunkd's live heap is mostly SIP transactions kept for their
// RFC 3261 timers, and the collector's CPU is in inverse proportion to
// this setting; at 100 it was 15-20% of the CPU of a rejected call.
const gcPercent = 400

// gcDefaults sets the garbage collector for a daemon, unless the
// environment does (GOGC, GOMEMLIMIT): gcPercent, and a soft memory limit
// of half the memory trunkd may use (its cgroup's limit, else the
// machine's), near which the collector runs more often, so that the
// higher target never costs more than that. It logs what it set.
func gcDefaults(getenv func(string) string, log *slog.Logger) {
	var attrs []any
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
		attrs = append(attrs, "gc_percent", gcPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		if m := memoryAvailable(); m > 0 {
			debug.SetMemoryLimit(m / 2)
			attrs = append(attrs, "memory_limit_mib", m/2>>20)
		}
	}
	if len(attrs) > 0 {
		log.Info("garbage collector defaults (GOGC and GOMEMLIMIT override them)", attrs...)
	}
}

// memoryAvailable is the memory trunkd may use in bytes: the lowest of
// its cgroup's limit (v2, else v1) and the machine's total; 0 when none
// can be read.
func memoryAvailable() int64 {
	m := int64(0)
	for _, v := range []int64{
		cgroupLimit(readFile("/sys/fs/cgroup/memory.max")),
		cgroupLimit(readFile("/sys/fs/cgroup/memory/memory.limit_in_bytes")),
		memTotal(readFile("/proc/meminfo")),
	} {
		if v > 0 && (m == 0 || v < m) {
			m = v
		}
	}
	return m
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// cgroupLimit parses a cgroup memory limit file: a number of bytes, or
// "max" (v2) or a number near the largest int64 (v1) for none, 0.
func cgroupLimit(s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 || n >= math.MaxInt64/2 {
		return 0
	}
	return n
}

// memTotal reads MemTotal from /proc/meminfo's text, in bytes; 0 when
// it is not there.
func memTotal(s string) int64 {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kib, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || kib <= 0 {
				return 0
			}
			return kib << 10
		}
	}
	return 0
}

// loadGCPercent is the garbage collector's target while the stored
// trunks are loaded: start-up builds a few KiB per trunk and keeps most of
// it, so with a target of 100 the collector marks the growing heap again
// and again (a fifth of start-up's CPU at 100 000 trunks) to free little.
// It matters when GOGC sets a lower target than gcPercent.
const loadGCPercent = 400

// holdGC raises the collector's target to loadGCPercent for start-up's
// load and returns the function that puts the previous one back. A
// target already higher, or the collector turned off (GOGC=off), is left
// as it is; a memory limit (GOMEMLIMIT) still applies throughout.
func holdGC() (restore func()) {
	old := debug.SetGCPercent(loadGCPercent)
	if old < 0 || old >= loadGCPercent {
		debug.SetGCPercent(old)
		return func() {}
	}
	return func() { debug.SetGCPercent(old) }
}
