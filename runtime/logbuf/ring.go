package logbuf

import (
	"sync"
	"time"
)

// Default bounds of a Ring: whichever is reached first evicts the oldest
// records.
const (
	DefaultRecords = 10000
	DefaultBytes   = 8 << 20
)

// Ring keeps the latest records, bounded by count and by size. It is safe
// for concurrent use.
type Ring struct {
	maxRecords, maxBytes int

	mu    sync.Mutex
	recs  []Record // recs[head] is the oldest of n
	head  int
	n     int
	bytes int
	seq   uint64        // Seq of the latest record, 0 before any
	wake  chan struct{} // closed at the next Append
}

// NewRing returns a ring holding at most maxRecords records of at most
// maxBytes in all (the newest record is always kept). Zero means the default.
func NewRing(maxRecords, maxBytes int) *Ring {
	if maxRecords <= 0 {
		maxRecords = DefaultRecords
	}
	if maxBytes <= 0 {
		maxBytes = DefaultBytes
	}
	return &Ring{maxRecords: maxRecords, maxBytes: maxBytes, recs: make([]Record, maxRecords), wake: make(chan struct{})}
}

// Append stores r, giving it the next Seq, and returns that Seq.
func (g *Ring) Append(r Record) uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seq++
	r.Seq = g.seq
	sz := r.size()
	for g.n > 0 && (g.n == g.maxRecords || g.bytes+sz > g.maxBytes) {
		g.bytes -= g.recs[g.head].size()
		g.recs[g.head] = Record{}
		g.head = (g.head + 1) % g.maxRecords
		g.n--
	}
	g.recs[(g.head+g.n)%g.maxRecords] = r
	g.n++
	g.bytes += sz
	close(g.wake)
	g.wake = make(chan struct{})
	return r.Seq
}

// Query selects records.
type Query struct {
	After uint64             // only records with a greater Seq
	Since time.Time          // only records at or after this time (zero: all)
	Names []string           // only records about these instances or nodes (Match)
	Max   int                // at most this many, the oldest first (0: no limit)
	Keep  func(*Record) bool // another filter, nil for none
}

// Result is what Select found.
type Result struct {
	Records []Record
	// Next is the After of the next query that continues this one: the
	// Seq of the last record examined.
	Next uint64
	// Lost counts records after Query.After that the ring no longer held
	// (evicted before they were asked for).
	Lost uint64
}

// Select returns the records q asks for.
func (g *Ring) Select(q Query) Result {
	g.mu.Lock()
	defer g.mu.Unlock()
	res := Result{Next: q.After}
	if g.n == 0 {
		return res
	}
	oldest := g.recs[g.head].Seq
	if q.After+1 < oldest {
		res.Lost = oldest - q.After - 1
	}
	for i := 0; i < g.n; i++ {
		r := &g.recs[(g.head+i)%g.maxRecords]
		if r.Seq <= q.After {
			continue
		}
		if q.Max > 0 && len(res.Records) == q.Max {
			break
		}
		res.Next = r.Seq
		if !q.Since.IsZero() && r.Time.Before(q.Since) {
			continue
		}
		if !r.Match(q.Names) || (q.Keep != nil && !q.Keep(r)) {
			continue
		}
		res.Records = append(res.Records, *r)
	}
	if res.Next < q.After {
		res.Next = q.After
	}
	return res
}

// Last is the Seq of the latest record.
func (g *Ring) Last() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seq
}

// Wait returns a channel closed at the next Append.
func (g *Ring) Wait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.wake
}
