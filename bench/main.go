// Command bench measures ztopo against the code it replaces. Each scenario
// runs as a ztopo topology (YAML text built here, parsed by spec and run
// in-process by engine.Run), as its hand-written pebbe/zmq4 equivalent, and,
// where that is natural, as a pyzmq script (bench/py/zbench.py). The runs
// alternate (ztopo, go, py, ztopo, go, py, ...) so that the three see the
// same machine, and the table shows medians and the ratios ztopo/go and
// ztopo/py. Where it means something, a C program against libzmq
// (bench/c/zbench.c, compiled by the bench with the system compiler) runs
// beside them: ztopo/c is how far ztopo is from what libzmq itself does.
//
// Every run is a fresh child process (this program re-executed, or python3):
// a run never inherits another's heap, threads, sockets or ZeroMQ context,
// and RSS and thread counts mean something. Each run times the whole
// program it stands for, from creating the first context to terminating the
// last, so start-up and shutdown costs are part of every figure.
//
//	go run ./bench                      # the whole suite, 5 rounds
//	go run ./bench -only 'pipeline|stage' -rounds 3
//	go run ./bench -quick               # a smoke run with tiny counts
//	go run ./bench -json results.json -cpuprofile /tmp/prof
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"
)

func main() {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is the parsed command line of a suite run.
type config struct {
	rounds     int
	only       *regexp.Regexp
	quick      bool
	jsonPath   string
	impls      []string
	python     string
	pyScript   string
	cBin       string // the compiled C baseline; runSuite builds it when empty
	plugin     string // the upper-go plugin runSuite built for its children
	wasm       string // the upper wasm module runSuite built for its children
	timeout    time.Duration
	cpuprofile string // directory for one CPU profile per Go child run
	list       bool
	compare    string // a bench binary of another build: run its ztopo side against this one's
	compareDir string // the working directory of compare's children
	// ownClients: every implementation times round trips with its own
	// client (the Go one in-process for ztopo and go), as before the C
	// client timed them all; bench-compare always does (an older ref
	// knows no other).
	ownClients bool
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var only, impls, markdown string
	fs.IntVar(&c.rounds, "rounds", 5, "runs of each implementation per scenario, alternated")
	fs.StringVar(&only, "only", "", "run only the scenarios whose name matches this regular expression")
	fs.BoolVar(&c.quick, "quick", false, "tiny message counts: a smoke test of the harness, not a measurement")
	fs.StringVar(&c.jsonPath, "json", "", "write every run and the summary to this file")
	fs.StringVar(&impls, "impl", "ztopo,go,py,c", "implementations to run, comma-separated")
	fs.StringVar(&c.python, "python", "/usr/bin/python3", "the python with pyzmq")
	fs.StringVar(&c.pyScript, "py", defaultPyScript(), "the pyzmq baselines script")
	fs.DurationVar(&c.timeout, "timeout", 90*time.Second, "bound of one run; a run past it is killed and reported")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of every ztopo and go run into this directory")
	fs.BoolVar(&c.list, "list", false, "list the scenarios and exit")
	fs.StringVar(&c.compare, "compare", "", "a bench binary of another build (make bench-compare REF=rev): run its ztopo side and this one's alternately and print new/ref")
	fs.StringVar(&c.compareDir, "compare-dir", "", "the source tree of the -compare binary, its children's working directory")
	fs.StringVar(&markdown, "markdown", "", "print the summary of a -json results file as a markdown table (the README's Speed table) and exit")
	fs.BoolVar(&c.ownClients, "own-clients", false, "time round trips with each implementation's own client (the Go one in-process for ztopo and go), not the one C client process")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var err error
	if c.only, err = regexp.Compile(only); err != nil {
		fmt.Fprintf(stderr, "bench: -only: %v\n", err)
		return 2
	}
	if c.rounds < 1 {
		fmt.Fprintln(stderr, "bench: -rounds must be at least 1")
		return 2
	}
	for _, i := range strings.Split(impls, ",") {
		switch i = strings.TrimSpace(i); i {
		case implZtopo, implGo, implPy, implC:
			c.impls = append(c.impls, i)
		case "":
		default:
			fmt.Fprintf(stderr, "bench: -impl: unknown implementation %q (want ztopo, go, py or c)\n", i)
			return 2
		}
	}
	if markdown != "" {
		if err := markdownMain(markdown, stdout); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		return 0
	}
	if c.list {
		for _, s := range scenarios() {
			if c.only.MatchString(s.Name) {
				fmt.Fprintf(stdout, "%-24s %s\n", s.Name, s.Desc)
			}
		}
		return 0
	}
	if c.cpuprofile != "" {
		if err := os.MkdirAll(c.cpuprofile, 0o755); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
	}
	if c.compare != "" {
		c.ownClients = true
		return compareMain(c, stdout, stderr)
	}
	suite, err := runSuite(context.Background(), c, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	printTable(stdout, suite)
	return finish(c.jsonPath, suite, suite.Failed, stderr)
}

func compareMain(c config, stdout, stderr io.Writer) int {
	cmp, err := runCompare(context.Background(), c, c.compare, c.compareDir, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	printComparison(stdout, cmp)
	return finish(c.jsonPath, cmp, cmp.Failed, stderr)
}

// finish writes v, with its failed runs, to the -json path and returns the
// exit status: 1 when that fails or a run failed.
func finish(jsonPath string, v any, failed int, stderr io.Writer) int {
	if err := writeJSON(jsonPath, v); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "bench: %d runs failed\n", failed)
		return 1
	}
	return 0
}

// writeJSON writes v to path, indented; nothing when path is "".
func writeJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// defaultPyScript finds bench/py/zbench.py next to this source file, which
// is where it is when the program runs through `go run ./bench` or `go test`
// from a checkout.
func defaultPyScript() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("bench", "py", "zbench.py")
	}
	return filepath.Join(filepath.Dir(file), "py", "zbench.py")
}

// Invocation is what a suite and a comparison say about how they were run.
type Invocation struct {
	Machine Machine `json:"machine"`
	Command string  `json:"command"`
	Rounds  int     `json:"rounds"`
	Quick   bool    `json:"quick"`
}

func invocation(c config) Invocation {
	return Invocation{
		Machine: machine(c.python),
		Command: strings.Join(append([]string{"go run ./bench"}, os.Args[1:]...), " "),
		Rounds:  c.rounds,
		Quick:   c.quick,
	}
}

// Suite is everything one invocation measured; it is what -json writes.
type Suite struct {
	Invocation
	Runs    []Result  `json:"runs"`
	Summary []Row     `json:"summary"`
	Later   []Pending `json:"later,omitempty"`
	Failed  int       `json:"failed"`
}

// Pending is a scenario of issue 7 that is not measured yet, and why.
type Pending struct {
	Scenario string `json:"scenario"`
	Reason   string `json:"reason"`
}

// Machine says where the figures come from.
type Machine struct {
	Date   string `json:"date"`
	NumCPU int    `json:"nproc"`
	CPU    string `json:"cpu"`
	Go     string `json:"go"`
	LibZMQ string `json:"libzmq"`
	PyZMQ  string `json:"pyzmq,omitempty"`
	Kernel string `json:"kernel,omitempty"`
	// LoadAvg and LoadAfter are /proc/loadavg's load averages (1, 5 and
	// 15 minutes) when the suite started and when it ended.
	LoadAvg   string `json:"loadavg,omitempty"`
	LoadAfter string `json:"loadavg_after,omitempty"`
}

func runSuite(ctx context.Context, c config, progress io.Writer) (*Suite, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	s := &Suite{Invocation: invocation(c)}
	if s.Machine.PyZMQ == "" && contains(c.impls, implPy) {
		fmt.Fprintf(progress, "bench: %s has no pyzmq; skipping the python baselines\n", c.python)
		c.impls = remove(c.impls, implPy)
	}
	if contains(c.impls, implZtopo) && c.needsPlugin() && os.Getenv(pluginEnv) == "" {
		bin, removePlugin, err := buildUpperPlugin("")
		if err != nil {
			return nil, err
		}
		defer removePlugin()
		c.plugin = bin
	}
	if contains(c.impls, implZtopo) && c.needsWasm() && os.Getenv(wasmEnv) == "" {
		path, removeWasm, err := buildUpperWasm()
		if err != nil {
			return nil, err
		}
		defer removeWasm()
		c.wasm = path
	}
	if c.cBin == "" && ((contains(c.impls, implC) && c.needs(implC)) || c.needsCClient()) {
		bin, removeC, err := buildC()
		if err != nil {
			return nil, fmt.Errorf("building the C baseline (-impl without c skips it): %w", err)
		}
		defer removeC()
		c.cBin = bin
	}
	load := map[string][2]float64{}
	for _, sc := range scenarios() {
		if !c.only.MatchString(sc.Name) {
			continue
		}
		if sc.Later != "" {
			s.Later = append(s.Later, Pending{sc.Name, sc.Later})
			continue
		}
		before := load1()
		for round := 1; round <= c.rounds; round++ {
			for _, impl := range c.impls {
				if !sc.has(impl) {
					continue
				}
				r := runOne(ctx, c, exe, sc, impl, round)
				s.Runs = append(s.Runs, r)
				if r.Err != "" {
					s.Failed++
				}
				fmt.Fprintf(progress, "%-24s %-5s round %d: %s\n", sc.Name, impl, round, r.brief())
			}
			for _, peer := range sc.Peers {
				ps, ok := scenarioNamed(peer.Scenario)
				if !ok || !contains(c.impls, implZtopo) {
					continue
				}
				r := runOne(ctx, c, exe, ps, implZtopo, round)
				r.Scenario, r.Impl = sc.Name, peer.Impl
				s.Runs = append(s.Runs, r)
				if r.Err != "" {
					s.Failed++
				}
				fmt.Fprintf(progress, "%-24s %-5s round %d: %s\n", sc.Name, peer.Impl, round, r.brief())
			}
		}
		load[sc.Name] = [2]float64{before, load1()}
	}
	s.Machine.LoadAfter = loadAvg()
	s.Summary = summarize(s.Runs, load)
	return s, nil
}

func scenarioNamed(name string) (Scenario, bool) {
	for _, s := range scenarios() {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// runOne runs one scenario in one implementation as a child process and
// checks that it moved exactly the messages it should have.
func runOne(ctx context.Context, c config, exe string, sc Scenario, impl string, round int) Result {
	return runOneIn(ctx, c, exe, "", sc, impl, round)
}

// runOneIn is runOne with the child's working directory dir ("": this
// process's).
func runOneIn(ctx context.Context, c config, exe, dir string, sc Scenario, impl string, round int) Result {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	p := sc.params(c.quick)
	if sc.CClient && !c.ownClients {
		p.Client = c.cBin
	}
	var cmd *exec.Cmd
	switch impl {
	case implPy:
		cmd = exec.CommandContext(ctx, c.python, append([]string{c.pyScript}, sc.extArgs(sc.Py, p)...)...)
	case implC:
		cmd = exec.CommandContext(ctx, c.cBin, sc.extArgs(sc.C, p)...)
	default:
		args := []string{"-scenario", sc.Name, "-impl", impl}
		if c.quick {
			args = append(args, "-quick")
		}
		if c.cpuprofile != "" {
			args = append(args, "-cpuprofile", filepath.Join(c.cpuprofile, fmt.Sprintf("%s-%s-%d.pprof", strings.ReplaceAll(sc.Name, "/", "_"), impl, round)))
		}
		cmd = exec.CommandContext(ctx, exe, args...)
		cmd.Env = append(os.Environ(), childEnv+"=1")
		if p.Client != "" {
			cmd.Env = append(cmd.Env, clientEnv+"="+p.Client)
		}
		if c.plugin != "" {
			cmd.Env = append(cmd.Env, pluginEnv+"="+c.plugin)
		}
		if c.wasm != "" {
			cmd.Env = append(cmd.Env, wasmEnv+"="+c.wasm)
		}
	}
	cmd.Dir = dir
	// A hung run must not hang the suite: after the bound it is killed,
	// and WaitDelay stops waiting for pipes its children may hold.
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Scenario: sc.Name, Impl: impl, Round: round}
	if line := lastLine(stdout.String()); line != "" {
		if jerr := json.Unmarshal([]byte(line), &r); jerr != nil && err == nil {
			err = fmt.Errorf("unreadable result %q: %v", line, jerr)
		}
		r.Scenario, r.Impl, r.Round = sc.Name, impl, round
	} else if err == nil {
		err = errors.New("no result printed")
	}
	switch {
	case ctx.Err() != nil:
		r.Err = fmt.Sprintf("killed after %v", c.timeout)
	case err != nil && r.Err == "":
		r.Err = err.Error()
	}
	if ps := cmd.ProcessState; ps != nil && r.Msgs > 0 {
		r.CPUusPerMsg = float64((ps.UserTime() + ps.SystemTime()).Microseconds()) / float64(r.Msgs)
	}
	if r.Err == "" && r.Expected != r.Msgs {
		r.Err = fmt.Sprintf("moved %d messages, want %d", r.Msgs, r.Expected)
	}
	if r.Err != "" {
		if tail := tailLines(stderr.String(), 8); tail != "" {
			r.Err += "\n" + tail
		}
	}
	return r
}

// needsPlugin says whether a scenario the run selects runs the upper-go
// plugin.
func (c config) needsPlugin() bool {
	for _, sc := range scenarios() {
		if c.only.MatchString(sc.Name) && sc.Later == "" && strings.HasPrefix(sc.Name, "plugin/") && !strings.Contains(sc.Name, "exec") {
			return true
		}
	}
	return false
}

// needsWasm says whether a scenario the run selects runs the upper wasm
// module.
func (c config) needsWasm() bool {
	for _, sc := range scenarios() {
		if c.only.MatchString(sc.Name) && sc.Later == "" && strings.HasPrefix(sc.Name, "stage/wasm") && !strings.Contains(sc.Name, "minimal") {
			return true
		}
	}
	return false
}

// needsCClient says whether a scenario the run selects is timed by the C
// client.
func (c config) needsCClient() bool {
	if c.ownClients {
		return false
	}
	for _, sc := range scenarios() {
		if c.only.MatchString(sc.Name) && sc.Later == "" && sc.CClient {
			return true
		}
	}
	return false
}

// needs says whether a scenario the run selects has impl.
func (c config) needs(impl string) bool {
	for _, sc := range scenarios() {
		if c.only.MatchString(sc.Name) && sc.Later == "" && sc.has(impl) {
			return true
		}
	}
	return false
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func remove(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}
