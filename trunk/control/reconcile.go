package control

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trunkd/trunkd/trunk"
)

// Feed is a store that other nodes write too: the reconcile loop reads
// all of it once, then follows its changes.
type Feed interface {
	// Snapshot returns every stored trunk and the store revision it was
	// read at.
	Snapshot(ctx context.Context) ([]*trunk.Trunk, uint64, error)
	// Watch sends the changes after revision after, in order, until ctx
	// ends or the watch breaks (it then closes the channel). An event of
	// kind Reset means changes were lost (a compaction): read a snapshot.
	Watch(ctx context.Context, after uint64) <-chan Event
}

// EventKind is what happened to a stored trunk.
type EventKind int

// The kinds of Event.
const (
	Put    EventKind = iota + 1 // the trunk was added or updated
	Delete                      // the trunk was removed
	Reset                       // events were lost; the reader must read a snapshot
)

// Event is one change of a Feed. Trunk is set for Put; Revision is the
// store revision of the change (for Put, Trunk.Meta.Revision).
type Event struct {
	Kind     EventKind
	ID       string
	Trunk    *trunk.Trunk
	Revision uint64
	Err      error // why a Reset happened
}

// ReconcileOptions tune Reconcile. Zero values take the defaults shown.
type ReconcileOptions struct {
	Logger *slog.Logger
	Resync time.Duration // a full snapshot compared with what runs; 10m
	Retry  time.Duration // wait after a failed snapshot; 1s
	// Loaded, when set, is called once the first snapshot runs on the
	// plane (the node is ready), with the number of trunks.
	Loaded func(n int)
	// Applied, when set, is called after each change from the watch is
	// applied (not for the node's own writes), for the watch-delay metric.
	Applied func(ev Event)
}

// Reconcile makes the SIP plane follow feed until ctx ends: it applies a
// snapshot (as Load does), then every change other nodes make, each
// under the trunk's lock and only when newer than what runs (the node's
// own writes, duplicates and replays are skipped). A trunk this node
// cannot run is degraded here, not refused: another node wrote it. A
// Reset, a broken watch and every Resync period read a snapshot again
// and apply the difference.
func (s *Service) Reconcile(ctx context.Context, feed Feed, o ReconcileOptions) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Resync <= 0 {
		o.Resync = 10 * time.Minute
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	first := true
	for ctx.Err() == nil {
		rev, n, err := s.resync(ctx, feed, first)
		if err != nil {
			o.Logger.Warn("reconcile: snapshot failed; retrying", "err", err)
			sleep(ctx, o.Retry)
			continue
		}
		if first && o.Loaded != nil {
			o.Loaded(n)
		}
		first = false
		s.follow(ctx, feed, rev, o)
	}
	return ctx.Err()
}

// follow applies the changes after rev until the watch breaks, a Reset
// comes, or the resync period ends.
func (s *Service) follow(ctx context.Context, feed Feed, rev uint64, o ReconcileOptions) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.NewTimer(o.Resync)
	defer timer.Stop()
	events := feed.Watch(wctx, rev)
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			return
		case ev, ok := <-events:
			if !ok {
				if ctx.Err() == nil {
					o.Logger.Warn("reconcile: watch ended; reading a snapshot")
					sleep(ctx, o.Retry)
				}
				return
			}
			if ev.Kind == Reset {
				o.Logger.Warn("reconcile: changes lost; reading a snapshot", "err", ev.Err)
				return
			}
			if s.applyEvent(ctx, ev, o.Logger) && o.Applied != nil {
				o.Applied(ev)
			}
		}
	}
}

// resync applies a snapshot: every trunk newer than what runs, and the
// removal of every trunk no longer stored. The first one is a bulk load.
func (s *Service) resync(ctx context.Context, feed Feed, first bool) (rev uint64, n int, err error) {
	all, rev, err := feed.Snapshot(ctx)
	if err != nil {
		return 0, 0, err
	}
	if first {
		if s.plane != nil {
			s.plane.LoadAll(ctx, all)
		}
		s.applied.reset(all, rev)
		return rev, len(all), nil
	}
	stored := make(map[string]bool, len(all))
	for _, t := range all {
		stored[t.TrunkID] = true
		s.applyEvent(ctx, Event{Kind: Put, ID: t.TrunkID, Trunk: t, Revision: t.Meta.Revision}, nil)
	}
	for _, id := range s.applied.ids() {
		if !stored[id] {
			s.applyEvent(ctx, Event{Kind: Delete, ID: id, Revision: rev}, nil)
		}
	}
	s.applied.prune(stored, rev)
	return rev, len(all), nil
}

// applyEvent applies one change under the trunk's lock when it is newer
// than what runs, and reports whether it did.
func (s *Service) applyEvent(ctx context.Context, ev Event, log *slog.Logger) bool {
	defer s.locks.lock(ev.ID)()
	if !s.applied.newer(ev.ID, ev.Revision) {
		return false
	}
	switch ev.Kind {
	case Put:
		s.runRemote(ctx, ev.Trunk, log)
		s.applied.set(ev.ID, ev.Revision, true)
	case Delete:
		if s.plane != nil {
			s.plane.Remove(ev.ID)
		}
		s.applied.set(ev.ID, ev.Revision, false)
	}
	return true
}

// runRemote makes a trunk another node stored live here, or degraded when
// this node cannot run it (LoadAll of one trunk keeps the reason).
func (s *Service) runRemote(ctx context.Context, t *trunk.Trunk, log *slog.Logger) {
	if s.plane == nil {
		return
	}
	change, err := s.plane.Prepare(ctx, t)
	if err != nil {
		if log != nil && !errors.Is(err, context.Canceled) {
			log.Warn("reconcile: trunk degraded on this node", "trunk_id", t.TrunkID, "err", err)
		}
		s.plane.LoadAll(ctx, []*trunk.Trunk{t})
		return
	}
	change.Commit()
}

// AppliedRevision is the newest store revision this node's SIP plane has
// applied (0 before the first snapshot), and when it last changed.
func (s *Service) AppliedRevision() (uint64, time.Time) {
	return s.applied.head.Load(), time.Unix(0, s.applied.at.Load())
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// appliedRevs is the revision of every trunk the plane runs, and of
// recent removals (so that a late Put older than the removal is
// skipped). Callers hold the trunk's lock for the id they change.
type appliedRevs struct {
	mu   sync.Mutex
	revs map[string]rev
	head atomic.Uint64 // newest revision applied
	at   atomic.Int64  // unix ns of the last change of head
}

type rev struct {
	n    uint64
	live bool // false: a removal
}

func (a *appliedRevs) newer(id string, n uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.revs[id]
	return !ok || n > r.n
}

func (a *appliedRevs) set(id string, n uint64, live bool) {
	a.mu.Lock()
	if a.revs == nil {
		a.revs = map[string]rev{}
	}
	a.revs[id] = rev{n, live}
	a.mu.Unlock()
	a.advance(n)
}

// removed marks a trunk this node removed, keeping the revision it ran
// so that a late event of that revision is still skipped.
func (a *appliedRevs) removed(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r, ok := a.revs[id]; ok {
		a.revs[id] = rev{r.n, false}
	}
}

func (a *appliedRevs) advance(n uint64) {
	for {
		h := a.head.Load()
		if n <= h {
			return
		}
		if a.head.CompareAndSwap(h, n) {
			a.at.Store(time.Now().UnixNano())
			return
		}
	}
}

func (a *appliedRevs) reset(all []*trunk.Trunk, head uint64) {
	a.mu.Lock()
	a.revs = make(map[string]rev, len(all))
	for _, t := range all {
		a.revs[t.TrunkID] = rev{t.Meta.Revision, true}
	}
	a.mu.Unlock()
	a.advance(head)
}

// ids lists the trunks that run.
func (a *appliedRevs) ids() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ids []string
	for id, r := range a.revs {
		if r.live {
			ids = append(ids, id)
		}
	}
	return ids
}

// prune forgets the removals a snapshot at head has made moot.
func (a *appliedRevs) prune(stored map[string]bool, head uint64) {
	a.mu.Lock()
	for id, r := range a.revs {
		if !r.live && !stored[id] {
			delete(a.revs, id)
		}
	}
	a.mu.Unlock()
	a.advance(head)
}
