package main

import "runtime/debug"

// loadGCPercent is the garbage collector's target while the stored
// trunks are loaded: start-up builds a few KiB per trunk and keeps most of
// it, so with the default 100 the collector marks the growing heap again
// and again (a fifth of start-up's CPU at 100 000 trunks) to free little.
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
