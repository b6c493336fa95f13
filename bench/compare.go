package main

// -compare: two builds of ztopo, alternately. `make bench-compare REF=rev`
// builds the bench of a git revision (scripts/bench-compare.sh) and runs it
// against this one, so that a change's effect on speed shows before it
// lands. Only the ztopo side of each scenario runs: the baselines do not
// change between the two.

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// Comparison is what a -compare run measured; it is what -json writes.
type Comparison struct {
	Invocation
	Ref     string    `json:"ref"`
	Runs    []Result  `json:"runs"` // impl is "ref" or "new"
	Rows    []CompRow `json:"summary"`
	Skipped []Pending `json:"skipped,omitempty"`
	Failed  int       `json:"failed"`
}

// CompRow is one metric of one scenario: the medians of the two builds,
// their spreads, and new/ref as the median of the ratios of the runs of
// the same round.
type CompRow struct {
	Scenario string     `json:"scenario"`
	Metric   string     `json:"metric"`
	Higher   bool       `json:"higher_is_better"`
	Ref      float64    `json:"ref"`
	New      float64    `json:"new"`
	RefSprd  float64    `json:"ref_spread"`
	NewSprd  float64    `json:"new_spread"`
	Ratio    float64    `json:"new_vs_ref"`
	Range    [2]float64 `json:"new_vs_ref_range"`
	Load     [2]float64 `json:"loadavg"`
	// CPU µs per message, medians (first metric's row only).
	RefCPU float64 `json:"ref_cpu_us_per_msg,omitempty"`
	NewCPU float64 `json:"new_cpu_us_per_msg,omitempty"`
}

const (
	compRef = "ref"
	compNew = "new"
)

// runCompare runs every selected scenario's ztopo side with refExe (its
// children in refDir, where the ref's sources are: the plugin scenarios
// build the plugin from there) and with this program, alternating, the
// first of each round swapped every round.
func runCompare(ctx context.Context, c config, refExe, refDir string, progress io.Writer) (*Comparison, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmp := &Comparison{Invocation: invocation(c), Ref: refExe}
	// Each side runs the plugin built from its own sources (a ref bench
	// older than this ignores the one handed to it and builds its own).
	refC := c
	if c.needsPlugin() {
		bin, remove, err := buildUpperPlugin("")
		if err != nil {
			return nil, err
		}
		defer remove()
		c.plugin = bin
		if bin, remove, err = buildUpperPlugin(refDir); err != nil {
			return nil, err
		}
		defer remove()
		refC.plugin = bin
	}
	for _, sc := range scenarios() {
		if !c.only.MatchString(sc.Name) || sc.Later != "" || sc.Ztopo == nil {
			continue
		}
		before := load1()
		var runs []Result
		skipped := false
		for round := 1; round <= c.rounds && !skipped; round++ {
			order := []string{compRef, compNew}
			if round%2 == 0 {
				order = []string{compNew, compRef}
			}
			for _, which := range order {
				cc, e, dir := c, exe, ""
				if which == compRef {
					cc, e, dir = refC, refExe, refDir
				}
				r := runOneIn(ctx, cc, e, dir, sc, implZtopo, round)
				r.Impl = which
				if which == compRef && r.Err != "" && strings.Contains(r.Err, "unknown scenario") {
					cmp.Skipped = append(cmp.Skipped, Pending{sc.Name, "not in the ref build"})
					skipped = true
					break
				}
				runs = append(runs, r)
				if r.Err != "" {
					cmp.Failed++
				}
				fmt.Fprintf(progress, "%-24s %-5s round %d: %s\n", sc.Name, which, round, r.brief())
			}
		}
		if skipped {
			continue
		}
		cmp.Runs = append(cmp.Runs, runs...)
		load := [2]float64{before, load1()}
		for i, m := range metrics(sc.Kind) {
			byRound := map[string]map[int]float64{compRef: {}, compNew: {}}
			vals := map[string][]float64{}
			for _, r := range runs {
				if r.Err == "" {
					byRound[r.Impl][r.Round] = m.value(r)
					vals[r.Impl] = append(vals[r.Impl], m.value(r))
				}
			}
			row := CompRow{Scenario: sc.Name, Metric: m.name, Higher: m.higher, Load: load,
				Ref: median(vals[compRef]), New: median(vals[compNew])}
			if len(vals[compRef]) > 0 && len(vals[compNew]) > 0 {
				row.RefSprd, row.NewSprd = spread(vals[compRef]), spread(vals[compNew])
			}
			if rs := pairedRatios(byRound[compNew], byRound[compRef]); len(rs) > 0 {
				row.Ratio = median(rs)
				row.Range = [2]float64{slices.Min(rs), slices.Max(rs)}
			}
			if i == 0 {
				cpu := map[string][]float64{}
				for _, r := range runs {
					if r.Err == "" {
						cpu[r.Impl] = append(cpu[r.Impl], r.CPUusPerMsg)
					}
				}
				row.RefCPU, row.NewCPU = median(cpu[compRef]), median(cpu[compNew])
			}
			cmp.Rows = append(cmp.Rows, row)
		}
	}
	cmp.Machine.LoadAfter = loadAvg()
	return cmp, nil
}

func printComparison(w io.Writer, c *Comparison) {
	fmt.Fprintf(w, "machine: %d CPUs, %s; %s; libzmq %s; %s\n", c.Machine.NumCPU, c.Machine.CPU, c.Machine.Go, c.Machine.LibZMQ, c.Machine.Date)
	fmt.Fprintf(w, "command: %s\n", c.Command)
	fmt.Fprintf(w, "ref: %s; new: this build. Medians of %d rounds, ± half their range; new/ref: median of the same-round ratios [lowest, highest]\n", c.Ref, c.Rounds)
	fmt.Fprintf(w, "load average: %s before, %s after (1, 5, 15 min; %d CPUs)\n\n", c.Machine.LoadAvg, c.Machine.LoadAfter, c.Machine.NumCPU)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tmetric\tref\tnew\tnew/ref\trange\tverdict\tload\tcpu µs/msg ref→new\t")
	for _, r := range c.Rows {
		fig := func(v, s float64) string {
			return figure(Row{Metric: r.Metric, Median: map[string]float64{"x": v}, Runs: map[string]int{"x": c.Rounds}, Spread: map[string]float64{"x": s}}, "x")
		}
		better := verdict(r)
		cpu := ""
		if r.RefCPU > 0 || r.NewCPU > 0 {
			cpu = fmt.Sprintf("%.2f→%.2f", r.RefCPU, r.NewCPU)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t[%.2f, %.2f]\t%s\t%.1f→%.1f\t%s\t\n", r.Scenario, r.Metric,
			fig(r.Ref, r.RefSprd), fig(r.New, r.NewSprd), ratio(r.Ratio), r.Range[0], r.Range[1], better, r.Load[0], r.Load[1], cpu)
	}
	tw.Flush()
	for _, p := range c.Skipped {
		fmt.Fprintf(w, "\nskipped %s: %s\n", p.Scenario, p.Reason)
	}
	for _, r := range c.Runs {
		if r.Err != "" {
			fmt.Fprintf(w, "\nFAILED %s %s round %d: %s\n", r.Scenario, r.Impl, r.Round, r.Err)
		}
	}
}

// verdict is "better" or "worse" when every round's ratio says so, and
// "noise" when the rounds disagree.
func verdict(r CompRow) string {
	switch {
	case r.Ratio == 0:
		return "-"
	case r.Range[0] > 1:
		return map[bool]string{true: "better", false: "worse"}[r.Higher]
	case r.Range[1] < 1:
		return map[bool]string{true: "worse", false: "better"}[r.Higher]
	}
	return "noise"
}
