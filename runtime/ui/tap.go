package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ztopo/ztopo/runtime/tap"
)

// A page's tap: the copies wait in a small buffer (the page shows the last
// few lines only) and go out every tapEvery, at most tapBatch at a time;
// what does not fit is lost and counted, as for ztopo tap.
const (
	tapBuffer = 256
	tapBatch  = 100
	tapEvery  = 200 * time.Millisecond
)

// tapEvent is the data of one "tap" event.
type tapEvent struct {
	Lines []string `json:"lines"` // as ztopo tap prints them
	Shown uint64   `json:"shown"` // lines sent so far
	Lost  uint64   `json:"lost"`  // copies lost so far (also those not sent)
}

// tap streams the messages of a socket while the page listens; the tap is
// detached when it stops listening.
func (s *Server) tap(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	node, socket := r.URL.Query().Get("node"), r.URL.Query().Get("socket")
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	// No automatic reconnection: the page asks again when it wants to.
	fmt.Fprint(w, "retry: 3600000\n\n")
	fail := func(msg string) {
		b, _ := json.Marshal(msg)
		fmt.Fprintf(w, "event: failed\ndata: %s\n\n", b)
		fl.Flush()
	}
	if s.src.Tap == nil {
		fail("this topology cannot tap sockets")
		return
	}
	t := tap.New(tapBuffer)
	defer t.Close()
	names, err := s.src.Tap(t, node, socket)
	if err != nil {
		fail(err.Error())
		return
	}
	s.log.Info("tap attached from the page", "socket", node+"."+socket, "instances", strings.Join(names, ","))
	defer func() {
		s.log.Info("tap detached from the page", "socket", node+"."+socket, "copied", t.Copied(), "lost", t.Lost())
	}()
	fmt.Fprint(w, "event: attached\ndata: {}\n\n")
	fl.Flush()
	tick := time.NewTicker(tapEvery)
	defer tick.Stop()
	var shown, skipped, lastLost uint64
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		recs := t.Read(tapBatch, 1<<20)
		// The rest would only scroll past unseen: lost to the page too.
		skipped += uint64(len(t.Read(tapBuffer, 1<<30)))
		lost := t.Lost() + skipped
		if len(recs) == 0 && lost == lastLost {
			continue
		}
		lastLost = lost
		ev := tapEvent{Lines: make([]string, 0, len(recs))}
		for i := range recs {
			ev.Lines = append(ev.Lines, strings.TrimSuffix(string(tap.AppendText(nil, &recs[i], 0)), "\n"))
		}
		shown += uint64(len(recs))
		ev.Shown, ev.Lost = shown, lost
		b, _ := json.Marshal(ev)
		if _, err := fmt.Fprintf(w, "event: tap\ndata: %s\n\n", b); err != nil {
			return
		}
		fl.Flush()
	}
}
