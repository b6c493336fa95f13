// Package tap copies the messages passing a socket of a running topology
// to whoever watches it (ztopo tap, the UI), and reads and writes the
// capture files that ztopo tap --record writes and the replay builtin
// plays back.
//
// Cost: a Tap attaches to sockets' zsock.Stats. While none is attached the
// data path pays one atomic load per message and copies nothing. While one
// is, each message is copied once (one allocation) into a bounded buffer
// with a non-blocking send: a full buffer, a reader too slow, loses the
// copy and counts it (Lost), and the topology is never slowed down or
// changed.
package tap

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/ztopo/ztopo/runtime/zsock"
)

// DefaultBuffer is how many copies a Tap holds for its reader.
const DefaultBuffer = 4096

// Directions of a Record.
const (
	In  = "in"  // the tapped socket received it
	Out = "out" // the tapped socket sent it
)

// Record is one copied message: the line of ztopo tap --json and of a
// capture file. Frames and Envelope are base64 in JSON.
type Record struct {
	Time     time.Time `json:"time"`
	Instance string    `json:"instance"` // worker.1
	Socket   string    `json:"socket"`
	Dir      string    `json:"dir"` // In or Out
	// Envelope is the routing envelope (ROUTER identity, frames up to the
	// empty delimiter) the node splits off; replay never sends it.
	Envelope [][]byte `json:"envelope,omitempty"`
	Frames   [][]byte `json:"frames"`
}

// Size is the bytes of the record's frames and envelope.
func (r *Record) Size() int {
	n := 0
	for _, f := range r.Envelope {
		n += len(f)
	}
	for _, f := range r.Frames {
		n += len(f)
	}
	return n
}

// Point is one tapped socket of one instance.
type Point struct {
	Instance, Socket string
	Stats            *zsock.Stats
	// Changed, if set, is called after the tap is attached to or detached
	// from Stats (the node's TapChanged: a forward leaves its fast path).
	Changed func()
}

// Tap receives copies of the messages of its points. Create it with New,
// attach points with Attach, read with Read, and Close it: a Tap left open
// keeps copying.
type Tap struct {
	ch     chan Record
	lost   atomic.Uint64
	copied atomic.Uint64

	mu     sync.Mutex
	points map[*zsock.Stats]*tapper
	closed bool
}

// New returns a Tap holding at most buffer copies (DefaultBuffer if <= 0).
func New(buffer int) *Tap {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Tap{ch: make(chan Record, buffer), points: map[*zsock.Stats]*tapper{}}
}

// tapper is a Tap attached to one socket: what zsock calls.
type tapper struct {
	t  *Tap
	pt Point
}

// Tap copies one message, unless the buffer is full (then it only counts).
func (p *tapper) Tap(out bool, env, body [][]byte) {
	t := p.t
	if len(t.ch) >= cap(t.ch) {
		t.lost.Add(1) // not even a copy is made
		return
	}
	rec := Record{Time: time.Now(), Instance: p.pt.Instance, Socket: p.pt.Socket, Dir: In}
	if out {
		rec.Dir = Out
	}
	// One allocation holds every frame.
	n := 0
	for _, f := range env {
		n += len(f)
	}
	for _, f := range body {
		n += len(f)
	}
	buf := make([]byte, 0, n)
	frames := make([][]byte, len(env)+len(body))
	for i, f := range env {
		buf = append(buf, f...)
		frames[i] = buf[len(buf)-len(f) : len(buf) : len(buf)]
	}
	for i, f := range body {
		buf = append(buf, f...)
		frames[len(env)+i] = buf[len(buf)-len(f) : len(buf) : len(buf)]
	}
	if len(env) > 0 {
		rec.Envelope = frames[:len(env):len(env)]
	}
	rec.Frames = frames[len(env):]
	select {
	case t.ch <- rec:
		t.copied.Add(1)
	default:
		t.lost.Add(1)
	}
}

// Attach starts copying the messages of p, unless p's socket is already
// tapped by t. It reports whether it attached.
func (t *Tap) Attach(p Point) bool {
	t.mu.Lock()
	if t.closed || t.points[p.Stats] != nil {
		t.mu.Unlock()
		return false
	}
	tp := &tapper{t: t, pt: p}
	t.points[p.Stats] = tp
	p.Stats.AttachTap(tp)
	t.mu.Unlock()
	if p.Changed != nil {
		p.Changed()
	}
	return true
}

// Close detaches every point; copies already buffered can still be read.
func (t *Tap) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	points := t.points
	t.points = nil
	t.mu.Unlock()
	for st, tp := range points {
		st.DetachTap(tp)
		if tp.pt.Changed != nil {
			tp.pt.Changed()
		}
	}
}

// Instances lists the attached points' instances (unsorted, with repeats
// when several sockets of one instance are tapped).
func (t *Tap) Instances() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, tp := range t.points {
		out = append(out, tp.pt.Instance)
	}
	return out
}

// Read returns the buffered copies, oldest first, at most max records and
// about maxBytes of frames (one record at least), without waiting.
func (t *Tap) Read(max, maxBytes int) []Record {
	var out []Record
	size := 0
	for len(out) < max && (size < maxBytes || len(out) == 0) {
		select {
		case r := <-t.ch:
			out = append(out, r)
			size += r.Size()
		default:
			return out
		}
	}
	return out
}

// Buffered is how many copies wait to be read.
func (t *Tap) Buffered() int { return len(t.ch) }

// Lost is how many copies were dropped because the buffer was full.
func (t *Tap) Lost() uint64 { return t.lost.Load() }

// Copied is how many copies were buffered.
func (t *Tap) Copied() uint64 { return t.copied.Load() }
