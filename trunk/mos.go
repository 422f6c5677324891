package trunk

import "time"

// MOS estimates a call's mean opinion score, from 1 (bad) to 4.5 (best),
// by a simplified ITU-T G.107 E-model:
//
//	effective latency (ms) = RTT + 2×jitter + 10
//	R = 93.2 − latency/40          when latency < 160
//	R = 93.2 − (latency − 120)/10  otherwise
//	R = R − 2.5 × loss%,           then clamped to [0, 100]
//	MOS = 1 + 0.035·R + 7·10⁻⁶·R·(R − 60)·(100 − R), clamped to [1, 4.5]
//
// Negative durations and losses count as 0, losses over 100% as 100%.
func MOS(rtt, jitter time.Duration, lossPct float64) float64 {
	return mosOf(rFactor(latencyMs(rtt, jitter), lossPct))
}

// mosOf maps an R factor in [0, 100] to a MOS in [1, 4.5].
func mosOf(r float64) float64 {
	mos := 1 + 0.035*r + 7e-6*r*(r-60)*(100-r)
	return min(max(mos, 1), 4.5)
}

// latencyMs is the effective latency of the E-model, in milliseconds.
func latencyMs(rtt, jitter time.Duration) float64 {
	ms := func(d time.Duration) float64 { return float64(max(d, 0)) / float64(time.Millisecond) }
	return ms(rtt) + 2*ms(jitter) + 10
}

// rFactor is the E-model's transmission rating, clamped to [0, 100].
func rFactor(latency, lossPct float64) float64 {
	if !(lossPct > 0) { // also NaN
		lossPct = 0
	}
	lossPct = min(lossPct, 100)
	r := 93.2 - latency/40
	if latency >= 160 {
		r = 93.2 - (latency-120)/10
	}
	r -= 2.5 * lossPct
	return min(max(r, 0), 100)
}
