package etcd

import (
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"
)

// TestOwnerSpreadsAndMovesLittle: rendezvous hashing gives each node
// about 1/N of the trunks, and a node joining takes trunks only for
// itself (no trunk moves between the nodes already there).
func TestOwnerSpreadsAndMovesLittle(t *testing.T) {
	three := []string{"n1", "n2", "n3"}
	four := append(three[:3:3], "n4")
	count := map[string]int{}
	moved := 0
	const trunks = 30000
	for i := range trunks {
		id := fmt.Sprintf("trunk-%d", i)
		before, after := Owner(three, id), Owner(four, id)
		count[before]++
		if before != after {
			moved++
			if after != "n4" {
				t.Fatalf("%s moved from %s to %s when n4 joined; want moves only to n4", id, before, after)
			}
		}
	}
	for _, n := range three {
		if got := count[n]; got < trunks/3*9/10 || got > trunks/3*11/10 {
			t.Errorf("%s owns %d of %d trunks; want about a third", n, got, trunks)
		}
	}
	if moved < trunks/4*9/10 || moved > trunks/4*11/10 {
		t.Errorf("%d of %d trunks moved when a fourth node joined; want about a quarter", moved, trunks)
	}
}

// TestShareSumsToLimit: the per-node shares of a channel_limit add up to
// it exactly, whatever the number of nodes.
func TestShareSumsToLimit(t *testing.T) {
	for _, nodes := range []int{1, 2, 3, 7} {
		for _, limit := range []uint32{1, 2, 10, 50, 101} {
			for _, id := range []string{"a", "b", "carrier-1"} {
				var sum uint32
				for i := range nodes {
					m := &Members{cfg: MembersConfig{Node: fmt.Sprint("n", i)}, nodes: map[string]time.Time{}}
					for j := range nodes {
						m.nodes[fmt.Sprint("n", j)] = time.Time{}
					}
					sum += m.Share(id, limit)
				}
				if sum != limit {
					t.Errorf("%d nodes, limit %d, trunk %s: shares sum to %d", nodes, limit, id, sum)
				}
			}
		}
	}
}

// settledMembers is node n1 of three settled nodes with trunks
// registering trunks, each owned (owner/ and mine) by its rendezvous
// owner: the state of a quiet cluster, where decide has nothing to do.
// OnOwn records what it is told.
func settledMembers(trunks int, onOwn func(id string, own bool)) *Members {
	m := &Members{s: &Store{prefix: "/test/"}, log: slog.New(slog.DiscardHandler), cfg: MembersConfig{Node: "n1", Settle: time.Minute, OnOwn: onOwn}, healthy: true,
		nodes:  map[string]time.Time{"n1": {}, "n2": {}, "n3": {}},
		owners: map[string]string{}, wanted: map[string]bool{}, mine: map[string]bool{}}
	live := []string{"n1", "n2", "n3"}
	for i := range trunks {
		id := fmt.Sprintf("carrier-%06d", i)
		m.wanted[id] = true
		if m.owners[id] = Owner(live, id); m.owners[id] == "n1" {
			m.mine[id] = true
		}
	}
	return m
}

// TestDecideAfterAChange: a round that found nothing to do is not
// repeated while nothing decide reads has changed through Members (a
// trunk slipped into its maps behind its back stays untouched), and the
// next change (Want) brings a full round that acts on both.
func TestDecideAfterAChange(t *testing.T) {
	var owned []string
	m := settledMembers(100, func(id string, own bool) {
		if own {
			owned = append(owned, id)
		}
	})
	ctx := t.Context()
	m.decide(ctx)
	if len(owned) != 0 {
		t.Fatalf("a settled cluster's round took %v; want nothing", owned)
	}
	// Two trunks whose owner key is already this node's (a restart).
	var ids []string
	for i := 0; len(ids) < 2; i++ {
		if id := fmt.Sprint("carrier-new-", i); Owner([]string{"n1", "n2", "n3"}, id) == "n1" {
			ids = append(ids, id)
		}
	}
	m.mu.Lock()
	m.owners[ids[0]], m.wanted[ids[0]] = "n1", true
	m.mu.Unlock()
	m.decide(ctx)
	if len(owned) != 0 {
		t.Fatalf("a round with no change announced took %v; want it skipped", owned)
	}
	m.mu.Lock()
	m.owners[ids[1]] = "n1"
	m.mu.Unlock()
	m.Want(ids[1], true)
	m.decide(ctx)
	slices.Sort(owned)
	if !slices.Equal(owned, ids) {
		t.Errorf("after Want(%s) the round took %v; want %v", ids[1], owned, ids)
	}
}

// BenchmarkDecideQuiet100k: one second's ownership round on a node of
// three, 100 000 trunks requiring registration, nothing changed.
func BenchmarkDecideQuiet100k(b *testing.B) {
	m := settledMembers(100_000, func(string, bool) {})
	ctx := b.Context()
	m.decide(ctx)
	for b.Loop() {
		m.decide(ctx)
	}
}
