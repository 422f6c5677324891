package sipplane

import (
	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/trunk"
)

// This file holds the one place for each piece of a call's signalling and
// media that a new transport or SRTP changes: the media session, the
// accepted RTP profile and the Route header.

// newSession builds a call's media session with codecs and binds its RTP
// and RTCP sockets from the trunk's own port range; release the port with
// lv.ports.release.
func (lv *live) newSession(codecs []media.Codec) (*media.MediaSession, int, error) {
	ms := lv.session(codecs, nil)
	port, err := lv.ports.open(ms, lv.rtpIP)
	if err != nil {
		return nil, 0, err
	}
	return ms, port, nil
}

// session is every media session the plane builds: a new one (from nil)
// for an offer or an answer, or a fork of from for a re-INVITE's answer.
// SRTP settings (diago's MediaSession.SecureRTP) belong here, so that a
// re-INVITE keeps them: diago's Fork drops them, as it drops ExternalIP.
func (lv *live) session(codecs []media.Codec, from *media.MediaSession) *media.MediaSession {
	var ms *media.MediaSession
	if from == nil {
		ms = &media.MediaSession{Mode: "sendrecv", RTPNAT: media.RTPNATSymetric}
	} else {
		ms = from.Fork()
	}
	ms.Codecs = codecs
	ms.ExternalIP = lv.extRTP // a fork too: Fork drops it (diago bug), keep NAT right
	return ms
}

// acceptProfile reports whether the plane takes an offer's media profile:
// plain RTP/AVP only (RTP/SAVP joins it with SRTP).
func acceptProfile(o *offer) bool { return o.proto == "RTP/AVP" }

// routeHeader is the Route header that sends a trunk's requests through
// its proxy (loose routing), or nil without one: sips: and
// ;transport= follow the trunk's transport, whichever form the proxy
// field was written in (host:port or a sip:/sips: URI).
func routeHeader(t *trunk.Trunk) sip.Header {
	if t.Proxy == "" {
		return nil
	}
	p, err := trunk.ParseProxy(t.Proxy)
	if err != nil {
		return nil // Validate refuses such a trunk before it gets here
	}
	return sip.NewHeader("Route", "<"+p.RouteURI(t.Transport)+">")
}
