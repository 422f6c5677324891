package sipplane

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/diago/media"
)

// offer is what trunkd needs from an SDP offer. It is parsed here, strictly,
// before diago sees the body: diago's parser indexes fields without checking
// them, so a hostile "c=IN" would panic it.
type offer struct {
	addr      netip.Addr    // media connection address (media-level c= wins)
	port      int           // audio port
	proto     string        // RTP/AVP, RTP/SAVP, ...
	codecs    []media.Codec // offered formats with a known name, in offer order
	direction string        // sendrecv, sendonly, recvonly, inactive
	audio     bool          // an m=audio line was present
	cryptos   []*sdesCrypto // usable a=crypto lines of the audio stream, in offer order
	cryptoErr string        // why the first unusable a=crypto line was refused
	use       *sdesCrypto   // the peer's key the call runs with; nil for plain RTP (set by checkOffer)
}

// hold reports whether the offer puts the call on hold: sendonly or
// inactive, or the RFC 2543 c=0.0.0.0 form.
func (o *offer) hold() bool {
	return o.direction == "sendonly" || o.direction == "inactive" || (o.addr.IsValid() && o.addr.IsUnspecified())
}

const maxSDP = 16 << 10

// maxCryptos bounds the a=crypto lines kept from one offer.
const maxCryptos = 8

var staticPT = map[string]media.Codec{
	"0": media.CodecAudioUlaw,
	"8": media.CodecAudioAlaw,
}

// parseOffer parses an SDP body. Only the first audio stream is used.
func parseOffer(body []byte) (*offer, error) {
	if len(body) == 0 {
		return nil, errors.New("no SDP offer")
	}
	if len(body) > maxSDP {
		return nil, fmt.Errorf("SDP of %d bytes is over %d", len(body), maxSDP)
	}
	o := &offer{direction: "sendrecv"}
	var formats []string
	rtpmap := map[string]string{}
	var sessionAddr, mediaAddr string
	inAudio, seenMedia, origin := false, false, false
	streams := 0
	for _, raw := range bytes.Split(body, []byte("\n")) {
		line := strings.TrimRight(string(raw), "\r")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' {
			return nil, fmt.Errorf("SDP line %q is not type=value", clip(line))
		}
		val := line[2:]
		switch line[0] {
		case 'o':
			origin = len(strings.Fields(val)) >= 6
		case 'm':
			seenMedia = true
			streams++
			f := strings.Fields(val)
			inAudio = false
			if len(f) < 4 || f[0] != "audio" || o.audio {
				continue
			}
			port, err := strconv.Atoi(strings.SplitN(f[1], "/", 2)[0])
			if err != nil || port < 0 || port > 65535 {
				return nil, fmt.Errorf("SDP m=audio port %q", clip(f[1]))
			}
			o.audio, inAudio = true, true
			o.port, o.proto, formats = port, f[2], f[3:]
		case 'c':
			if seenMedia && !inAudio {
				continue
			}
			f := strings.Fields(val)
			if len(f) < 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
				return nil, fmt.Errorf("SDP c=%q", clip(val))
			}
			if seenMedia {
				mediaAddr = f[2]
			} else {
				sessionAddr = f[2]
			}
		case 'a':
			if seenMedia && !inAudio {
				continue
			}
			o.attribute(val, rtpmap)
		}
	}
	if !o.audio {
		return nil, errors.New("SDP has no audio stream")
	}
	if streams > 1 {
		return nil, fmt.Errorf("SDP has %d media streams; only one audio stream is supported", streams)
	}
	if !origin {
		return nil, errors.New("SDP has no valid o= line")
	}
	addr := mediaAddr
	if addr == "" {
		addr = sessionAddr
	}
	a, err := netip.ParseAddr(strings.SplitN(addr, "/", 2)[0])
	if err != nil {
		return nil, fmt.Errorf("SDP connection address %q is not an IP", clip(addr))
	}
	o.addr = a.Unmap()
	o.codecs = offeredCodecs(formats, rtpmap)
	return o, nil
}

func (o *offer) attribute(val string, rtpmap map[string]string) {
	switch val {
	case "sendrecv", "sendonly", "recvonly", "inactive":
		o.direction = val
		return
	}
	if rest, ok := strings.CutPrefix(val, "crypto:"); ok {
		if len(o.cryptos)+1 > maxCryptos {
			return
		}
		c, err := parseCrypto(rest)
		if err != nil {
			if o.cryptoErr == "" {
				o.cryptoErr = err.Error()
			}
			return
		}
		o.cryptos = append(o.cryptos, c)
		return
	}
	if rest, ok := strings.CutPrefix(val, "rtpmap:"); ok {
		pt, enc, ok := strings.Cut(rest, " ")
		if ok {
			rtpmap[pt] = strings.TrimSpace(enc)
		}
	}
}

// offeredCodecs turns m= formats and rtpmap lines into codecs; formats that
// cannot be understood are left out (they can never be common).
func offeredCodecs(formats []string, rtpmap map[string]string) []media.Codec {
	var out []media.Codec
	for _, f := range formats {
		pt, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		enc, ok := rtpmap[f]
		if !ok {
			if c, ok := staticPT[f]; ok {
				out = append(out, c)
			}
			continue
		}
		parts := strings.Split(enc, "/")
		if len(parts) < 2 || parts[0] == "" {
			continue
		}
		rate, err := strconv.ParseUint(parts[1], 10, 32)
		if err != nil || rate == 0 {
			continue
		}
		c := media.Codec{Name: parts[0], PayloadType: uint8(pt), SampleRate: uint32(rate), SampleDur: 20 * time.Millisecond, NumChannels: 1}
		if len(parts) == 3 {
			if n, err := strconv.Atoi(parts[2]); err == nil && n > 0 && n <= 8 {
				c.NumChannels = n
			}
		}
		out = append(out, c)
	}
	return out
}

// clip shortens hostile input before it goes into an error or a log.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "..."
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
