//go:build !linux

package sipplane

import "net"

// newRawUDP returns c: raw system calls are for Linux (rawudp_linux.go).
func newRawUDP(c *net.UDPConn) net.PacketConn { return c }
