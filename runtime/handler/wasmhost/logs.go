package wasmhost

import (
	"crypto/rand"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// cryptoRand is the system's random source, for modules granted random.
type cryptoRand struct{}

func (cryptoRand) Read(p []byte) (int, error) { return rand.Read(p) }

// Bounds of what a module may write to the log: lines are cut at
// maxLogLine bytes, and at most maxLogLines a second are logged per
// instance; the rest are counted and reported as suppressed.
const (
	maxLogLine  = 1024
	maxLogLines = 100
)

// logWriter turns a module's stdout and stderr into log lines, bounded.
type logWriter struct {
	log hclog.Logger

	mu         sync.Mutex
	window     time.Time
	lines      int
	suppressed int
}

func newLogWriter(log hclog.Logger) *logWriter { return &logWriter{log: log} }

type stream struct {
	w    *logWriter
	name string
	buf  []byte
}

func (w *logWriter) stream(name string) io.Writer { return &stream{w: w, name: name} }

func (s *stream) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := indexNL(p)
		if i < 0 {
			room := maxLogLine - len(s.buf)
			if room > 0 {
				s.buf = append(s.buf, p[:min(room, len(p))]...)
			}
			break
		}
		room := maxLogLine - len(s.buf)
		if room > 0 {
			s.buf = append(s.buf, p[:min(room, i)]...)
		}
		s.w.line(s.name, s.buf)
		s.buf = s.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}

func indexNL(p []byte) int {
	for i, b := range p {
		if b == '\n' {
			return i
		}
	}
	return -1
}

func (w *logWriter) line(name string, b []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if now.Sub(w.window) >= time.Second {
		if w.suppressed > 0 {
			w.log.Warn("wasm module output suppressed", "lines", w.suppressed)
		}
		w.window, w.lines, w.suppressed = now, 0, 0
	}
	if w.lines >= maxLogLines {
		w.suppressed++
		return
	}
	w.lines++
	if name == "stderr" {
		w.log.Warn("wasm "+name, "line", string(b))
	} else {
		w.log.Info("wasm "+name, "line", string(b))
	}
}

// flush reports lines suppressed in the last window.
func (w *logWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.suppressed > 0 {
		w.log.Warn("wasm module output suppressed", "lines", w.suppressed)
		w.suppressed = 0
	}
}
