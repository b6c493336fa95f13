package handler

import (
	"sync"
	"sync/atomic"
)

// ResultQueue is the Results side of an Async handler (the plugin host and
// the exec host share it). Put never blocks the handler's goroutines:
// Results that find the channel full wait in an overflow list that a pump
// goroutine moves over as the node reads. It counts the Results not yet
// receivable, for Pending, and calls the node's OnResult hook.
type ResultQueue struct {
	ch chan Result

	mu   sync.Mutex
	over []Result // Results that found ch full, oldest first
	sig  chan struct{}

	quit     chan struct{}
	done     chan struct{}
	quitOnce sync.Once

	// queued counts messages handed over whose Result is not in ch yet.
	queued atomic.Int64
	notify atomic.Pointer[func()]
}

// NewResultQueue returns a queue whose channel holds capacity Results and
// starts its pump; Close ends it.
func NewResultQueue(capacity int) *ResultQueue {
	q := &ResultQueue{
		ch:   make(chan Result, capacity),
		sig:  make(chan struct{}, 1),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go q.pump()
	return q
}

// Add counts n messages handed over (or, negative, hand-overs that failed):
// each counted message gets exactly one Put.
func (q *ResultQueue) Add(n int) { q.queued.Add(int64(n)) }

// C is the handler's Results channel. It is never closed.
func (q *ResultQueue) C() <-chan Result { return q.ch }

// Pending is how many counted messages have not been read from C; it may
// count one for a moment after it was read, never less, so "Pending() == 0
// after draining C" means every Result is in.
func (q *ResultQueue) Pending() int { return int(q.queued.Load()) + len(q.ch) }

// OnResult implements Notifier.
func (q *ResultQueue) OnResult(f func()) { q.notify.Store(&f) }

// Put makes r receivable on C, at once when there is room and nothing is
// waiting before it, else through the pump. It never blocks.
func (q *ResultQueue) Put(r Result) {
	q.mu.Lock()
	if len(q.over) == 0 {
		select {
		case q.ch <- r:
			q.mu.Unlock()
			q.received()
			return
		default:
		}
	}
	q.over = append(q.over, r)
	q.mu.Unlock()
	select {
	case q.sig <- struct{}{}:
	default:
	}
}

// received settles the books for a Result just put on ch.
func (q *ResultQueue) received() {
	// Only now: a Result must always be counted somewhere, or a drain
	// could stop early.
	q.queued.Add(-1)
	if f := q.notify.Load(); f != nil {
		(*f)()
	}
}

func (q *ResultQueue) pump() {
	defer close(q.done)
	var batch []Result
	for {
		select {
		case <-q.sig:
		case <-q.quit:
			return
		}
		q.mu.Lock()
		batch, q.over = q.over, batch[:0]
		q.mu.Unlock()
		for i := range batch {
			select {
			case q.ch <- batch[i]:
				q.received()
			case <-q.quit:
				return
			}
			batch[i] = Result{}
		}
	}
}

// Close ends the pump and waits for it; Results still in the overflow
// list are not delivered any more. It may be called more than once.
func (q *ResultQueue) Close() {
	q.quitOnce.Do(func() { close(q.quit) })
	<-q.done
}

// FirstErr keeps the first error set on it: a host's Err, why it no longer
// takes messages, which a later failure (a child that exits while the host
// closes) must not replace. The zero value is ready; safe from any
// goroutine.
type FirstErr struct {
	mu  sync.Mutex
	err error
}

// Set records err unless an error was recorded before.
func (f *FirstErr) Set(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

// Err is the first error set, nil before any.
func (f *FirstErr) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
