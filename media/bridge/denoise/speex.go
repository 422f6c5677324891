//go:build with_speexdsp

package denoise

/*
#cgo pkg-config: speexdsp
#include <speex/speex_preprocess.h>
#include <stdlib.h>

static int setInt(SpeexPreprocessState *st, int req, int v) { return speex_preprocess_ctl(st, req, &v); }
*/
import "C"

import (
	"errors"
	"unsafe"
)

// Built says whether this binary can denoise.
const Built = true

// Denoiser is one call's speexdsp preprocessor.
type Denoiser struct {
	st    *C.SpeexPreprocessState
	frame int
	buf   *C.spx_int16_t
}

// New returns a Denoiser for frames of frame samples at rate Hz, with
// noise suppressed by up to suppressDB (e.g. 25; speexdsp's default is
// 15).
func New(frame, rate, suppressDB int) (*Denoiser, error) {
	st := C.speex_preprocess_state_init(C.int(frame), C.int(rate))
	if st == nil {
		return nil, errors.New("denoise: speex_preprocess_state_init failed")
	}
	C.setInt(st, C.SPEEX_PREPROCESS_SET_DENOISE, 1)
	C.setInt(st, C.SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, C.int(-suppressDB))
	C.setInt(st, C.SPEEX_PREPROCESS_SET_AGC, 0)
	C.setInt(st, C.SPEEX_PREPROCESS_SET_DEREVERB, 0)
	buf := (*C.spx_int16_t)(C.malloc(C.size_t(frame * 2)))
	return &Denoiser{st: st, frame: frame, buf: buf}, nil
}

// Process denoises one frame in place; a frame of another length is left
// as it is.
func (d *Denoiser) Process(pcm []int16) {
	if d.st == nil || len(pcm) != d.frame {
		return
	}
	c := unsafe.Slice((*int16)(unsafe.Pointer(d.buf)), d.frame)
	copy(c, pcm)
	C.speex_preprocess_run(d.st, d.buf)
	copy(pcm, c)
}

// Close frees the preprocessor.
func (d *Denoiser) Close() {
	if d.st != nil {
		C.speex_preprocess_state_destroy(d.st)
		C.free(unsafe.Pointer(d.buf))
		d.st, d.buf = nil, nil
	}
}
