package control_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
	"github.com/trunkd/trunkd/trunk/control/controltest"
)

func sample(id string) *trunk.Trunk {
	t := trunk.Defaults()
	t.TrunkID = id
	t.Domain = "sip.example.com"
	t.GatewayIP = "192.0.2.10"
	t.ChannelLimit = 30
	return &t
}

func newService(ts ...*trunk.Trunk) (*control.Service, *controltest.MemStore, *controltest.Plane) {
	st := controltest.NewMemStore(ts...)
	p := &controltest.Plane{}
	return control.New(st, p), st, p
}

func wantEvents(t *testing.T, p *controltest.Plane, want ...string) {
	t.Helper()
	if got := p.Events(); !slices.Equal(got, want) {
		t.Errorf("plane events = %q; want %q", got, want)
	}
}

func TestAddTrunk(t *testing.T) {
	t.Parallel()
	svc, st, p := newService()
	tr := sample("t1")
	tr.CodecPreferences = []string{"pcmu"}
	if err := svc.AddTrunk(t.Context(), tr, control.WriteOptions{}); err != nil {
		t.Fatalf("AddTrunk = %v; want nil", err)
	}
	wantEvents(t, p, "prepare t1", "commit t1")
	if got := st.Trunk("t1"); got == nil || !slices.Equal(got.CodecPreferences, []string{"PCMU"}) {
		t.Errorf("stored %+v; want t1 normalized (codec PCMU)", got)
	}
	if err := svc.AddTrunk(t.Context(), sample("t1"), control.WriteOptions{}); trunk.ErrorCode(err) != trunk.EEXISTS {
		t.Errorf("AddTrunk of an existing trunk = %v; want %s", err, trunk.EEXISTS)
	}
	wantEvents(t, p, "prepare t1", "commit t1") // the refused add never reached the plane
}

// TestValidationChangesNothing checks that an invalid trunk is refused,
// naming its field, before the plane or the store see it.
func TestValidationChangesNothing(t *testing.T) {
	t.Parallel()
	existing := sample("t1")
	tests := []struct {
		name  string
		edit  func(*trunk.Trunk)
		field string
	}{
		{"reject code", func(t *trunk.Trunk) { t.RejectSIPCode = 200 }, "reject_sip_code"},
		{"bad id", func(t *trunk.Trunk) { t.TrunkID = "a b" }, "trunk_id"},
		{"control character", func(t *trunk.Trunk) { t.DisplayName = "a\x00b" }, "display_name"},
	}
	for _, tt := range tests {
		for _, op := range []string{"add", "update"} {
			svc, st, p := newService(existing)
			tr := sample("t1")
			if op == "add" {
				tr.TrunkID = "t2"
			}
			tt.edit(tr)
			var err error
			if op == "add" {
				err = svc.AddTrunk(t.Context(), tr, control.WriteOptions{})
			} else {
				err = svc.UpdateTrunk(t.Context(), tr, control.WriteOptions{})
			}
			var te *trunk.Error
			if !errors.As(err, &te) || te.Code != trunk.EINVALID || (tt.field != "" && te.Field != tt.field) {
				t.Errorf("%s %s = %v; want %s naming %q", op, tt.name, err, trunk.EINVALID, tt.field)
			}
			wantEvents(t, p)
			if st.Len() != 1 || st.Trunk("t1").ChannelLimit != 30 {
				t.Errorf("%s %s changed the store", op, tt.name)
			}
		}
	}
}

// TestStoreFailureAborts checks that a write the store refuses is undone
// on the plane and the store's error returned with its cause.
func TestStoreFailureAborts(t *testing.T) {
	t.Parallel()
	svc, st, p := newService(sample("t1"))
	disk := errors.New("no space left on device")
	st.FailWrites(trunk.Wrap(trunk.EUNAVAILABLE, disk, "store unavailable: cannot write to disk"))
	up := sample("t1")
	up.ChannelLimit = 5
	err := svc.UpdateTrunk(t.Context(), up, control.WriteOptions{})
	if trunk.ErrorCode(err) != trunk.EUNAVAILABLE || !errors.Is(err, disk) {
		t.Errorf("UpdateTrunk on a failing store = %v; want %s keeping the disk's error", err, trunk.EUNAVAILABLE)
	}
	if err := svc.AddTrunk(t.Context(), sample("t2"), control.WriteOptions{}); trunk.ErrorCode(err) != trunk.EUNAVAILABLE {
		t.Errorf("AddTrunk on a failing store = %v; want %s", err, trunk.EUNAVAILABLE)
	}
	wantEvents(t, p, "prepare t1", "abort t1", "prepare t2", "abort t2")
	if got := st.Trunk("t1").ChannelLimit; got != 30 || st.Len() != 1 {
		t.Errorf("store holds %d trunks, t1 channel_limit %d; want the old t1 only", st.Len(), got)
	}
}

// TestPlaneRefusalPersistsNothing checks that a trunk the SIP plane
// cannot run is never stored.
func TestPlaneRefusalPersistsNothing(t *testing.T) {
	t.Parallel()
	svc, st, p := newService()
	p.OnPrepare = func(_ context.Context, t *trunk.Trunk) error {
		return trunk.FieldErrorf("internal_sip_ip", "cannot bind %s", t.InternalSIPIP)
	}
	err := svc.AddTrunk(t.Context(), sample("t1"), control.WriteOptions{})
	if trunk.ErrorCode(err) != trunk.EINVALID {
		t.Errorf("AddTrunk refused by the plane = %v; want its %s", err, trunk.EINVALID)
	}
	wantEvents(t, p, "prepare t1")
	if st.Len() != 0 {
		t.Errorf("store holds %d trunks after the plane refused; want 0", st.Len())
	}
}

func TestUpdateUnknown(t *testing.T) {
	t.Parallel()
	svc, _, p := newService()
	if err := svc.UpdateTrunk(t.Context(), sample("nope"), control.WriteOptions{}); trunk.ErrorCode(err) != trunk.ENOTFOUND {
		t.Errorf("UpdateTrunk of an unknown trunk = %v; want %s", err, trunk.ENOTFOUND)
	}
	wantEvents(t, p)
}

func TestRemoveTrunk(t *testing.T) {
	t.Parallel()
	svc, st, p := newService(sample("t1"))
	if err := svc.RemoveTrunk(t.Context(), "a/b", control.WriteOptions{}); trunk.ErrorCode(err) != trunk.EINVALID {
		t.Errorf("RemoveTrunk(%q) = %v; want %s", "a/b", err, trunk.EINVALID)
	}
	if err := svc.RemoveTrunk(t.Context(), "nope", control.WriteOptions{}); trunk.ErrorCode(err) != trunk.ENOTFOUND {
		t.Errorf("RemoveTrunk(nope) = %v; want %s", err, trunk.ENOTFOUND)
	}
	if err := svc.RemoveTrunk(t.Context(), "t1", control.WriteOptions{}); err != nil {
		t.Errorf("RemoveTrunk(t1) = %v; want nil", err)
	}
	wantEvents(t, p, "remove t1")
	if st.Len() != 0 {
		t.Errorf("store holds %d trunks; want 0", st.Len())
	}
}

func TestGetTrunk(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(sample("t1"))
	if got, err := svc.GetTrunk(t.Context(), "t1", control.Access{}); err != nil || got.TrunkID != "t1" {
		t.Errorf("GetTrunk(t1) = %v, %v; want t1", got, err)
	}
	if _, err := svc.GetTrunk(t.Context(), "a b", control.Access{}); trunk.ErrorCode(err) != trunk.EINVALID {
		t.Errorf("GetTrunk(%q) = %v; want %s", "a b", err, trunk.EINVALID)
	}
}

// TestLocksSerializeOneID checks that a second write to a trunk waits for
// the first to finish, while a write to another trunk goes ahead.
func TestLocksSerializeOneID(t *testing.T) {
	t.Parallel()
	svc, _, p := newService(sample("a"), sample("b"))
	entered := make(chan string, 4)
	release := make(chan struct{})
	p.OnPrepare = func(_ context.Context, t *trunk.Trunk) error {
		entered <- t.TrunkID
		if t.TrunkID == "a" {
			<-release
		}
		return nil
	}
	done := make(chan error, 2)
	go func() { done <- svc.UpdateTrunk(context.Background(), sample("a"), control.WriteOptions{}) }()
	if id := <-entered; id != "a" {
		t.Fatalf("first Prepare for %q; want a", id)
	}
	go func() { done <- svc.UpdateTrunk(context.Background(), sample("a"), control.WriteOptions{}) }()
	if err := svc.UpdateTrunk(t.Context(), sample("b"), control.WriteOptions{}); err != nil {
		t.Fatalf("UpdateTrunk(b) while a is held = %v", err)
	}
	if id := <-entered; id != "b" {
		t.Fatalf("Prepare for %q while the first write to a holds its lock; want b only", id)
	}
	select {
	case id := <-entered:
		t.Fatalf("Prepare for %q began while the first write to a holds its lock", id)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("UpdateTrunk(a) = %v", err)
		}
	}
	if got := strings.Join(p.Events(), ","); !strings.HasSuffix(got, "prepare a,commit a") || strings.Count(got, "commit a") != 2 {
		t.Errorf("plane events = %s; want the two writes to a one after the other", got)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	svc, _, p := newService(sample("a"), sample("b"), sample("c"))
	if err := svc.Load(t.Context()); err != nil {
		t.Fatalf("Load = %v", err)
	}
	wantEvents(t, p, "load 3")
}

func TestNoSIPPlane(t *testing.T) {
	t.Parallel()
	st := controltest.NewMemStore()
	svc := control.New(st, nil)
	if err := svc.AddTrunk(t.Context(), sample("t1"), control.WriteOptions{}); err != nil || st.Len() != 1 {
		t.Errorf("AddTrunk without a SIP plane = %v, %d stored; want stored", err, st.Len())
	}
	if _, err := svc.Dial(t.Context(), trunk.DialRequest{TrunkID: "t1", To: "100"}, control.Access{}); trunk.ErrorCode(err) != trunk.EUNAVAILABLE {
		t.Errorf("Dial without a SIP plane = %v; want %s", err, trunk.EUNAVAILABLE)
	}
	if err := svc.Hangup(t.Context(), "c1", control.Access{}); trunk.ErrorCode(err) != trunk.EUNAVAILABLE {
		t.Errorf("Hangup without a SIP plane = %v; want %s", err, trunk.EUNAVAILABLE)
	}
	if _, err := svc.ListCalls(t.Context(), "", control.Access{}); trunk.ErrorCode(err) != trunk.EUNAVAILABLE {
		t.Errorf("ListCalls without a SIP plane = %v; want %s", err, trunk.EUNAVAILABLE)
	}
	if _, err := svc.ExplainMatch(t.Context(), "192.0.2.10", ":5060", "", control.Access{}); trunk.ErrorCode(err) != trunk.EUNAVAILABLE {
		t.Errorf("ExplainMatch without a SIP plane = %v; want %s", err, trunk.EUNAVAILABLE)
	}
	if st := svc.TrunkStatus("t1"); st.SIP.State != trunk.SIPOff {
		t.Errorf("TrunkStatus without a SIP plane = %+v; want SIP off", st)
	}
}

// viewerStore is a MemStore that lends pages, as store.DB does, and
// counts the pages it lent.
type viewerStore struct {
	*controltest.MemStore
	lent int
}

func (s *viewerStore) ViewTrunks(ctx context.Context, q trunk.ListQuery, fn func(*trunk.Trunk)) error {
	s.lent++
	list, err := s.ListTrunks(ctx, q)
	for _, t := range list {
		fn(t)
	}
	return err
}

// TestViewTrunksAsListTrunks: ViewTrunks hands fn the trunks ListTrunks
// returns, organization scoping and filter included, whether the store
// lends pages (a control.Viewer) or only lists them.
func TestViewTrunksAsListTrunks(t *testing.T) {
	t.Parallel()
	var ts []*trunk.Trunk
	for i := range 20 {
		tr := sample(fmt.Sprintf("t%02d", i))
		tr.OrganizationID = []string{"org-a", "org-b"}[i%2]
		tr.Name = []string{"x", "y", "z"}[i%3]
		ts = append(ts, tr)
	}
	mem := controltest.NewMemStore(ts...)
	viewer := &viewerStore{MemStore: mem}
	for _, c := range []struct {
		after string
		limit int
		f     trunk.Filter
		a     control.Access
	}{
		{"", 100, trunk.Filter{}, control.Access{}},
		{"t03", 4, trunk.Filter{}, control.Access{Org: "org-b"}},
		{"", 100, trunk.Filter{Name: "z"}, control.Access{Org: "org-a"}},
	} {
		want, err := control.New(mem, nil).ListTrunks(t.Context(), c.after, c.limit, c.f, c.a)
		if err != nil {
			t.Fatal(err)
		}
		for name, st := range map[string]control.Store{"lister": mem, "viewer": viewer} {
			var got []string
			err := control.New(st, nil).ViewTrunks(t.Context(), c.after, c.limit, c.f, c.a, func(tr *trunk.Trunk) { got = append(got, tr.TrunkID) })
			if ids := ids(want); err != nil || !slices.Equal(got, ids) {
				t.Errorf("%s: ViewTrunks(%q, %d, %+v, %+v) = %q, %v; want %q", name, c.after, c.limit, c.f, c.a, got, err, ids)
			}
		}
	}
	if viewer.lent != 3 {
		t.Errorf("the viewer store lent %d pages; want 3 (ViewTrunks must use it)", viewer.lent)
	}
}

func ids(ts []*trunk.Trunk) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.TrunkID)
	}
	return out
}
