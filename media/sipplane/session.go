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
// lv.ports.release. SRTP is turned on through the sockets returned
// (mediaSockets.secure): diago's session itself always runs plain RTP.
func (lv *live) newSession(codecs []media.Codec) (*media.MediaSession, int, *mediaSockets, error) {
	ms := lv.session(codecs, nil)
	port, socks, err := lv.ports.open(ms, lv.rtpIP)
	if err != nil {
		return nil, 0, nil, err
	}
	return ms, port, socks, nil
}

// session is every media session the plane builds: a new one (from nil)
// for an offer or an answer, or a fork of from for a re-INVITE's answer.
// A fork shares from's sockets, and with them the call's SRTP keys: diago's
// Fork drops its own SRTP settings (as it drops ExternalIP), which is one
// reason trunkd does not use them.
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

// acceptProfile applies a media encryption policy to an offer's profile
// and keys: the key to answer with (nil for plain RTP), or why not (the
// reason of a 488). DISABLE answers RTP/AVP only (ignoring any a=crypto in
// it); ALLOW answers RTP/SAVP with a usable key with SRTP and RTP/AVP plain;
// REQUIRE takes RTP/SAVP with a usable key only. The offerer's first usable
// key wins.
func acceptProfile(o *offer, policy trunk.MediaEncryption) (*sdesCrypto, string) {
	switch o.proto {
	case "RTP/AVP":
		if policy == trunk.EncryptRequire {
			return nil, "SRTP required (RTP/SAVP with a=crypto)"
		}
		return nil, ""
	case "RTP/SAVP":
		if policy == trunk.EncryptDisable {
			return nil, "SRTP not enabled on this trunk (RTP/AVP only)"
		}
		if len(o.cryptos) == 0 {
			why := "no a=crypto with AES_CM_128_HMAC_SHA1_80 or _32"
			if o.cryptoErr != "" {
				why += " (" + o.cryptoErr + ")"
			}
			return nil, why
		}
		return o.cryptos[0], ""
	}
	return nil, "media profile " + clip(o.proto) + " not supported (RTP/AVP or RTP/SAVP)"
}

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

// offerSRTP makes ms offer SRTP: RTP/SAVP with a fresh key per suite
// (tags 1, 2 ... in order of preference), as LiveKit and FreeSWITCH offer.
// The offer is fixed into ms (diago sends a session's static SDP as is).
func offerSRTP(ms *media.MediaSession) ([]*sdesCrypto, error) {
	keys := make([]*sdesCrypto, 0, len(suites))
	for i, s := range suites {
		k, err := newLocalCrypto(i+1, s)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	laddr, codecs := ms.Laddr, ms.Codecs
	if err := ms.InitWithSDP(secureSDP(ms.LocalSDP(), keys...)); err != nil {
		return nil, err
	}
	// InitWithSDP reads these back from the SDP: the c= address is the
	// external one, and the codecs must stay ours for negotiation.
	ms.Laddr, ms.Codecs = laddr, codecs
	return keys, nil
}

// answerKeys applies an outbound policy to the answer of our SRTP offer:
// our key and the peer's for an SRTP answer, nil for a plain answer that
// ALLOW takes, or why the answer is refused.
func answerKeys(o *offer, offered []*sdesCrypto, policy trunk.MediaEncryption) (local, peer *sdesCrypto, why string) {
	switch o.proto {
	case "RTP/SAVP":
		for _, k := range o.cryptos {
			for _, mine := range offered {
				if k.tag == mine.tag && k.suite == mine.suite {
					return mine, k, ""
				}
			}
		}
		why = "the answer's a=crypto matches none of the keys offered"
		if o.cryptoErr != "" {
			why += " (" + o.cryptoErr + ")"
		}
		return nil, nil, why
	case "RTP/AVP":
		if policy == trunk.EncryptRequire {
			return nil, nil, "the carrier answered without SRTP (RTP/AVP) and outbound_media_encryption is REQUIRE"
		}
		return nil, nil, ""
	}
	return nil, nil, "the answer's media profile " + clip(o.proto) + " is not RTP/AVP or RTP/SAVP"
}
