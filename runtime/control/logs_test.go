package control

import (
	"strings"
	"testing"

	"github.com/ztopo/ztopo/runtime/logbuf"
)

// logsHandler is a fakeHandler with a log.
type logsHandler struct {
	fakeHandler
	ring *logbuf.Ring
}

func (h *logsHandler) Logs(req LogsRequest) (LogsReply, error) { return RingLogs(h.ring, req), nil }

func TestLogs(t *testing.T) {
	ctx := testCtx(t)
	h := &logsHandler{fakeHandler: fakeHandler{name: "demo"}, ring: logbuf.NewRing(0, 0)}
	for _, inst := range []string{"", "worker.0", "worker.1", "sink"} {
		h.ring.Append(logbuf.Record{Instance: inst, Level: "info", Msg: "hello " + inst,
			Fields: []logbuf.Field{{Key: "n", Value: []byte("1000")}}})
	}
	s := serve(ctx, t, Endpoint(runtimeDir(t)), h)

	rep, err := Logs(ctx, s.endpoint, LogsRequest{Names: []string{"worker"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rep.Records {
		got = append(got, string(r.AppendJSON(nil)))
	}
	if len(got) != 2 || !strings.Contains(got[1], `"@message":"hello worker.1"`) || !strings.HasSuffix(got[1], `"node":"worker.1","n":1000}`) || rep.Next != 4 {
		t.Fatalf("got %q next %d, want the two workers' records, n:1000, next 4", got, rep.Next)
	}
	rep, err = Logs(ctx, s.endpoint, LogsRequest{After: 3})
	if err != nil || len(rep.Records) != 1 || rep.Records[0].Instance != "sink" {
		t.Fatalf("after 3: got %+v, %v; want sink's record", rep, err)
	}

	// A handler without a log says so.
	plain := serve(ctx, t, Endpoint(runtimeDir(t)), &fakeHandler{name: "plain"})
	if _, err := Logs(ctx, plain.endpoint, LogsRequest{}); err == nil || err.Error() != "this topology keeps no log" {
		t.Errorf("no log: got %v, want \"this topology keeps no log\"", err)
	}
}
