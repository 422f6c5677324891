// Package sipplane is trunkd's SIP and RTP plane, built on diago and sipgo.
//
// A Plane keeps one SIP listener (UDP and TCP) per bind address that some
// trunk uses, shared by every trunk on that bind and closed when the last
// trunk leaves and its calls end. Trunk changes are two-phase: Prepare
// acquires what the new configuration needs (a listener may be created and
// bound here, which is where a bad address fails), Commit makes it live and
// releases what the old one held, Abort undoes Prepare. Calls in flight keep
// the configuration they started with.
//
// Where it can hurt you: diago v0.31.0 has no runtime listener management,
// one process-wide RTP port range and several defects (see
// docs/operations.md, "SIP plane"). This package works around them: one
// sipgo UserAgent and one Diago per bind, RTP sockets allocated per trunk
// from its own range with wrap-around, re-INVITEs answered here (so the SDP
// keeps the external media address), SDP offers checked here before diago
// parses them, and payload types matched by name and rate.
package sipplane
