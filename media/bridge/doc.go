// Package bridge carries a phone call's audio to an AI agent and back,
// free of any transport: the phone side is a Phone (RTP payloads in, one
// paced 20 ms frame out), the agent side an Agent (events both ways) that
// a transport package provides (media/bridge/ws for WebSocket).
//
// Run starts four loops per call:
//
//   - uplink: reads the caller's RTP (the bridge is the only reader of a
//     call's RTP; Phone.Tap sees every packet for the quality figures),
//     turns RFC 4733 events into DTMF, decodes G.711 to 8 kHz PCM, feeds
//     the barge-in detector and queues exact 20 ms frames for the agent;
//   - sender: drains that queue to the agent. Caller audio is never
//     blocked by a slow agent: the audio lane is bounded and drops its
//     oldest frame (counted) when full;
//   - receiver: the agent's audio goes into the playout queue (any
//     length, re-chunked to 20 ms), its marks are placed at sample offsets,
//     clear empties the queue, hangup ends the call;
//   - player: sends one 20 ms frame per tick (silence when the queue is
//     empty, so RTP timestamps stay continuous) and reports each mark once
//     the frame holding it has been sent. With Phone.Send it paces itself
//     and starts an answer that arrives during silence at once, moving its
//     schedule (the advance is given back in the next silence); with only
//     Phone.Write it relies on Write's pacing.
//
// Barge-in (bargein.go) runs on the uplink: energy or the VAD (vad.go)
// decides per frame, with an echo guard against the agent's own voice;
// Options.Denoise cleans frames first. resample.go converts between the
// phone's 8 kHz and agents' 16/24 kHz.
//
// # Where it can hurt you
//
// Phone.Write, when used, must pace to real time (diago's
// RTPPacketWriter.Write does). No jitter buffer sits on this path: an
// agent's speech recognizer needs order, not isochrony, and a buffer would
// add its depth to every turn. Run returns without waiting for the uplink,
// which ends when the phone's media closes: close it after Run.
package bridge
