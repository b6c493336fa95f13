package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/spec"
)

const lsUsage = `usage: ztopo ls [--json] [-q]

Lists the topologies running on this machine (under this user's runtime
directory, $XDG_RUNTIME_DIR/ztopo or /tmp/ztopo-UID):

  NAME     the topology name (NAME@HOST for one host's share)
  STATE    starting, running, degraded or stopping
  NODES    instances running (or completed) / all instances
  UPTIME   since ztopo up started
  PID      of ztopo up
  FILE     the topology file

-q prints the names only; --json the list as JSON.

Exit status: 0 ok (also when none runs), 2 wrong usage.
`

// lsEntry is one running topology.
type lsEntry struct {
	Name          string  `json:"name"`
	State         string  `json:"state"`
	Running       int     `json:"running"`   // instances running or completed
	Instances     int     `json:"instances"` // all instances
	UptimeSeconds float64 `json:"uptime_seconds"`
	PID           int     `json:"pid"`
	File          string  `json:"file"`
	endpoint      string
}

func runLs(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("ls")
	asJSON := fs.Bool("json", false, "")
	quiet := fs.Bool("q", false, "")
	if code, ok := parseFlags(fs, "ls", lsUsage, args, stdout, stderr); !ok {
		return code
	}
	list := runningTopologies(context.Background())
	switch {
	case *asJSON:
		if list == nil {
			list = []lsEntry{}
		}
		return printJSON("ls", list, stdout, stderr)
	case *quiet:
		for _, e := range list {
			fmt.Fprintln(stdout, e.Name)
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tNODES\tUPTIME\tPID\tFILE")
	for _, e := range list {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%d\t%s\n", e.Name, e.State, e.Running, e.Instances, uptimeText(e.UptimeSeconds), e.PID, e.File)
	}
	tw.Flush()
	return exitOK
}

// runtimeBase is the directory holding the runtime directory of every
// topology of this user.
func runtimeBase() string { return filepath.Dir(spec.DefaultRuntimeDir("x")) }

// runningTopologies asks every control socket under runtimeBase, at once,
// for its status; those that do not answer are not running. Sorted by name.
func runningTopologies(ctx context.Context) []lsEntry {
	dirs, _ := os.ReadDir(runtimeBase())
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		list []lsEntry
	)
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := filepath.Join(runtimeBase(), d.Name())
		if _, err := os.Stat(filepath.Join(dir, control.SocketName)); err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			endpoint := control.Endpoint(dir)
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			st, err := control.Status(cctx, endpoint)
			if err != nil {
				return
			}
			e := lsEntry{Name: d.Name(), State: st.State, Instances: len(st.Nodes), UptimeSeconds: st.UptimeSeconds, PID: st.PID, File: st.File, endpoint: endpoint}
			for _, n := range st.Nodes {
				if n.State == "running" || n.State == "completed" {
					e.Running++
				}
			}
			mu.Lock()
			list = append(list, e)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list
}

// soleTarget is the one running topology, for verbs given no FILE|NAME.
func soleTarget() (target, error) {
	list := runningTopologies(context.Background())
	switch len(list) {
	case 0:
		return target{}, fmt.Errorf("no topology is running; give a topology file or name")
	case 1:
		return target{name: list[0].Name, endpoint: list[0].endpoint}, nil
	}
	names := make([]string, len(list))
	for i, e := range list {
		names[i] = e.Name
	}
	return target{}, fmt.Errorf("%d topologies are running (%s); say which", len(list), strings.Join(names, ", "))
}

// targetAndNodes reads [FILE|NAME] [NODE...]: the first argument is the
// topology when it is a file or the name of a running topology; otherwise,
// when exactly one topology runs, every argument is a node of that one.
func targetAndNodes(pos []string) (target, []string, error) {
	if len(pos) == 0 {
		tg, err := soleTarget()
		return tg, nil, err
	}
	if fi, err := os.Stat(pos[0]); err == nil && !fi.IsDir() {
		tg, err := resolveTarget(pos[0], "")
		return tg, pos[1:], err
	}
	list := runningTopologies(context.Background())
	for _, e := range list {
		if e.Name == pos[0] {
			return target{name: e.Name, endpoint: e.endpoint}, pos[1:], nil
		}
	}
	if len(list) == 1 {
		return target{name: list[0].Name, endpoint: list[0].endpoint}, pos, nil
	}
	if _, err := resolveTarget(pos[0], ""); err != nil {
		return target{}, nil, err
	}
	if len(list) == 0 {
		return target{}, nil, fmt.Errorf("no topology %q is running", pos[0])
	}
	names := make([]string, len(list))
	for i, e := range list {
		names[i] = e.Name
	}
	return target{}, nil, fmt.Errorf("no topology %q is running (running: %s)", pos[0], strings.Join(names, ", "))
}
