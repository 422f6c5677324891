package control

import (
	"context"

	"github.com/trunkd/trunkd/trunk"
)

// AgentStore is where agents are kept. Errors are *trunk.Error: ENOAGENT,
// EUNAVAILABLE (keeping the disk's error as cause).
type AgentStore interface {
	GetAgent(ctx context.Context, id string) (*trunk.Agent, error)
	ListAgents(ctx context.Context) ([]*trunk.Agent, error)
	PutAgent(ctx context.Context, a *trunk.Agent) error
	RemoveAgent(ctx context.Context, id string) error
}

// AgentPlane routes calls to deployed agents: SetAgent makes an agent
// reachable at its SIP URI (or updates it), DropAgent stops that. SIPHost
// is the host part of agents' SIP URIs.
type AgentPlane interface {
	SetAgent(a *trunk.Agent)
	DropAgent(id string)
	SIPHost() string
}

// UseAgents gives the service its agent store and plane (nil for none)
// and makes the deployed agents reachable. Call it before serving.
func (s *Service) UseAgents(ctx context.Context, st AgentStore, pl AgentPlane) error {
	s.agents, s.agentPlane = st, pl
	if pl == nil {
		return nil
	}
	l, err := st.ListAgents(ctx)
	if err != nil {
		return err
	}
	for _, a := range l {
		if a.SIPDeployed {
			pl.SetAgent(a)
		}
	}
	return nil
}

var errNoAgents = trunk.Errorf(trunk.EUNAVAILABLE, "this server keeps no agents")

// PutAgent creates or replaces an agent, keeping its deployment: a
// deployed agent stays deployed with its new endpoints, and cannot lose its
// published version while deployed (EPRECONDITION: undeploy it first).
//
// The agent belongs to the organization acc acts for (an operator acting
// for every organization keeps the one a names, or the default). An id
// another organization holds is refused as taken, revealing nothing more.
func (s *Service) PutAgent(ctx context.Context, a *trunk.Agent, acc Access) error {
	if s.agents == nil {
		return errNoAgents
	}
	a.SIPDeployed = false
	if acc.Org != "" {
		a.OrganizationID = acc.Org
	}
	a.OrganizationID = a.Org()
	if err := a.Validate(); err != nil {
		return err
	}
	defer s.agentLocks.lock(a.AgentID)()
	old, err := s.agents.GetAgent(ctx, a.AgentID)
	switch {
	case trunk.ErrorCode(err) == trunk.ENOAGENT:
	case err != nil:
		return err
	case old.Org() != a.Org():
		return trunk.FieldErrorf("agent_id", "%q is taken; agent ids are unique across organizations", a.AgentID)
	case old.SIPDeployed && !a.Published:
		return trunk.Errorf(trunk.EPRECONDITION, "agent %q is deployed as a SIP endpoint; undeploy it before unpublishing", a.AgentID)
	default:
		a.SIPDeployed = old.SIPDeployed
	}
	if err := s.agents.PutAgent(ctx, a); err != nil {
		return err
	}
	if a.SIPDeployed && s.agentPlane != nil {
		s.agentPlane.SetAgent(a)
	}
	return nil
}

// GetAgent returns an agent, or ENOAGENT; another organization's agent
// is not found.
func (s *Service) GetAgent(ctx context.Context, id string, acc Access) (*trunk.Agent, error) {
	if s.agents == nil {
		return nil, errNoAgents
	}
	a, err := s.agents.GetAgent(ctx, id)
	if err == nil && !acc.seesAgent(a) {
		return nil, trunk.Errorf(trunk.ENOAGENT, "agent %q not found", id)
	}
	return a, err
}

// ListAgents lists the agents acc sees, in agent_id order.
func (s *Service) ListAgents(ctx context.Context, acc Access) ([]*trunk.Agent, error) {
	if s.agents == nil {
		return nil, errNoAgents
	}
	l, err := s.agents.ListAgents(ctx)
	if err != nil {
		return nil, err
	}
	out := l[:0]
	for _, a := range l {
		if acc.seesAgent(a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// seesAgent reports whether acc may act on a.
func (acc Access) seesAgent(a *trunk.Agent) bool { return acc.Org == "" || a.Org() == acc.Org }

// RemoveAgent undeploys and deletes an agent, or returns ENOAGENT.
func (s *Service) RemoveAgent(ctx context.Context, id string, acc Access) error {
	if s.agents == nil {
		return errNoAgents
	}
	defer s.agentLocks.lock(id)()
	if _, err := s.GetAgent(ctx, id, acc); err != nil {
		return err
	}
	if err := s.agents.RemoveAgent(ctx, id); err != nil {
		return err
	}
	if s.agentPlane != nil {
		s.agentPlane.DropAgent(id)
	}
	return nil
}

// AgentSIP is an agent's SIP endpoint.
type AgentSIP struct {
	URI      string
	Deployed bool
}

// SIPOf is the SIP endpoint of a, as GetAgent shows it.
func (s *Service) SIPOf(a *trunk.Agent) AgentSIP {
	host := "trunkd.invalid"
	if s.agentPlane != nil {
		host = s.agentPlane.SIPHost()
	}
	return AgentSIP{URI: trunk.AgentURI(a.AgentID, host), Deployed: a.SIPDeployed}
}

// DeployAgent makes an agent reachable at its SIP URI. It is idempotent;
// an unknown agent is ENOAGENT, one without a published version
// EPRECONDITION.
func (s *Service) DeployAgent(ctx context.Context, id string, acc Access) (AgentSIP, error) {
	return s.setDeployed(ctx, id, true, acc)
}

// UndeployAgent stops routing calls to an agent's SIP URI (calls in
// flight go on). It is idempotent; an unknown agent is ENOAGENT.
func (s *Service) UndeployAgent(ctx context.Context, id string, acc Access) (AgentSIP, error) {
	return s.setDeployed(ctx, id, false, acc)
}

func (s *Service) setDeployed(ctx context.Context, id string, on bool, acc Access) (AgentSIP, error) {
	if s.agents == nil {
		return AgentSIP{}, errNoAgents
	}
	defer s.agentLocks.lock(id)()
	a, err := s.GetAgent(ctx, id, acc)
	if err != nil {
		return AgentSIP{}, err
	}
	switch {
	case on && !a.Published:
		return AgentSIP{}, trunk.Errorf(trunk.EPRECONDITION, "agent %q has no published version; publish it before deploying", id)
	}
	if a.SIPDeployed != on {
		a.SIPDeployed = on
		if err := s.agents.PutAgent(ctx, a); err != nil {
			return AgentSIP{}, err
		}
	}
	if s.agentPlane != nil {
		if on {
			s.agentPlane.SetAgent(a)
		} else {
			s.agentPlane.DropAgent(id)
		}
	}
	return s.SIPOf(a), nil
}
