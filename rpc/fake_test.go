package rpc

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/trunkd/trunkd/trunk"
)

// memTrunks is an in-memory Trunks for this package's unit tests.
type memTrunks struct {
	mu sync.Mutex
	m  map[string]*trunk.Trunk
}

func newMemTrunks() *memTrunks { return &memTrunks{m: map[string]*trunk.Trunk{}} }

func (s *memTrunks) AddTrunk(ctx context.Context, t *trunk.Trunk) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[t.TrunkID]; ok {
		return trunk.Errorf(trunk.EEXISTS, "trunk %q already exists", t.TrunkID)
	}
	s.m[t.TrunkID] = t.Clone()
	return nil
}

func (s *memTrunks) UpdateTrunk(ctx context.Context, t *trunk.Trunk) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[t.TrunkID]; !ok {
		return trunk.Errorf(trunk.ENOTFOUND, "trunk %q not found", t.TrunkID)
	}
	s.m[t.TrunkID] = t.Clone()
	return nil
}

func (s *memTrunks) RemoveTrunk(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; !ok {
		return trunk.Errorf(trunk.ENOTFOUND, "trunk %q not found", id)
	}
	delete(s.m, id)
	return nil
}

func (s *memTrunks) GetTrunk(ctx context.Context, id string) (*trunk.Trunk, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[id]
	if !ok {
		return nil, trunk.Errorf(trunk.ENOTFOUND, "trunk %q not found", id)
	}
	return t.Clone(), nil
}

func (s *memTrunks) ListTrunks(ctx context.Context, after string, limit int) ([]*trunk.Trunk, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.m {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var out []*trunk.Trunk
	for _, id := range ids[:min(limit, len(ids))] {
		out = append(out, s.m[id].Clone())
	}
	return out, nil
}

// scopeAuth is a fake Authorizer: the token is the space-separated list of
// scopes it grants, or "bad" for an invalid one.
type scopeAuth struct{}

func (scopeAuth) Authorize(token, scope string) error {
	if token == "" || token == "bad" {
		return Errorf(CodeUnauthenticated, "invalid token")
	}
	granted := strings.Fields(token)
	if slices.Contains(granted, scope) || slices.Contains(granted, ScopeManage) {
		return nil
	}
	return Errorf(CodePermissionDenied, "token lacks scope %s", scope)
}
