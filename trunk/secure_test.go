package trunk

import "testing"

func TestParseProxy(t *testing.T) {
	for _, tc := range []struct {
		in          string
		host        string
		port        int
		secure      bool
		route       string // over UDP
		routeTLS    string
		hostPortTLS string
	}{
		{"proxy.example.com", "proxy.example.com", 0, false, "sip:proxy.example.com;lr", "sip:proxy.example.com;lr;transport=tls", "proxy.example.com:5061"},
		{"10.0.0.1:5070", "10.0.0.1", 5070, false, "sip:10.0.0.1:5070;lr", "sip:10.0.0.1:5070;lr;transport=tls", "10.0.0.1:5070"},
		{"sip:h.example:5080", "h.example", 5080, false, "sip:h.example:5080;lr", "sip:h.example:5080;lr;transport=tls", "h.example:5080"},
		{"sip:h.example;lr", "h.example", 0, false, "sip:h.example;lr", "sip:h.example;lr;transport=tls", "h.example:5061"},
		{"SIPS:h.example:5062", "h.example", 5062, true, "sips:h.example:5062;lr", "sips:h.example:5062;lr;transport=tls", "h.example:5062"},
		{"[2001:db8::1]:5060", "2001:db8::1", 5060, false, "sip:[2001:db8::1]:5060;lr", "sip:[2001:db8::1]:5060;lr;transport=tls", "[2001:db8::1]:5060"},
	} {
		p, err := ParseProxy(tc.in)
		if err != nil {
			t.Errorf("ParseProxy(%q) = %v", tc.in, err)
			continue
		}
		if p.Host != tc.host || p.Port != tc.port || p.Secure != tc.secure {
			t.Errorf("ParseProxy(%q) = %+v; want host %q port %d secure %v", tc.in, p, tc.host, tc.port, tc.secure)
		}
		if got := p.RouteURI(TransportUDP); got != tc.route {
			t.Errorf("ParseProxy(%q).RouteURI(UDP) = %q; want %q", tc.in, got, tc.route)
		}
		if got := p.RouteURI(TransportTLS); got != tc.routeTLS {
			t.Errorf("ParseProxy(%q).RouteURI(TLS) = %q; want %q", tc.in, got, tc.routeTLS)
		}
		if got := p.HostPort(TransportTLS); got != tc.hostPortTLS {
			t.Errorf("ParseProxy(%q).HostPort(TLS) = %q; want %q", tc.in, got, tc.hostPortTLS)
		}
	}
	for _, bad := range []string{"sip:", "sip:user@h.example", "h.example:0", "h.example:99999", "sip:sip:h:5060", "bad host"} {
		if p, err := ParseProxy(bad); err == nil {
			t.Errorf("ParseProxy(%q) = %+v; want an error", bad, p)
		}
	}
	if got := (Proxy{Host: "h"}).RouteURI(TransportTCP); got != "sip:h;lr;transport=tcp" {
		t.Errorf("RouteURI(TCP) = %q; want sip:h;lr;transport=tcp", got)
	}
}

func TestValidateSecurity(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Trunk)
		field string // "" = valid
	}{
		{"defaults", func(*Trunk) {}, ""},
		{"TLS with a listener", func(t *Trunk) { t.Transport, t.SIPTLSPort = TransportTLS, 5061 }, ""},
		{"TLS without a listener", func(t *Trunk) { t.Transport = TransportTLS }, "sip_tls_port"},
		{"bad transport", func(t *Trunk) { t.Transport = 3 }, "transport"},
		{"bad inbound policy", func(t *Trunk) { t.InboundMediaEncryption = 3 }, "inbound_media_encryption"},
		{"bad outbound policy", func(t *Trunk) { t.OutboundMediaEncryption = -1 }, "outbound_media_encryption"},
		{"TLS on the SIP port", func(t *Trunk) { t.SIPTLSPort = 5060 }, "sip_tls_port"},
		{"sips proxy over UDP", func(t *Trunk) { t.Proxy = "sips:p.example" }, "proxy"},
		{"sips proxy over TLS", func(t *Trunk) { t.Proxy, t.Transport, t.SIPTLSPort = "sips:p.example", TransportTLS, 5061 }, ""},
	} {
		tr := Defaults()
		tr.TrunkID = "t1"
		tc.edit(&tr)
		err := tr.Validate()
		got := ""
		if e, ok := err.(*Error); ok {
			got = e.Field
		} else if err != nil {
			got = err.Error()
		}
		if got != tc.field {
			t.Errorf("%s: Validate() = %v; want field %q", tc.name, err, tc.field)
		}
	}
}

func TestSRTPWithoutTLS(t *testing.T) {
	for _, tc := range []struct {
		tr   Transport
		tls  uint16
		in   MediaEncryption
		out  MediaEncryption
		want bool
	}{
		{TransportUDP, 0, EncryptDisable, EncryptDisable, false},
		{TransportUDP, 0, EncryptDisable, EncryptRequire, true},
		{TransportTLS, 5061, EncryptDisable, EncryptRequire, false},
		{TransportTLS, 5061, EncryptRequire, EncryptRequire, false},
		{TransportUDP, 0, EncryptAllow, EncryptDisable, true},
	} {
		tr := Trunk{Transport: tc.tr, SIPTLSPort: tc.tls, InboundMediaEncryption: tc.in, OutboundMediaEncryption: tc.out}
		if got := tr.SRTPWithoutTLS(); got != tc.want {
			t.Errorf("SRTPWithoutTLS(%v, tls port %d, in %v, out %v) = %v; want %v", tc.tr, tc.tls, tc.in, tc.out, got, tc.want)
		}
	}
}
