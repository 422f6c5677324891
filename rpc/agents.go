package rpc

import (
	"context"

	"github.com/trunkd/trunkd/rpc/api"
	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/trunk"
)

// Agent bodies (docs/protocol.md, "Agents").
type (
	AgentRequest       = api.AgentRequest
	AgentIDRequest     = api.AgentIDRequest
	ListAgentsRequest  = api.ListAgentsRequest
	AgentInfo          = api.AgentInfo
	ListAgentsResponse = api.ListAgentsResponse
	SIPEndpoint        = api.SIPEndpoint
)

// Agent wire codes and scopes.
const (
	CodeUnknownAgent  = api.CodeUnknownAgent
	CodePrecondition  = api.CodePrecondition
	ScopeAgentsRead   = auth.ScopeAgentsRead
	ScopeAgentsManage = auth.ScopeAgentsManage
)

// PutAgent creates or replaces agent a.AgentID (its deployment is kept).
func (c *Client) PutAgent(ctx context.Context, a trunk.Agent) (AgentInfo, error) {
	var resp AgentInfo
	err := c.Call(ctx, "PutAgent", AgentRequest{AdminToken: c.token, Agent: a}, &resp)
	return resp, err
}

// GetAgent returns agent id, or an error with CodeUnknownAgent.
func (c *Client) GetAgent(ctx context.Context, id string) (AgentInfo, error) {
	var resp AgentInfo
	err := c.Call(ctx, "GetAgent", AgentIDRequest{AdminToken: c.token, AgentID: id}, &resp)
	return resp, err
}

// ListAgents returns every agent in agent_id order.
func (c *Client) ListAgents(ctx context.Context) ([]AgentInfo, error) {
	var resp ListAgentsResponse
	err := c.Call(ctx, "ListAgents", ListAgentsRequest{AdminToken: c.token}, &resp)
	return resp.Agents, err
}

// RemoveAgent undeploys and deletes agent id.
func (c *Client) RemoveAgent(ctx context.Context, id string) error {
	return c.Call(ctx, "RemoveAgent", AgentIDRequest{AdminToken: c.token, AgentID: id}, nil)
}

// DeployAgentAsSip makes agent id reachable at its SIP URI (idempotent).
func (c *Client) DeployAgentAsSip(ctx context.Context, id string) (SIPEndpoint, error) {
	var resp SIPEndpoint
	err := c.Call(ctx, "DeployAgentAsSip", AgentIDRequest{AdminToken: c.token, AgentID: id}, &resp)
	return resp, err
}

// UndeployAgentAsSip stops routing calls to agent id (idempotent).
func (c *Client) UndeployAgentAsSip(ctx context.Context, id string) (SIPEndpoint, error) {
	var resp SIPEndpoint
	err := c.Call(ctx, "UndeployAgentAsSip", AgentIDRequest{AdminToken: c.token, AgentID: id}, &resp)
	return resp, err
}
