// Package denoise removes stationary noise from the caller's audio before
// it reaches an AI agent (enable_noise_cancellation), with the speexdsp
// preprocessor (Debian libspeexdsp-dev, through cgo). It is built with
// the with_speexdsp tag, which the Makefile sets; without it, New says so
// and a trunk asking for noise cancellation is refused.
//
// One Denoiser per call: it keeps the noise estimate of that caller.
// It is not safe for concurrent use.
package denoise
