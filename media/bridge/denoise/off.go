//go:build !with_speexdsp

package denoise

import "errors"

// Built says whether this binary can denoise.
const Built = false

// Denoiser is absent from this build.
type Denoiser struct{}

// New fails: this binary was built without libspeexdsp.
func New(frame, rate, suppressDB int) (*Denoiser, error) {
	return nil, errors.New("noise cancellation needs a trunkd built with libspeexdsp (build tag with_speexdsp; make build sets it)")
}

// Process does nothing.
func (d *Denoiser) Process([]int16) {}

// Close does nothing.
func (d *Denoiser) Close() {}
