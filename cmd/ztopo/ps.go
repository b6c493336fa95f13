package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/spec"
)

const psUsage = `usage: ztopo ps [--json] [-w] [--host HOST] [FILE|NAME]

Lists each node instance of a running topology, found by its file or its
name:

  NODE      the instance (worker.2 for a replica)
  STATE     starting, running, completed, restarting, failed or stopped
  PID       the process of a "run: process" or command node, else goroutine
  RESTARTS  restarts under the node's restart policy
  UPTIME    since the current run started (starting or running nodes)
  IN, OUT   messages received and sent, summed over the node's sockets;
            RECEIVED/EXPECT for a count sink, SENT/COUNT for a generate
  RATE      messages per second in/out, sampled by ztopo up over the
            last 2 seconds (5 for process nodes, which report their
            counters once a second)

-w (wide) adds RUN (goroutine or process), SOCKETS (each socket as
NAME:TYPE with its endpoints, @ for bound, > for connected:
in:PULL@ipc:///run/.../in.sock out:PUSH>tcp://127.0.0.1:5558) and the
last ERROR of the instance, nothing cut.

Without FILE|NAME, the one topology running is meant (an error lists them
when several run).

--json prints the instances as a JSON array (the "nodes" of
'ztopo status --json').

With --host HOST (or NAME@HOST), the share of that host, as run by
'ztopo up --host HOST'.

Exit status: 0 ok, 1 no such topology is running, 2 wrong usage.
`

func runPs(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("ps")
	asJSON := fs.Bool("json", false, "")
	wide := fs.Bool("w", false, "")
	_, st, code, ok := parseStatus(fs, "ps", psUsage, args, stdout, stderr, control.VerbPs)
	if !ok {
		return code
	}
	if *asJSON {
		return printJSON("ps", st.Nodes, stdout, stderr)
	}
	if *wide {
		return psWide(st, stdout)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tPID\tRESTARTS\tUPTIME\tIN\tOUT\tRATE")
	for _, n := range st.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s/%s\n",
			n.Name, n.State, pidText(n), n.Restarts, uptimeText(n.UptimeSeconds),
			progressText(n.MsgsIn, n.ExpectIn), progressText(n.MsgsOut, n.ExpectOut), rateText(n.RateIn), rateText(n.RateOut))
	}
	tw.Flush()
	return exitOK
}

// target is a running topology as named on the command line.
type target struct {
	name     string
	endpoint string // its control socket
}

// parseTarget adds --host to fs, parses args and resolves the one
// FILE|NAME they give: the start of every verb that acts on one running
// topology, a host's share of it with --host.
func parseTarget(fs *flag.FlagSet, verb, usage string, args []string, stdout, stderr io.Writer) (target, int, bool) {
	host := fs.String("host", "", "")
	pos, code, ok := parseArgs(fs, verb, usage, args, stdout, stderr)
	if !ok {
		return target{}, code, false
	}
	return oneTarget(verb, usage, pos, *host, stderr)
}

// parseStatus is parseTarget, then the topology's status (ask: ps or
// status, which answer the same), failing as verb when it cannot be had:
// the start of the verbs that begin from what is running.
func parseStatus(fs *flag.FlagSet, verb, usage string, args []string, stdout, stderr io.Writer, ask string) (target, control.StatusReply, int, bool) {
	tg, code, ok := parseTarget(fs, verb, usage, args, stdout, stderr)
	if !ok {
		return tg, control.StatusReply{}, code, false
	}
	st, err := tg.status(context.Background(), ask)
	if err != nil {
		return tg, st, fail(stderr, verb, err), false
	}
	return tg, st, exitOK, true
}

// oneTarget checks that at most one FILE|NAME was given and resolves it,
// or finds the one topology running; host is a --host, "" for a topology
// run whole.
func oneTarget(verb, usage string, pos []string, host string, stderr io.Writer) (target, int, bool) {
	switch len(pos) {
	case 0:
		tg, err := soleTarget()
		if err != nil {
			return target{}, fail(stderr, verb, err), false
		}
		return tg, exitOK, true
	case 1:
	default:
		return target{}, usageError(stderr, verb, usage, "want one topology file or name, got %d", len(pos)), false
	}
	tg, err := resolveTarget(pos[0], host)
	if err != nil {
		return target{}, fail(stderr, verb, err), false
	}
	return tg, exitOK, true
}

// resolveTarget reads FILE|NAME: a path to an existing file is a topology
// file, whose name (and runtime directory) is what `ztopo up` of that file
// used; anything else is a topology name, NAME@HOST for one host's share.
// A file that no longer validates (being edited, say) still names its
// topology if its name can be read. host is the verb's --host.
func resolveTarget(arg, host string) (target, error) {
	if fi, err := os.Stat(arg); err == nil && !fi.IsDir() {
		t, ds := spec.Load(arg, loadOptions(host, nil))
		if t != nil {
			return target{name: shareName(t.Name, host), endpoint: control.Endpoint(t.RuntimeDir)}, nil
		}
		name := fileName(arg)
		if name == "" {
			return target{}, ds
		}
		return nameTarget(name, host), nil
	}
	if n, h, ok := strings.Cut(arg, "@"); ok && spec.ValidName(n) && spec.ValidName(h) {
		if host != "" && host != h {
			return target{}, fmt.Errorf("%q names host %q, but --host says %q", arg, h, host)
		}
		return nameTarget(n, h), nil
	}
	if strings.ContainsRune(arg, '/') || strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml") {
		return target{}, fmt.Errorf("%s: no such topology file", arg)
	}
	if !spec.ValidName(arg) {
		return target{}, fmt.Errorf("%q is neither a topology file nor a topology name", arg)
	}
	return nameTarget(arg, host), nil
}

// nameTarget is the running topology of a name, or of its share on host.
func nameTarget(name, host string) target {
	if host == "" {
		return target{name: name, endpoint: control.Endpoint(spec.DefaultRuntimeDir(name))}
	}
	return target{name: shareName(name, host), endpoint: control.Endpoint(spec.ShareRuntimeDir(name, host))}
}

// shareName is how a host's share of a topology is named: NAME@HOST.
func shareName(name, host string) string {
	if host == "" {
		return name
	}
	return name + "@" + host
}

// fileName is the literal name of a topology file that does not validate,
// or "".
func fileName(path string) string {
	data, err := spec.ReadTopology(path)
	if err != nil {
		return ""
	}
	f, _ := spec.ReadFile(path, data)
	if f == nil || f.Name == nil || !spec.ValidName(f.Name.Text) {
		return ""
	}
	return f.Name.Text
}

// call sends verb to the topology's control socket; an error says plainly
// when the topology is not running.
func (tg target) call(ctx context.Context, verb string, out any) error {
	return tg.plain(control.Call(ctx, tg.endpoint, verb, out))
}

// unknownNode is the error for the first of names that is neither an
// instance nor a node of st (nor one of extra), with a did-you-mean; nil
// when every one is known.
func (tg target) unknownNode(st control.StatusReply, names []string, extra ...string) error {
	candidates := append(append([]string(nil), extra...), st.Names()...)
	for _, n := range names {
		if !slices.Contains(candidates, n) {
			return fmt.Errorf("topology %s has no node or instance %q%s", tg.name, n, didYouMean(n, candidates))
		}
	}
	return nil
}

// plain says plainly that the topology is not running when err says that
// nothing serves its control socket.
func (tg target) plain(err error) error {
	if errors.Is(err, control.ErrNotRunning) {
		return fmt.Errorf("no topology %q is running", tg.name)
	}
	return err
}

// status asks the topology for its status (verb: ps or status, which
// answer the same); an error says plainly when it is not running.
func (tg target) status(ctx context.Context, verb string) (control.StatusReply, error) {
	var st control.StatusReply
	err := tg.call(ctx, verb, &st)
	return st, err
}

func printJSON(verb string, v any, stdout, stderr io.Writer) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fail(stderr, verb, err)
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return exitOK
}

func pidText(n control.InstanceStatus) string {
	switch {
	case n.PID > 0:
		return strconv.Itoa(n.PID)
	case n.Run == "goroutine":
		return "goroutine"
	}
	return "-"
}

// uptimeText is a compact duration, docker-style precision: 45s, 3m12s,
// 2h5m, 3d4h; "-" for none.
func uptimeText(sec float64) string {
	if sec <= 0 {
		return "-"
	}
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// rateText is a message rate with at most three significant digits:
// 0, 7.5, 840, 12.3k, 1.05M.
func rateText(r float64) string {
	switch {
	case r <= 0:
		return "0"
	case r < 10:
		return strconv.FormatFloat(math.Round(r*10)/10, 'f', -1, 64)
	case r < 999.5:
		return strconv.FormatFloat(math.Round(r), 'f', -1, 64)
	case r < 999.5e3:
		return strconv.FormatFloat(r/1e3, 'g', 3, 64) + "k"
	}
	return strconv.FormatFloat(r/1e6, 'g', 3, 64) + "M"
}

// psWide is ps -w.
func psWide(st control.StatusReply, stdout io.Writer) int {
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tRUN\tPID\tRESTARTS\tUPTIME\tIN\tOUT\tRATE\tSOCKETS\tERROR")
	for _, n := range st.Nodes {
		var socks []string
		for _, s := range n.Sockets {
			e := s.Name + ":" + s.Type
			for _, b := range s.Bind {
				e += "@" + b
			}
			for _, c := range s.Connect {
				e += ">" + c
			}
			socks = append(socks, e)
		}
		errText := n.Error
		if errText == "" {
			errText = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s/%s\t%s\t%s\n",
			n.Name, n.State, n.Run, pidText(n), n.Restarts, uptimeText(n.UptimeSeconds),
			progressText(n.MsgsIn, n.ExpectIn), progressText(n.MsgsOut, n.ExpectOut), rateText(n.RateIn), rateText(n.RateOut), listTextSep(socks, " "), errText)
	}
	tw.Flush()
	return exitOK
}

func listTextSep(l []string, sep string) string {
	if len(l) == 0 {
		return "-"
	}
	return strings.Join(l, sep)
}
