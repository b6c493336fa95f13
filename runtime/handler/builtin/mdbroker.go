package builtin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/spec"
)

// MDP 0.1 (RFC 7, the zguide's Majordomo).
const (
	mdpClient = "MDPC01"
	mdpWorker = "MDPW01"

	mdpReady      = 1
	mdpRequest    = 2
	mdpReply      = 3
	mdpHeartbeat  = 4
	mdpDisconnect = 5
)

// MaxQueued bounds the requests an mdbroker holds for one service while
// none of its workers is free; past it, a request is dropped (and logged
// once per service until the queue drains): a client speaking MDP retries.
const MaxQueued = 10000

// MDBroker is a Majordomo broker: MDPC01 clients and MDPW01 workers on one
// ROUTER `frontend`. Requests are queued per service and given to the
// service's workers in LRU order; idle workers get a HEARTBEAT every
// Heartbeat and are expired after Liveness of them without a word; a
// worker that breaks the protocol is sent DISCONNECT. `mmi.service`
// answers "200" when the service has workers, "404" when not; other
// `mmi.` services answer "501" (RFC 8).
type MDBroker struct {
	Heartbeat time.Duration
	Liveness  int
	Logger    hclog.Logger

	services map[string]*mdService
	workers  map[string]*mdWorkerState
	waiting  []*mdWorkerState // idle workers of every service, LRU first
}

type mdService struct {
	name     string
	requests [][][]byte // [client, "", body...], oldest first
	waiting  []*mdWorkerState
	workers  int
	dropping bool // a request was dropped: logged once
}

type mdWorkerState struct {
	id      []byte
	service *mdService
	expiry  time.Time
}

var (
	_ handler.Runner    = (*MDBroker)(nil)
	_ handler.Inheritor = (*MDBroker)(nil)
)

// Inherit takes over the services, their queued requests and the known
// workers of the broker it replaces in a handler swap: registered workers
// will not announce themselves again.
func (b *MDBroker) Inherit(prev any) {
	if p, ok := prev.(*MDBroker); ok && p.services != nil {
		b.services, b.workers, b.waiting = p.services, p.workers, p.waiting
	}
}

func (b *MDBroker) init() {
	if b.services == nil {
		b.services = map[string]*mdService{}
		b.workers = map[string]*mdWorkerState{}
	}
}

// Workers is the number of registered workers.
func (b *MDBroker) Workers() int { return len(b.workers) }

func (b *MDBroker) Run(ctx context.Context, s handler.Sockets) error {
	w, err := brokerWaiter(s, "mdbroker", "frontend")
	if err != nil {
		return err
	}
	b.init()
	front := []string{"frontend"}
	beat := newPulse(b.Heartbeat)
	for {
		ready, err := w.Wait(front, beat.wait())
		if err != nil {
			return err
		}
		// A batch at a time: a busy frontend still lets heartbeats out.
		for i := 0; len(ready) > 0 && i < 256; i++ {
			m, err := s.Recv("frontend")
			if err != nil {
				return err
			}
			if err := b.message(s, m); err != nil {
				return err
			}
			if ready, err = w.Wait(front, 0); err != nil {
				return err
			}
		}
		if now := time.Now(); beat.due(now) {
			b.purge(now)
			for _, wk := range b.waiting {
				if err := b.toWorker(s, wk.id, mdpHeartbeat); err != nil {
					return err
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// message handles one message from the frontend: [sender, "", header, ...].
func (b *MDBroker) message(s handler.Sockets, m [][]byte) error {
	if len(m) < 3 || len(m[1]) != 0 {
		b.Logger.Warn("malformed message, dropped", "frames", fmt.Sprintf("%q", m))
		return nil
	}
	switch string(m[2]) {
	case mdpClient:
		return b.client(s, m[0], m[3:])
	case mdpWorker:
		return b.worker(s, m[0], m[3:])
	}
	b.Logger.Warn("message neither MDPC01 nor MDPW01, dropped", "frames", fmt.Sprintf("%q", m))
	return nil
}

// client handles [service, body...] from a client.
func (b *MDBroker) client(s handler.Sockets, client []byte, m [][]byte) error {
	if len(m) < 1 {
		b.Logger.Warn("client request without a service, dropped", "client", fmt.Sprintf("%q", client))
		return nil
	}
	name := string(m[0])
	if strings.HasPrefix(name, "mmi.") {
		code := "501"
		if name == "mmi.service" {
			code = "404"
			if len(m) > 1 {
				if svc := b.services[string(m[len(m)-1])]; svc != nil && svc.workers > 0 {
					code = "200"
				}
			}
		}
		return s.Send("frontend", [][]byte{client, {}, []byte(mdpClient), m[0], []byte(code)})
	}
	svc := b.service(name)
	if len(svc.requests) >= MaxQueued {
		if !svc.dropping {
			svc.dropping = true
			b.Logger.Warn("service queue full, request dropped (logged once until it drains)", "service", name, "queued", len(svc.requests))
		}
		return nil
	}
	req := make([][]byte, 0, len(m)+1)
	req = append(req, client, nil)
	req = append(req, m[1:]...)
	svc.requests = append(svc.requests, req)
	return b.dispatch(s, svc)
}

func (b *MDBroker) service(name string) *mdService {
	svc := b.services[name]
	if svc == nil {
		svc = &mdService{name: name}
		b.services[name] = svc
	}
	return svc
}

// dispatch gives a service's queued requests to its idle workers.
func (b *MDBroker) dispatch(s handler.Sockets, svc *mdService) error {
	for len(svc.waiting) > 0 && len(svc.requests) > 0 {
		wk := svc.waiting[0]
		svc.waiting = svc.waiting[1:]
		b.unwait(wk)
		req := svc.requests[0]
		svc.requests[0] = nil
		svc.requests = svc.requests[1:]
		out := make([][]byte, 0, len(req)+4)
		out = append(out, wk.id, nil, []byte(mdpWorker), []byte{mdpRequest})
		out = append(out, req...)
		if err := s.Send("frontend", out); err != nil {
			return err
		}
	}
	if len(svc.requests) == 0 {
		svc.dropping = false
	}
	return nil
}

// worker handles [command, ...] from a worker.
func (b *MDBroker) worker(s handler.Sockets, id []byte, m [][]byte) error {
	if len(m) < 1 || len(m[0]) != 1 {
		b.Logger.Warn("malformed worker message", "worker", fmt.Sprintf("%q", id), "frames", fmt.Sprintf("%q", m))
		return b.disconnect(s, id)
	}
	wk, known := b.workers[string(id)]
	switch m[0][0] {
	case mdpReady:
		if known || len(m) < 2 || strings.HasPrefix(string(m[1]), "mmi.") {
			// Not the first command of a session, or a reserved service.
			return b.disconnect(s, id)
		}
		svc := b.service(string(m[1]))
		wk = &mdWorkerState{id: append([]byte(nil), id...), service: svc}
		b.workers[string(id)] = wk
		svc.workers++
		b.Logger.Debug("worker ready", "worker", fmt.Sprintf("%q", id), "service", svc.name)
		return b.ready(s, wk)
	case mdpReply:
		if !known {
			return b.disconnect(s, id)
		}
		// [client, "", body...]
		if len(m) < 3 || len(m[2]) != 0 {
			b.Logger.Warn("malformed reply", "worker", fmt.Sprintf("%q", id), "frames", fmt.Sprintf("%q", m))
			return b.ready(s, wk)
		}
		out := make([][]byte, 0, len(m)+2)
		out = append(out, m[1], nil, []byte(mdpClient), []byte(wk.service.name))
		out = append(out, m[3:]...)
		if err := s.Send("frontend", out); err != nil {
			return err
		}
		return b.ready(s, wk)
	case mdpHeartbeat:
		if !known {
			return b.disconnect(s, id)
		}
		wk.expiry = time.Now().Add(b.expiry())
		return nil
	case mdpDisconnect:
		if known {
			b.remove(wk)
		}
		return nil
	}
	b.Logger.Warn("unknown worker command", "worker", fmt.Sprintf("%q", id), "command", m[0][0])
	return b.disconnect(s, id)
}

func (b *MDBroker) expiry() time.Duration { return silentFor(b.Heartbeat, b.Liveness) }

// ready makes a worker wait for its service's next request.
func (b *MDBroker) ready(s handler.Sockets, wk *mdWorkerState) error {
	b.unwait(wk)
	wk.expiry = time.Now().Add(b.expiry())
	b.waiting = append(b.waiting, wk)
	wk.service.waiting = append(wk.service.waiting, wk)
	return b.dispatch(s, wk.service)
}

// unwait takes a worker off the broker's waiting list (not its service's).
func (b *MDBroker) unwait(wk *mdWorkerState) {
	for i, w := range b.waiting {
		if w == wk {
			b.waiting = append(b.waiting[:i], b.waiting[i+1:]...)
			return
		}
	}
}

// remove forgets a worker.
func (b *MDBroker) remove(wk *mdWorkerState) {
	b.unwait(wk)
	svc := wk.service
	for i, w := range svc.waiting {
		if w == wk {
			svc.waiting = append(svc.waiting[:i], svc.waiting[i+1:]...)
			break
		}
	}
	svc.workers--
	delete(b.workers, string(wk.id))
}

// disconnect tells a worker to go (and forgets it).
func (b *MDBroker) disconnect(s handler.Sockets, id []byte) error {
	if wk, ok := b.workers[string(id)]; ok {
		b.remove(wk)
	}
	return b.toWorker(s, id, mdpDisconnect)
}

func (b *MDBroker) toWorker(s handler.Sockets, id []byte, cmd byte) error {
	return s.Send("frontend", [][]byte{id, {}, []byte(mdpWorker), {cmd}})
}

// purge expires idle workers that fell silent.
func (b *MDBroker) purge(now time.Time) {
	// A heartbeat refreshes a worker without moving it: look at them all.
	var expired []*mdWorkerState
	for _, wk := range b.waiting {
		if now.After(wk.expiry) {
			expired = append(expired, wk)
		}
	}
	for _, wk := range expired {
		b.Logger.Warn("worker expired: heartbeats missed", "worker", fmt.Sprintf("%q", wk.id), "service", wk.service.name)
		b.remove(wk)
	}
}

func init() {
	registerHeartbeating(spec.HandlerSchema{
		Name:   "mdbroker",
		Broker: true,
		// MDP workers and clients share the frontend.
		WorkerProtocol: map[string]spec.WorkerProtocol{"frontend": spec.ProtoMDP},
		Doc:            "a Majordomo (MDP 0.1) broker: MDPC01 clients and MDPW01 workers on one ROUTER frontend, service routing, heartbeats, mmi.service",
		NeedSockets:    []string{"frontend"},
		SocketTypes:    map[string]spec.SocketType{"frontend": spec.ROUTER},
	}, spec.DefaultMDPHeartbeat, "expired", newMDBroker)
}

func newMDBroker(hb time.Duration, liveness int, lg hclog.Logger) any {
	return &MDBroker{Heartbeat: hb, Liveness: liveness, Logger: lg}
}
