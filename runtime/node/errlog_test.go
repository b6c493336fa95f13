package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/internal/socktest"
	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

// A handler that fails every message gives a log line a second with a
// count, not one line per message; errors the handler already reported
// (a crashed child's losses) are not logged again at all.
func TestHandlerErrorsRateLimited(t *testing.T) {
	zctx := socktest.Context(t)
	in, out := "inproc://errlog-in", "inproc://errlog-out"
	var seen atomic.Int64
	h := handler.HandlerFunc(func(_ context.Context, m handler.Msg) ([][]byte, error) {
		seen.Add(1)
		if string(m.Frames[0]) == "reported" {
			return nil, fmt.Errorf("lost: %w", handler.ErrReported)
		}
		return nil, errors.New("bad input")
	})
	logs := &testutil.Buffer{}
	log := hclog.New(&hclog.LoggerOptions{Name: "n", Level: hclog.Debug, Output: logs})
	st := start(t, zctx, Config{Spec: pipeNode("n", in, out), Handler: h, Logger: log})
	p := peer(t, zctx, spec.PUSH, "", in)
	peer(t, zctx, spec.PULL, out, "")
	for i := range 500 {
		body := "bad"
		if i%2 == 1 {
			body = "reported"
		}
		if err := p.Send(zsocktest.Frames(body), 0); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, "500 messages handled", func() bool { return seen.Load() == 500 })
	st.cancel()
	if err := st.wait(t); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	got := logs.String()
	lines := strings.Count(got, "handler error:")
	if lines < 1 || lines > 60 {
		t.Fatalf("got %d handler error lines for 250 errors, want one a second:\n%s", lines, got)
	}
	if strings.Contains(got, "lost:") {
		t.Fatalf("an error the handler reported was logged again:\n%s", got)
	}
	// Every error is accounted for: logged, or counted in a later line.
	total := lines
	for _, f := range strings.Fields(got) {
		var n int
		if _, err := fmt.Sscanf(f, "more_errors=%d", &n); err == nil {
			total += n
		}
		if _, err := fmt.Sscanf(f, "count=%d", &n); err == nil {
			total += n
		}
	}
	if total != 250 {
		t.Fatalf("logged and counted %d errors, want 250:\n%s", total, got)
	}
}
