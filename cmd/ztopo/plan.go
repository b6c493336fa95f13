package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/spec"
)

const planUsage = `usage: ztopo plan [--json] [--host HOST] OLD NEW

Shows what a running topology would do if its file changed from OLD to NEW,
without running anything:

    + start worker.3                         a node instance added
    - stop old                               removed
    ~ restart sink                           its definition changed
        sockets.in.bind: tcp://*:5558 → tcp://*:6558   field by field
    ~ restart proc                           a run: process node's handler
        why: its handler runs in a child process ...   changed: a new child
        handler: echo → upper
    = swap handler worker.0 (echo -> upper)  only the handler or its config
    = swap handler sink (count, new config)  changed: the sockets stay open,
        config.expect: 100 → 150             nothing is lost
    * allow sink (applied to new handshakes; nothing restarts)
        sockets.in.curve.allow.b: added      a CURVE server lets more
                                             clients in (removing a key
                                             restarts it: a fresh socket)
    1 to start, 1 to stop, 2 to restart, 2 handler swaps, 1 allow-list update, 4 unchanged

or "no changes". OLD and NEW are files or git revisions of a file, REV:PATH,
read with git show: PATH is relative to the current directory (as git's
REV:./PATH), or else to the top of the work tree (as git's REV:PATH).

    ztopo plan HEAD~1:topology.yaml topology.yaml

Flags:
  --host HOST  the plan of HOST's share, as 'ztopo up --host HOST' would
               apply it: a change on another host shows here only when an
               endpoint that crosses over to HOST changed
  --json   print the plan as a JSON object for scripts:
           {"start": [...], "stop": [...], "restart": [...],
            "swap": [{"node": ..., "from": ..., "to": ...}], "allow": [...],
            "unchanged": [...],
            "changes": {"sink": {"reason": ..., "fields": [...]}}}
  --env-file FILE        variables for ${VAR} from FILE (KEY=value lines)
                         instead of the .env beside the topology file;
                         repeatable, a later file wins; the environment
                         overrides both

Exit status: 0 ok (whether or not anything changes), 1 when OLD or NEW is
invalid (their problems are printed) or cannot be read, 2 wrong usage.
`

func runPlan(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plan")
	envFiles := addEnvFileFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	host := fs.String("host", "", "")
	files, code, ok := parseArgs(fs, "plan", planUsage, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(files) != 2 {
		return usageError(stderr, "plan", planUsage, "want OLD and NEW, got %d argument(s)", len(files))
	}

	var topos [2]*spec.Topology
	failed := false
	for i, arg := range files {
		t, ds, err := loadPlanArg(arg, *host, *envFiles)
		if err != nil {
			fmt.Fprintf(stderr, "ztopo plan: %v\n", err)
			failed = true
			continue
		}
		printDiags(stderr, ds)
		if t == nil || ds.HasErrors() {
			failed = true
			continue
		}
		topos[i] = t
	}
	if failed {
		return exitFailure
	}
	old, cur := topos[0], topos[1]
	pj := control.NewPlan(old, cur, spec.Diff(old, cur))
	if *asJSON {
		return printJSON("plan", pj, stdout, stderr)
	}
	printPlan(stdout, *pj)
	return exitOK
}

func plural(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// loadPlanArg loads a file, or a git revision of one written REV:PATH. An
// existing file wins over the REV:PATH reading, so a file name holding a
// colon still works. Diagnostics of a revision name it as written
// ("HEAD~1:topology.yaml:3:5: ..."), while relative paths inside it are
// anchored at PATH's directory, as they would be once checked out.
func loadPlanArg(arg, host string, envFiles []string) (*spec.Topology, spec.Diags, error) {
	if _, err := os.Stat(arg); err == nil {
		t, ds := spec.Load(arg, loadOptions(host, envFiles))
		return t, ds, nil
	}
	rev, path, ok := strings.Cut(arg, ":")
	if !ok || rev == "" || path == "" {
		t, ds := spec.Load(arg, loadOptions(host, envFiles)) // reports the missing file
		return t, ds, nil
	}
	data, err := gitShow(rev, path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", arg, err)
	}
	t, ds := spec.Parse(path, data, loadOptions(host, envFiles))
	for i := range ds {
		if ds[i].Pos.File == path {
			ds[i].Pos.File = arg
		}
	}
	return t, ds, nil
}

// gitShow reads path at revision rev. The path is first taken relative to
// the current directory, which is what a user who also passes the file
// itself means; then, as git itself reads REV:PATH, relative to the top of
// the work tree.
func gitShow(rev, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, base := filepath.Split(filepath.Clean(path))
	if dir == "" {
		dir = "."
	}
	out, err := git(ctx, dir, "show", rev+":./"+base)
	if err == nil {
		return out, nil
	}
	if !filepath.IsAbs(path) {
		if out, err2 := git(ctx, ".", "show", rev+":"+filepath.ToSlash(path)); err2 == nil {
			return out, nil
		}
	}
	return nil, err
}

func git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &capped{max: 64 << 10, buf: &stderr}
	// A revision is a topology like any other: read through the same limit
	// (a huge blob must not fill ztopo's memory).
	var stdout bytes.Buffer
	cmd.Stdout = &capped{max: spec.MaxFileSize + 1, buf: &stdout}
	err := cmd.Run()
	out := stdout.Bytes()
	if err == nil && len(out) > spec.MaxFileSize {
		_, err = spec.ReadTopologyFrom(bytes.NewReader(out))
		return nil, err
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("git %s: %s", args[0], msg)
	}
	return out, nil
}

// capped keeps the first max bytes written to it and discards the rest
// (never failing the writer: git would die of SIGPIPE and say nothing).
type capped struct {
	max int
	buf *bytes.Buffer
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		if len(p) <= room {
			c.buf.Write(p)
		} else {
			c.buf.Write(p[:room])
		}
	}
	return len(p), nil
}
