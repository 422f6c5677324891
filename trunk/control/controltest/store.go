package controltest

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/trunkd/trunkd/trunk"
)

// MemStore is an in-memory control.Store. Its errors carry the messages of
// the bbolt store's, and it keeps trunk.Meta as control.Store says. When
// Err is set, every write fails with it and changes nothing, as a full
// disk does.
type MemStore struct {
	// Now stamps created_at and updated_at; nil for time.Now. Set it
	// before the first write.
	Now func() time.Time

	mu  sync.Mutex
	m   map[string]*trunk.Trunk
	err error
	rev uint64
}

// NewMemStore returns a MemStore holding copies of ts, each given a
// revision.
func NewMemStore(ts ...*trunk.Trunk) *MemStore {
	s := &MemStore{m: map[string]*trunk.Trunk{}}
	for _, t := range ts {
		c := t.Clone()
		s.rev++
		c.Meta.Revision = s.rev
		s.m[t.TrunkID] = c
	}
	return s
}

// stamp gives t its Meta for a write over prev (nil for an add).
func (s *MemStore) stamp(t, prev *trunk.Trunk) {
	s.rev++
	now := time.Now().UTC()
	if s.Now != nil {
		now = s.Now().UTC()
	}
	t.Meta = trunk.Meta{Revision: s.rev, CreatedAt: now, UpdatedAt: now}
	if prev != nil {
		t.Meta.CreatedAt = prev.Meta.CreatedAt
	}
}

func conflict(id string, have, want uint64) error {
	if want == 0 || want == have {
		return nil
	}
	return trunk.Errorf(trunk.ECONFLICT, "trunk %q is at revision %d, not %d: it changed since it was read", id, have, want)
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
	s.stamp(t, nil)
	s.m[t.TrunkID] = t.Clone()
	return nil
}

// UpdateTrunk replaces a stored trunk, or returns ENOTFOUND or ECONFLICT.
func (s *MemStore) UpdateTrunk(ctx context.Context, t *trunk.Trunk, ifRevision uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	prev, ok := s.m[t.TrunkID]
	if !ok {
		return notFound(t.TrunkID)
	}
	if err := conflict(t.TrunkID, prev.Meta.Revision, ifRevision); err != nil {
		return err
	}
	s.stamp(t, prev)
	s.m[t.TrunkID] = t.Clone()
	return nil
}

// RemoveTrunk deletes a stored trunk, or returns ENOTFOUND or ECONFLICT.
func (s *MemStore) RemoveTrunk(ctx context.Context, id string, ifRevision uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	prev, ok := s.m[id]
	if !ok {
		return notFound(id)
	}
	if err := conflict(id, prev.Meta.Revision, ifRevision); err != nil {
		return err
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

// ListTrunks returns copies of the page q selects, in id order.
func (s *MemStore) ListTrunks(ctx context.Context, q trunk.ListQuery) ([]*trunk.Trunk, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.m {
		if id > q.After {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var out []*trunk.Trunk
	for _, id := range ids {
		if len(out) == q.Limit {
			break
		}
		if q.Keeps(s.m[id]) {
			out = append(out, s.m[id].Clone())
		}
	}
	return out, nil
}

// ForEachTrunk calls fn with a copy of every trunk, in id order, until fn
// returns an error.
func (s *MemStore) ForEachTrunk(ctx context.Context, fn func(*trunk.Trunk) error) error {
	all, _ := s.ListTrunks(ctx, trunk.ListQuery{Limit: int(^uint(0) >> 1)})
	for _, t := range all {
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}
