package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
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
	// Vs is ztopo's median divided by another implementation's, by that
	// implementation (go, py, c); absent when either was not measured.
	Vs map[string]float64 `json:"ztopo_vs,omitempty"`
	// Per-message costs (medians), go and ztopo, throughput and latency rows.
	Allocs map[string]float64 `json:"allocs_per_msg,omitempty"`
	Cgo    map[string]float64 `json:"cgo_per_msg,omitempty"`
	Target string             `json:"target,omitempty"`
	Met    *bool              `json:"target_met,omitempty"`
}

func summarize(runs []Result) []Row {
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
			row := Row{Scenario: name, Metric: m.name, Higher: m.higher, Median: map[string]float64{}, Runs: map[string]int{}}
			vals := map[string][]float64{}
			allocs := map[string][]float64{}
			cgo := map[string][]float64{}
			for _, r := range byScenario[name] {
				if r.Err != "" {
					continue
				}
				vals[r.Impl] = append(vals[r.Impl], m.value(r))
				if r.Impl == implZtopo || r.Impl == implGo {
					allocs[r.Impl] = append(allocs[r.Impl], r.AllocsPerMsg)
					cgo[r.Impl] = append(cgo[r.Impl], r.CgoPerMsg)
				}
			}
			for impl, vs := range vals {
				row.Median[impl] = median(vs)
				row.Runs[impl] = len(vs)
			}
			if z, ok := row.Median[implZtopo]; ok {
				for _, o := range others {
					if v := row.Median[o]; v > 0 {
						if row.Vs == nil {
							row.Vs = map[string]float64{}
						}
						row.Vs[o] = z / v
					}
				}
			}
			if i == 0 && s.Kind != kindStartup {
				row.Allocs, row.Cgo = map[string]float64{}, map[string]float64{}
				for impl, vs := range allocs {
					row.Allocs[impl] = median(vs)
					row.Cgo[impl] = median(cgo[impl])
				}
			}
			var texts []string
			for _, t := range s.Targets {
				if t.Metric != m.name {
					continue
				}
				texts = append(texts, t.String())
				v, ok := row.Vs[t.Vs]
				if t.Vs == "" {
					v, ok = row.Median[implZtopo]
				}
				if !ok {
					continue
				}
				met := t.met(v)
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
	fmt.Fprintf(w, "command: %s  (medians of %d rounds; ratios are ztopo's median over the other's)\n\n", s.Command, s.Rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tmetric\tztopo\tgo\tpy\tc\tztopo/go\tztopo/py\tztopo/c\ttarget\t")
	for _, r := range s.Summary {
		target := r.Target
		if r.Met != nil {
			if *r.Met {
				target += " met"
			} else {
				target += " MISSED"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Scenario, r.Metric,
			figure(r, implZtopo), figure(r, implGo), figure(r, implPy), figure(r, implC),
			ratio(r.Vs[implGo]), ratio(r.Vs[implPy]), ratio(r.Vs[implC]), target)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nper message (medians; whole process, so a pipeline counts every hop): allocations, bytes allocated, cgo calls")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tztopo allocs\tgo allocs\tztopo cgo\tgo cgo\t")
	for _, r := range s.Summary {
		if r.Allocs == nil {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", r.Scenario, cost(r.Allocs, implZtopo), cost(r.Allocs, implGo), cost(r.Cgo, implZtopo), cost(r.Cgo, implGo))
	}
	tw.Flush()
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

func figure(r Row, impl string) string {
	v, ok := r.Median[impl]
	if !ok {
		return "-"
	}
	switch r.Metric {
	case "msg/s":
		return human(v)
	case "threads":
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
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
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(data))[:3], " ")
	}
	if out, err := exec.Command(python, "-c", "import zmq; print(zmq.__version__)").Output(); err == nil {
		m.PyZMQ = strings.TrimSpace(string(out))
	}
	return m
}
