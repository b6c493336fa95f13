package node

import (
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/handler"
)

// errEvery is the least interval between two log lines of handler errors of
// one node run: a handler failing every message (a crashed child, a broken
// plugin) gives one line a second with a count, not one line per message.
const errEvery = time.Second

// errLog logs handler errors, rate-limited. Errors that wrap
// handler.ErrReported were logged by the handler, once for the event with
// a count, and are only counted. It is used by the node's goroutine only.
type errLog struct {
	log        hclog.Logger
	last       time.Time
	suppressed int // errors not logged since the last line
}

// handlerError logs (or counts) one handler error for a message from socket.
func (l *errLog) handlerError(msg, socket string, err error) {
	if errors.Is(err, handler.ErrReported) {
		return
	}
	now := time.Now()
	if now.Sub(l.last) < errEvery {
		l.suppressed++
		return
	}
	args := []any{"socket", socket, "error", err}
	if l.suppressed > 0 {
		args = append(args, "more_errors", l.suppressed, "since", now.Sub(l.last).Round(time.Millisecond))
	}
	l.log.Warn(msg, args...)
	l.last, l.suppressed = now, 0
}

// flush reports what was suppressed since the last line, at the run's end.
func (l *errLog) flush() {
	if l.suppressed > 0 {
		l.log.Warn("more handler errors not logged one by one", "count", l.suppressed)
		l.suppressed = 0
	}
}
