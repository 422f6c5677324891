package sipplane

import (
	"strings"

	"github.com/emiago/diago/media"
)

// codecsFor maps a trunk's codec names to diago codecs in preference order.
// OPUS is left out of a build without libopus (see opus_*.go).
func codecsFor(names []string) []media.Codec {
	var out []media.Codec
	for _, n := range names {
		switch strings.ToUpper(n) {
		case "PCMU":
			out = append(out, media.CodecAudioUlaw)
		case "PCMA":
			out = append(out, media.CodecAudioAlaw)
		case "OPUS":
			if opusBuilt {
				out = append(out, media.CodecAudioOpus)
			}
		}
	}
	return out
}

// sameCodec reports whether an offered codec is the local one, by name,
// clock rate and channels: diago compares payload types too, which breaks
// offers using other dynamic payload types (opus on 111, DTMF on 100).
func sameCodec(local, offered media.Codec) bool {
	if !strings.EqualFold(local.Name, offered.Name) || local.SampleRate != offered.SampleRate {
		return false
	}
	if local.Name == media.CodecAudioOpus.Name {
		return true // "opus/48000" and "opus/48000/2" are the same codec
	}
	return local.NumChannels == offered.NumChannels
}

// negotiate returns, for one call, the local codec list rewritten to the
// offer's payload types and names (so diago's exact matching succeeds),
// in local preference order, plus telephone-event when offered. The first
// element is the audio codec the call will use; ok is false when no audio
// codec is common.
func negotiate(prefs []media.Codec, offered []media.Codec) (codecs []media.Codec, ok bool) {
	for _, l := range prefs {
		for _, o := range offered {
			if sameCodec(l, o) {
				codecs = append(codecs, o)
				break
			}
		}
	}
	if len(codecs) == 0 {
		return nil, false
	}
	for _, o := range offered {
		if sameCodec(media.CodecTelephoneEvent8000, o) {
			codecs = append(codecs, o)
			break
		}
	}
	return codecs, true
}
