package rtpstats_test

import (
	"fmt"
	"time"

	"github.com/trunkd/trunkd/media/rtpstats"
)

// A PCMU stream that loses one packet in ten, across the sequence wrap.
func ExampleReceiver() {
	r := rtpstats.NewReceiver(8000)
	start := time.Now()
	seq := uint16(65000)
	for i := range 1001 {
		if i%10 != 5 {
			r.Packet(seq, uint32(i*160), start.Add(time.Duration(i)*20*time.Millisecond))
		}
		seq++
	}
	s := r.Snapshot()
	fmt.Printf("expected %d, received %d, lost %d (%.1f%%), jitter %v\n",
		s.Expected, s.Received, s.Lost, s.LossPct, s.Jitter)
	// Output: expected 1000, received 900, lost 100 (10.0%), jitter 0s
}
