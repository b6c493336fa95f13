package tap

import (
	"strings"
	"testing"
	"time"

	"github.com/ztopo/ztopo/runtime/zsock"
)

func TestAppendText(t *testing.T) {
	at := time.Date(2026, 12, 4, 18, 42, 1, 123456000, time.Local)
	for _, c := range []struct {
		name string
		rec  Record
		want string
	}{
		{"text", Record{Time: at, Instance: "worker.1", Socket: "out", Dir: Out, Frames: [][]byte{[]byte("job 17")}}, `18:42:01.123456 worker.1.out out "job 17"` + "\n"},
		{"binary", Record{Time: at, Instance: "w", Socket: "in", Dir: In, Frames: [][]byte{{0, 0xff, 0x10}, {}}}, `18:42:01.123456 w.in         in  0x00ff10 ""` + "\n"},
		{"envelope", Record{Time: at, Instance: "b", Socket: "front", Dir: In, Envelope: [][]byte{{0, 0x80}, {}}, Frames: [][]byte{[]byte("hi")}}, `18:42:01.123456 b.front      in  0x0080 "" | "hi"` + "\n"},
		{"quotes", Record{Time: at, Instance: "w", Socket: "in", Dir: In, Frames: [][]byte{[]byte("a\"b\tc")}}, `18:42:01.123456 w.in         in  "a\"b\tc"` + "\n"},
		{"newline is not printable", Record{Time: at, Instance: "w", Socket: "in", Dir: In, Frames: [][]byte{[]byte("a\n")}}, `18:42:01.123456 w.in         in  0x610a` + "\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := string(AppendText(nil, &c.rec, 12)); got != c.want {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
	long := Record{Time: at, Instance: "w", Socket: "in", Dir: In, Frames: [][]byte{[]byte(strings.Repeat("x", 1000))}}
	if got := string(AppendText(nil, &long, 0)); !strings.HasSuffix(got, `"… (1000 bytes)`+"\n") || strings.Count(got, "x") != MaxShown {
		t.Errorf("a long frame: got %q", got)
	}
}

func TestCaptureRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 4, 18, 42, 1, 5, time.UTC)
	recs := []Record{
		{Time: at, Instance: "w.0", Socket: "in", Dir: In, Frames: [][]byte{{0, 1, 2}, []byte("x")}},
		{Time: at.Add(time.Millisecond), Instance: "b", Socket: "f", Dir: Out, Envelope: [][]byte{[]byte("id"), {}}, Frames: [][]byte{{}}},
	}
	var b []byte
	for i := range recs {
		b = AppendJSON(b, &recs[i])
	}
	b = append(b, "\n  \n"...)
	got, err := ReadCapture(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[1].Time.Equal(recs[1].Time) || string(got[0].Frames[0]) != "\x00\x01\x02" || string(got[1].Envelope[0]) != "id" || got[1].Dir != Out {
		t.Errorf("got %+v", got)
	}
	for _, c := range []struct{ in, want string }{
		{`{"time":"2026-12-04T18:42:01Z","dir":"in","frames":["eA=="]}` + "\n{", "line 2: unexpected end of JSON input"},
		{`{"time":"2026-12-04T18:42:01Z","dir":"sideways","frames":[]}`, `line 1: dir must be "in" or "out", got "sideways"`},
		{`{"time":"2026-12-04T18:42:01Z","dir":"in","frames":["!"]}`, "line 1: illegal base64 data at input byte 0"},
	} {
		if _, err := ReadCapture(strings.NewReader(c.in)); err == nil || err.Error() != c.want {
			t.Errorf("ReadCapture(%q): got %v, want %s", c.in, err, c.want)
		}
	}
}

// A full buffer loses copies without making them; Close detaches.
func TestTapBufferBound(t *testing.T) {
	st := &zsock.Stats{}
	tp := New(2)
	tp.Attach(Point{Instance: "w", Socket: "in", Stats: st})
	if !st.Tapped() {
		t.Fatal("not tapped after Attach")
	}
	if tp.Attach(Point{Instance: "w", Socket: "in", Stats: st}) {
		t.Error("attached twice to one socket")
	}
	// What zsock does on each message.
	tr := tp.points[st]
	for i := 0; i < 5; i++ {
		frame := []byte{byte('a' + i)}
		tr.Tap(false, nil, [][]byte{frame})
		frame[0] = '!' // the caller's buffer is reused: the copy must not see it
	}
	if tp.Copied() != 2 || tp.Lost() != 3 {
		t.Errorf("copied %d lost %d, want 2 and 3", tp.Copied(), tp.Lost())
	}
	recs := tp.Read(10, 1<<20)
	if len(recs) != 2 || string(recs[0].Frames[0]) != "a" || string(recs[1].Frames[0]) != "b" {
		t.Errorf("read %+v", recs)
	}
	tp.Close()
	if st.Tapped() {
		t.Error("still tapped after Close")
	}
}
