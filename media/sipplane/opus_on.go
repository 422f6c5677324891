//go:build with_opus_c

package sipplane

// opusBuilt says whether this binary can encode and decode Opus
// (build tag with_opus_c, libopus-dev; the Makefile sets it).
const opusBuilt = true
