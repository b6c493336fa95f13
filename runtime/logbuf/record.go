// Package logbuf is the log of a running topology: every entry ztopo up
// logs becomes a Record, kept in a bounded Ring for `ztopo logs` and, in the
// foreground, written to the terminal the way docker compose writes its
// services' output: one prefix per node instance (`worker.1 | …`), in
// colour on a terminal only.
//
// Records come from hclog: NewLogger returns an hclog.InterceptLogger whose
// own output is switched off and whose Sink turns each entry into a Record.
// Values are rendered once, when logged, to JSON (durations and errors as
// strings, numbers as numbers), so that the text and the JSON form of an
// entry say the same and a Record crosses the control socket unchanged.
//
// The JSON form of a record, one object per line, is:
//
//	{"@level":"info","@message":"received 10 messages in 3ms (3333 msg/s)",
//	 "@module":"ztopo.node","@timestamp":"2026-12-04T15:26:36.163456Z",
//	 "node":"sink","count":10,"elapsed":"3ms"}
//
// @level is trace, debug, info, warn or error; @module the logger's name;
// node the instance the entry is about (absent for the topology's own
// entries); then the entry's key/value pairs in the order they were logged.
// Lines a child process writes carry "stream":"stdout" or "stderr".
package logbuf

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// TimeFormat is the JSON form of @timestamp (hclog's own).
const TimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// Record is one log entry.
type Record struct {
	Seq      uint64    `json:"seq"` // position in the Ring, from 1
	Time     time.Time `json:"time"`
	Level    string    `json:"level"`              // trace, debug, info, warn, error
	Module   string    `json:"module,omitempty"`   // logger name: ztopo, ztopo.node, ztopo.reload
	Instance string    `json:"instance,omitempty"` // the node instance (worker.1), "" for ztopo itself
	Msg      string    `json:"msg"`
	Fields   []Field   `json:"fields,omitempty"`
}

// Field is one key/value pair; Value is JSON.
type Field struct {
	Key   string          `json:"k"`
	Value json.RawMessage `json:"v"`
}

// Get returns the value of key as text (a JSON string unquoted), and
// whether the record has it.
func (r *Record) Get(key string) (string, bool) {
	for _, f := range r.Fields {
		if f.Key == key {
			return textOf(f.Value), true
		}
	}
	return "", false
}

// size approximates the memory a record holds, for the Ring's byte bound.
func (r *Record) size() int {
	n := 96 + len(r.Module) + len(r.Instance) + len(r.Msg)
	for _, f := range r.Fields {
		n += 32 + len(f.Key) + len(f.Value)
	}
	return n
}

// Node is the node an instance belongs to: "worker" for "worker.1" and for
// "worker".
func Node(instance string) string {
	if i := strings.LastIndexByte(instance, '.'); i > 0 {
		if _, err := strconv.Atoi(instance[i+1:]); err == nil {
			return instance[:i]
		}
	}
	return instance
}

// Match reports whether the record is about one of names, each an instance
// (worker.1) or a node (worker, matching all its replicas), or SelfPrefix
// for the topology's own entries. No names match every record.
func (r *Record) Match(names []string) bool {
	if len(names) == 0 {
		return true
	}
	for _, n := range names {
		if n == SelfPrefix && r.Instance == "" {
			return true
		}
		if r.Instance == n || (r.Instance != "" && Node(r.Instance) == n) {
			return true
		}
	}
	return false
}

// jsonValue renders a logged value: durations, times, errors and Stringers
// as their text, numbers and booleans as such, anything else that JSON can
// encode as JSON, the rest as fmt's %v text.
func jsonValue(v any) json.RawMessage {
	var s string
	switch x := v.(type) {
	case nil:
		return json.RawMessage("null")
	case string:
		s = x
	case time.Duration:
		s = x.String()
	case time.Time:
		s = x.Format(TimeFormat)
	case error:
		s = x.Error()
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		b, _ := json.Marshal(x)
		return b
	case float32:
		return floatJSON(float64(x))
	case float64:
		return floatJSON(x)
	case fmt.Stringer:
		s = x.String()
	case []byte:
		s = string(x)
	default:
		if b, err := json.Marshal(x); err == nil {
			return b
		}
		s = fmt.Sprintf("%v", x)
	}
	b, _ := json.Marshal(strings.ToValidUTF8(s, "\uFFFD"))
	return b
}

func floatJSON(f float64) json.RawMessage {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		b, _ := json.Marshal(strconv.FormatFloat(f, 'g', -1, 64))
		return b
	}
	return json.RawMessage(strconv.FormatFloat(f, 'f', -1, 64))
}

// textOf is a JSON value as text: a string unquoted, anything else as it is.
func textOf(v json.RawMessage) string {
	if len(v) > 0 && v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	return string(v)
}

// textValue is a value as logfmt shows it: quoted when it would not read
// back as one word.
func textValue(v json.RawMessage) string {
	if len(v) == 0 || v[0] != '"' {
		return string(v)
	}
	s := textOf(v)
	if s == "" || strings.ContainsAny(s, " \t\"=\\") || !printable(s) {
		return strconv.Quote(s)
	}
	return s
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// AppendJSON appends the record's JSON form (see the package doc), without
// a newline.
func (r *Record) AppendJSON(b []byte) []byte {
	b = append(b, `{"@level":`...)
	b = strconv.AppendQuote(b, r.Level)
	b = append(b, `,"@message":`...)
	b = appendJSONString(b, r.Msg)
	if r.Module != "" {
		b = append(b, `,"@module":`...)
		b = appendJSONString(b, r.Module)
	}
	b = append(b, `,"@timestamp":"`...)
	b = r.Time.AppendFormat(b, TimeFormat)
	b = append(b, '"')
	if r.Instance != "" {
		b = append(b, `,"node":`...)
		b = appendJSONString(b, r.Instance)
	}
	for _, f := range r.Fields {
		b = append(b, ',')
		b = appendJSONString(b, f.Key)
		b = append(b, ':')
		b = append(b, f.Value...)
	}
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}
