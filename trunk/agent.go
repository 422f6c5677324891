package trunk

import "fmt"

// MaxAgentIDLen bounds agent_id: it is the user part of the agent's SIP
// URI.
const MaxAgentIDLen = 128

// Agent is an AI agent trunkd can reach: where it listens, whether it has
// a published version, and whether it is deployed as a SIP endpoint
// (reachable at sip:<agent_id>@<host> through the listeners of its
// organization's trunks). Like trunk_id, agent_id is unique across
// organizations.
type Agent struct {
	AgentID      string `json:"agent_id"`
	WebsocketURL string `json:"websocket_url"` // ws:// or wss://
	QUICURL      string `json:"quic_url"`      // quic://; used when websocket_url is empty
	Published    bool   `json:"published"`     // has a published version: required to deploy
	SIPDeployed  bool   `json:"sip_deployed"`  // set by DeployAgentAsSip, cleared by UndeployAgentAsSip
	// OrganizationID owns the agent; "" (an agent stored before agents
	// had organizations) is DefaultOrg.
	OrganizationID string `json:"organization_id,omitempty"`
}

// Org is the organization that owns a: OrganizationID, or DefaultOrg.
func (a *Agent) Org() string {
	if a.OrganizationID == "" {
		return DefaultOrg
	}
	return a.OrganizationID
}

// Validate checks an agent's fields, returning EINVALID naming the first
// at fault.
func (a *Agent) Validate() *Error {
	if a.AgentID == "" {
		return FieldErrorf("agent_id", "is required")
	}
	if len(a.AgentID) > MaxAgentIDLen {
		return FieldErrorf("agent_id", "is %d bytes long; at most %d are allowed", len(a.AgentID), MaxAgentIDLen)
	}
	for _, r := range a.AgentID {
		if !isIDRune(r) || r == ':' {
			return FieldErrorf("agent_id", "contains %q; only A-Z a-z 0-9 . _ - are allowed (it is a SIP user part)", r)
		}
	}
	if err := checkURL("websocket_url", a.WebsocketURL, wsSchemes); err != nil {
		return err
	}
	if err := checkURL("quic_url", a.QUICURL, quicSchemes); err != nil {
		return err
	}
	if a.WebsocketURL == "" && a.QUICURL == "" {
		return FieldErrorf("websocket_url", "an agent needs websocket_url or quic_url")
	}
	return nil
}

// String describes the agent for logs.
func (a *Agent) String() string {
	return fmt.Sprintf("agent %q (%s)", a.AgentID, a.WebsocketURL)
}

// AgentURI is the SIP URI of a deployed agent on host.
func AgentURI(id, host string) string { return "sip:" + id + "@" + host }
