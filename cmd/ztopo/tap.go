package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/runtime/tap"
)

const tapUsage = `usage: ztopo tap [--host NAME] [-n N] [--json] [--record FILE] [FILE|NAME] NODE.SOCKET

Prints the messages passing a socket of a running topology, as they pass:

  18:42:01.123456 worker.1.in  in  "job 17"
  18:42:01.123502 worker.1.out out "JOB 17"
  18:42:01.123530 broker.frontend in  0x00800041a7 "" | "hello"

time, instance and socket, direction (in: the socket received it; out:
it sent it), then the frames: quoted text when printable, else 0x and hex;
routing envelope frames (a ROUTER's peer identity, ...) come before a |.
Frames longer than 256 bytes are cut (their size is shown).

NODE is an instance (worker.1) or a node (worker: every replica, each
line names the instance). Attaching and detaching never changes what the
topology delivers; nothing is copied while no tap is attached. The copies
wait in a bounded buffer (4096 messages) inside ztopo up: when this tap
cannot keep up, copies are lost, never the topology slowed down, and tap
says how many at exit. Sockets of process and command nodes and of the
proxy builtin cannot be tapped (their messages never pass through ztopo).

Without FILE|NAME, the one topology running is meant.

Flags:
  -n N            stop after N messages
  --json          one JSON object per message (frames in base64; the
                  capture format of docs/operating.md)
  --record FILE   also write the messages to FILE in the capture format,
                  for the replay builtin
  --host NAME     the share of host NAME (a topology run with up --host)

Exit status: 0 ok (also when interrupted, or when the topology stops),
1 no such topology, node or socket, or the socket cannot be tapped,
2 wrong usage.
`

// tapPoll is how often tap asks for copies when the last ask brought none.
const tapPoll = 50 * time.Millisecond

func runTap(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("tap")
	count := fs.Int("n", 0, "")
	asJSON := fs.Bool("json", false, "")
	record := fs.String("record", "", "")
	host := fs.String("host", "", "")
	pos, code, ok := parseArgs(fs, "tap", tapUsage, args, stdout, stderr)
	if !ok {
		return code
	}
	if *count < 0 {
		return usageError(stderr, "tap", tapUsage, "-n must not be negative, got %d", *count)
	}
	if len(pos) == 0 {
		return usageError(stderr, "tap", tapUsage, "no NODE.SOCKET given")
	}
	if len(pos) > 2 {
		return usageError(stderr, "tap", tapUsage, "want [FILE|NAME] NODE.SOCKET, got %d arguments", len(pos))
	}
	what := pos[len(pos)-1]
	i := strings.LastIndexByte(what, '.')
	if i <= 0 || i == len(what)-1 {
		return usageError(stderr, "tap", tapUsage, "%q is not NODE.SOCKET (worker.out, worker.1.out)", what)
	}
	nodeName, sockName := what[:i], what[i+1:]

	var tg target
	var err error
	switch {
	case *host != "" && len(pos) == 2:
		tg, err = resolveTarget(pos[0], *host)
	case *host != "":
		return usageError(stderr, "tap", tapUsage, "--host needs FILE|NAME")
	case len(pos) == 2:
		var rest []string
		tg, rest, err = targetAndNodes(pos[:1])
		if err == nil && len(rest) > 0 {
			err = fmt.Errorf("no topology %q is running", pos[0])
		}
	default:
		tg, err = soleTarget()
	}
	if err != nil {
		return fail(stderr, "tap", err)
	}

	// The names, for a clear error with a suggestion.
	st, err := tg.status(context.Background(), control.VerbStatus)
	if err != nil {
		return fail(stderr, "tap", err)
	}
	if err := tg.unknownNode(st, []string{nodeName}); err != nil {
		return fail(stderr, "tap", err)
	}
	width := 0
	for _, n := range st.Nodes {
		if n.Name == nodeName || n.Node == nodeName {
			width = max(width, len(n.Name)+1+len(sockName))
		}
	}

	var rec *bufio.Writer
	if *record != "" {
		f, err := os.Create(*record)
		if err != nil {
			fmt.Fprintf(stderr, "ztopo tap: --record: %v\n", err)
			return exitFailure
		}
		defer f.Close()
		rec = bufio.NewWriter(f)
		defer rec.Flush()
	}

	tr, err := control.Tap(context.Background(), tg.endpoint, control.TapRequest{Node: nodeName, Socket: sockName})
	if err = tg.plain(err); err != nil {
		return fail(stderr, "tap", err)
	}
	fmt.Fprintf(stderr, "tapping %s.%s of topology %s (%s); Ctrl-C to stop\n", nodeName, sockName, tg.name, strings.Join(tr.Instances, ", "))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	shown := 0
	var lost uint64
	var buf []byte
	// show prints what came; it reports whether tap is done (-n reached,
	// or stdout gone).
	show := func(records []tap.Record) bool {
		buf = buf[:0]
		done := false
		for i := range records {
			if *count > 0 && shown >= *count {
				done = true
				break
			}
			r := &records[i]
			if *asJSON {
				buf = tap.AppendJSON(buf, r)
			} else {
				buf = tap.AppendText(buf, r, width)
			}
			if rec != nil {
				if _, err := rec.Write(tap.AppendJSON(nil, r)); err != nil {
					fmt.Fprintf(stderr, "ztopo tap: --record: %v\n", err)
					done = true
				}
			}
			shown++
		}
		if *count > 0 && shown >= *count {
			done = true
		}
		if _, err := stdout.Write(buf); err != nil {
			return true // the reader went away (tap | head)
		}
		return done
	}
	finish := func(why string) int {
		cctx, cancel := context.WithTimeout(context.Background(), control.DefaultTimeout)
		rep, err := control.Untap(cctx, tg.endpoint, control.TapReadRequest{ID: tr.ID})
		cancel()
		if err == nil {
			if why == "" {
				show(rep.Records) // what came since the last read, up to -n
			}
			lost = rep.Lost
		}
		if why != "" {
			fmt.Fprintln(stderr, why)
		}
		if rec != nil {
			if err := rec.Flush(); err != nil {
				fmt.Fprintf(stderr, "ztopo tap: --record: %v\n", err)
				return exitFailure
			}
		}
		tapSummary(stderr, shown, lost)
		return exitOK
	}
	for {
		cctx, cancel := context.WithTimeout(ctx, control.DefaultTimeout)
		rep, err := control.TapRead(cctx, tg.endpoint, control.TapReadRequest{ID: tr.ID})
		cancel()
		switch {
		case ctx.Err() != nil:
			return finish("")
		case err != nil && !answers(tg):
			fmt.Fprintf(stderr, "topology %s stopped\n", tg.name)
			tapSummary(stderr, shown, lost)
			return exitOK
		case err != nil:
			return fail(stderr, "tap", err)
		}
		lost = rep.Lost
		if show(rep.Records) {
			return finish("")
		}
		if rep.More {
			continue
		}
		select {
		case <-ctx.Done():
			return finish("")
		case <-time.After(tapPoll):
		}
	}
}

// tapSummary is tap's last line.
func tapSummary(w io.Writer, shown int, lost uint64) {
	if lost == 0 {
		fmt.Fprintf(w, "%d messages shown, 0 copies lost\n", shown)
		return
	}
	fmt.Fprintf(w, "%d messages shown, %d copies lost: the tap did not keep up (the topology lost nothing)\n", shown, lost)
}
