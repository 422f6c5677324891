// Package rtpstats computes the receive-side quality figures of one RTP
// stream as RFC 3550 defines them: packets expected, received and lost
// (section 6.4.1 and appendix A.3, from the extended highest sequence number
// of appendix A.1), interarrival jitter (section 6.4.1 and appendix A.8) and
// the round-trip time from the far end's reception reports (section 6.4.1).
//
// It exists because diago v0.31.0's own figures are wrong once the 16-bit
// sequence number wraps, which a call with a random initial sequence number
// reaches within about 22 minutes.
//
// A Receiver is fed by one goroutine (Packet, and RTCP if the caller reads
// the far end's reports) and read by any other (Snapshot).
//
// Where it can hurt you:
//   - Like RFC 3550, a stream is counted only once two packets in sequence
//     have arrived (MIN_SEQUENTIAL = 2), so the first packet is never
//     counted and losses before that go unseen.
//   - Duplicates count as received, as RFC 3550 says, so they can hide an
//     equal number of losses; Lost is clamped at zero.
//   - A jump of more than 3000 sequence numbers is taken as a new source once
//     the next packet confirms it; the figures then continue across both.
//   - A timestamp step worth more than 10 seconds of media is taken as a
//     discontinuity (a new source, or a sender that stops its clock during
//     silence), not as jitter. RFC 3550 has no such rule.
//   - RTT needs the far end to report on a Sender Report that was stamped
//     from this host's wall clock (diago's are), and it is the latest sane
//     value, not an average.
package rtpstats
