package control

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/trunkd/trunkd/trunk"
)

// Store is where trunks are kept. Errors are *trunk.Error: ENOTFOUND,
// EEXISTS, ECONFLICT, EUNAVAILABLE (keeping the disk's error as cause).
//
// Every write gives the record a new trunk.Meta: a Revision that differs
// from every revision the store handed out before (also across a remove
// and re-add of the same id), UpdatedAt now, and CreatedAt now on add and
// kept on update. AddTrunk and UpdateTrunk set t.Meta to what they stored.
// A non-zero ifRevision makes UpdateTrunk and RemoveTrunk conditional:
// when the stored revision differs they return ECONFLICT and change
// nothing. The store checks it inside its write transaction, so the check
// holds against writes from other processes or nodes too.
type Store interface {
	GetTrunk(ctx context.Context, id string) (*trunk.Trunk, error)
	ListTrunks(ctx context.Context, q trunk.ListQuery) ([]*trunk.Trunk, error)
	ForEachTrunk(ctx context.Context, fn func(*trunk.Trunk) error) error
	AddTrunk(ctx context.Context, t *trunk.Trunk) error
	UpdateTrunk(ctx context.Context, t *trunk.Trunk, ifRevision uint64) error
	RemoveTrunk(ctx context.Context, id string, ifRevision uint64) error
}

// Access is who a request acts for. Its zero value acts for every
// organization without operator rights, as faces without organizations
// (tests, in-process callers) do.
type Access struct {
	// Org is the organization acted for: trunks of other organizations
	// are not found (never "forbidden": their existence is not revealed).
	// "" acts for every organization.
	Org string
	// Operator (trunks:admin) may create, change and remove managed
	// trunks and move a trunk to another organization.
	Operator bool
}

// sees reports whether a may act on t.
func (a Access) sees(t *trunk.Trunk) bool { return a.Org == "" || t.Org() == a.Org }

func notFound(id string) error { return trunk.Errorf(trunk.ENOTFOUND, "trunk %q not found", id) }

// WriteOptions make a trunk write conditional or partial, and say who
// writes.
type WriteOptions struct {
	Access
	// IfRevision, when not 0, is the revision the stored record must have;
	// otherwise the write is ECONFLICT and changes nothing. An AddTrunk
	// with IfRevision set is always ECONFLICT: there is no stored record.
	IfRevision uint64
	// KeepSecrets keeps the stored value of each secret field
	// (sip_password, api_bearer_token) the write leaves empty. Without it
	// the record is replaced whole: an empty secret clears the stored one.
	KeepSecrets bool
}

// Plane is the SIP plane trunks run on.
//
// Prepare checks that t can run and acquires what it needs, changing
// nothing live; exactly one of the Change's Commit or Abort follows.
// Remove stops a trunk (its calls in flight end on their own). LoadAll
// applies the stored trunks at start-up; a trunk that cannot run is kept
// as degraded, not refused. LoadAll may keep the trunks it is given
// rather than copies (100 000 at start-up): the caller hands them over.
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

	applied    appliedRevs // what the plane runs, for Reconcile
	agents     AgentStore  // nil: the agent operations answer EUNAVAILABLE
	agentPlane AgentPlane  // nil: deployed agents are stored only
	agentLocks keyLocks
	reloader   Reloader // nil: Reload answers EUNAVAILABLE
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
// plane, stores it and makes it live; t.Meta is then what was stored. A t
// without organization_id gets o.Org's (DefaultOrg when that is ""). It
// returns EINVALID naming the field at fault, EEXISTS, ECONFLICT (when
// o.IfRevision is set), EMANAGED (a managed trunk without o.Operator), or
// the plane's or the store's refusal; after an error nothing has changed.
func (s *Service) AddTrunk(ctx context.Context, t *trunk.Trunk, o WriteOptions) error {
	if err := o.own(t, ""); err != nil {
		return err
	}
	if err := check(t); err != nil {
		return err
	}
	if t.ManagedAccountID != "" && !o.Operator {
		return trunk.Errorf(trunk.EMANAGED, "only trunks:admin may create a managed trunk (managed_account_id)")
	}
	defer s.locks.lock(t.TrunkID)()
	if _, err := s.store.GetTrunk(ctx, t.TrunkID); err == nil {
		return trunk.Errorf(trunk.EEXISTS, "trunk %q already exists", t.TrunkID)
	}
	if o.IfRevision != 0 {
		return trunk.Errorf(trunk.ECONFLICT, "trunk %q does not exist, so it is not at revision %d", t.TrunkID, o.IfRevision)
	}
	return s.apply(ctx, t, s.store.AddTrunk)
}

// own gives t the organization it is written for: the stored one (prev)
// on update, else the one acted for. Naming another is EINVALID, unless
// an operator moves the trunk.
func (o WriteOptions) own(t *trunk.Trunk, prev string) error {
	want := cmp.Or(prev, o.Org, trunk.DefaultOrg)
	switch {
	case t.OrganizationID == "":
		t.OrganizationID = want
	case t.OrganizationID == want:
	case o.Operator && (o.Org == "" || o.Org == t.OrganizationID):
	default:
		return trunk.FieldErrorf("organization_id", "is %q, but this request writes for organization %q (only trunks:admin moves a trunk)", t.OrganizationID, want)
	}
	return nil
}

// UpdateTrunk is AddTrunk for a trunk that exists (ENOTFOUND otherwise,
// also for a trunk of another organization), with o's condition and
// secrets kept. A managed trunk, or a write making one, needs
// o.Operator (EMANAGED). Calls in flight keep the configuration they
// started with.
func (s *Service) UpdateTrunk(ctx context.Context, t *trunk.Trunk, o WriteOptions) error {
	if err := trunk.ValidateID(t.TrunkID); err != nil {
		return err
	}
	defer s.locks.lock(t.TrunkID)()
	old, err := s.store.GetTrunk(ctx, t.TrunkID)
	if err != nil {
		return err
	}
	if !o.sees(old) {
		return notFound(t.TrunkID)
	}
	if err := o.own(t, old.Org()); err != nil {
		return err
	}
	if err := check(t); err != nil {
		return err
	}
	if (old.ManagedAccountID != "" || t.ManagedAccountID != "") && !o.Operator {
		return trunk.Errorf(trunk.EMANAGED, "trunk %q is managed: only trunks:admin may change it", t.TrunkID)
	}
	if o.IfRevision != 0 && o.IfRevision != old.Meta.Revision {
		return trunk.Errorf(trunk.ECONFLICT, "trunk %q is at revision %d, not %d: it changed since it was read", t.TrunkID, old.Meta.Revision, o.IfRevision)
	}
	if o.KeepSecrets {
		keepSecrets(t, old)
		if err := t.Validate(); err != nil {
			return err
		}
	}
	return s.apply(ctx, t, func(ctx context.Context, t *trunk.Trunk) error {
		return s.store.UpdateTrunk(ctx, t, o.IfRevision)
	})
}

// keepSecrets gives t the stored secrets of old that t leaves empty.
func keepSecrets(t, old *trunk.Trunk) {
	if t.SIPPassword == "" {
		t.SIPPassword = old.SIPPassword
	}
	if t.APIBearerToken == "" {
		t.APIBearerToken = old.APIBearerToken
	}
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
	s.applied.set(t.TrunkID, t.Meta.Revision, true)
	return nil
}

// RemoveTrunk deletes a trunk from the store, then stops it on the SIP
// plane. It returns EINVALID for a malformed id, ENOTFOUND (also for a
// trunk of another organization), EMANAGED for a managed trunk without
// o.Operator, and ECONFLICT when o.IfRevision is not 0 and not the stored
// revision.
func (s *Service) RemoveTrunk(ctx context.Context, id string, o WriteOptions) error {
	if err := trunk.ValidateID(id); err != nil {
		return err
	}
	defer s.locks.lock(id)()
	old, err := s.store.GetTrunk(ctx, id)
	if err != nil {
		return err
	}
	if !o.sees(old) {
		return notFound(id)
	}
	if old.ManagedAccountID != "" && !o.Operator {
		return trunk.Errorf(trunk.EMANAGED, "trunk %q is managed: only trunks:admin may remove it", id)
	}
	if err := s.store.RemoveTrunk(ctx, id, o.IfRevision); err != nil {
		return err
	}
	if s.plane != nil {
		s.plane.Remove(id)
	}
	s.applied.removed(id)
	return nil
}

// GetTrunk returns a stored trunk, secrets included: a face decides what
// of it to show. It returns EINVALID for a malformed id and ENOTFOUND,
// also for a trunk a cannot see.
func (s *Service) GetTrunk(ctx context.Context, id string, a Access) (*trunk.Trunk, error) {
	if err := trunk.ValidateID(id); err != nil {
		return nil, err
	}
	t, err := s.store.GetTrunk(ctx, id)
	if err == nil && !a.sees(t) {
		return nil, notFound(id)
	}
	return t, err
}

// ListTrunks returns up to limit stored trunks after after, in id order,
// that f selects among those a sees.
func (s *Service) ListTrunks(ctx context.Context, after string, limit int, f trunk.Filter, a Access) ([]*trunk.Trunk, error) {
	return s.store.ListTrunks(ctx, listQuery(after, limit, f, a))
}

// Viewer is a Store that can lend the trunks of a page without copying
// them (store.DB can). fn must not modify t; it may keep it, as a stored
// record is never changed in place (a write replaces it).
type Viewer interface {
	ViewTrunks(ctx context.Context, q trunk.ListQuery, fn func(t *trunk.Trunk)) error
}

// ViewTrunks calls fn with each trunk ListTrunks would return, in order,
// without copying it when the store is a Viewer: fn must not modify t (it
// may keep it), and should be quick (it may run inside the store's read
// transaction). A face that turns each trunk into its own
// DTO lists with it.
func (s *Service) ViewTrunks(ctx context.Context, after string, limit int, f trunk.Filter, a Access, fn func(t *trunk.Trunk)) error {
	q := listQuery(after, limit, f, a)
	if v, ok := s.store.(Viewer); ok {
		return v.ViewTrunks(ctx, q, fn)
	}
	list, err := s.store.ListTrunks(ctx, q)
	for _, t := range list {
		fn(t)
	}
	return err
}

// listQuery is the store's query for a page that f selects among the
// trunks a sees.
func listQuery(after string, limit int, f trunk.Filter, a Access) trunk.ListQuery {
	if a.Org != "" {
		f.Org = a.Org
	}
	q := trunk.ListQuery{After: after, Limit: limit}
	if f != (trunk.Filter{}) {
		q.Keep = f.Keeps
	}
	return q
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

// statusBatcher is a Plane that reads the statuses of many trunks at once
// (a page of ListTrunks) faster than one by one.
type statusBatcher interface {
	TrunkStatuses(ids []string, out []trunk.Status)
}

// TrunkStatuses sets out[i] to TrunkStatus(ids[i]) for each id; out is at
// least as long as ids.
func (s *Service) TrunkStatuses(ids []string, out []trunk.Status) {
	if b, ok := s.plane.(statusBatcher); ok {
		b.TrunkStatuses(ids, out)
		return
	}
	for i, id := range ids {
		out[i] = s.TrunkStatus(id)
	}
}

// Dial places an outbound call and returns once its INVITE has a final
// outcome. A call the carrier refuses or does not answer is a DialResult
// with Answered false, not an error; errors are for calls never placed
// (ENOTFOUND, ECHANNELLIMIT, ECIRCUITOPEN, EINVALID naming the field,
// EUNAVAILABLE). ctx bounds the setup only: an answered call outlives it.
func (s *Service) Dial(ctx context.Context, r trunk.DialRequest, a Access) (trunk.DialResult, error) {
	if s.plane == nil {
		return trunk.DialResult{}, errNoSIPPlane
	}
	if !s.seesTrunk(ctx, r.TrunkID, a) {
		return trunk.DialResult{}, notFound(r.TrunkID)
	}
	return s.plane.Dial(ctx, r)
}

// Hangup ends a call in flight in either direction, or returns ENOCALL
// (also for a call on a trunk a cannot see).
func (s *Service) Hangup(ctx context.Context, callID string, a Access) error {
	if s.plane == nil {
		return errNoSIPPlane
	}
	if a.Org != "" {
		calls := s.plane.ListCalls("")
		i := slices.IndexFunc(calls, func(c trunk.Call) bool { return c.CallID == callID })
		if i < 0 || !s.seesTrunk(ctx, calls[i].TrunkID, a) {
			return trunk.Errorf(trunk.ENOCALL, "no call %q in flight", callID)
		}
	}
	return s.plane.Hangup(ctx, callID)
}

// seesTrunk reports whether a may act on trunk id and its calls: a trunk
// stored in another organization is hidden. A trunk no longer stored
// (removed while its calls drain) is seen by the operator and the default
// organization only; an unknown one is left to the SIP plane to refuse.
func (s *Service) seesTrunk(ctx context.Context, id string, a Access) bool {
	if a.Org == "" {
		return true
	}
	t, err := s.store.GetTrunk(ctx, id)
	if err != nil {
		return a.Org == trunk.DefaultOrg
	}
	return a.sees(t)
}

// ListCalls lists the calls in flight of one trunk, or of all those a
// sees when trunkID is "", in no particular order.
func (s *Service) ListCalls(ctx context.Context, trunkID string, a Access) ([]trunk.Call, error) {
	if s.plane == nil {
		return nil, errNoSIPPlane
	}
	calls := s.plane.ListCalls(trunkID)
	if a.Org == "" {
		return calls, nil
	}
	seen := map[string]bool{}
	return slices.DeleteFunc(calls, func(c trunk.Call) bool {
		ok, done := seen[c.TrunkID]
		if !done {
			ok = s.seesTrunk(ctx, c.TrunkID, a)
			seen[c.TrunkID] = ok
		}
		return !ok
	}), nil
}

// ExplainMatch tells which trunk an inbound call from sourceIP arriving
// on listener ("ip:port") would belong to, and why. A trunk a cannot see
// is reported as no match, without naming it.
func (s *Service) ExplainMatch(ctx context.Context, sourceIP, listener, requestURI string, a Access) (trunk.Match, error) {
	if s.plane == nil {
		return trunk.Match{}, errNoSIPPlane
	}
	m, err := s.plane.Explain(sourceIP, listener, requestURI)
	if err == nil && m.Matched && !s.seesTrunk(ctx, m.TrunkID, a) {
		return trunk.Match{Reason: fmt.Sprintf("no trunk of organization %q matches this call", a.Org)}, nil
	}
	return m, err
}
