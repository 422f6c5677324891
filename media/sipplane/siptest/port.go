package siptest

import (
	"testing"

	"github.com/trunkd/trunkd/trunk/porttest"
)

// Port returns a port free at the moment for both UDP and TCP on ip
// (porttest.Free).
func Port(ip string) (uint16, error) { return porttest.Free(ip, 1) }

// FreePort returns a port free at the moment for both UDP and TCP on ip,
// failing t when there is none.
func FreePort(t testing.TB, ip string) uint16 { return FreePorts(t, ip, 1) }

// FreePorts returns the first of n consecutive such ports, failing t
// when there are none.
func FreePorts(t testing.TB, ip string, n int) uint16 {
	t.Helper()
	p, err := porttest.Free(ip, n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
