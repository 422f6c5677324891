// Package ws connects calls to AI agents over WebSocket, speaking Twilio
// Media Streams v1.0.0 by default and trunkd.ai.v1 when the agent selects
// one of its subprotocols (docs/ai-bridge.md is the contract).
//
// A Dialer is a bridge.Connector: Connect dials the agent with the call's
// credentials while the call rings; the returned bridge.Agent then sends
// connected and start on Begin.
package ws
