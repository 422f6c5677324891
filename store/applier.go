package store

import (
	"encoding/binary"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// keyApplied in the meta bucket holds the sequence of the last log frame
// committed to bbolt.
var keyApplied = []byte("wal_applied")

// applier commits log frames to bbolt in the background: it lets frames
// gather for applyInterval (unless someone waits for bbolt), then commits
// all of them in one transaction, so that bbolt's two fsyncs per commit
// are shared by every write of the interval and seldom compete with the
// log's. A commit that fails (disk full) is retried; the frames stay in
// the log and reads keep seeing them meanwhile.
type applier struct {
	db       *DB
	mu       sync.Mutex
	cond     *sync.Cond
	queue    []walFrame
	applied  uint64
	err      error // the last commit's failure; nil after a success
	interval time.Duration
	wake     chan struct{} // a frame was queued
	urgent   chan struct{} // someone waits for bbolt
	caughtUp chan struct{} // tells the writer bbolt moved on
	stop     chan struct{}
	done     chan struct{}
	commits  int
}

const (
	retryFirst = 50 * time.Millisecond
	retryMax   = 2 * time.Second
)

// applyInterval is how long frames gather before bbolt commits them.
const applyInterval = 20 * time.Millisecond

func newApplier(db *DB, applied uint64, interval time.Duration) *applier {
	a := &applier{db: db, applied: applied, interval: interval, wake: make(chan struct{}, 1), urgent: make(chan struct{}, 1),
		caughtUp: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	a.cond = sync.NewCond(&a.mu)
	return a
}

// push queues a frame the log holds.
func (a *applier) push(fr walFrame) {
	a.mu.Lock()
	a.queue = append(a.queue, fr)
	a.mu.Unlock()
	signal(a.wake)
}

// signal sets a one-slot flag without waiting.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (a *applier) appliedSeq() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied
}

// wait returns once bbolt holds frame seq, or the error of the commit
// that failed meanwhile.
func (a *applier) wait(seq uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.applied < seq {
		signal(a.urgent)
	}
	for a.applied < seq {
		if a.err != nil {
			return a.err
		}
		a.cond.Wait()
	}
	return nil
}

// run commits what is queued until stopped, then commits what is left.
func (a *applier) run() {
	defer close(a.done)
	delay := retryFirst
	for {
		select {
		case <-a.wake:
		case <-a.urgent:
		case <-a.stop:
			a.commit()
			return
		}
		if !a.gather() {
			a.commit()
			return
		}
		for a.commit() != nil {
			select {
			case <-time.After(delay):
				delay = min(delay*2, retryMax)
			case <-a.stop:
				a.commit()
				return
			}
		}
		delay = retryFirst
	}
}

// gather lets frames queue for the interval, or until someone waits; false
// when stopped meanwhile.
func (a *applier) gather() bool {
	t := time.NewTimer(a.interval)
	defer t.Stop()
	select {
	case <-t.C:
	case <-a.urgent:
	case <-a.stop:
		return false
	}
	return true
}

// commit writes every queued frame to bbolt in one transaction.
func (a *applier) commit() error {
	a.mu.Lock()
	frames := a.queue
	a.mu.Unlock()
	if len(frames) == 0 {
		return nil
	}
	err := a.db.bolt.Update(func(tx *bolt.Tx) error { return applyFrames(tx, frames) })
	a.mu.Lock()
	if err == nil {
		a.applied = frames[len(frames)-1].seq
		clear(a.queue[:len(frames)]) // the records, for the collector
		a.queue = a.queue[len(frames):]
		a.commits++
	}
	a.err = err
	a.cond.Broadcast()
	a.mu.Unlock()
	if err == nil {
		signal(a.caughtUp)
	}
	return err
}

// applyFrames writes frames, in order, into a write transaction, with the
// revision counter and the sequence of the last.
func applyFrames(tx *bolt.Tx, frames []walFrame) error {
	b := tx.Bucket(bucketTrunks)
	var rev uint64
	for _, fr := range frames {
		for _, e := range fr.entries {
			var err error
			if e.value == nil {
				err = b.Delete([]byte(e.id))
			} else {
				err = b.Put([]byte(e.id), e.value)
			}
			if err != nil {
				return err
			}
		}
		rev = max(rev, fr.rev)
	}
	if rev > b.Sequence() {
		if err := b.SetSequence(rev); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(keyApplied, binary.BigEndian.AppendUint64(nil, frames[len(frames)-1].seq))
}

// close stops the applier after one last commit of what is queued, and
// returns that commit's failure, if any.
func (a *applier) close() error {
	close(a.stop)
	<-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}
