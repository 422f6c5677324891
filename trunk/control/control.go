package control

import (
	"context"

	"github.com/trunkd/trunkd/trunk"
)

// Store is where trunks are kept. Errors are *trunk.Error: ENOTFOUND,
// EEXISTS, EUNAVAILABLE (keeping the disk's error as cause).
type Store interface {
	GetTrunk(ctx context.Context, id string) (*trunk.Trunk, error)
	ListTrunks(ctx context.Context, after string, limit int) ([]*trunk.Trunk, error)
	ForEachTrunk(ctx context.Context, fn func(*trunk.Trunk) error) error
	AddTrunk(ctx context.Context, t *trunk.Trunk) error
	UpdateTrunk(ctx context.Context, t *trunk.Trunk) error
	RemoveTrunk(ctx context.Context, id string) error
}

// Plane is the SIP plane trunks run on.
//
// Prepare checks that t can run and acquires what it needs, changing
// nothing live; exactly one of the Change's Commit or Abort follows.
// Remove stops a trunk (its calls in flight end on their own). LoadAll
// applies the stored trunks at start-up; a trunk that cannot run is kept
// as degraded, not refused.
type Plane interface {
	Prepare(ctx context.Context, t *trunk.Trunk) (Change, error)
	Remove(id string)
	LoadAll(ctx context.Context, ts []*trunk.Trunk)

	TrunkStatus(id string) trunk.Status
	Dial(ctx context.Context, r trunk.DialRequest) (trunk.DialResult, error)
	Hangup(ctx context.Context, callID string) error
	ListCalls(trunkID string) []trunk.Call
	Explain(source, listener, requestURI string) (trunk.Match, error)
}

// Change is a trunk configuration prepared on the Plane: Commit makes it
// live, Abort undoes it.
type Change interface {
	Commit()
	Abort()
}

// Service is the trunk service. Its methods are safe for concurrent use;
// writes to one trunk id are serialised, writes to different ids run (and
// share the store's fsyncs) concurrently.
type Service struct {
	store Store
	plane Plane // nil for a service without a SIP plane
	locks keyLocks

	agents     AgentStore // nil: the agent operations answer EUNAVAILABLE
	agentPlane AgentPlane // nil: deployed agents are stored only
	agentLocks keyLocks
}

// New returns a Service over store and plane. plane may be nil, for a
// service without a SIP plane: writes are only stored, trunks report
// SIP state off, and the call operations answer EUNAVAILABLE.
func New(store Store, plane Plane) *Service {
	return &Service{store: store, plane: plane}
}

// errNoSIPPlane answers the call operations of a Service without a Plane.
var errNoSIPPlane = trunk.Errorf(trunk.EUNAVAILABLE, "this server has no SIP plane")

// AddTrunk normalizes t in place, validates it, makes it ready on the SIP
// plane, stores it and makes it live. It returns EINVALID naming the
// field at fault, EEXISTS, or the plane's or the store's refusal; after
// an error nothing has changed.
func (s *Service) AddTrunk(ctx context.Context, t *trunk.Trunk) error {
	if err := check(t); err != nil {
		return err
	}
	defer s.locks.lock(t.TrunkID)()
	if _, err := s.store.GetTrunk(ctx, t.TrunkID); err == nil {
		return trunk.Errorf(trunk.EEXISTS, "trunk %q already exists", t.TrunkID)
	}
	return s.apply(ctx, t, s.store.AddTrunk)
}

// UpdateTrunk is AddTrunk for a trunk that exists (ENOTFOUND otherwise).
// Calls in flight keep the configuration they started with.
func (s *Service) UpdateTrunk(ctx context.Context, t *trunk.Trunk) error {
	if err := check(t); err != nil {
		return err
	}
	defer s.locks.lock(t.TrunkID)()
	if _, err := s.store.GetTrunk(ctx, t.TrunkID); err != nil {
		return err
	}
	return s.apply(ctx, t, s.store.UpdateTrunk)
}

// check is the validation every write passes before anything else.
func check(t *trunk.Trunk) error {
	t.Normalize()
	return t.Validate()
}

// apply is prepare -> persist -> commit, or abort when persist fails.
func (s *Service) apply(ctx context.Context, t *trunk.Trunk, persist func(context.Context, *trunk.Trunk) error) error {
	if s.plane == nil {
		return persist(ctx, t)
	}
	change, err := s.plane.Prepare(ctx, t)
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

// RemoveTrunk deletes a trunk from the store, then stops it on the SIP
// plane. It returns EINVALID for a malformed id and ENOTFOUND.
func (s *Service) RemoveTrunk(ctx context.Context, id string) error {
	if err := trunk.ValidateID(id); err != nil {
		return err
	}
	defer s.locks.lock(id)()
	if err := s.store.RemoveTrunk(ctx, id); err != nil {
		return err
	}
	if s.plane != nil {
		s.plane.Remove(id)
	}
	return nil
}

// GetTrunk returns a stored trunk, secrets included: a face decides what
// of it to show. It returns EINVALID for a malformed id and ENOTFOUND.
func (s *Service) GetTrunk(ctx context.Context, id string) (*trunk.Trunk, error) {
	if err := trunk.ValidateID(id); err != nil {
		return nil, err
	}
	return s.store.GetTrunk(ctx, id)
}

// ListTrunks returns up to limit stored trunks with ids after after, in
// id order.
func (s *Service) ListTrunks(ctx context.Context, after string, limit int) ([]*trunk.Trunk, error) {
	return s.store.ListTrunks(ctx, after, limit)
}

// Load applies every stored trunk to the SIP plane, at start-up. A trunk
// the plane cannot run is kept there as degraded; the error is the
// store's, after the trunks read so far were applied.
func (s *Service) Load(ctx context.Context) error {
	var all []*trunk.Trunk
	err := s.store.ForEachTrunk(ctx, func(t *trunk.Trunk) error {
		all = append(all, t)
		return nil
	})
	if s.plane != nil {
		s.plane.LoadAll(ctx, all)
	}
	return err
}

// TrunkStatus reports a trunk's live figures; SIP state off without a
// SIP plane.
func (s *Service) TrunkStatus(id string) trunk.Status {
	if s.plane == nil {
		return trunk.Status{SIP: trunk.SIPStatus{State: trunk.SIPOff, RegistrationState: trunk.RegOff}}
	}
	return s.plane.TrunkStatus(id)
}

// Dial places an outbound call and returns once its INVITE has a final
// outcome. A call the carrier refuses or does not answer is a DialResult
// with Answered false, not an error; errors are for calls never placed
// (ENOTFOUND, ECHANNELLIMIT, ECIRCUITOPEN, EINVALID naming the field,
// EUNAVAILABLE). ctx bounds the setup only: an answered call outlives it.
func (s *Service) Dial(ctx context.Context, r trunk.DialRequest) (trunk.DialResult, error) {
	if s.plane == nil {
		return trunk.DialResult{}, errNoSIPPlane
	}
	return s.plane.Dial(ctx, r)
}

// Hangup ends a call in flight in either direction, or returns ENOCALL.
func (s *Service) Hangup(ctx context.Context, callID string) error {
	if s.plane == nil {
		return errNoSIPPlane
	}
	return s.plane.Hangup(ctx, callID)
}

// ListCalls lists the calls in flight of one trunk, or of all when
// trunkID is "", in no particular order.
func (s *Service) ListCalls(ctx context.Context, trunkID string) ([]trunk.Call, error) {
	if s.plane == nil {
		return nil, errNoSIPPlane
	}
	return s.plane.ListCalls(trunkID), nil
}

// ExplainMatch tells which trunk an inbound call from sourceIP arriving
// on listener ("ip:port") would belong to, and why.
func (s *Service) ExplainMatch(_ context.Context, sourceIP, listener, requestURI string) (trunk.Match, error) {
	if s.plane == nil {
		return trunk.Match{}, errNoSIPPlane
	}
	return s.plane.Explain(sourceIP, listener, requestURI)
}
