package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the bench program: the suite
// re-executes os.Executable() for every Go run.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestQuickSuite runs every scenario once in -quick mode, in every
// implementation it has, and checks that each run moved exactly the
// messages it had to. It tests the harness and the programs it compares,
// never their speed.
func TestQuickSuite(t *testing.T) {
	impls := []string{implZtopo, implGo, implC}
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import zmq").Run(); err != nil {
		t.Logf("no pyzmq in %s (%v): python baselines not run", python, err)
	} else {
		impls = append(impls, implPy)
	}
	c := config{
		rounds:   1,
		only:     regexp.MustCompile(""),
		quick:    true,
		impls:    impls,
		python:   python,
		pyScript: defaultPyScript(),
		timeout:  60 * time.Second,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var progress strings.Builder
	suite, err := runSuite(ctx, c, &progress)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + progress.String())

	runs := map[string]Result{}
	for _, r := range suite.Runs {
		runs[r.Scenario+" "+r.Impl] = r
	}
	for _, sc := range scenarios() {
		if sc.Later != "" {
			continue
		}
		for _, impl := range impls {
			if !sc.has(impl) {
				continue
			}
			r, ok := runs[sc.Name+" "+impl]
			if !ok {
				t.Errorf("%s %s: no run", sc.Name, impl)
				continue
			}
			if r.Err != "" {
				t.Errorf("%s %s: %s", sc.Name, impl, r.Err)
				continue
			}
			want := int64(sc.Quick)
			if sc.Kind == kindStartup {
				want = int64(sc.Nodes)
			}
			if strings.HasPrefix(sc.Name, "fanout/") {
				want *= fanoutSubs
			}
			if r.Expected != want || r.Msgs != want {
				t.Errorf("%s %s: moved %d of %d messages, want %d", sc.Name, impl, r.Msgs, r.Expected, want)
			}
			checkFigures(t, sc, r)
		}
	}
	if suite.Failed != 0 {
		t.Errorf("suite counted %d failed runs", suite.Failed)
	}
	if len(suite.Summary) == 0 {
		t.Error("empty summary")
	}
}

// checkFigures checks that a run reported the figures of its kind.
func checkFigures(t *testing.T, sc Scenario, r Result) {
	t.Helper()
	switch sc.Kind {
	case kindThroughput:
		if r.Rate <= 0 || r.Seconds <= 0 {
			t.Errorf("%s %s: rate %v over %v s", sc.Name, r.Impl, r.Rate, r.Seconds)
		}
	case kindLatency:
		if r.P50us <= 0 || r.P99us < r.P50us {
			t.Errorf("%s %s: p50 %v µs, p99 %v µs", sc.Name, r.Impl, r.P50us, r.P99us)
		}
	case kindStartup:
		if r.StartupMs <= 0 || r.RSSMiB <= 0 || r.Threads < 1 {
			t.Errorf("%s %s: up in %v ms, %v MiB, %d threads", sc.Name, r.Impl, r.StartupMs, r.RSSMiB, r.Threads)
		}
	}
}

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // 1..100 µs, unsorted
		ds = append(ds, time.Duration(i)*time.Microsecond)
	}
	p50, p99 := percentiles(ds)
	if p50 != 50 || p99 != 99 {
		t.Errorf("got p50 %v, p99 %v, want 50, 99", p50, p99)
	}
	p50, p99 = percentiles([]time.Duration{7 * time.Microsecond})
	if p50 != 7 || p99 != 7 {
		t.Errorf("one sample: got p50 %v, p99 %v, want 7, 7", p50, p99)
	}
}

func TestSummarize(t *testing.T) {
	runs := []Result{
		{Scenario: "pipeline/tcp/16B", Impl: implZtopo, Round: 1, Rate: 300},
		{Scenario: "pipeline/tcp/16B", Impl: implGo, Round: 1, Rate: 200},
		{Scenario: "pipeline/tcp/16B", Impl: implPy, Round: 1, Rate: 100},
		{Scenario: "pipeline/tcp/16B", Impl: implZtopo, Round: 2, Rate: 100},
		{Scenario: "pipeline/tcp/16B", Impl: implGo, Round: 2, Rate: 400},
		{Scenario: "pipeline/tcp/16B", Impl: implPy, Round: 2, Rate: 9999, Err: "boom"}, // failed runs do not count
		{Scenario: "pipeline/tcp/16B", Impl: implZtopo, Round: 3, Rate: 200},
		{Scenario: "pipeline/tcp/16B", Impl: implGo, Round: 3, Rate: 100},
	}
	rows := summarize(runs, map[string][2]float64{"pipeline/tcp/16B": {0.5, 1.5}})
	if len(rows) != 1 {
		t.Fatalf("got %d rows, want 1", len(rows))
	}
	r := rows[0]
	if r.Median[implZtopo] != 200 || r.Median[implGo] != 200 || r.Median[implPy] != 100 {
		t.Errorf("got medians %v, want ztopo 200, go 200, py 100", r.Median)
	}
	if r.Runs[implPy] != 1 || r.Runs[implGo] != 3 {
		t.Errorf("got runs %v, want py 1, go 3", r.Runs)
	}
	// Half the range over the median: (300-100)/2/200, (400-100)/2/200.
	if r.Spread[implZtopo] != 0.5 || r.Spread[implGo] != 0.75 || r.Spread[implPy] != 0 {
		t.Errorf("got spreads %v, want ztopo 0.5, go 0.75, py 0", r.Spread)
	}
	// Per round: 300/200, 100/400, 200/100; against py only round 1.
	if r.Vs[implGo] != 1.5 || r.Vs[implPy] != 3 || len(r.Vs) != 2 {
		t.Errorf("got ratios %v, want go 1.5, py 3", r.Vs)
	}
	if r.VsRange[implGo] != [2]float64{0.25, 2} {
		t.Errorf("got go ratio range %v, want [0.25 2]", r.VsRange[implGo])
	}
	if r.Load != [2]float64{0.5, 1.5} {
		t.Errorf("got load %v, want [0.5 1.5]", r.Load)
	}
	// ztopo/go >= 1.0 and ztopo/py >= 2 are met.
	if r.Met == nil || !*r.Met {
		t.Errorf("got target met %v, want true", r.Met)
	}
	runs[0].Rate, runs[6].Rate = 150, 150 // ratios 0.75, 0.25, 1.5 (median 0.75); py 1.5
	if r := summarize(runs, nil)[0]; r.Met == nil || *r.Met {
		t.Errorf("got target met %v with ratios %v, want false", r.Met, r.Vs)
	}
}

// TestMarkdown prints a results file's summary as the README's table:
// one markdown row per summary row, with every figure and ratio.
func TestMarkdown(t *testing.T) {
	runs := []Result{
		{Scenario: "pipeline/tcp/16B", Impl: implZtopo, Round: 1, Rate: 3e6},
		{Scenario: "pipeline/tcp/16B", Impl: implGo, Round: 1, Rate: 2e6},
		{Scenario: "pipeline/tcp/16B", Impl: implC, Round: 1, Rate: 6e6},
	}
	suite := Suite{Invocation: Invocation{Command: "go run ./bench", Rounds: 1}, Summary: summarize(runs, map[string][2]float64{"pipeline/tcp/16B": {0.5, 1.5}})}
	path := filepath.Join(t.TempDir(), "results.json")
	if err := writeJSON(path, suite); err != nil {
		t.Fatal(err)
	}
	var out, errs strings.Builder
	if code := run([]string{"-markdown", path}, &out, &errs); code != 0 {
		t.Fatalf("got exit code %d: %s", code, errs.String())
	}
	want := "| pipeline/tcp/16B | msg/s | 3.00M | 2.00M | - | 6.00M | 1.50× | - | 0.50× | 0.5→1.5 | ztopo/go >= 1.2× met, ztopo/py >= 2× |\n"
	if !strings.HasSuffix(out.String(), want) {
		t.Errorf("got\n%s\nwant it to end with\n%s", out.String(), want)
	}
	if code := run([]string{"-markdown", filepath.Join(t.TempDir(), "none.json")}, &out, &errs); code != 1 {
		t.Errorf("a missing results file: got exit code %d, want 1", code)
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"bad regexp", []string{"-only", "("}, 2, "bench: -only: error parsing regexp"},
		{"bad impl", []string{"-impl", "rust"}, 2, `bench: -impl: unknown implementation "rust" (want ztopo, go, py or c)`},
		{"stray argument", []string{"pipeline"}, 2, `bench: unexpected argument "pipeline"`},
		{"zero rounds", []string{"-rounds", "0"}, 2, "bench: -rounds must be at least 1"},
		{"list", []string{"-list", "-only", "^startup/1000$"}, 0, "startup/1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			code := run(tc.args, &out, &out)
			if code != tc.code {
				t.Errorf("got exit code %d, want %d; output:\n%s", code, tc.code, out.String())
			}
			if !strings.Contains(out.String(), tc.out) {
				t.Errorf("got output %q, want it to contain %q", out.String(), tc.out)
			}
		})
	}
}

// TestCompare runs the test binary against itself as -compare does with
// two builds: every round of both sides, alternating, and a row per metric.
func TestCompare(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := config{rounds: 2, only: regexp.MustCompile(`^(pushpull/inproc/16B|reqrep/direct/tcp)$`), quick: true, timeout: 60 * time.Second}
	var progress strings.Builder
	cmp, err := runCompare(context.Background(), c, exe, "", &progress)
	if err != nil {
		t.Fatal(err)
	}
	if cmp.Failed != 0 {
		t.Fatalf("%d runs failed:\n%s", cmp.Failed, progress.String())
	}
	var order []string
	for _, r := range cmp.Runs {
		order = append(order, fmt.Sprintf("%s %s %d", r.Scenario, r.Impl, r.Round))
	}
	want := []string{
		"pushpull/inproc/16B ref 1", "pushpull/inproc/16B new 1", "pushpull/inproc/16B new 2", "pushpull/inproc/16B ref 2",
		"reqrep/direct/tcp ref 1", "reqrep/direct/tcp new 1", "reqrep/direct/tcp new 2", "reqrep/direct/tcp ref 2",
	}
	if !slices.Equal(order, want) {
		t.Errorf("got runs\n%s\nwant\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
	}
	var rows []string
	for _, r := range cmp.Rows {
		rows = append(rows, r.Scenario+" "+r.Metric)
		if r.Ratio <= 0 || r.Range[0] > r.Ratio || r.Range[1] < r.Ratio {
			t.Errorf("%s %s: ratio %v outside its range %v", r.Scenario, r.Metric, r.Ratio, r.Range)
		}
	}
	if want := []string{"pushpull/inproc/16B msg/s", "reqrep/direct/tcp p50 µs", "reqrep/direct/tcp p99 µs"}; !slices.Equal(rows, want) {
		t.Errorf("got rows %q, want %q", rows, want)
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		name   string
		higher bool
		lo, hi float64
		want   string
	}{
		{"faster every round", true, 1.05, 1.2, "better"},
		{"slower every round", true, 0.8, 0.95, "worse"},
		{"rounds disagree", true, 0.9, 1.1, "noise"},
		{"lower latency every round", false, 0.8, 0.9, "better"},
		{"higher latency every round", false, 1.1, 1.3, "worse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := CompRow{Higher: tc.higher, Ratio: (tc.lo + tc.hi) / 2, Range: [2]float64{tc.lo, tc.hi}}
			if got := verdict(r); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
