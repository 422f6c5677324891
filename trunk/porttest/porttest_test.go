package porttest

import "testing"

// Free gives n consecutive ports that bind for UDP and TCP, above the
// kernel's ephemeral range where it can read it.
func TestPortsAreFreeAndQuiet(t *testing.T) {
	for range 20 {
		base, err := Free("127.0.0.1", 3)
		if err != nil {
			t.Fatal(err)
		}
		if lo := quietPorts(); lo != 0 && int(base) < lo {
			t.Fatalf("port %d is inside the ephemeral range (quiet ports start at %d)", base, lo)
		}
		if !free("127.0.0.1", int(base), 3) {
			t.Fatalf("ports %d-%d are not all free", base, base+2)
		}
	}
}
