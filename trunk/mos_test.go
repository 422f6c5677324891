package trunk

import (
	"math"
	"testing"
	"time"
)

const ms = time.Millisecond

func TestMOS(t *testing.T) {
	// Expected values worked out from the formula in MOS's doc comment.
	tests := []struct {
		name        string
		rtt, jitter time.Duration
		loss        float64
		want        float64
	}{
		// latency 10 → R = 93.2 − 0.25 = 92.95;
		// MOS = 1 + 3.25325 + 7e-6 × 92.95 × 32.95 × 7.05 = 4.404394
		{"perfect network", 0, 0, 0, 4.404394},
		// latency 40 + 10 + 10 = 60 → R = 93.2 − 1.5 − 2.5×2 = 86.7;
		// MOS = 1 + 3.0345 + 7e-6 × 86.7 × 26.7 × 13.3 = 4.250016
		{"typical", 40 * ms, 5 * ms, 2, 4.250016},
		// latency 159 → R = 93.2 − 3.975 = 89.225 → 4.319553
		{"just under 160 ms", 149 * ms, 0, 0, 4.319553},
		// latency 160 → R = 93.2 − 40/10 = 89.2 → 4.318911
		{"160 ms", 150 * ms, 0, 0, 4.318911},
		// latency 230 → R = 93.2 − 110/10 = 82.2 → 4.104375
		{"long latency", 200 * ms, 10 * ms, 0, 4.104375},
		// latency 250 → R = 93.2 − 13 − 2.5×4 = 70.2 → 3.606366
		{"long latency and loss", 200 * ms, 20 * ms, 4, 3.606366},
		// R = 92.95 − 2.5×17.18 = 50 → 1 + 1.75 − 0.175 = 2.575
		{"R = 50", 0, 0, 17.18, 2.575},
		// R = 92.95 − 100 < 0 → clamped to 0 → MOS 1
		{"heavy loss", 0, 0, 40, 1},
		{"total loss", 0, 0, 100, 1},
		{"loss over 100%", 0, 0, 250, 1},
		// latency 1010 → R = 93.2 − 89 = 4.2 → MOS 0.99… → clamped to 1
		{"one second", time.Second, 0, 0, 1},
		{"negative inputs count as 0", -time.Second, -time.Second, -5, 4.404394},
		{"NaN loss counts as 0", 0, 0, math.NaN(), 4.404394},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MOS(tt.rtt, tt.jitter, tt.loss)
			if math.Abs(got-tt.want) > 1e-4 {
				t.Errorf("MOS(%v, %v, %v) = %.6f; want %.6f", tt.rtt, tt.jitter, tt.loss, got, tt.want)
			}
		})
	}
}

func TestMOSReferencePoints(t *testing.T) {
	tests := []struct{ r, want, tol float64 }{
		{93.2, 4.41, 0.005}, // 4.409286
		{50, 2.58, 0.006},   // 2.575
		{100, 4.5, 1e-9},
		{0, 1, 1e-9},
		{3, 1, 1e-9}, // the cubic dips under 1 near R = 3: clamped
	}
	for _, tt := range tests {
		if got := mosOf(tt.r); math.Abs(got-tt.want) > tt.tol {
			t.Errorf("mosOf(%v) = %.6f; want %v ± %v", tt.r, got, tt.want, tt.tol)
		}
	}
}

func TestMOSMonotonic(t *testing.T) {
	for rtt := time.Duration(0); rtt <= 600*ms; rtt += 25 * ms {
		for jitter := time.Duration(0); jitter <= 200*ms; jitter += 10 * ms {
			for loss := 0.0; loss <= 50; loss += 0.5 {
				m := MOS(rtt, jitter, loss)
				if m < 1 || m > 4.5 {
					t.Fatalf("MOS(%v, %v, %v) = %v; want within [1, 4.5]", rtt, jitter, loss, m)
				}
				if more := MOS(rtt, jitter, loss+0.5); more > m {
					t.Fatalf("MOS(%v, %v, %v) = %v > MOS at %v%% loss = %v", rtt, jitter, loss+0.5, more, loss, m)
				}
				if more := MOS(rtt, jitter+10*ms, loss); more > m {
					t.Fatalf("MOS(%v, %v, %v) = %v > MOS at %v jitter = %v", rtt, jitter+10*ms, loss, more, jitter, m)
				}
				if more := MOS(rtt+25*ms, jitter, loss); more > m {
					t.Fatalf("MOS(%v, %v, %v) = %v > MOS at %v RTT = %v", rtt+25*ms, jitter, loss, more, rtt, m)
				}
			}
		}
	}
}
