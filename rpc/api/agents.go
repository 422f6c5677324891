package api

import (
	"context"

	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
)

// AgentRequest is the body of PutAgent. sip_deployed is not taken from it:
// DeployAgentAsSip and UndeployAgentAsSip set it.
type AgentRequest struct {
	AdminToken string `json:"admin_token"`
	Org        string `json:"org,omitempty"` // the organization acted for (personal tokens, trunks:admin); "" for the token's own
	trunk.Agent
}

// AgentIDRequest is the body of GetAgent, RemoveAgent, DeployAgentAsSip
// and UndeployAgentAsSip.
type AgentIDRequest struct {
	AdminToken string `json:"admin_token"`
	Org        string `json:"org,omitempty"` // the organization acted for (personal tokens, trunks:admin); "" for the token's own
	AgentID    string `json:"agent_id"`
}

// ListAgentsRequest is the body of ListAgents.
type ListAgentsRequest struct {
	AdminToken string `json:"admin_token"`
	Org        string `json:"org,omitempty"` // the organization acted for (personal tokens, trunks:admin); "" for the token's own
}

// SIPEndpoint is an agent's SIP endpoint: its URI and whether calls to it
// reach the agent.
type SIPEndpoint struct {
	URI      string `json:"uri"`
	Deployed bool   `json:"deployed"`
}

// AgentInfo is an agent as the API returns it.
type AgentInfo struct {
	AgentID      string      `json:"agent_id"`
	WebsocketURL string      `json:"websocket_url"`
	QUICURL      string      `json:"quic_url"`
	Published    bool        `json:"published"`
	SIPEndpoint  SIPEndpoint `json:"sip_endpoint"`
	// OrganizationID owns the agent (1.1).
	OrganizationID string `json:"organization_id,omitempty"`
}

// ListAgentsResponse answers ListAgents, in agent_id order.
type ListAgentsResponse struct {
	Agents []AgentInfo `json:"agents"`
}

func (r *AgentRequest) token() string      { return r.AdminToken }
func (r *AgentIDRequest) token() string    { return r.AdminToken }
func (r *ListAgentsRequest) token() string { return r.AdminToken }

func (r *AgentRequest) org() string      { return r.Org }
func (r *AgentIDRequest) org() string    { return r.Org }
func (r *ListAgentsRequest) org() string { return r.Org }

func (h *Handler) agentInfo(a *trunk.Agent) AgentInfo {
	s := h.svc.SIPOf(a)
	return AgentInfo{AgentID: a.AgentID, WebsocketURL: a.WebsocketURL, QUICURL: a.QUICURL, Published: a.Published,
		SIPEndpoint: SIPEndpoint{URI: s.URI, Deployed: s.Deployed}, OrganizationID: a.Org()}
}

func (h *Handler) putAgent(ctx context.Context, req *AgentRequest) (AgentInfo, error) {
	a := req.Agent
	if err := h.svc.PutAgent(ctx, &a, access(ctx)); err != nil {
		return AgentInfo{}, err
	}
	return h.agentInfo(&a), nil
}

func (h *Handler) getAgent(ctx context.Context, req *AgentIDRequest) (AgentInfo, error) {
	a, err := h.svc.GetAgent(ctx, req.AgentID, access(ctx))
	if err != nil {
		return AgentInfo{}, err
	}
	return h.agentInfo(a), nil
}

func (h *Handler) listAgents(ctx context.Context, _ *ListAgentsRequest) (ListAgentsResponse, error) {
	l, err := h.svc.ListAgents(ctx, access(ctx))
	if err != nil {
		return ListAgentsResponse{}, err
	}
	out := ListAgentsResponse{Agents: make([]AgentInfo, 0, len(l))}
	for _, a := range l {
		out.Agents = append(out.Agents, h.agentInfo(a))
	}
	return out, nil
}

func (h *Handler) removeAgent(ctx context.Context, req *AgentIDRequest) (Empty, error) {
	return Empty{}, h.svc.RemoveAgent(ctx, req.AgentID, access(ctx))
}

func (h *Handler) deployAgent(ctx context.Context, req *AgentIDRequest) (SIPEndpoint, error) {
	return sipEndpoint(h.svc.DeployAgent(ctx, req.AgentID, access(ctx)))
}

func (h *Handler) undeployAgent(ctx context.Context, req *AgentIDRequest) (SIPEndpoint, error) {
	return sipEndpoint(h.svc.UndeployAgent(ctx, req.AgentID, access(ctx)))
}

func sipEndpoint(s control.AgentSIP, err error) (SIPEndpoint, error) {
	if err != nil {
		return SIPEndpoint{}, err
	}
	return SIPEndpoint{URI: s.URI, Deployed: s.Deployed}, nil
}
