// Package quic connects calls to AI agents over raw QUIC (ALPN
// trunkd-ai/1, docs/ai-bridge.md "QUIC"): one connection per call; on
// its first bidirectional stream, opened by trunkd, length-prefixed
// frames carry the JSON events of the WebSocket protocol both ways and
// the agent's audio in order; the caller's audio travels in RFC 9221
// datagrams, where a lost frame is better than head-of-line blocking.
//
// Audio is 16-bit little-endian PCM at 8 kHz both ways.
package quic
