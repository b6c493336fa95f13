package logbuf

import (
	"strings"
	"sync"
)

// SelfPrefix is the prefix of the topology's own entries, those about no
// node instance.
const SelfPrefix = "ztopo"

// Printer writes records as compose writes its services' output:
//
//	worker.1  | hello from the child
//	sink      | received 1000 messages in 21ms (47505 msg/s): count=1000 elapsed=21ms
//	ztopo     | [WARN] reload: worker.yaml:3:5: warning: …
//
// The prefix is the instance, padded to the longest one seen; the level is
// shown when it is not info; the module when it says more than the prefix
// (reload:, watch:); then the message and its key/value pairs. A line a
// child process wrote is shown as it was written, nothing added. With
// Color, each instance's prefix gets a colour of its own, warnings are
// yellow and errors red. A Printer is safe for concurrent use.
type Printer struct {
	Color      bool
	Timestamps bool // a time before the message (15:04:05.000)

	mu     sync.Mutex
	width  int
	colors map[string]string
}

// Reserve widens the prefix column for names, so that lines of instances
// that have not logged yet line up with those that have.
func (p *Printer) Reserve(names ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range names {
		p.width = max(p.width, len(n))
	}
}

// ANSI colours for prefixes, in the order instances appear (compose's
// palette, red left for errors).
var palette = []string{"36", "33", "32", "35", "34", "96", "93", "92", "95", "94"}

const (
	ansiReset = "\x1b[0m"
	ansiWarn  = "\x1b[33m"
	ansiError = "\x1b[31m"
	ansiDim   = "\x1b[2m"
)

// Append appends the line for r, with its newline.
func (p *Printer) Append(b []byte, r *Record) []byte {
	prefix := r.Instance
	if prefix == "" {
		prefix = SelfPrefix
	}
	p.mu.Lock()
	p.width = max(p.width, len(prefix), len(SelfPrefix))
	width := p.width
	color := ""
	if p.Color && r.Instance != "" {
		if p.colors == nil {
			p.colors = map[string]string{}
		}
		color = p.colors[prefix]
		if color == "" {
			color = "\x1b[" + palette[len(p.colors)%len(palette)] + "m"
			p.colors[prefix] = color
		}
	}
	p.mu.Unlock()

	if color != "" {
		b = append(b, color...)
	}
	b = append(b, prefix...)
	for i := len(prefix); i < width; i++ {
		b = append(b, ' ')
	}
	b = append(b, " |"...)
	if color != "" {
		b = append(b, ansiReset...)
	}
	b = append(b, ' ')
	if p.Timestamps {
		if p.Color {
			b = append(b, ansiDim...)
		}
		b = r.Time.AppendFormat(b, "15:04:05.000")
		if p.Color {
			b = append(b, ansiReset...)
		}
		b = append(b, ' ')
	}
	if _, child := r.Get("stream"); child {
		// What a child wrote, as it wrote it.
		b = append(b, r.Msg...)
		return append(b, '\n')
	}
	levelColor := ""
	switch r.Level {
	case "info":
	case "warn":
		levelColor = ansiWarn
	case "error":
		levelColor = ansiError
	}
	if r.Level != "info" {
		if p.Color && levelColor != "" {
			b = append(b, levelColor...)
		}
		b = append(b, '[')
		b = append(b, strings.ToUpper(r.Level)...)
		b = append(b, "] "...)
	}
	if m := shortModule(r); m != "" {
		b = append(b, m...)
		b = append(b, ": "...)
	}
	b = append(b, r.Msg...)
	if len(r.Fields) > 0 {
		b = append(b, ':')
		for _, f := range r.Fields {
			b = append(b, ' ')
			b = append(b, f.Key...)
			b = append(b, '=')
			b = append(b, textValue(f.Value)...)
		}
	}
	if p.Color && levelColor != "" {
		b = append(b, ansiReset...)
	}
	return append(b, '\n')
}

// shortModule is the part of the logger name the prefix does not say:
// "reload" for ztopo.reload, nothing for ztopo and for a node's own logger.
func shortModule(r *Record) string {
	m := strings.TrimPrefix(r.Module, SelfPrefix)
	if r.Instance != "" || strings.HasPrefix(m, ".node") {
		m = strings.TrimPrefix(m, ".node")
	}
	return strings.TrimPrefix(m, ".")
}
