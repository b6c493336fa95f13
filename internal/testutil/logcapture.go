package testutil

import (
	"encoding/json"
	"fmt"
	"sync"
)

// LogEntry is one entry of an hclog JSON log.
type LogEntry map[string]any

// Str is the entry's value for k when that is a string ("@message",
// "@level", "node", ...).
func (e LogEntry) Str(k string) string { s, _ := e[k].(string); return s }

// LogCapture is an hclog JSON sink (LoggerOptions{JSONFormat: true}) that
// keeps every entry and hands each to Lines, so that tests wait for a log
// line instead of polling; an entry finding Lines full is only kept.
type LogCapture struct {
	Lines chan LogEntry
	mu    sync.Mutex
	all   []LogEntry
}

// NewLogCapture makes a LogCapture whose Lines holds buffer entries.
func NewLogCapture(buffer int) *LogCapture {
	return &LogCapture{Lines: make(chan LogEntry, buffer)}
}

// Write takes one whole entry: hclog writes an entry in one call.
func (c *LogCapture) Write(b []byte) (int, error) {
	var e LogEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return 0, fmt.Errorf("log entry is not JSON: %q", b)
	}
	c.mu.Lock()
	c.all = append(c.all, e)
	c.mu.Unlock()
	select {
	case c.Lines <- e:
	default:
	}
	return len(b), nil
}

// Entries returns the entries written so far, in order.
func (c *LogCapture) Entries() []LogEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]LogEntry(nil), c.all...)
}
