package main

import (
	"context"
	"sync"

	"github.com/trunkd/trunkd/media/sipplane"
	"github.com/trunkd/trunkd/store"
	"github.com/trunkd/trunkd/trunk"
)

// service is what the admin RPC serves: each write is prepared on the SIP
// plane, persisted, then made live, all before it is acknowledged. A write
// the SIP plane refuses is not persisted; one the store refuses is undone
// on the SIP plane.
type service struct {
	db    *store.DB
	sip   *sipplane.Plane
	locks keyLocks
}

func (s *service) AddTrunk(ctx context.Context, t *trunk.Trunk) error {
	defer s.locks.lock(t.TrunkID)()
	if _, err := s.db.GetTrunk(ctx, t.TrunkID); err == nil {
		return trunk.Errorf(trunk.EEXISTS, "trunk %q exists", t.TrunkID)
	}
	return s.apply(ctx, t, s.db.AddTrunk)
}

func (s *service) UpdateTrunk(ctx context.Context, t *trunk.Trunk) error {
	defer s.locks.lock(t.TrunkID)()
	if _, err := s.db.GetTrunk(ctx, t.TrunkID); err != nil {
		return err
	}
	return s.apply(ctx, t, s.db.UpdateTrunk)
}

func (s *service) apply(ctx context.Context, t *trunk.Trunk, persist func(context.Context, *trunk.Trunk) error) error {
	change, err := s.sip.Prepare(ctx, t)
	if err != nil {
		return err
	}
	if err := persist(ctx, t); err != nil {
		change.Abort()
		return err
	}
	change.Commit()
	return nil
}

func (s *service) RemoveTrunk(ctx context.Context, id string) error {
	defer s.locks.lock(id)()
	if err := s.db.RemoveTrunk(ctx, id); err != nil {
		return err
	}
	s.sip.Remove(id)
	return nil
}

func (s *service) GetTrunk(ctx context.Context, id string) (*trunk.Trunk, error) {
	return s.db.GetTrunk(ctx, id)
}

func (s *service) ListTrunks(ctx context.Context, after string, limit int) ([]*trunk.Trunk, error) {
	return s.db.ListTrunks(ctx, after, limit)
}

func (s *service) TrunkStatus(id string) trunk.Status {
	return s.sip.TrunkStatus(id)
}

func (s *service) Dial(ctx context.Context, r trunk.DialRequest) (trunk.DialResult, error) {
	return s.sip.Dial(ctx, r)
}

func (s *service) Hangup(ctx context.Context, callID string) error {
	return s.sip.Hangup(ctx, callID)
}

func (s *service) ListCalls(trunkID string) []trunk.Call {
	return s.sip.ListCalls(trunkID)
}

func (s *service) ExplainMatch(_ context.Context, source, listener, ruri string) (trunk.Match, error) {
	return s.sip.Explain(source, listener, ruri)
}

// load applies every stored trunk to the SIP plane at start-up.
func (s *service) load(ctx context.Context) error {
	var all []*trunk.Trunk
	err := s.db.ForEachTrunk(ctx, func(t *trunk.Trunk) error {
		all = append(all, t)
		return nil
	})
	s.sip.LoadAll(ctx, all)
	return err
}

// keyLocks serialises writes to one trunk id while letting writes to
// different ids run (and share fsyncs) concurrently.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	users int
}

func (k *keyLocks) lock(id string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[id]
	if l == nil {
		l = &keyLock{}
		k.locks[id] = l
	}
	l.users++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.locks, id)
		}
		k.mu.Unlock()
	}
}
