package main

import (
	"fmt"
	"slices"
	"strconv"
)

// Implementations of a scenario.
const (
	implZtopo = "ztopo" // a topology run in-process by engine.Run
	implGo    = "go"    // hand-written pebbe/zmq4
	implPy    = "py"    // hand-written pyzmq, bench/py/zbench.py
	implC     = "c"     // hand-written C against libzmq, bench/c/zbench.c: the limit
)

// others are the implementations ztopo is compared with, in the order of
// the table's columns.
var others = []string{implGo, implPy, implC}

// Kinds of scenario: they decide which metrics a run reports.
const (
	kindThroughput = "throughput" // msg/s
	kindLatency    = "latency"    // round-trip p50 and p99
	kindStartup    = "startup"    // time to all nodes up, RSS, OS threads
)

// Scenario is one measurement of issue 7, in up to three implementations.
type Scenario struct {
	Name      string
	Desc      string
	Kind      string
	Count     int // messages (round trips for latency) of a full run
	Quick     int // the same for -quick
	Size      int // payload bytes
	Transport string
	Nodes     int // startup: goroutine nodes in the topology
	// Go and Ztopo run the scenario in this process and report what moved.
	Go, Ztopo func(p Params) (Result, error)
	// Py is zbench.py's subcommand for the pyzmq equivalent; "" when there
	// is no natural one.
	Py string
	// C is zbench.c's subcommand for the C equivalent; "" when there is
	// none.
	C string
	// CClient: every implementation's server is timed by zbench.c's
	// client, a process of its own (clientEnv, zbench's --client), so that
	// the ratios compare servers and not clients (docs/benchmarks.md).
	CClient bool
	Targets []Target
	// Peers are other scenarios whose ztopo run is repeated in each round
	// of this one, right after it, and reported under this scenario as
	// implementation Impl: the ratios of this scenario to them (Targets
	// may name them in Vs) come from runs that saw the same machine.
	Peers []Peer
	// Later is why a scenario of issue 7 is not measured yet; it is listed,
	// not run.
	Later string
}

// Peer is a scenario run beside another for a ratio between the two.
type Peer struct {
	Impl     string // the name its runs get in the other scenario's rows
	Scenario string
}

// peerNames lists the Impl names of s's peers.
func (s Scenario) peerNames() []string {
	var names []string
	for _, p := range s.Peers {
		names = append(names, p.Impl)
	}
	return names
}

// Params is what one run of a scenario needs.
type Params struct {
	Count     int
	Size      int
	Transport string
	Nodes     int
	Quick     bool
	// Client is zbench.c's binary when its client subcommand times a
	// CClient scenario's round trips; "": the implementation's own client.
	Client string
}

func (s Scenario) params(quick bool) Params {
	p := Params{Count: s.Count, Size: s.Size, Transport: s.Transport, Nodes: s.Nodes, Quick: quick}
	if quick {
		p.Count = s.Quick
	}
	return p
}

func (s Scenario) has(impl string) bool {
	switch impl {
	case implZtopo:
		return s.Ztopo != nil
	case implGo:
		return s.Go != nil
	case implPy:
		return s.Py != ""
	case implC:
		return s.C != ""
	}
	return false
}

// extArgs are the arguments of zbench.py and zbench.c for subcommand cmd.
func (s Scenario) extArgs(cmd string, p Params) []string {
	args := []string{cmd, "--count", strconv.Itoa(p.Count), "--size", strconv.Itoa(p.Size)}
	if p.Transport != "" {
		args = append(args, "--transport", p.Transport)
	}
	if s.Kind == kindLatency {
		args = append(args, "--warmup", strconv.Itoa(warmup(p)))
	}
	if s.CClient && p.Client != "" {
		args = append(args, "--client", p.Client)
	}
	return args
}

// warmup is how many round trips a latency run makes before it starts
// timing: connections are set up and caches warm by then.
func warmup(p Params) int {
	if p.Quick {
		return 10
	}
	return 1000
}

// Target is a goal of issue 7 or 20 for one metric: ztopo's figure divided by the
// Vs implementation's (or ztopo's own figure when Vs is empty) must satisfy
// Op Value.
type Target struct {
	Metric string
	Vs     string
	Op     string // ">=" or "<="
	Value  float64
}

func (t Target) String() string {
	if t.Vs == "" {
		return fmt.Sprintf("%s %s %g", t.Metric, t.Op, t.Value)
	}
	return fmt.Sprintf("ztopo/%s %s %g×", t.Vs, t.Op, t.Value)
}

func (t Target) met(v float64) bool {
	if t.Op == "<=" {
		return v <= t.Value
	}
	return v >= t.Value
}

const (
	kib = 1024
	// pipelineCount and friends size a full run at roughly one to two
	// seconds of hand-written code on a small machine (2 cores): long enough
	// for a stable figure, short enough for the suite to stay under ten
	// minutes.
	quickCount = 2000
)

// scenarios lists issue 7's measurements in the order they are run and shown.
func scenarios() []Scenario {
	var ss []Scenario
	for _, tr := range []string{"inproc", "ipc", "tcp"} {
		for _, size := range []int{16, kib} {
			count := map[string]int{"inproc": 3_000_000, "ipc": 2_000_000, "tcp": 2_000_000}[tr]
			if size == kib {
				count /= 4
			}
			var targets []Target
			if tr == "tcp" && size == 16 {
				// Issue 20: within reach of libzmq itself.
				targets = []Target{{Metric: "msg/s", Vs: implC, Op: ">=", Value: 0.6}}
			}
			ss = append(ss, Scenario{
				Name:      fmt.Sprintf("pushpull/%s/%s", tr, sizeName(size)),
				Desc:      fmt.Sprintf("PUSH -> PULL throughput, %s messages over %s", sizeName(size), tr),
				Kind:      kindThroughput,
				Count:     count,
				Quick:     quickCount,
				Size:      size,
				Transport: tr,
				Go:        goPushPull,
				Ztopo:     ztopoPushPull,
				Py:        "pushpull",
				C:         "pushpull",
				Targets:   targets,
			})
		}
	}
	ss = append(ss,
		Scenario{
			Name:      "pipeline/tcp/16B",
			Desc:      "ventilator -> 4 forwarding workers -> sink, tcp, 16 B",
			Kind:      kindThroughput,
			Count:     1_000_000,
			Quick:     quickCount,
			Size:      16,
			Transport: "tcp",
			Go:        goPipeline,
			Ztopo:     ztopoPipeline,
			Py:        "pipeline",
			C:         "pipeline",
			Targets:   []Target{{Metric: "msg/s", Vs: implGo, Op: ">=", Value: 1.2}, {Metric: "msg/s", Vs: implPy, Op: ">=", Value: 2.0}},
		},
		Scenario{
			Name:      "reqrep/direct/tcp",
			Desc:      "REQ -> REP echo round trip, tcp, 16 B (one C client process for every server)",
			Kind:      kindLatency,
			Count:     10_000,
			Quick:     200,
			Size:      16,
			Transport: "tcp",
			Go:        goReqRepDirect,
			Ztopo:     ztopoReqRepDirect,
			Py:        "reqrep",
			C:         "reqrep",
			CClient:   true,
		},
		Scenario{
			Name:      "reqrep/broker/tcp",
			Desc:      "REQ -> ROUTER/DEALER proxy -> REP echo round trip, tcp front, inproc back",
			Kind:      kindLatency,
			Count:     10_000,
			Quick:     200,
			Size:      16,
			Transport: "tcp",
			Go:        goReqRepBroker,
			Ztopo:     ztopoReqRepBroker,
			Py:        "broker",
			C:         "broker",
			CClient:   true,
			Targets:   []Target{{Metric: "p50 µs", Vs: implGo, Op: "<=", Value: 1.0}},
		},
		Scenario{
			Name:      "fanout/tcp/16B",
			Desc:      "PUB -> XSUB/XPUB proxy -> 4 SUB, tcp, 16 B; msg/s counts deliveries",
			Kind:      kindThroughput,
			Count:     500_000,
			Quick:     quickCount,
			Size:      16,
			Transport: "tcp",
			Go:        goFanout,
			Ztopo:     ztopoFanout,
			Py:        "fanout",
			C:         "fanout",
		},
		Scenario{
			Name:      "stage/upper/inproc",
			Desc:      "generate -> upper-casing stage -> count, inproc, 16 B",
			Kind:      kindThroughput,
			Count:     1_500_000,
			Quick:     quickCount,
			Size:      16,
			Transport: "inproc",
			Go:        goUpperStage,
			Ztopo:     ztopoUpperStage,
			Targets:   []Target{{Metric: "msg/s", Vs: implGo, Op: ">=", Value: 1.0}},
		},
		Scenario{
			Name:      "stage/proxy/inproc",
			Desc:      "generate -> proxy builtin (PULL/PUSH streamer) -> count vs zmq.Proxy, inproc, 16 B",
			Kind:      kindThroughput,
			Count:     1_500_000,
			Quick:     quickCount,
			Size:      16,
			Transport: "inproc",
			Go:        goProxyStage,
			Ztopo:     ztopoProxyStage,
			C:         "proxy",
			Targets:   []Target{{Metric: "msg/s", Vs: implGo, Op: ">=", Value: 1.0}},
		},
		Scenario{
			Name:      "stage/forward/inproc",
			Desc:      "generate -> forwarding stage -> count, inproc, 16 B",
			Kind:      kindThroughput,
			Count:     1_500_000,
			Quick:     quickCount,
			Size:      16,
			Transport: "inproc",
			Go:        goForwardStage,
			Ztopo:     ztopoForwardStage,
			C:         "forward",
			Targets:   []Target{{Metric: "msg/s", Vs: implGo, Op: ">=", Value: 1.5}},
		},
	)
	for _, n := range []int{10, 100, 1000} {
		sc := Scenario{
			Name:      fmt.Sprintf("startup/%d", n),
			Desc:      fmt.Sprintf("%d goroutine nodes (source, %d forwarders, sink), inproc: time to all up, RSS, OS threads", n, n-2),
			Kind:      kindStartup,
			Count:     n,
			Quick:     n,
			Size:      16,
			Transport: "inproc",
			Nodes:     n,
			Go:        goStartup,
			Ztopo:     ztopoStartup,
		}
		if n == 1000 {
			sc.Targets = []Target{{Metric: "up ms", Op: "<=", Value: 2000}}
		}
		ss = append(ss, sc)
	}
	ss = append(ss,
		Scenario{
			Name:      "pipeline/at-least-once/tcp/16B",
			Desc:      "pipeline/tcp/16B with delivery: at-least-once on both edges and a deduping sink (acknowledgements end to end); each round also runs the plain pipeline, alternated, for the ratio",
			Kind:      kindThroughput,
			Count:     300_000,
			Quick:     quickCount,
			Size:      16,
			Transport: "tcp",
			Ztopo:     ztopoALOPipeline,
			Peers:     []Peer{{Impl: "plain", Scenario: "pipeline/tcp/16B"}},
		},
		Scenario{
			Name:      "pipeline/tapped/tcp/16B",
			Desc:      "pipeline/tcp/16B with ztopo tap attached to the workers' out sockets (every message copied, a reader keeping up); each round also runs the plain pipeline, alternated, for the ratio",
			Kind:      kindThroughput,
			Count:     1_000_000,
			Quick:     quickCount,
			Size:      16,
			Transport: "tcp",
			Ztopo:     ztopoTappedPipeline,
			Peers:     []Peer{{Impl: "untapped", Scenario: "pipeline/tcp/16B"}},
		},
		Scenario{
			Name:    "reload/50-nodes",
			Desc:    "save of the file -> new handler serving, 50-node topology, watcher + load + Apply as in ztopo up",
			Kind:    kindLatency,
			Count:   20,
			Quick:   2,
			Ztopo:   ztopoReload,
			Targets: []Target{{Metric: "p50 µs", Op: "<=", Value: 150_000}},
		},
		Scenario{
			Name:      "plugin/zmq/16B",
			Desc:      "generate -> {plugin: upper-go} (ZeroMQ plugin protocol, many in flight) -> count, 16 B",
			Kind:      kindThroughput,
			Count:     300_000,
			Quick:     quickCount,
			Size:      16,
			Transport: "inproc",
			Ztopo:     ztopoPluginStage,
			Targets:   []Target{{Metric: "msg/s", Op: ">=", Value: 300_000}},
		},
		wasmScenario("stage/wasm/inproc",
			"generate -> {wasm: upper.wasm} (wasm/examples/upper, in-process, default 1s time limit) -> count, inproc, 16 B; each round also runs stage/upper/inproc and plugin/zmq/16B, alternated, for the ratios",
			ztopoWasmStage),
		wasmScenario("stage/wasm-unguarded/inproc",
			"stage/wasm/inproc with `timeout: 0` (no time limit: code without termination checks); the same peers",
			ztopoWasmUnguardedStage),
		wasmScenario("stage/wasm-minimal/inproc",
			"stage/wasm-unguarded/inproc with a hand-written module (no language runtime, as C or Rust compile): the host's own cost; the same peers",
			ztopoWasmMinimalStage),
		Scenario{
			Name:      "plugin/reqrep/tcp",
			Desc:      "REQ -> REP {plugin: upper-go} round trip, tcp, 16 B (compare reqrep/direct/tcp: echo in-process)",
			Kind:      kindLatency,
			Count:     10_000,
			Quick:     200,
			Size:      16,
			Transport: "tcp",
			Ztopo:     ztopoPluginReqRep,
		},
		Scenario{
			Name:      "plugin/exec/16B",
			Desc:      "generate -> {exec: [stdbuf -oL tr a-z A-Z]} (lines codec) -> count, 16 B",
			Kind:      kindThroughput,
			Count:     300_000,
			Quick:     quickCount,
			Size:      16,
			Transport: "inproc",
			Ztopo:     ztopoExecStage,
			Targets:   []Target{{Metric: "msg/s", Op: ">=", Value: 100_000}},
		},
	)
	for i := range ss {
		ss[i].Targets = atLeastPeers(ss[i])
	}
	return ss
}

// atLeastPeers adds issue 20's floor to a scenario's targets: ztopo at
// least as fast as hand-written pebbe/zmq4 and pyzmq (throughput ≥ 1×,
// round-trip p50 ≤ 1×) wherever they run it, unless a stricter target is
// set already.
func atLeastPeers(s Scenario) []Target {
	ts := s.Targets
	for _, vs := range []string{implGo, implPy} {
		if !s.has(vs) {
			continue
		}
		t := Target{Metric: "msg/s", Vs: vs, Op: ">=", Value: 1}
		switch s.Kind {
		case kindLatency:
			t = Target{Metric: "p50 µs", Vs: vs, Op: "<=", Value: 1}
		case kindStartup:
			continue
		}
		if !slices.ContainsFunc(ts, func(o Target) bool { return o.Metric == t.Metric && o.Vs == t.Vs }) {
			ts = append(ts, t)
		}
	}
	return ts
}

func sizeName(size int) string {
	if size >= kib && size%kib == 0 {
		return fmt.Sprintf("%dKiB", size/kib)
	}
	return fmt.Sprintf("%dB", size)
}

// Result is what one run reports. Children print it as one JSON line; the
// python script prints the same field names.
type Result struct {
	Scenario string `json:"scenario"`
	Impl     string `json:"impl"`
	Round    int    `json:"round"`
	// Expected is what the run had to move: messages received by the
	// sink(s) (every subscriber's deliveries for fan-out), or timed round
	// trips. Msgs is what it counted; the harness fails a run where the two
	// differ.
	Expected int64   `json:"expected"`
	Msgs     int64   `json:"msgs"`
	Seconds  float64 `json:"seconds"`        // the whole run, first context to last termination
	Rate     float64 `json:"rate,omitempty"` // Msgs / Seconds
	P50us    float64 `json:"p50_us,omitempty"`
	P99us    float64 `json:"p99_us,omitempty"`
	// Startup runs: time from the start of the program to every node
	// having its sockets open and its handler running, and the process's
	// resident memory and OS threads at that moment.
	StartupMs float64 `json:"startup_ms,omitempty"`
	RSSMiB    float64 `json:"rss_mib,omitempty"`
	Threads   int     `json:"threads,omitempty"`
	// Costs per message (per round trip) of the whole Go process, from
	// runtime.MemStats and runtime.NumCgoCall: the first things to look at
	// when ztopo is slower than hand-written code.
	AllocsPerMsg float64 `json:"allocs_per_msg,omitempty"`
	BytesPerMsg  float64 `json:"bytes_per_msg,omitempty"`
	CgoPerMsg    float64 `json:"cgo_per_msg,omitempty"`
	// CopiesPerMsg is how many frames a WebAssembly handler copied into
	// and out of module memory per message (wasm stages only).
	CopiesPerMsg float64 `json:"copies_per_msg,omitempty"`
	// CPUusPerMsg is the CPU time (user and system, of the run's process
	// and the children it waited for) per message, in µs, from the
	// harness's wait: unlike the wall clock, it hardly grows when other
	// work competes for the cores, so it compares runs on a busy machine.
	CPUusPerMsg float64 `json:"cpu_us_per_msg,omitempty"`
	Note        string  `json:"note,omitempty"`
	Err         string  `json:"error,omitempty"`
}

func (r Result) brief() string {
	if r.Err != "" {
		return "FAILED: " + r.Err
	}
	switch {
	case r.P50us > 0:
		return fmt.Sprintf("%d round trips, p50 %.1f µs, p99 %.1f µs", r.Msgs, r.P50us, r.P99us)
	case r.StartupMs > 0:
		return fmt.Sprintf("up in %.1f ms, %.1f MiB, %d threads, %d msgs in %.2f s", r.StartupMs, r.RSSMiB, r.Threads, r.Msgs, r.Seconds)
	}
	return fmt.Sprintf("%d msgs in %.3f s = %s msg/s", r.Msgs, r.Seconds, human(r.Rate))
}

// metrics are the figures a run of a kind contributes to the table, with
// whether higher is better.
func metrics(kind string) []metric {
	switch kind {
	case kindLatency:
		return []metric{
			{"p50 µs", false, func(r Result) float64 { return r.P50us }},
			{"p99 µs", false, func(r Result) float64 { return r.P99us }},
		}
	case kindStartup:
		return []metric{
			{"up ms", false, func(r Result) float64 { return r.StartupMs }},
			{"RSS MiB", false, func(r Result) float64 { return r.RSSMiB }},
			{"threads", false, func(r Result) float64 { return float64(r.Threads) }},
		}
	}
	return []metric{{"msg/s", true, func(r Result) float64 { return r.Rate }}}
}

type metric struct {
	name   string
	higher bool
	value  func(Result) float64
}

// wasmScenario is a scenario of the WebAssembly stage: generate -> a wasm
// module -> count, inproc, 16 B, run beside the in-process upper and the Go
// plugin for the ratios its targets are.
func wasmScenario(name, desc string, run func(Params) (Result, error)) Scenario {
	return Scenario{
		Name:      name,
		Desc:      desc,
		Kind:      kindThroughput,
		Count:     1_500_000,
		Quick:     quickCount,
		Size:      16,
		Transport: "inproc",
		Ztopo:     run,
		Peers: []Peer{
			{Impl: "upper", Scenario: "stage/upper/inproc"},
			{Impl: "plugin", Scenario: "plugin/zmq/16B"},
		},
		Targets: []Target{
			{Metric: "msg/s", Vs: "upper", Op: ">=", Value: 0.5},
			{Metric: "msg/s", Vs: "plugin", Op: ">=", Value: 3},
		},
	}
}
