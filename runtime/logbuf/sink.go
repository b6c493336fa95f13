package logbuf

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Options configure NewLogger.
type Options struct {
	Name  string      // the root logger's name, "ztopo"
	Level hclog.Level // entries below it are neither kept nor written
	// Output receives each entry as it is logged, nil for none (a
	// detached up). Write errors are ignored: a closed terminal must not
	// stop the topology.
	Output io.Writer
	JSON   bool // Output gets JSON lines rather than Printer text
	Color  bool // Printer colours (a terminal only)
	Ring   *Ring
}

// Sink is the hclog.SinkAdapter behind NewLogger: it turns entries into
// records, keeps them in the Ring and writes them to the Output.
type Sink struct {
	level   hclog.Level
	ring    *Ring
	json    bool
	Printer *Printer

	mu       sync.Mutex
	out      io.Writer
	outLevel hclog.Level // entries below it are kept but not written
	buf      []byte
}

var _ hclog.SinkAdapter = (*Sink)(nil)

// NewLogger returns the logger of a running topology and its sink. The
// logger's own formatter is switched off: every entry goes through the
// sink, once.
func NewLogger(o Options) (hclog.InterceptLogger, *Sink) {
	if o.Ring == nil {
		o.Ring = NewRing(0, 0)
	}
	s := &Sink{level: o.Level, ring: o.Ring, json: o.JSON, out: o.Output, Printer: &Printer{Color: o.Color}}
	l := hclog.NewInterceptLogger(&hclog.LoggerOptions{
		Name:    o.Name,
		Level:   o.Level,
		Output:  io.Discard,
		Exclude: func(hclog.Level, string, ...any) bool { return true },
	})
	l.RegisterSink(s)
	return l, s
}

// SetOutput replaces the output (nil: none from now on).
func (s *Sink) SetOutput(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out = w
}

// SetOutputLevel writes only entries at level or above to the output; the
// ring still keeps those at the logger's level.
func (s *Sink) SetOutputLevel(level hclog.Level) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outLevel = level
}

// Ring is where the sink keeps records.
func (s *Sink) Ring() *Ring { return s.ring }

// Accept is called by the logger for each entry, at any level.
func (s *Sink) Accept(name string, level hclog.Level, msg string, args ...any) {
	if level < s.level || level == hclog.Off {
		return
	}
	r := Record{Time: time.Now(), Level: levelName(level), Module: name, Msg: msg}
	if len(args)%2 == 1 {
		args = append(args[:len(args):len(args)], nil)
		args[len(args)-2], args[len(args)-1] = "EXTRA_VALUE_AT_END", args[len(args)-2]
	}
	for i := 0; i < len(args); i += 2 {
		key, ok := args[i].(string)
		if !ok {
			key = fmt.Sprint(args[i])
		}
		if key == "node" {
			// The instance the entry is about: the first node= wins, and
			// the same one said twice (a child's entry re-logged with the
			// parent's node=) is said once.
			if v, ok := args[i+1].(string); ok {
				if r.Instance == "" {
					r.Instance = v
					continue
				}
				if v == r.Instance {
					continue
				}
			}
		}
		r.Fields = append(r.Fields, Field{Key: key, Value: jsonValue(args[i+1])})
	}
	s.ring.Append(r)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil || level < s.outLevel {
		return
	}
	if s.json {
		s.buf = append(r.AppendJSON(s.buf[:0]), '\n')
	} else {
		s.buf = s.Printer.Append(s.buf[:0], &r)
	}
	s.out.Write(s.buf) //nolint:errcheck // see Options.Output
	if cap(s.buf) > 64<<10 {
		s.buf = nil
	}
}

func levelName(l hclog.Level) string {
	switch l {
	case hclog.Trace:
		return "trace"
	case hclog.Debug:
		return "debug"
	case hclog.Warn:
		return "warn"
	case hclog.Error:
		return "error"
	}
	return "info"
}
