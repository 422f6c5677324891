// Package sipplane is trunkd's SIP and RTP plane, built on diago and sipgo.
//
// A Plane keeps one SIP listener (UDP and TCP, plus TLS on sip_tls_port
// when set) per bind address that some
// trunk uses, shared by every trunk on that bind and closed when the last
// trunk leaves and its calls end. Trunk changes are two-phase: Prepare
// acquires what the new configuration needs (a listener may be created and
// bound here, which is where a bad address fails), Commit makes it live and
// releases what the old one held, Abort undoes Prepare. Calls in flight keep
// the configuration they started with.
//
// # Parts
//
//   - Trunk state (plane.go): one trunkState per trunk id: the running
//     configuration (live, immutable after Commit), why a stored trunk is
//     degraded, and the call slots and health (breaker, quality window)
//     that outlive updates. The match table (match.go) is an immutable
//     snapshot of which trunks listen where, swapped on every change,
//     indexed per listener by source address (index.go: exact addresses,
//     prefixes by length, unrestricted trunks), so a verdict costs the
//     same with 1 trunk as with 100 000. The DNS refresher re-indexes a
//     trunk whose names resolve to new addresses.
//   - Listeners pool (listener.go): listeners owns one listener per bind,
//     its reference count and closeWhenIdle. Each listener has its own
//     sipgo UserAgent and Diago.
//   - Call registry (calls.go): calls holds every call in flight, both
//     directions, over the leg interface: inboundCall (inbound.go) and
//     outboundCall (dial.go).
//   - Verdict (verdict.go): every new INVITE gets its verdict from
//     listener.decide, in verdict.go: shutting down, no matching trunk,
//     channel_limit, the SDP offer, then the trunk's policy. A final
//     verdict is answered by answerEarly (early.go) on the server
//     transaction, without a dialog; otherwise serve (inbound.go) asks
//     decide again, takes a slot and runs the verdict's action. settle
//     is the one switch from a final verdict to its log line, outcome
//     count and response.
//   - Media (session.go): lv.session builds every media session (new, or
//     a re-INVITE's fork), acceptProfile applies the inbound SRTP policy to
//     an offer, offerSRTP/answerKeys the outbound one, routeHeader builds
//     the Route through a trunk's proxy.
//   - SRTP (sdes.go, srtpconn.go): a=crypto parsing and SDP rewriting, and
//     the call sockets that encrypt and decrypt. diago's own SRTP
//     (MediaSession.SecureRTP) is not used: diago sees plain RTP/AVP only.
//   - TLS (tls.go): the listeners' sockets, bound here and handed to sipgo;
//     TLS through our own accept loop with a handshake timeout and
//     connection limits.
//
// # Where the next capabilities plug in
//
//   - The AI bridge (media/bridge) is wired in bridged.go: Config.Bridger
//     connects agents, actBridge (HANDLE_AI, or a Request-URI naming a
//     deployed agent, agents.go) connects while ringing and answers once
//     connected; outbound Dial connects before the INVITE. The bridge is
//     the reader of a bridged call's RTP, feeding rtpWatch's tracker as a
//     tap.
//
// # Where it can hurt you
//
// diago v0.31.0 has no runtime listener management, one process-wide RTP
// port range and several defects (see docs/operations.md, "SIP plane").
// This package works around them: one sipgo UserAgent and one Diago per
// bind, RTP sockets allocated per trunk from its own range with
// wrap-around, re-INVITEs answered here (so the SDP keeps the external
// media address), SDP offers checked here before diago parses them, and
// payload types matched by name and rate.
package sipplane
