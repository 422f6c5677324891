package etcd

import (
	"fmt"
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
