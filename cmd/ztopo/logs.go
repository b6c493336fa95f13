package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/runtime/logbuf"
	"github.com/ztopo/ztopo/spec"
)

const logsUsage = `usage: ztopo logs [-f] [--since DURATION] [--json] [-t] [FILE|NAME] [NODE...]

Prints the log of a running topology, foreground or detached: ztopo up
keeps its latest entries (10000 lines, 8 MiB at most) for this. Each line
starts with the node instance it is about, as docker compose prefixes a
service's output:

  worker.1  | hello from the child
  sink      | received 1000 messages in 21ms (47505 msg/s): count=1000 elapsed=21ms
  ztopo     | [WARN] reload: topo.yaml:7:5: warning: ...

Without FILE|NAME, the one topology running is meant (an error lists them
when several run). NODE filters: an instance (worker.1) or a node (worker: all its replicas);
several may be given; "ztopo" selects the lines of ztopo itself (starting,
reloading, stopping).

Flags:
  -f, --follow        keep printing new lines until interrupted (or until
                      the topology stops)
  --since DURATION    only lines of the last DURATION (10s, 5m)
  --json              one JSON object per line (the shape of up --log-format
                      json, documented in docs/operating.md)
  -t, --timestamps    show each line's time

Prefixes are coloured when stdout is a terminal and NO_COLOR is not set.

Exit status: 0 ok (also when -f ends by a signal or by the topology
stopping), 1 no such topology or node is running, 2 wrong usage.
`

// logsPoll is how often logs -f asks for new lines when there were none.
const logsPoll = 200 * time.Millisecond

func runLogs(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("logs")
	follow := fs.Bool("follow", false, "")
	fs.BoolVar(follow, "f", false, "")
	since := fs.Duration("since", 0, "")
	asJSON := fs.Bool("json", false, "")
	stamps := fs.Bool("timestamps", false, "")
	fs.BoolVar(stamps, "t", false, "")
	pos, code, ok := parseArgs(fs, "logs", logsUsage, args, stdout, stderr)
	if !ok {
		return code
	}
	if *since < 0 {
		return usageError(stderr, "logs", logsUsage, "--since must be positive, got %v", *since)
	}
	tg, names, err := targetAndNodes(pos)
	if err != nil {
		return fail(stderr, "logs", err)
	}

	// The instances, to check the filter and to line the prefixes up.
	st, err := tg.status(context.Background(), control.VerbStatus)
	if err != nil {
		return fail(stderr, "logs", err)
	}
	if err := tg.unknownNode(st, names, logbuf.SelfPrefix); err != nil {
		return fail(stderr, "logs", err)
	}
	var instances []string
	for _, n := range st.Nodes {
		instances = append(instances, n.Name)
	}

	p := &logbuf.Printer{Color: colorOK(stdout), Timestamps: *stamps}
	p.Reserve(instances...)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	req := control.LogsRequest{Names: names}
	if *since > 0 {
		req.Since = time.Now().Add(-*since)
	}
	var buf []byte
	for {
		cctx, cancel := context.WithTimeout(ctx, control.DefaultTimeout)
		rep, err := control.Logs(cctx, tg.endpoint, req)
		cancel()
		switch {
		case ctx.Err() != nil:
			return exitOK // interrupted while following
		case err != nil && *follow && req.After > 0 && !answers(tg):
			// Gone, or stopping and no longer answering: the end of -f.
			fmt.Fprintf(stderr, "topology %s stopped\n", tg.name)
			return exitOK
		case errors.Is(err, control.ErrNotRunning):
			fmt.Fprintf(stderr, "ztopo logs: no topology %q is running\n", tg.name)
			return exitFailure
		case err != nil:
			return fail(stderr, "logs", err)
		}
		if rep.Lost > 0 && req.After > 0 {
			fmt.Fprintf(stderr, "ztopo logs: %d lines were dropped from the buffer before they could be read\n", rep.Lost)
		}
		buf = buf[:0]
		for i := range rep.Records {
			if *asJSON {
				buf = append(rep.Records[i].AppendJSON(buf), '\n')
			} else {
				buf = p.Append(buf, &rep.Records[i])
			}
		}
		if _, err := stdout.Write(buf); err != nil {
			return exitOK // the reader went away (logs | head)
		}
		req.After = rep.Next
		if len(rep.Records) == control.MaxLogRecords {
			continue
		}
		if !*follow {
			return exitOK
		}
		select {
		case <-ctx.Done():
			return exitOK
		case <-time.After(logsPoll):
		}
	}
}

// newUpLogger is up's logger: every entry is kept for ztopo logs and
// written to w, compose-style text (coloured on a terminal) or JSON lines.
func newUpLogger(w io.Writer, json bool, level hclog.Level) (hclog.Logger, *logbuf.Sink) {
	return logbuf.NewLogger(logbuf.Options{
		Name:   "ztopo",
		Level:  level,
		Output: w,
		JSON:   json,
		Color:  !json && colorOK(w),
	})
}

// instanceNames are t's node instances.
func instanceNames(t *spec.Topology) []string {
	out := make([]string, len(t.Nodes))
	for i, n := range t.Nodes {
		out[i] = n.Name
	}
	return out
}

// colorOK says whether w is a terminal that takes colours: not with
// NO_COLOR set (no-color.org) nor TERM=dumb.
func colorOK(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// answers reports whether the topology's control socket still answers.
func answers(tg target) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return control.Call(ctx, tg.endpoint, control.VerbPing, nil) == nil
}
