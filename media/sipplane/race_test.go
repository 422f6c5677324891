//go:build race

package sipplane

// raceEnabled: the race detector makes sync.Pool drop what it is given
// at random, so allocation counts are not checked under it.
const raceEnabled = true
