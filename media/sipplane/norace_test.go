//go:build !race

package sipplane

const raceEnabled = false
