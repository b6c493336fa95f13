package service

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/runtime/tap"
)

// tapLease: a tap nobody read for this long is detached (its client died
// or hangs); the client reads every 50 ms.
const tapLease = 10 * time.Second

// tapResync: how often a read also attaches the tap to instances made
// since (a reload, a restart): a node's replicas come and go.
const tapResync = time.Second

// taps are the taps attached through the control socket.
type taps struct {
	mu sync.Mutex
	m  map[string]*tapEntry
}

type tapEntry struct {
	t            *tap.Tap
	node, socket string
	lease        *time.Timer
	synced       time.Time
}

// Tap is the control socket's tap: attach a tap to a socket.
func (s *Service) Tap(req control.TapRequest) (control.TapReply, error) {
	eng, err := s.engine()
	if err != nil {
		return control.TapReply{}, err
	}
	t := tap.New(req.Buffer)
	names, err := eng.Tap(t, req.Node, req.Socket)
	if err != nil {
		t.Close()
		return control.TapReply{}, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	e := &tapEntry{t: t, node: req.Node, socket: req.Socket, synced: time.Now()}
	s.taps.mu.Lock()
	if s.taps.m == nil {
		s.taps.m = map[string]*tapEntry{}
	}
	s.taps.m[id] = e
	e.lease = time.AfterFunc(tapLease, func() {
		if s.dropTap(id) != nil {
			s.log.Warn("tap detached: its client stopped reading", "socket", req.Node+"."+req.Socket)
		}
	})
	s.taps.mu.Unlock()
	s.log.Info("tap attached", "socket", req.Node+"."+req.Socket, "instances", strings.Join(names, ","))
	return control.TapReply{ID: id, Instances: names}, nil
}

// AttachTap attaches t to a socket of an instance or node (engine.Tap),
// for the --ui page, which reads and closes t itself.
func (s *Service) AttachTap(t *tap.Tap, node, socket string) ([]string, error) {
	eng, err := s.engine()
	if err != nil {
		return nil, err
	}
	return eng.Tap(t, node, socket)
}

// dropTap detaches and forgets tap id; nil if it was not there.
func (s *Service) dropTap(id string) *tapEntry {
	s.taps.mu.Lock()
	e := s.taps.m[id]
	delete(s.taps.m, id)
	s.taps.mu.Unlock()
	if e != nil {
		e.lease.Stop()
		e.t.Close()
	}
	return e
}

func (s *Service) tapEntry(id string) (*tapEntry, error) {
	s.taps.mu.Lock()
	defer s.taps.mu.Unlock()
	e := s.taps.m[id]
	if e == nil {
		return nil, fmt.Errorf("no tap %q (detached after %v without a read)", id, tapLease)
	}
	e.lease.Reset(tapLease)
	return e, nil
}

// TapRead is the control socket's tap-read: the copies made since the
// last read.
func (s *Service) TapRead(req control.TapReadRequest) (control.TapReadReply, error) {
	e, err := s.tapEntry(req.ID)
	if err != nil {
		return control.TapReadReply{}, err
	}
	if time.Since(e.synced) >= tapResync {
		e.synced = time.Now()
		if eng := s.eng.Load(); eng != nil {
			_, _ = eng.Tap(e.t, e.node, e.socket)
		}
	}
	return readTap(e.t, req.Max), nil
}

// Untap is the control socket's untap: detach, and the last copies.
func (s *Service) Untap(req control.TapReadRequest) (control.TapReadReply, error) {
	e := s.dropTap(req.ID)
	if e == nil {
		return control.TapReadReply{}, fmt.Errorf("no tap %q (detached after %v without a read)", req.ID, tapLease)
	}
	s.log.Info("tap detached", "socket", e.node+"."+e.socket, "copied", e.t.Copied(), "lost", e.t.Lost())
	return readTap(e.t, req.Max), nil
}

func readTap(t *tap.Tap, max int) control.TapReadReply {
	if max <= 0 || max > control.MaxTapRecords {
		max = control.MaxTapRecords
	}
	recs := t.Read(max, control.MaxTapBytes)
	if recs == nil {
		recs = []tap.Record{}
	}
	return control.TapReadReply{Records: recs, Lost: t.Lost(), Copied: t.Copied(), More: t.Buffered() > 0}
}
