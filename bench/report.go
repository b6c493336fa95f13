package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pebbe/zmq4"
)

// Row is one line of the summary table: one metric of one scenario.
type Row struct {
	Scenario string `json:"scenario"`
	Metric   string `json:"metric"`
	Higher   bool   `json:"higher_is_better"`
	// Median per implementation over its successful runs, and how many
	// runs that was.
	Median map[string]float64 `json:"median"`
	Runs   map[string]int     `json:"runs"`
	// Spread is how far an implementation's runs strayed from their
	// median: half the range (max-min) over the median, 0.1 for ±10 %.
	Spread map[string]float64 `json:"spread"`
	// Vs is ztopo's figure over another implementation's (go, py, c): the
	// median of the ratios of runs of the same round, which ran one after
	// the other and so saw the same machine. VsRange is the lowest and
	// highest of those ratios. Absent when either was not measured.
	Vs      map[string]float64    `json:"ztopo_vs,omitempty"`
	VsRange map[string][2]float64 `json:"ztopo_vs_range,omitempty"`
	// Load is the 1-minute load average before the scenario's first run
	// and after its last: above the machine's CPU count, other work
	// competed for the cores.
	Load [2]float64 `json:"loadavg"`
	// Per-message costs (medians), go and ztopo, throughput and latency rows.
	Allocs map[string]float64 `json:"allocs_per_msg,omitempty"`
	Cgo    map[string]float64 `json:"cgo_per_msg,omitempty"`
	CPU    map[string]float64 `json:"cpu_us_per_msg,omitempty"` // every implementation
	// Copies is the frames a WebAssembly handler copied per message
	// (median; wasm stages only).
	Copies float64 `json:"copies_per_msg,omitempty"`

	// Target lists the row's targets, each followed by met or MISSED when
	// both figures it compares were measured; Met is whether all were.
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"target_met,omitempty"`
}

func summarize(runs []Result, load map[string][2]float64) []Row {
	byScenario := map[string][]Result{}
	var order []string
	for _, r := range runs {
		if _, ok := byScenario[r.Scenario]; !ok {
			order = append(order, r.Scenario)
		}
		byScenario[r.Scenario] = append(byScenario[r.Scenario], r)
	}
	sc := map[string]Scenario{}
	for _, s := range scenarios() {
		sc[s.Name] = s
	}
	var rows []Row
	for _, name := range order {
		s := sc[name]
		for i, m := range metrics(s.Kind) {
			row := Row{Scenario: name, Metric: m.name, Higher: m.higher, Median: map[string]float64{}, Runs: map[string]int{}, Spread: map[string]float64{}, Load: load[name]}
			vals := map[string][]float64{}
			byRound := map[string]map[int]float64{}
			allocs := map[string][]float64{}
			cgo := map[string][]float64{}
			cpu := map[string][]float64{}
			var copies []float64
			for _, r := range byScenario[name] {
				if r.Err != "" {
					continue
				}
				vals[r.Impl] = append(vals[r.Impl], m.value(r))
				if byRound[r.Impl] == nil {
					byRound[r.Impl] = map[int]float64{}
				}
				byRound[r.Impl][r.Round] = m.value(r)
				cpu[r.Impl] = append(cpu[r.Impl], r.CPUusPerMsg)
				if r.Impl == implZtopo || r.Impl == implGo || slices.Contains(s.peerNames(), r.Impl) {
					allocs[r.Impl] = append(allocs[r.Impl], r.AllocsPerMsg)
					cgo[r.Impl] = append(cgo[r.Impl], r.CgoPerMsg)
				}
				if r.Impl == implZtopo && r.CopiesPerMsg > 0 {
					copies = append(copies, r.CopiesPerMsg)
				}
			}
			for impl, vs := range vals {
				row.Median[impl] = median(vs)
				row.Runs[impl] = len(vs)
				row.Spread[impl] = spread(vs)
			}
			for _, o := range append(append([]string(nil), others...), s.peerNames()...) {
				rs := pairedRatios(byRound[implZtopo], byRound[o])
				if len(rs) == 0 {
					continue
				}
				if row.Vs == nil {
					row.Vs, row.VsRange = map[string]float64{}, map[string][2]float64{}
				}
				row.Vs[o] = median(rs)
				row.VsRange[o] = [2]float64{slices.Min(rs), slices.Max(rs)}
			}
			if i == 0 && s.Kind != kindStartup {
				row.Allocs, row.Cgo = map[string]float64{}, map[string]float64{}
				for impl, vs := range allocs {
					row.Allocs[impl] = median(vs)
					row.Cgo[impl] = median(cgo[impl])
				}
				row.CPU = map[string]float64{}
				for impl, vs := range cpu {
					row.CPU[impl] = median(vs)
				}
				if len(copies) > 0 {
					row.Copies = median(copies)
				}
			}
			var texts []string
			for _, t := range s.Targets {
				if t.Metric != m.name {
					continue
				}
				v, ok := row.Vs[t.Vs]
				if t.Vs == "" {
					v, ok = row.Median[implZtopo]
				}
				if !ok {
					texts = append(texts, t.String())
					continue
				}
				met := t.met(v)
				text := t.String()
				if slices.Contains(s.peerNames(), t.Vs) {
					// The ratio has no column of its own: show it.
					text = fmt.Sprintf("ztopo/%s %.2f× (%.2f–%.2f) %s %g×", t.Vs, v, row.VsRange[t.Vs][0], row.VsRange[t.Vs][1], t.Op, t.Value)
				}
				texts = append(texts, text+map[bool]string{true: " met", false: " MISSED"}[met])
				if row.Met == nil || !met {
					row.Met = &met
				}
			}
			row.Target = strings.Join(texts, ", ")
			rows = append(rows, row)
		}
	}
	return rows
}

// pairedRatios divides a's figure of each round by b's of the same round,
// for the rounds where both have one.
func pairedRatios(a, b map[int]float64) []float64 {
	var rs []float64
	for round, x := range a {
		if y, ok := b[round]; ok && y > 0 {
			rs = append(rs, x/y)
		}
	}
	sort.Float64s(rs)
	return rs
}

// spread is half the range of vs over their median.
func spread(vs []float64) float64 {
	m := median(vs)
	if m == 0 {
		return 0
	}
	return (slices.Max(vs) - slices.Min(vs)) / 2 / m
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printTable(w io.Writer, s *Suite) {
	fmt.Fprintf(w, "machine: %d CPUs, %s; %s; libzmq %s; pyzmq %s; %s\n", s.Machine.NumCPU, s.Machine.CPU, s.Machine.Go, s.Machine.LibZMQ, orNone(s.Machine.PyZMQ), s.Machine.Date)
	fmt.Fprintf(w, "command: %s\n", s.Command)
	fmt.Fprintf(w, "figures: medians of %d rounds, ± half their range; ratios: medians of the ratios of runs of the same round\n", s.Rounds)
	fmt.Fprintf(w, "load average: %s before, %s after (1, 5, 15 min; %d CPUs)", s.Machine.LoadAvg, s.Machine.LoadAfter, s.Machine.NumCPU)
	if s.Rounds < 5 {
		fmt.Fprintf(w, "; fewer than 5 rounds: the ratios are indications, not measurements")
	}
	fmt.Fprintf(w, "\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tmetric\tztopo\tgo\tpy\tc\tztopo/go\tztopo/py\tztopo/c\tload\ttarget\t")
	for _, r := range s.Summary {
		target := r.Target
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f→%.1f\t%s\t\n", r.Scenario, r.Metric,
			figure(r, implZtopo), figure(r, implGo), figure(r, implPy), figure(r, implC),
			ratio(r.Vs[implGo]), ratio(r.Vs[implPy]), ratio(r.Vs[implC]), r.Load[0], r.Load[1], target)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nper message (medians; whole process, so a pipeline counts every hop): CPU µs (user+system, steadier than the wall clock on a busy machine), allocations, cgo calls")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tztopo cpu\tgo cpu\tpy cpu\tc cpu\tztopo allocs\tgo allocs\tztopo cgo\tgo cgo\tztopo copies\t")
	var peers []Row
	for _, r := range s.Summary {
		if r.Allocs == nil {
			continue
		}
		copies := "-"
		if r.Copies > 0 {
			copies = fmt.Sprintf("%.2f", r.Copies)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Scenario, cost(r.CPU, implZtopo), cost(r.CPU, implGo), cost(r.CPU, implPy), cost(r.CPU, implC),
			cost(r.Allocs, implZtopo), cost(r.Allocs, implGo), cost(r.Cgo, implZtopo), cost(r.Cgo, implGo), copies)
		if len(r.Allocs) > 2 {
			peers = append(peers, r)
		}
	}
	tw.Flush()
	if len(peers) > 0 {
		fmt.Fprintln(w, "\npeers run in the same rounds (ztopo copies: frames copied into and out of module memory by a wasm handler):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "scenario\timpl\tmsg/s\t±\tztopo/impl\trange\tcpu µs\tallocs\tcgo\t")
		for _, r := range peers {
			var impls []string
			for impl := range r.Allocs {
				if impl != implZtopo && impl != implGo {
					impls = append(impls, impl)
				}
			}
			sort.Strings(impls)
			for _, impl := range append([]string{implZtopo}, impls...) {
				vs, rng := "-", "-"
				if v, ok := r.Vs[impl]; ok {
					vs, rng = ratio(v), fmt.Sprintf("%.2f–%.2f", r.VsRange[impl][0], r.VsRange[impl][1])
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f%%\t%s\t%s\t%s\t%s\t%s\t\n", r.Scenario, impl, human(r.Median[impl]), 100*r.Spread[impl], vs, rng,
					cost(r.CPU, impl), cost(r.Allocs, impl), cost(r.Cgo, impl))
			}
		}
		tw.Flush()
	}
	if len(s.Later) > 0 {
		fmt.Fprintln(w, "\nnot measured yet:")
		for _, p := range s.Later {
			fmt.Fprintf(w, "  %-22s %s\n", p.Scenario, p.Reason)
		}
	}
	for _, r := range s.Runs {
		if r.Err != "" {
			fmt.Fprintf(w, "\nFAILED %s %s round %d: %s\n", r.Scenario, r.Impl, r.Round, r.Err)
		}
	}
}

// markdownMain prints the summary of the results file at path as
// printMarkdown does.
func markdownMain(path string, w io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var s Suite
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(s.Summary) == 0 {
		return fmt.Errorf("%s: no summary rows", path)
	}
	printMarkdown(w, &s)
	return nil
}

// printMarkdown writes the summary table as markdown, with the run's
// command, machine and load: the README's Speed table, regenerated from
// one run's results file.
func printMarkdown(w io.Writer, s *Suite) {
	fmt.Fprintf(w, "`%s`, %s, %d CPUs (%s), %s, libzmq %s, pyzmq %s. Medians of %d alternating rounds (± half their range); ratios are medians of the ratios of runs of the same round. Load average %s before, %s after.\n\n",
		s.Command, s.Machine.Date, s.Machine.NumCPU, s.Machine.CPU, s.Machine.Go, s.Machine.LibZMQ, orNone(s.Machine.PyZMQ), s.Rounds, s.Machine.LoadAvg, s.Machine.LoadAfter)
	fmt.Fprintln(w, "| scenario | metric | ztopo | go | py | c | ztopo/go | ztopo/py | ztopo/c | load | target |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range s.Summary {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f→%.1f | %s |\n", r.Scenario, r.Metric,
			figure(r, implZtopo), figure(r, implGo), figure(r, implPy), figure(r, implC),
			ratio(r.Vs[implGo]), ratio(r.Vs[implPy]), ratio(r.Vs[implC]), r.Load[0], r.Load[1], r.Target)
	}
}

func figure(r Row, impl string) string {
	v, ok := r.Median[impl]
	if !ok {
		return "-"
	}
	var f string
	switch r.Metric {
	case "msg/s":
		f = human(v)
	case "threads":
		f = fmt.Sprintf("%.0f", v)
	default:
		f = fmt.Sprintf("%.1f", v)
	}
	if r.Runs[impl] > 1 {
		f += fmt.Sprintf(" ±%.0f%%", 100*r.Spread[impl])
	}
	return f
}

func cost(m map[string]float64, impl string) string {
	v, ok := m[impl]
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

func ratio(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", v)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// human writes a rate with a k or M suffix.
func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// loadAvg is /proc/loadavg's three load averages.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}

// load1 is the 1-minute load average.
func load1() float64 {
	f, _ := strconv.ParseFloat(strings.Split(loadAvg(), " ")[0], 64)
	return f
}

func machine(python string) Machine {
	maj, min, patch := zmq4.Version()
	m := Machine{
		Date:   time.Now().UTC().Format(time.RFC3339),
		NumCPU: runtime.NumCPU(),
		Go:     runtime.Version(),
		LibZMQ: fmt.Sprintf("%d.%d.%d", maj, min, patch),
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	m.LoadAvg = loadAvg()
	if out, err := exec.Command(python, "-c", "import zmq; print(zmq.__version__)").Output(); err == nil {
		m.PyZMQ = strings.TrimSpace(string(out))
	}
	return m
}
