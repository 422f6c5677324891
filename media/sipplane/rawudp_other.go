//go:build !(linux && (amd64 || arm64))

package sipplane

import "net"

// newRawUDP returns c: raw system calls are for 64-bit Linux on x86 and
// ARM (rawudp_linux.go).
func newRawUDP(c *net.UDPConn) net.PacketConn { return c }
