package store

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trunkd/trunkd/trunk"
)

// TestViewTrunksPagesAsListTrunks: ViewTrunks lends the trunks ListTrunks
// copies — the same ones, in the same order, for any cursor, limit and
// filter, cached or not.
func TestViewTrunksPagesAsListTrunks(t *testing.T) {
	db := open(t, "")
	for i := range 300 {
		tr := sample(fmt.Sprintf("t%03d", i))
		tr.Name = []string{"sales", "support", "ops"}[i%3]
		if err := db.AddTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	sales := trunk.Filter{NamePrefix: "sales"}
	for _, q := range []trunk.ListQuery{
		{Limit: 1000},
		{After: "t100", Limit: 7},
		{After: "t0995", Limit: 3}, // a cursor that is no stored id
		{After: "t299", Limit: 10}, // past the end
		{Limit: 0},
		{After: "t010", Limit: 20, Keep: sales.Keeps},
	} {
		want, err := db.ListTrunks(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var got []*trunk.Trunk
		if err := db.ViewTrunks(ctx, q, func(tr *trunk.Trunk) { got = append(got, tr) }); err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, want, func(a, b *trunk.Trunk) bool { return a.TrunkID == b.TrunkID && a.Name == b.Name }) {
			t.Errorf("after %q limit %d: ViewTrunks lent %d trunks, ListTrunks listed %d (or they differ)", q.After, q.Limit, len(got), len(want))
		}
		for _, tr := range want {
			tr.Name = strings.ToUpper(tr.Name) // a listed trunk is the caller's
		}
	}
	var names []string
	db.ViewTrunks(ctx, trunk.ListQuery{Limit: 3}, func(tr *trunk.Trunk) { names = append(names, tr.Name) })
	if want := []string{"sales", "support", "ops"}; !slices.Equal(names, want) {
		t.Errorf("after changing listed copies, ViewTrunks lends names %q; want %q", names, want)
	}
}

// TestViewTrunksMergesPendingAcrossWindows: a page is read a window of
// records at a time (aheadCursor); writes bbolt does not hold yet (adds,
// updates, removals) merge into it at the right places whatever the
// limit, the cursor, the filter and which records are cached.
func TestViewTrunksMergesPendingAcrossWindows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trunkd.db")
	db := open(t, path)
	model := map[string]string{}
	for i := range 200 {
		id := fmt.Sprintf("t%03d", i)
		if err := db.AddTrunk(ctx, sample(id)); err != nil {
			t.Fatal(err)
		}
		model[id] = ""
	}
	db.Close()
	db = lagging(t, path, walMaxSize) // bbolt holds the 200; what follows stays pending
	defer db.Close()
	for i := range 200 {
		id := fmt.Sprintf("t%03d", i)
		switch {
		case i%7 == 0:
			if err := db.RemoveTrunk(ctx, id, 0); err != nil {
				t.Fatal(err)
			}
			delete(model, id)
		case i%5 == 0:
			tr := sample(id)
			tr.Name = "upd"
			if err := db.UpdateTrunk(ctx, tr, 0); err != nil {
				t.Fatal(err)
			}
			model[id] = "upd"
		case i%3 == 0:
			db.GetTrunk(ctx, id) // cached
		}
		if i%11 == 0 {
			tr := sample(id + "a")
			tr.Name = "upd"
			if err := db.AddTrunk(ctx, tr); err != nil {
				t.Fatal(err)
			}
			model[id+"a"] = "upd"
		}
	}
	ids := slices.Sorted(maps.Keys(model))
	upd := trunk.Filter{Name: "upd"}
	for _, q := range []trunk.ListQuery{
		{Limit: 1}, {Limit: 63}, {Limit: 64}, {Limit: 65}, {Limit: 130}, {Limit: 1000},
		{After: "t063", Limit: 70}, {After: "t066a", Limit: 5}, {After: "t198", Limit: 10},
		{Limit: 1000, Keep: upd.Keeps}, {After: "t100", Limit: 3, Keep: upd.Keeps},
	} {
		var want []string
		for _, id := range ids {
			if id > q.After && len(want) < q.Limit && (q.Keep == nil || model[id] == "upd") {
				want = append(want, id+"="+model[id])
			}
		}
		var got []string
		if err := db.ViewTrunks(ctx, q, func(tr *trunk.Trunk) { got = append(got, tr.TrunkID+"="+tr.Name) }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("after %q limit %d filtered %v:\n got %v\nwant %v", q.After, q.Limit, q.Keep != nil, got, want)
		}
	}
}
