package logbuf

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestRingBounds(t *testing.T) {
	g := NewRing(3, 0)
	for i := 0; i < 5; i++ {
		g.Append(Record{Msg: "m", Instance: "w.0"})
	}
	res := g.Select(Query{})
	if len(res.Records) != 3 || res.Records[0].Seq != 3 || res.Next != 5 || res.Lost != 2 {
		t.Fatalf("got %d records from seq %d, next %d, lost %d; want 3 from 3, next 5, lost 2",
			len(res.Records), res.Records[0].Seq, res.Next, res.Lost)
	}
	res = g.Select(Query{After: 4})
	if len(res.Records) != 1 || res.Records[0].Seq != 5 || res.Lost != 0 {
		t.Fatalf("after 4: got %+v, want seq 5 only", res)
	}
	res = g.Select(Query{After: 5})
	if len(res.Records) != 0 || res.Next != 5 {
		t.Fatalf("after 5: got %+v, want nothing, next 5", res)
	}

	// The byte bound: records of about 1 KiB in a 4 KiB ring.
	g = NewRing(100, 4096)
	big := strings.Repeat("x", 1000)
	for i := 0; i < 10; i++ {
		g.Append(Record{Msg: big})
	}
	res = g.Select(Query{})
	if n := len(res.Records); n < 2 || n > 4 || res.Records[n-1].Seq != 10 {
		t.Fatalf("byte bound: got %d records ending at %d, want 2 to 4 ending at 10", n, res.Records[n-1].Seq)
	}
	if res.Lost != uint64(10-len(res.Records)) {
		t.Fatalf("byte bound: lost %d, want %d", res.Lost, 10-len(res.Records))
	}
}

func TestSelect(t *testing.T) {
	g := NewRing(0, 0)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, inst := range []string{"", "worker.0", "worker.1", "workers", "sink", "worker.1"} {
		g.Append(Record{Instance: inst, Time: t0.Add(time.Duration(i) * time.Second), Msg: inst})
	}
	cases := []struct {
		name string
		q    Query
		want string
		next uint64
	}{
		{"all", Query{}, ",worker.0,worker.1,workers,sink,worker.1", 6},
		{"node", Query{Names: []string{"worker"}}, "worker.0,worker.1,worker.1", 6},
		{"instance", Query{Names: []string{"worker.1"}}, "worker.1,worker.1", 6},
		{"self", Query{Names: []string{"ztopo", "sink"}}, ",sink", 6},
		{"two", Query{Names: []string{"sink", "workers"}}, "workers,sink", 6},
		{"since", Query{Since: t0.Add(4 * time.Second)}, "sink,worker.1", 6},
		{"max", Query{Max: 2}, ",worker.0", 2},
		{"max filtered", Query{Max: 1, Names: []string{"worker"}}, "worker.0", 2},
		{"after filtered", Query{After: 2, Names: []string{"sink"}}, "sink", 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := g.Select(c.q)
			var got []string
			for _, r := range res.Records {
				got = append(got, r.Msg)
			}
			if strings.Join(got, ",") != c.want || res.Next != c.next {
				t.Fatalf("got %q next %d, want %q next %d", strings.Join(got, ","), res.Next, c.want, c.next)
			}
		})
	}
}

func TestWait(t *testing.T) {
	g := NewRing(0, 0)
	w := g.Wait()
	select {
	case <-w:
		t.Fatal("woken before any append")
	default:
	}
	g.Append(Record{})
	<-w // closed by the append; a missing close hangs the test
}

func TestLoggerOutput(t *testing.T) {
	var text, js bytes.Buffer
	ring := NewRing(0, 0)
	l, sink := NewLogger(Options{Name: "ztopo", Level: hclog.Info, Output: &text, Ring: ring})
	sink.Printer.Reserve("worker.1", "sink")
	jl, _ := NewLogger(Options{Name: "ztopo", Level: hclog.Info, Output: &js, JSON: true})
	for _, l := range []hclog.Logger{l, jl} {
		l.Info("starting topology", "name", "demo", "instances", 3)
		l.Debug("not shown")
		node := l.Named("node").With("node", "worker.1")
		node.Info("received 10 messages", "elapsed", 1500*time.Millisecond, "rate", 6.5)
		node.Named("child").Info("relayed", "node", "worker.1", "by", "ztopo down")
		node.Info("hello from the child", "exec", "sh", "stream", "stderr")
		l.Named("reload").Error("topo.yaml:6:14: unknown handler", "error", errors.New("boom"))
		l.Named("node").With("node", "sink").Warn("slow")
	}
	want := `ztopo    | starting topology: name=demo instances=3
worker.1 | received 10 messages: elapsed=1.5s rate=6.5
worker.1 | child: relayed: by="ztopo down"
worker.1 | hello from the child
ztopo    | [ERROR] reload: topo.yaml:6:14: unknown handler: error=boom
sink     | [WARN] slow
`
	if got := text.String(); got != want {
		t.Errorf("text:\ngot:\n%s\nwant:\n%s", got, want)
	}
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("json: got %d lines, want 6:\n%s", len(lines), js.String())
	}
	wantJSON := []string{
		`{"@level":"info","@message":"starting topology","@module":"ztopo","@timestamp":"`,
		`"node":"worker.1","elapsed":"1.5s","rate":6.5}`,
		`"@module":"ztopo.node.child",`,
		`"node":"worker.1","exec":"sh","stream":"stderr"}`,
		`{"@level":"error","@message":"topo.yaml:6:14: unknown handler","@module":"ztopo.reload"`,
		`"node":"sink"}`,
	}
	for i, w := range wantJSON {
		if !strings.Contains(lines[i], w) {
			t.Errorf("json line %d: got %s, want it to contain %s", i, lines[i], w)
		}
	}
	if res := ring.Select(Query{Names: []string{"worker"}}); len(res.Records) != 3 {
		t.Errorf("ring: got %d records of worker, want 3", len(res.Records))
	}
}

func TestPrinterColor(t *testing.T) {
	p := &Printer{Color: true}
	a := string(p.Append(nil, &Record{Instance: "a.0", Level: "info", Msg: "x"}))
	b := string(p.Append(nil, &Record{Instance: "b", Level: "error", Msg: "y"}))
	if !strings.HasPrefix(a, "\x1b[36ma.0   |\x1b[0m x") {
		t.Errorf("first instance: got %q", a)
	}
	if !strings.HasPrefix(b, "\x1b[33mb     |\x1b[0m \x1b[31m[ERROR] y\x1b[0m") {
		t.Errorf("second instance: got %q", b)
	}
	plain := string((&Printer{}).Append(nil, &Record{Instance: "a.0", Level: "warn", Msg: "x"}))
	if strings.Contains(plain, "\x1b") {
		t.Errorf("no colour asked, got %q", plain)
	}
}
