// Package audio fetches prompts by URL, decodes WAV and converts it to the
// PCM layout a call's codec needs: diago plays only a 16-bit WAV whose rate
// and channel count match the codec exactly (8 kHz mono for G.711, 48 kHz
// stereo for Opus).
package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Format is a PCM layout.
type Format struct{ Rate, Channels int }

const (
	formatPCM        = 1
	formatExtensible = 0xFFFE
)

// Decode parses a RIFF/WAVE file of 16-bit PCM, mono or stereo, any rate
// from 8 to 96 kHz, and returns its interleaved samples. Unknown chunks are
// skipped; a data size of 0 or 0xFFFFFFFF (streamed files) or one past the
// end takes the rest of the file, whole frames only.
func Decode(b []byte) ([]int16, Format, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, Format{}, errors.New("audio: not a RIFF/WAVE file")
	}
	var f Format
	haveFmt := false
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int64(binary.LittleEndian.Uint32(b[p+4:p+8]))
		body := b[p+8:]
		switch id {
		case "fmt ":
			if size > int64(len(body)) {
				return nil, Format{}, errors.New("audio: truncated fmt chunk")
			}
			var err error
			if f, err = parseFmt(body[:size]); err != nil {
				return nil, Format{}, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, Format{}, errors.New("audio: data chunk before fmt chunk")
			}
			if size == 0 || size == 0xFFFFFFFF || size > int64(len(body)) {
				size = int64(len(body))
			}
			return samples(body[:size], f.Channels), f, nil
		}
		p += 8 + int(min(size+size&1, int64(len(b))))
	}
	if !haveFmt {
		return nil, Format{}, errors.New("audio: no fmt chunk")
	}
	return nil, Format{}, errors.New("audio: no data chunk")
}

func parseFmt(c []byte) (Format, error) {
	if len(c) < 16 {
		return Format{}, errors.New("audio: fmt chunk too short")
	}
	tag := binary.LittleEndian.Uint16(c[0:2])
	ch := int(binary.LittleEndian.Uint16(c[2:4]))
	rate := int(binary.LittleEndian.Uint32(c[4:8]))
	bits := binary.LittleEndian.Uint16(c[14:16])
	if tag == formatExtensible {
		if len(c) < 26 {
			return Format{}, errors.New("audio: extensible fmt chunk too short")
		}
		tag = binary.LittleEndian.Uint16(c[24:26]) // sub-format GUID's first two bytes
	}
	switch {
	case tag != formatPCM:
		return Format{}, fmt.Errorf("audio: WAV format %#x is not PCM (want 16-bit PCM)", tag)
	case bits != 16:
		return Format{}, fmt.Errorf("audio: %d-bit WAV; want 16-bit PCM", bits)
	case ch != 1 && ch != 2:
		return Format{}, fmt.Errorf("audio: %d channels; want mono or stereo", ch)
	case rate < 8000 || rate > 96000:
		return Format{}, fmt.Errorf("audio: sample rate %d outside 8000-96000", rate)
	}
	return Format{Rate: rate, Channels: ch}, nil
}

func samples(data []byte, channels int) []int16 {
	frame := 2 * channels
	n := len(data) / frame * channels
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
	}
	return s
}

// Encode writes samples as a canonical 16-bit PCM WAV file.
func Encode(s []int16, f Format) []byte {
	b := make([]byte, 44, 44+2*len(s))
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*len(s)))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], formatPCM)
	binary.LittleEndian.PutUint16(b[22:], uint16(f.Channels))
	binary.LittleEndian.PutUint32(b[24:], uint32(f.Rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(f.Rate*f.Channels*2))
	binary.LittleEndian.PutUint16(b[32:], uint16(f.Channels*2))
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*len(s)))
	for _, v := range s {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}

// Convert changes the channel count (stereo to mono by averaging, mono to
// stereo by copying) and resamples with linear interpolation, low-pass
// filtered by averaging when downsampling so that content above the new
// Nyquist frequency does not fold back.
func Convert(s []int16, from, to Format) []int16 {
	mono := toMono(s, from.Channels)
	if from.Rate != to.Rate {
		mono = resample(mono, from.Rate, to.Rate)
	}
	if to.Channels == 2 {
		st := make([]int16, 2*len(mono))
		for i, v := range mono {
			st[2*i], st[2*i+1] = v, v
		}
		return st
	}
	return mono
}

func toMono(s []int16, channels int) []int16 {
	if channels == 1 {
		return s
	}
	m := make([]int16, len(s)/2)
	for i := range m {
		m[i] = int16((int32(s[2*i]) + int32(s[2*i+1])) / 2)
	}
	return m
}

// resample converts mono samples between rates. Downsampling first runs a
// moving average over one output period, a simple low-pass filter.
func resample(s []int16, from, to int) []int16 {
	if len(s) == 0 {
		return nil
	}
	if to < from {
		s = boxFilter(s, (from+to-1)/to)
	}
	n := int(int64(len(s)) * int64(to) / int64(from))
	out := make([]int16, n)
	step := float64(from) / float64(to)
	for i := range out {
		pos := float64(i) * step
		j := int(pos)
		frac := pos - float64(j)
		a := float64(s[j])
		b := a
		if j+1 < len(s) {
			b = float64(s[j+1])
		}
		out[i] = int16(a + (b-a)*frac)
	}
	return out
}

func boxFilter(s []int16, width int) []int16 {
	if width <= 1 {
		return s
	}
	out := make([]int16, len(s))
	var sum int64
	for i, v := range s {
		sum += int64(v)
		if i >= width {
			sum -= int64(s[i-width])
		}
		out[i] = int16(sum / int64(min(i+1, width)))
	}
	return out
}
