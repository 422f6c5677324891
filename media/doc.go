// Package media is the root of trunkd's media side; it holds no code. Each
// capability is its own package beneath it:
//
//	media/sipplane           the SIP and RTP plane on diago and sipgo: listeners,
//	                         inbound and outbound calls, re-INVITEs, health
//	media/sipplane/register  a trunk's SIP registration, on sipgo's client
//	media/sipplane/siptest   test kit: free ports and a sipp runner
//	media/audio              audio fetched by URL, converted and cached
//	media/rtpstats           RTP loss, jitter and RTT from packets and RTCP
//
// The AI audio bridge (a later issue) goes in media/bridge, transport-free,
// with its dialers beneath it; the SIP plane will hand it a call's audio.
//
// Packages under media import only trunk and each other: never a face
// (rpc) or a store; cmd/trunkd wires them.
package media
