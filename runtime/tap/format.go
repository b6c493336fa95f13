package tap

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// MaxShown bounds the bytes of one frame that AppendText shows; the rest
// is summarised ("… 4096 bytes").
const MaxShown = 256

// AppendText appends r as one line of text:
//
//	15:04:05.000000 worker.1 out  in  "hello" 0x00ff | "body"
//
// time, instance, socket, direction, then the frames: quoted text when
// printable UTF-8, else 0x and hex; envelope frames come first, ended by |.
func AppendText(b []byte, r *Record, width int) []byte {
	b = r.Time.AppendFormat(b, "15:04:05.000000")
	b = append(b, ' ')
	name := r.Instance + "." + r.Socket
	b = append(b, name...)
	for i := len(name); i < width; i++ {
		b = append(b, ' ')
	}
	b = append(b, ' ')
	if r.Dir == Out {
		b = append(b, "out"...)
	} else {
		b = append(b, "in "...)
	}
	for _, f := range r.Envelope {
		b = appendFrame(append(b, ' '), f)
	}
	if len(r.Envelope) > 0 {
		b = append(b, " |"...)
	}
	for _, f := range r.Frames {
		b = appendFrame(append(b, ' '), f)
	}
	return append(b, '\n')
}

func appendFrame(b, f []byte) []byte {
	shown := f
	if len(shown) > MaxShown {
		shown = shown[:MaxShown]
		// Do not cut a rune in two.
		for len(shown) > 0 && !utf8.Valid(shown) && len(f)-len(shown) < utf8.UTFMax {
			shown = shown[:len(shown)-1]
		}
	}
	if printable(shown) {
		b = strconv.AppendQuote(b, string(shown))
	} else {
		b = append(b, "0x"...)
		b = hex.AppendEncode(b, shown)
	}
	if len(shown) < len(f) {
		b = fmt.Appendf(b, "… (%d bytes)", len(f))
	}
	return b
}

// printable reports whether f is UTF-8 text without control characters
// (tabs excepted).
func printable(f []byte) bool {
	if !utf8.Valid(f) {
		return false
	}
	for _, r := range string(f) {
		if !unicode.IsPrint(r) && r != '\t' {
			return false
		}
	}
	return true
}

// AppendJSON appends r as one JSON line (the capture file's format).
func AppendJSON(b []byte, r *Record) []byte {
	j, err := json.Marshal(r)
	if err != nil {
		// Only []byte, strings and a time: cannot fail.
		panic(err)
	}
	return append(append(b, j...), '\n')
}

// MaxRecordLine bounds one line of a capture file (64 MiB).
const MaxRecordLine = 64 << 20

// ReadCapture reads a capture file: one Record per line, as tap --json
// and tap --record write it. Blank lines are skipped. An error names the
// line.
func ReadCapture(r io.Reader) ([]Record, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxRecordLine)
	var out []Record
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(trimSpace(b)) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			return out, fmt.Errorf("line %d: %v", line, err)
		}
		if rec.Dir != In && rec.Dir != Out {
			return out, fmt.Errorf("line %d: dir must be %q or %q, got %q", line, In, Out, rec.Dir)
		}
		if len(rec.Frames) == 0 {
			return out, fmt.Errorf("line %d: a message needs at least one frame", line)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return out, fmt.Errorf("line %d: longer than %d bytes", line+1, MaxRecordLine)
		}
		return out, err
	}
	return out, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
