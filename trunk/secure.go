package trunk

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Transport is how trunkd sends SIP on a trunk: calls, REGISTERs and
// OPTIONS probes. The numbers are part of the wire contract.
type Transport int32

// Transports.
const (
	TransportUDP Transport = 0
	TransportTCP Transport = 1
	TransportTLS Transport = 2
)

func (t Transport) String() string {
	switch t {
	case TransportUDP:
		return "UDP"
	case TransportTCP:
		return "TCP"
	case TransportTLS:
		return "TLS"
	}
	return fmt.Sprintf("Transport(%d)", int32(t))
}

// Network is the transport's lower-case name as SIP stacks spell it in
// Via and transport= parameters: "udp", "tcp" or "tls".
func (t Transport) Network() string { return strings.ToLower(t.String()) }

// MediaEncryption is a trunk's SRTP (SDES, RFC 4568) policy for one call
// direction. The numbers are part of the wire contract.
type MediaEncryption int32

// Media encryption policies.
const (
	EncryptDisable MediaEncryption = 0 // plain RTP only; an RTP/SAVP offer gets 488
	EncryptAllow   MediaEncryption = 1 // SRTP when the peer offers or accepts it, else plain RTP
	EncryptRequire MediaEncryption = 2 // SRTP or no call
)

func (m MediaEncryption) String() string {
	switch m {
	case EncryptDisable:
		return "DISABLE"
	case EncryptAllow:
		return "ALLOW"
	case EncryptRequire:
		return "REQUIRE"
	}
	return fmt.Sprintf("MediaEncryption(%d)", int32(m))
}

// DefaultSIPTLSPort is the usual SIP over TLS port (RFC 3261), the one a
// sips: proxy without a port means.
const DefaultSIPTLSPort = 5061

// Proxy is a parsed proxy field: where requests go first, loose routed.
type Proxy struct {
	Host   string // a DNS name or an IP literal, without brackets
	Port   int    // 0 when not given
	Secure bool   // written as a sips: URI
}

// ParseProxy parses the proxy field: host, host:port, [v6]:port, or a
// sip:/sips: URI of those with optional ;parameters (dropped: trunkd adds
// lr and transport itself).
func ParseProxy(p string) (Proxy, error) {
	var out Proxy
	hostport := p
	lower := strings.ToLower(p)
	switch {
	case strings.HasPrefix(lower, "sips:"):
		hostport, out.Secure = p[len("sips:"):], true
	case strings.HasPrefix(lower, "sip:"):
		hostport = p[len("sip:"):]
	}
	hostport, _, _ = strings.Cut(hostport, ";")
	if strings.Contains(hostport, "@") {
		return Proxy{}, fmt.Errorf("%q names a user; a proxy is host[:port]", p)
	}
	host := hostport
	if h, port, err := splitHostPort(hostport); err == nil {
		n, perr := strconv.ParseUint(port, 10, 16)
		if perr != nil || n == 0 {
			return Proxy{}, fmt.Errorf("%q has an invalid port", p)
		}
		host, out.Port = h, int(n)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if !IsHost(host) {
		return Proxy{}, fmt.Errorf("%q is not host[:port] or a sip: URI", p)
	}
	out.Host = host
	return out, nil
}

// HostPort is the proxy's address for sending, with the default port of
// transport when none was given (5061 for TLS, else 5060).
func (p Proxy) HostPort(tr Transport) string {
	port := p.Port
	if port == 0 {
		port = 5060
		if tr == TransportTLS || p.Secure {
			port = DefaultSIPTLSPort
		}
	}
	return net.JoinHostPort(p.Host, strconv.Itoa(port))
}

// RouteURI is the proxy as the URI of a loose-routing Route header for
// requests sent over tr, with ;transport= for anything but UDP. The scheme
// is sips: only when the proxy was written so: sip:...;transport=tls is
// what most stacks expect for a TLS hop (some cannot route to sips: at
// all), and sips: would ask every later hop for TLS too.
func (p Proxy) RouteURI(tr Transport) string {
	scheme := "sip"
	if p.Secure {
		scheme = "sips"
	}
	host := p.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p.Port != 0 {
		host += ":" + strconv.Itoa(p.Port)
	}
	u := scheme + ":" + host + ";lr"
	if tr != TransportUDP {
		u += ";transport=" + tr.Network()
	}
	return u
}

// SRTPWithoutTLS reports whether a trunk may carry SRTP keys in SDP over a
// transport that is not encrypted: SDES keys travel in the signalling, so
// SRTP over UDP or TCP protects only against eavesdroppers of the media
// path. Outbound it is the trunk's transport; inbound trunkd cannot tell
// in advance which listener transport the carrier uses unless the trunk
// requires SRTP and there is no TLS listener.
func (t *Trunk) SRTPWithoutTLS() bool {
	out := t.OutboundMediaEncryption != EncryptDisable && t.Transport != TransportTLS
	in := t.InboundMediaEncryption != EncryptDisable && t.SIPTLSPort == 0
	return out || in
}
