package sipplane

import (
	"strings"
	"testing"

	"github.com/emiago/diago/media"
)

func sdpOf(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

var baseOffer = []string{
	"v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
	"m=audio 4000 RTP/AVP 0 8 111 100",
	"a=rtpmap:111 opus/48000/2", "a=rtpmap:100 telephone-event/8000",
}

func TestParseOffer(t *testing.T) {
	o, err := parseOffer(sdpOf(baseOffer...))
	if err != nil {
		t.Fatal(err)
	}
	if o.addr.String() != "192.0.2.1" || o.port != 4000 || o.proto != "RTP/AVP" || o.hold() {
		t.Errorf("parseOffer = %+v", o)
	}
	if len(o.codecs) != 4 || o.codecs[2].PayloadType != 111 || o.codecs[2].NumChannels != 2 {
		t.Errorf("codecs = %+v", o.codecs)
	}
}

func TestParseOfferHold(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		hold  bool
	}{
		{"sendonly", append(baseOffer[:len(baseOffer):len(baseOffer)], "a=sendonly"), true},
		{"inactive", append(baseOffer[:len(baseOffer):len(baseOffer)], "a=inactive"), true},
		{"recvonly", append(baseOffer[:len(baseOffer):len(baseOffer)], "a=recvonly"), false},
		{"c=0.0.0.0", []string{"v=0", "o=- 1 1 IN IP4 0.0.0.0", "c=IN IP4 0.0.0.0", "m=audio 4000 RTP/AVP 0"}, true},
		{"media-level c wins", []string{"v=0", "o=- 1 1 IN IP4 192.0.2.1", "c=IN IP4 192.0.2.1", "m=audio 4000 RTP/AVP 0", "c=IN IP4 0.0.0.0"}, true},
	} {
		o, err := parseOffer(sdpOf(tc.lines...))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if o.hold() != tc.hold {
			t.Errorf("%s: hold() = %v; want %v", tc.name, o.hold(), tc.hold)
		}
	}
}

func TestParseOfferRefuses(t *testing.T) {
	for name, body := range map[string][]byte{
		"empty":         nil,
		"short c=":      sdpOf("v=0", "c=IN", "m=audio 4000 RTP/AVP 0"),
		"c= not an IP":  sdpOf("v=0", "c=IN IP4 host.example", "m=audio 4000 RTP/AVP 0"),
		"no c=":         sdpOf("v=0", "m=audio 4000 RTP/AVP 0"),
		"no audio":      sdpOf("v=0", "c=IN IP4 192.0.2.1", "m=video 4000 RTP/AVP 96"),
		"bad port":      sdpOf("v=0", "c=IN IP4 192.0.2.1", "m=audio 99999 RTP/AVP 0"),
		"not type=val":  sdpOf("v=0", "garbage", "m=audio 4000 RTP/AVP 0"),
		"huge":          make([]byte, maxSDP+1),
		"c= bad family": sdpOf("v=0", "c=IN IPX 192.0.2.1", "m=audio 4000 RTP/AVP 0"),
		"no o=":         sdpOf("v=0", "c=IN IP4 192.0.2.1", "m=audio 4000 RTP/AVP 0"),
		"two streams":   sdpOf("v=0", "o=- 1 1 IN IP4 192.0.2.1", "c=IN IP4 192.0.2.1", "m=audio 4000 RTP/AVP 0", "m=video 4002 RTP/AVP 96"),
	} {
		if o, err := parseOffer(body); err == nil {
			t.Errorf("%s: parseOffer = %+v; want an error", name, o)
		}
	}
}

func TestNegotiate(t *testing.T) {
	o, _ := parseOffer(sdpOf(baseOffer...))
	got, ok := negotiate([]media.Codec{media.CodecAudioOpus, media.CodecAudioAlaw}, o.codecs)
	if !ok || len(got) != 3 {
		t.Fatalf("negotiate = %+v, %v", got, ok)
	}
	// Local preference order, the offer's payload types.
	if got[0].Name != "opus" || got[0].PayloadType != 111 || got[1].PayloadType != 8 || got[2].PayloadType != 100 {
		t.Errorf("negotiate = %+v; want opus/111, PCMA/8, telephone-event/100", got)
	}
	g729, _ := parseOffer(sdpOf("v=0", "o=- 1 1 IN IP4 192.0.2.1", "c=IN IP4 192.0.2.1", "m=audio 4000 RTP/AVP 18", "a=rtpmap:18 G729/8000"))
	if _, ok := negotiate([]media.Codec{media.CodecAudioUlaw}, g729.codecs); ok {
		t.Error("negotiate found a common codec with a G729-only offer")
	}
}

func FuzzParseOffer(f *testing.F) {
	f.Add(sdpOf(baseOffer...))
	f.Add(sdpOf("v=0", "c=IN IP4 0.0.0.0", "m=audio 0 RTP/AVP 0", "a=inactive"))
	f.Add([]byte("m=audio\nc=IN IP4\n"))
	f.Add(sdpOf("v=0", "o=- 1 1 IN IP4 127.0.0.1", "c=IN IP4 127.0.0.1", "m=audio 4000 RTP/SAVP 0",
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH|2^31|1:1",
		"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH;inline:x|2^20|2:1 WSH=64"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := parseOffer(b)
		if err == nil && (!o.addr.IsValid() || !o.audio) {
			t.Fatalf("accepted an offer without address or audio: %+v", o)
		}
		if err == nil {
			for _, c := range o.cryptos {
				if len(c.key) != srtpKeyLen+srtpSaltLen || len(c.mki) > maxMKILen {
					t.Fatalf("accepted a key of %d bytes, MKI of %d", len(c.key), len(c.mki))
				}
				if _, err := c.context(); err != nil {
					t.Fatalf("accepted a key pion refuses: %v", err)
				}
			}
		}
	})
}
