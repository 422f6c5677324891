package siptest

import (
	"errors"
	"net"
	"strconv"
	"testing"
)

// Port returns a port free at the moment for both UDP and TCP on ip.
func Port(ip string) (uint16, error) {
	for range 50 {
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, err
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		u.Close()
		if err == nil {
			l.Close()
			return uint16(port), nil
		}
	}
	return 0, errors.New("siptest: no port free for both UDP and TCP")
}

// FreePort returns a port free at the moment for both UDP and TCP on ip,
// failing t when there is none.
func FreePort(t testing.TB, ip string) uint16 {
	t.Helper()
	p, err := Port(ip)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
