package builtin

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/spec"
)

// PPQueue is the zguide's Paranoid Pirate queue: a load-balancing broker
// between ROUTER `frontend` (clients) and ROUTER `backend` (workers) whose
// workers announce themselves with "\x01", heartbeat with "\x02" and are
// evicted after Liveness heartbeats without a word. Workers wait in LRU
// order; any message from a worker (ready, heartbeat or reply) puts it at
// the back of the queue, as in the zguide's ppqueue, so a worker that
// heartbeats while busy may be given a second request (its DEALER takes
// it). Idle workers get a heartbeat every Heartbeat.
type PPQueue struct {
	Heartbeat time.Duration
	Liveness  int
	Logger    hclog.Logger

	workers []ppWorker // idle, least recently used first
}

type ppWorker struct {
	id     []byte
	expiry time.Time
}

var (
	_ handler.Runner    = (*PPQueue)(nil)
	_ handler.Inheritor = (*PPQueue)(nil)
)

var (
	ppReady     = []byte{1}
	ppHeartbeat = []byte{2}
)

// ready puts worker id at the back of the queue with a fresh expiry.
func (q *PPQueue) ready(id []byte, now time.Time) {
	for i, w := range q.workers {
		if bytes.Equal(w.id, id) {
			q.workers = append(q.workers[:i], q.workers[i+1:]...)
			break
		}
	}
	q.workers = append(q.workers, ppWorker{id: id, expiry: now.Add(silentFor(q.Heartbeat, q.Liveness))})
}

// purge evicts the workers whose expiry passed.
func (q *PPQueue) purge(now time.Time) {
	keep := q.workers[:0]
	for _, w := range q.workers {
		if now.After(w.expiry) {
			q.Logger.Warn("worker evicted: heartbeats missed", "worker", fmt.Sprintf("%q", w.id))
			continue
		}
		keep = append(keep, w)
	}
	for i := len(keep); i < len(q.workers); i++ {
		q.workers[i] = ppWorker{}
	}
	q.workers = keep
}

// Idle is the number of workers waiting for a request.
func (q *PPQueue) Idle() int { return len(q.workers) }

// Inherit takes over the idle workers of the queue it replaces (a handler
// swap): they announced themselves once and will not again.
func (q *PPQueue) Inherit(prev any) {
	if p, ok := prev.(*PPQueue); ok {
		q.workers = append(q.workers[:0], p.workers...)
	}
}

func (q *PPQueue) Run(ctx context.Context, s handler.Sockets) error {
	beat := newPulse(q.Heartbeat)
	return runLB(ctx, s, "ppqueue", q, beat.wait, func(w handler.Waiter) error {
		now := time.Now()
		if beat.due(now) {
			for _, wk := range q.workers {
				if err := s.Send("backend", [][]byte{wk.id, ppHeartbeat}); err != nil {
					return err
				}
			}
		}
		// Evict only with the backend read to the end: a queue that was
		// itself held up (a loaded machine) finds the heartbeats of live
		// workers waiting there, and the loop reads one message a turn.
		pending, err := w.Wait(backendOnly, 0)
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			q.purge(now)
		}
		return nil
	})
}

// fromWorker: [worker, "\x01" | "\x02"] or [worker, client, "", reply...].
func (q *PPQueue) fromWorker(s handler.Sockets, m [][]byte) error {
	if len(m) < 2 {
		q.Logger.Warn("malformed message from a worker", "frames", fmt.Sprintf("%q", m))
		return nil
	}
	q.ready(m[0], time.Now())
	if len(m) == 2 {
		if !bytes.Equal(m[1], ppReady) && !bytes.Equal(m[1], ppHeartbeat) {
			q.Logger.Warn("unknown command from a worker", "worker", fmt.Sprintf("%q", m[0]), "frames", fmt.Sprintf("%q", m[1:]))
		}
		return nil
	}
	return s.Send("frontend", m[1:])
}

// takeWorker: the least recently used worker takes a request as [worker,
// client, "", request...].
func (q *PPQueue) takeWorker(addr [][]byte) [][]byte {
	return append(addr, takeOldest(&q.workers).id)
}

func init() {
	registerHeartbeating(spec.HandlerSchema{
		Name:   "ppqueue",
		Broker: true,
		// PPP workers connect to the backend.
		WorkerProtocol: map[string]spec.WorkerProtocol{"backend": spec.ProtoPPP},
		Doc:            "the Paranoid Pirate queue: ROUTER frontend for clients, ROUTER backend for workers that send \\x01 when ready and heartbeat with \\x02",
		NeedSockets:    []string{"backend", "frontend"},
		SocketTypes:    map[string]spec.SocketType{"backend": spec.ROUTER, "frontend": spec.ROUTER},
	}, spec.DefaultPPPHeartbeat, "evicted", newPPQueue)
}

func newPPQueue(hb time.Duration, liveness int, lg hclog.Logger) any {
	return &PPQueue{Heartbeat: hb, Liveness: liveness, Logger: lg}
}
