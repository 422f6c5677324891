package bridge

import "github.com/zaf/g711"

// Decode appends the PCM of a G.711 payload to dst.
func Decode(law Law, dst []int16, payload []byte) []int16 {
	for _, b := range payload {
		if law == PCMA {
			dst = append(dst, g711.DecodeAlawFrame(b))
		} else {
			dst = append(dst, g711.DecodeUlawFrame(b))
		}
	}
	return dst
}

// Encode appends the G.711 encoding of pcm to dst.
func Encode(law Law, dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		if law == PCMA {
			dst = append(dst, g711.EncodeAlawFrame(s))
		} else {
			dst = append(dst, g711.EncodeUlawFrame(s))
		}
	}
	return dst
}
