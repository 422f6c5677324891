// Package porttest finds loopback ports for the servers tests start:
// the SIP plane's and baresip's (media/sipplane/siptest), etcd members'
// (store/etcd/etcdtest). It imports only the standard library.
package porttest

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
)

// Free returns the first of n consecutive ports free at the moment for
// both UDP and TCP on ip (baresip, for one, listens for TLS on its SIP
// port + 1).
//
// A test finds a port free, closes it, and hands it to a server that
// binds it a moment later. A port the kernel gave out for ":0" is one
// that other processes' ":0" binds and outgoing connections may be given
// in that moment too (CI saw baresip and etcd lose theirs while other
// packages' tests ran). So ports come from above the kernel's ephemeral
// range where it leaves room (Linux's default ends at 60999), and above
// the default RTP range (16384-32767) anyway; only where there is no
// such room do they come from ":0".
func Free(ip string, n int) (uint16, error) {
	lo := quietPorts()
	for range 200 {
		if lo == 0 || 65536-lo < 100*n {
			break
		}
		base := lo + rand.IntN(65536-lo-n)
		if free(ip, base, n) {
			return uint16(base), nil
		}
	}
	for range 50 {
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, err
		}
		base := u.LocalAddr().(*net.UDPAddr).Port
		u.Close()
		if base+n <= 65536 && free(ip, base, n) {
			return uint16(base), nil
		}
	}
	return 0, fmt.Errorf("porttest: no %d consecutive ports free for both UDP and TCP", n)
}

// quietPorts is where the ports above the kernel's ephemeral range
// start, or 0 when it cannot be read.
var quietPorts = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	var first, last int
	if _, err := fmt.Sscan(string(b), &first, &last); err != nil {
		return 0
	}
	return max(last+1, 32768)
})

// free reports whether ports base..base+n-1 can each be bound for UDP
// and TCP on ip.
func free(ip string, base, n int) bool {
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for p := base; p < base+n; p++ {
		addr := net.JoinHostPort(ip, strconv.Itoa(p))
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		held = append(held, u)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		held = append(held, l)
	}
	return true
}
