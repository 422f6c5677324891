package controltest

import (
	"context"
	"slices"
	"sync"

	"github.com/trunkd/trunkd/trunk"
)

// MemStore is an in-memory control.Store. Its errors carry the messages of
// the bbolt store's. When Err is set, every write fails with it and
// changes nothing, as a full disk does.
type MemStore struct {
	mu  sync.Mutex
	m   map[string]*trunk.Trunk
	err error
}

// NewMemStore returns a MemStore holding copies of ts.
func NewMemStore(ts ...*trunk.Trunk) *MemStore {
	s := &MemStore{m: map[string]*trunk.Trunk{}}
	for _, t := range ts {
		s.m[t.TrunkID] = t.Clone()
	}
	return s
}

// FailWrites makes every later write fail with err (nil to stop).
func (s *MemStore) FailWrites(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// Len returns how many trunks are stored.
func (s *MemStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Trunk returns a copy of the stored trunk id, or nil.
func (s *MemStore) Trunk(id string) *trunk.Trunk {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.m[id]; ok {
		return t.Clone()
	}
	return nil
}

func notFound(id string) error { return trunk.Errorf(trunk.ENOTFOUND, "trunk %q not found", id) }

// AddTrunk stores a copy of t, or returns EEXISTS.
func (s *MemStore) AddTrunk(ctx context.Context, t *trunk.Trunk) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if _, ok := s.m[t.TrunkID]; ok {
		return trunk.Errorf(trunk.EEXISTS, "trunk %q already exists", t.TrunkID)
	}
	s.m[t.TrunkID] = t.Clone()
	return nil
}

// UpdateTrunk replaces a stored trunk, or returns ENOTFOUND.
func (s *MemStore) UpdateTrunk(ctx context.Context, t *trunk.Trunk) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if _, ok := s.m[t.TrunkID]; !ok {
		return notFound(t.TrunkID)
	}
	s.m[t.TrunkID] = t.Clone()
	return nil
}

// RemoveTrunk deletes a stored trunk, or returns ENOTFOUND.
func (s *MemStore) RemoveTrunk(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if _, ok := s.m[id]; !ok {
		return notFound(id)
	}
	delete(s.m, id)
	return nil
}

// GetTrunk returns a copy of a stored trunk, or ENOTFOUND.
func (s *MemStore) GetTrunk(ctx context.Context, id string) (*trunk.Trunk, error) {
	if t := s.Trunk(id); t != nil {
		return t, nil
	}
	return nil, notFound(id)
}

// ListTrunks returns copies of up to limit trunks with ids after after,
// in id order.
func (s *MemStore) ListTrunks(ctx context.Context, after string, limit int) ([]*trunk.Trunk, error) {
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

// ForEachTrunk calls fn with a copy of every trunk, in id order, until fn
// returns an error.
func (s *MemStore) ForEachTrunk(ctx context.Context, fn func(*trunk.Trunk) error) error {
	all, _ := s.ListTrunks(ctx, "", int(^uint(0)>>1))
	for _, t := range all {
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}
