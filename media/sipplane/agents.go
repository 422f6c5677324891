package sipplane

import (
	"fmt"

	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/trunk"
)

// Agents deployed as SIP endpoints. An INVITE whose Request-URI user is a
// deployed agent's agent_id goes to that agent through the bridge, once a
// trunk admits it: the trunk matched by the source (gateway_ip, sbc_ip,
// domain, as for any call) lends its channel_limit, codecs,
// media_ip_cidrs, barge-in settings and api_bearer_token, counts the call
// in its figures (ASR, ACD, MOS, calls_total), and its inbound_rule is
// not consulted: the Request-URI names the agent. A trunk with
// reject_incoming_calls set still refuses every call.

// SetAgent makes a deployed agent reachable at its SIP URI, or updates
// it; control.AgentPlane.
func (p *Plane) SetAgent(a *trunk.Agent) {
	c := *a
	p.agents.Store(a.AgentID, &c)
}

// DropAgent stops routing calls to an agent; calls in flight go on.
func (p *Plane) DropAgent(id string) { p.agents.Delete(id) }

// SIPHost is the host part of deployed agents' SIP URIs: Config.AgentHost,
// else the first interface address.
func (p *Plane) SIPHost() string {
	if p.cfg.AgentHost != "" {
		return p.cfg.AgentHost
	}
	if ip, _, err := sip.ResolveInterfacesIP("ip4", nil); err == nil {
		return ip.String()
	}
	return "127.0.0.1"
}

// agentFor returns the deployed agent a Request-URI user names, or nil.
func (p *Plane) agentFor(user string) *trunk.Agent {
	if user == "" || p.cfg.Bridger == nil {
		return nil
	}
	if v, ok := p.agents.Load(user); ok {
		return v.(*trunk.Agent)
	}
	return nil
}

// explainAgent adds to a match what happens to a call whose Request-URI
// names a deployed agent.
func (p *Plane) explainAgent(m trunk.Match, lv *live, ruriUser string) trunk.Match {
	a := p.agentFor(ruriUser)
	switch {
	case a == nil || lv == nil || a.Org() != lv.t.Org():
		// only the agent's own organization's trunks reach it; an
		// explanation never reveals another organization's agent
		return m
	case lv.t.RejectIncomingCalls:
		m.Reason += fmt.Sprintf("; the Request-URI names deployed agent %q, but trunk %q rejects every call (reject_incoming_calls)", a.AgentID, lv.t.TrunkID)
	default:
		m.Reason += fmt.Sprintf("; the Request-URI names deployed agent %q: the call goes to %s under trunk %q's channel_limit, codecs, media_ip_cidrs, barge-in and api_bearer_token, and counts in its figures (its inbound_rule is not used)",
			a.AgentID, a.WebsocketURL, lv.t.TrunkID)
	}
	return m
}
