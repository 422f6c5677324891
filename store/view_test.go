package store

import (
	"fmt"
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
