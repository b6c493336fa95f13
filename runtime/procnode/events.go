package procnode

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/zsock"
)

// Events a child sends to its parent on the event pipe, one JSON object a
// line. The child's log entries travel on the same pipe as hclog JSON
// objects (they have "@message" and no "event").
const (
	eventRunning   = "running"   // past the sync barrier, the handler runs
	eventStats     = "stats"     // counters of every socket
	eventCompleted = "completed" // the handler completed; exit 0 follows
	eventFailed    = "failed"    // the node failed; Error says why; exit 1 follows
)

// maxEventLine bounds one line read from a child; a longer one is skipped.
const maxEventLine = 1 << 20

type event struct {
	Event   string                `json:"event"`
	Sockets map[string]wireCounts `json:"sockets,omitempty"`
	Error   string                `json:"error,omitempty"`
}

type wireCounts struct {
	MsgsIn     uint64 `json:"msgs_in"`
	MsgsOut    uint64 `json:"msgs_out"`
	BytesIn    uint64 `json:"bytes_in"`
	BytesOut   uint64 `json:"bytes_out"`
	SendErrors uint64 `json:"send_errors"`
	// AuthFailures: CURVE handshakes refused by the child's ZAP handler.
	AuthFailures uint64 `json:"auth_failures,omitempty"`
}

func toWire(s zsock.StatsSnapshot) wireCounts {
	return wireCounts{MsgsIn: s.MsgsIn, MsgsOut: s.MsgsOut, BytesIn: s.BytesIn, BytesOut: s.BytesOut, SendErrors: s.SendErrors, AuthFailures: s.AuthFailures}
}

func (c wireCounts) snapshot() zsock.StatsSnapshot {
	return zsock.StatsSnapshot{MsgsIn: c.MsgsIn, MsgsOut: c.MsgsOut, BytesIn: c.BytesIn, BytesOut: c.BytesOut, SendErrors: c.SendErrors, AuthFailures: c.AuthFailures}
}

// lineWriter serialises whole lines onto the event pipe: hclog writes each
// entry with one Write, events are one Write each, and the lock keeps a
// stats line from landing inside a log entry (pipe writes over 4 KiB are
// not atomic).
type lineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	err error // the first write error; later writes are dropped
}

func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.err != nil {
		// The parent is gone or stopped reading; the child's work is not
		// worth failing for it (the parent-death signal ends us anyway).
		return len(p), nil
	}
	if _, err := lw.w.Write(p); err != nil {
		lw.err = err
	}
	return len(p), nil
}

func (lw *lineWriter) send(ev event) {
	b, err := json.Marshal(ev)
	if err != nil {
		return // cannot happen: plain strings and integers
	}
	_, _ = lw.Write(append(b, '\n'))
}

// eventSink is the parent's side: it reads the pipe, re-logs the child's
// entries through the parent's logger and hands events over.
type eventSink struct {
	log     hclog.Logger
	onEvent func(event)
	beat    func() // called for every line: the child is alive; may be nil

	mu      sync.Mutex
	modules map[string]hclog.Logger
}

// read consumes r until EOF or a read error (the parent closes r to stop it).
func (s *eventSink) read(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			s.line(line)
		}
		if err != nil {
			return
		}
	}
}

// readLine returns the next line without its newline; a line longer than
// maxEventLine is dropped whole.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	tooLong := false
	for {
		part, err := br.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(part) > maxEventLine {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, part...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if tooLong {
			return nil, err
		}
		return []byte(strings.TrimRight(string(buf), "\r\n")), err
	}
}

func (s *eventSink) line(line []byte) {
	if s.beat != nil {
		s.beat()
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		// Not ours (a stray write to fd 3): show it rather than lose it.
		s.log.Warn("unreadable line on the event pipe", "line", strings.ToValidUTF8(string(line), "\uFFFD"))
		return
	}
	if _, isLog := m["@message"]; isLog {
		s.relog(m)
		return
	}
	var ev event
	if err := json.Unmarshal(line, &ev); err != nil || ev.Event == "" {
		s.log.Warn("unreadable event from the child", "line", string(line))
		return
	}
	s.onEvent(ev)
}

// relog emits a child's hclog JSON entry through the parent's logger, at its
// level, under the child's sub-logger name, with its key/value pairs (sorted
// by key: JSON objects keep no order). The child's timestamp and caller are
// dropped: the parent stamps its own, in the parent's format.
func (s *eventSink) relog(m map[string]json.RawMessage) {
	str := func(k string) string {
		var v string
		_ = json.Unmarshal(m[k], &v)
		return v
	}
	level := hclog.LevelFromString(str("@level"))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	logger := s.module(str("@module"))
	keys := make([]string, 0, len(m))
	for k := range m {
		if !strings.HasPrefix(k, "@") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, plainJSON(m[k]))
	}
	logger.Log(level, str("@message"), args...)
}

func (s *eventSink) module(name string) hclog.Logger {
	if name == "" {
		return s.log
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.modules[name]; ok {
		return l
	}
	if s.modules == nil {
		s.modules = map[string]hclog.Logger{}
	}
	l := s.log.Named(name)
	s.modules[name] = l
	return l
}

// plainJSON turns a logged value back into something that prints as the
// child printed it: strings unquoted, numbers as written, anything else as
// its JSON text.
func plainJSON(raw json.RawMessage) any {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return string(raw)
	}
	switch x := v.(type) {
	case string, json.Number, bool, nil:
		return x
	case map[string]any:
		if n, ok := x[durationKey].(json.Number); ok && len(x) == 1 {
			if ns, err := n.Int64(); err == nil {
				return time.Duration(ns)
			}
		}
	}
	return string(raw)
}

// durationKey marks a time.Duration logged by the child: hclog's JSON would
// write a bare number of nanoseconds, and the parent's text log would then
// show elapsed=9000 where a goroutine node shows elapsed=9µs.
const durationKey = "ztopo.duration"

type wireDuration time.Duration

func (d wireDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]int64{durationKey: int64(d)})
}

// childLogger is the child's logger: it marks durations for the parent (see
// durationKey) and keeps doing so in its sub-loggers.
type childLogger struct{ hclog.Logger }

func wrapArgs(args []any) []any {
	var out []any
	for i := 1; i < len(args); i += 2 {
		if d, ok := args[i].(time.Duration); ok {
			if out == nil {
				out = append([]any(nil), args...)
			}
			out[i] = wireDuration(d)
		}
	}
	if out == nil {
		return args
	}
	return out
}

func (l childLogger) Log(level hclog.Level, msg string, args ...any) {
	l.Logger.Log(level, msg, wrapArgs(args)...)
}
func (l childLogger) Trace(msg string, args ...any) { l.Logger.Trace(msg, wrapArgs(args)...) }
func (l childLogger) Debug(msg string, args ...any) { l.Logger.Debug(msg, wrapArgs(args)...) }
func (l childLogger) Info(msg string, args ...any)  { l.Logger.Info(msg, wrapArgs(args)...) }
func (l childLogger) Warn(msg string, args ...any)  { l.Logger.Warn(msg, wrapArgs(args)...) }
func (l childLogger) Error(msg string, args ...any) { l.Logger.Error(msg, wrapArgs(args)...) }
func (l childLogger) With(args ...any) hclog.Logger {
	return childLogger{l.Logger.With(wrapArgs(args)...)}
}
func (l childLogger) Named(name string) hclog.Logger { return childLogger{l.Logger.Named(name)} }
func (l childLogger) ResetNamed(name string) hclog.Logger {
	return childLogger{l.Logger.ResetNamed(name)}
}
