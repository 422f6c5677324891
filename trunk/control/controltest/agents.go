package controltest

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/trunkd/trunkd/trunk"
)

// MemAgents is an in-memory control.AgentStore.
type MemAgents struct {
	mu sync.Mutex
	m  map[string]trunk.Agent
}

// NewMemAgents returns an empty agent store.
func NewMemAgents() *MemAgents { return &MemAgents{m: map[string]trunk.Agent{}} }

// GetAgent implements control.AgentStore.
func (s *MemAgents) GetAgent(_ context.Context, id string) (*trunk.Agent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.m[id]
	if !ok {
		return nil, trunk.Errorf(trunk.ENOAGENT, "agent %q not found", id)
	}
	return &a, nil
}

// ListAgents implements control.AgentStore.
func (s *MemAgents) ListAgents(context.Context) ([]*trunk.Agent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := make([]*trunk.Agent, 0, len(s.m))
	for _, a := range s.m {
		l = append(l, &a)
	}
	slices.SortFunc(l, func(a, b *trunk.Agent) int { return strings.Compare(a.AgentID, b.AgentID) })
	return l, nil
}

// PutAgent implements control.AgentStore.
func (s *MemAgents) PutAgent(_ context.Context, a *trunk.Agent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[a.AgentID] = *a
	return nil
}

// RemoveAgent implements control.AgentStore.
func (s *MemAgents) RemoveAgent(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; !ok {
		return trunk.Errorf(trunk.ENOAGENT, "agent %q not found", id)
	}
	delete(s.m, id)
	return nil
}

// AgentPlane is a control.AgentPlane that records the deployed agents.
type AgentPlane struct {
	Host string

	mu       sync.Mutex
	deployed map[string]string // agent_id -> websocket_url
}

// SetAgent implements control.AgentPlane.
func (p *AgentPlane) SetAgent(a *trunk.Agent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.deployed == nil {
		p.deployed = map[string]string{}
	}
	p.deployed[a.AgentID] = a.WebsocketURL
}

// DropAgent implements control.AgentPlane.
func (p *AgentPlane) DropAgent(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.deployed, id)
}

// SIPHost implements control.AgentPlane.
func (p *AgentPlane) SIPHost() string { return p.Host }

// Deployed reports whether calls to agent id are routed, and where.
func (p *AgentPlane) Deployed(id string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.deployed[id]
	return u, ok
}
