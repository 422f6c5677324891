package rpc

import (
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// Stream credit. By itself quic-go grants a new stream (a MAX_STREAMS
// frame) as each stream completes, which is when the client acknowledges
// the answer; that frame leaves in a packet of its own, and with the next
// answer it makes two packets the client must acknowledge at once. One
// request on a quiet connection so cost four packets where two carry it.
// The server instead keeps the credit of finished streams and hands it
// back in batches, oldest first: streams one batch old have long been
// acknowledged, so a whole batch is granted in one frame.
const (
	creditBatchDiv = 8                     // a batch is the stream limit / 8
	creditMinBatch = 4                     // below that, credit returns at once
	creditTick     = 10 * time.Millisecond // credit held a tick returns
)

// creditBatch is how many finished streams' credit goes back at once for a
// stream limit of max, or 0 when credit goes back stream by stream.
func creditBatch(max int64) int {
	b := int(max / creditBatchDiv)
	if b < creditMinBatch {
		return 0
	}
	return b
}

// creditReserve is how many streams a connection may open beyond max, so
// that credit held back never lowers the limit a client sees below max.
func creditReserve(max int64) int64 { return 2 * int64(creditBatch(max)) }

// credits holds the credit of one connection's finished streams. It never
// holds more than two batches; what it held at the last tick goes back at
// the next, so a connection that falls quiet gets all its credit back
// within two ticks.
type credits struct {
	batch int
	mu    sync.Mutex
	held  []*quic.Stream
	aged  int // held[:aged] were held at the last tick
	tick  *time.Timer
	done  bool
}

func newCredits(max int64) *credits {
	c := &credits{batch: creditBatch(max)}
	c.tick = time.AfterFunc(creditTick, c.onTick)
	c.tick.Stop()
	return c
}

// finished takes the credit of a stream that has been served.
func (c *credits) finished(str *quic.Stream) {
	if c.batch == 0 {
		str.ReleaseStreamCredit()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	if len(c.held) == 0 {
		c.tick.Reset(creditTick)
	}
	c.held = append(c.held, str)
	if len(c.held) >= 2*c.batch {
		c.release(c.batch)
	}
}

// release grants the credit of the n oldest streams held. c.mu is held.
func (c *credits) release(n int) {
	for _, str := range c.held[:n] {
		str.ReleaseStreamCredit()
	}
	old := len(c.held)
	c.held = c.held[:copy(c.held, c.held[n:])]
	clear(c.held[len(c.held):old]) // drop the references past the end
	c.aged = max(0, c.aged-n)
}

// onTick gives back what was held at the last tick. A tick that fires
// as the connection goes finds nothing to give back.
func (c *credits) onTick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.release(c.aged)
	c.aged = len(c.held)
	if c.aged > 0 {
		c.tick.Reset(creditTick)
	}
}

// stop ends the ticks when the connection is gone.
func (c *credits) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	c.tick.Stop()
	c.held = nil
}
