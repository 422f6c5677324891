package control_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
	"github.com/trunkd/trunkd/trunk/control/controltest"
)

// feed is a control.Feed the test drives: Snapshot returns snap, and
// each Watch gets a channel the test sends on.
type feed struct {
	mu      sync.Mutex
	snap    []*trunk.Trunk
	rev     uint64
	snaps   int
	watches chan chan control.Event
}

func (f *feed) Snapshot(ctx context.Context) ([]*trunk.Trunk, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snaps++
	return slices.Clone(f.snap), f.rev, nil
}

func (f *feed) Watch(ctx context.Context, after uint64) <-chan control.Event {
	ch := make(chan control.Event)
	f.watches <- ch
	return ch
}

func at(t *trunk.Trunk, rev uint64) *trunk.Trunk {
	c := t.Clone()
	c.Meta.Revision = rev
	return c
}

func put(t *trunk.Trunk, rev uint64) control.Event {
	return control.Event{Kind: control.Put, ID: t.TrunkID, Trunk: at(t, rev), Revision: rev}
}

// waitEvents waits until the plane recorded want (after those it had).
func waitEvents(t *testing.T, p *controltest.Plane, from int, want ...string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := p.Events()[from:]
		if len(got) >= len(want) {
			if !slices.Equal(got[:len(want)], want) {
				t.Fatalf("plane events = %q; want %q", got, want)
			}
			return from + len(want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("plane events = %q; want %q", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReconcile(t *testing.T) {
	svc, _, p := newService()
	f := &feed{snap: []*trunk.Trunk{at(sample("a"), 5), at(sample("b"), 6)}, rev: 10, watches: make(chan chan control.Event)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	loaded := make(chan int, 1)
	go func() {
		done <- svc.Reconcile(ctx, f, control.ReconcileOptions{Retry: time.Millisecond, Loaded: func(n int) { loaded <- n }})
	}()
	w := <-f.watches
	if n := <-loaded; n != 2 {
		t.Errorf("Loaded(%d); want 2", n)
	}
	n := waitEvents(t, p, 0, "load 2")

	w <- put(sample("c"), 11)
	w <- put(sample("a"), 12)
	w <- put(sample("a"), 12) // a duplicate (etcd 3.4.23 can send one)
	w <- put(sample("a"), 7)  // travelling back in time
	w <- control.Event{Kind: control.Delete, ID: "b", Revision: 13}
	w <- put(sample("b"), 6) // older than its removal
	n = waitEvents(t, p, n, "prepare c", "commit c", "prepare a", "commit a", "remove b")
	if rev, _ := svc.AppliedRevision(); rev != 13 {
		t.Errorf("AppliedRevision = %d; want 13", rev)
	}

	// A write this node served is live already: its echo is skipped.
	d := sample("d")
	d.Meta.Revision = 0
	if err := svc.AddTrunk(ctx, d, control.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	n = waitEvents(t, p, n, "prepare d", "commit d")
	w <- put(sample("d"), d.Meta.Revision)

	// A trunk this node cannot run is kept degraded, not dropped.
	p.OnPrepare = func(ctx context.Context, t *trunk.Trunk) error {
		if t.TrunkID == "e" {
			return errors.New("cannot bind")
		}
		return nil
	}
	w <- put(sample("e"), 20)
	n = waitEvents(t, p, n, "prepare e", "load 1")

	// Lost changes: a Reset reads a snapshot and applies the difference:
	// c changed, a unchanged, d and e gone, f new.
	f.mu.Lock()
	f.snap = []*trunk.Trunk{at(sample("a"), 12), at(sample("c"), 30), at(sample("f"), 31)}
	f.rev = 40
	f.mu.Unlock()
	w <- control.Event{Kind: control.Reset, Err: errors.New("compacted")}
	w = <-f.watches
	got := p.Events()[n:]
	slices.Sort(got)
	want := []string{"commit c", "commit f", "prepare c", "prepare f", "remove d", "remove e"}
	if !slices.Equal(got, want) {
		t.Errorf("after a reset, plane events = %q; want %q", got, want)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Reconcile = %v; want context.Canceled", err)
	}
	_ = w
}
