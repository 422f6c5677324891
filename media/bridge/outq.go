package bridge

import (
	"context"
	"sync"
)

// MaxControl bounds the control lane (marks, DTMF, events) to one agent.
const MaxControl = 1024

// outq is what waits for the agent: a control lane never dropped below
// MaxControl, and an audio lane that drops its oldest frame when full.
type outq struct {
	mu    sync.Mutex
	c     []Out
	a     []Out
	limit int
	sig   chan struct{}
}

func (q *outq) init(limit int) {
	q.limit = limit
	q.sig = make(chan struct{}, 1)
}

func (q *outq) wake() {
	select {
	case q.sig <- struct{}{}:
	default:
	}
}

// ctrl queues a control message.
func (q *outq) ctrl(m Out) {
	q.mu.Lock()
	if len(q.c) < MaxControl {
		q.c = append(q.c, m)
	}
	q.mu.Unlock()
	q.wake()
}

// audio queues a caller frame and reports whether an old one was dropped.
func (q *outq) audio(m Out) bool {
	q.mu.Lock()
	dropped := len(q.a) >= q.limit
	if dropped {
		q.a = q.a[1:]
	}
	q.a = append(q.a, m)
	q.mu.Unlock()
	q.wake()
	return dropped
}

// pop waits for the next message, control first.
func (q *outq) pop(ctx context.Context) (Out, bool) {
	for {
		q.mu.Lock()
		switch {
		case len(q.c) > 0:
			m := q.c[0]
			q.c = q.c[1:]
			q.mu.Unlock()
			return m, true
		case len(q.a) > 0:
			m := q.a[0]
			q.a = q.a[1:]
			q.mu.Unlock()
			return m, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return Out{}, false
		case <-q.sig:
		}
	}
}
