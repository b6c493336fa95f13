package main

import (
	"context"
	"os"
	"os/exec"
	"regexp"
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
		{Scenario: "pipeline/tcp/16B", Impl: implZtopo, Rate: 300},
		{Scenario: "pipeline/tcp/16B", Impl: implGo, Rate: 200},
		{Scenario: "pipeline/tcp/16B", Impl: implPy, Rate: 100},
		{Scenario: "pipeline/tcp/16B", Impl: implZtopo, Rate: 100},
		{Scenario: "pipeline/tcp/16B", Impl: implGo, Rate: 400},
		{Scenario: "pipeline/tcp/16B", Impl: implPy, Rate: 9999, Err: "boom"}, // failed runs do not count
	}
	rows := summarize(runs)
	if len(rows) != 1 {
		t.Fatalf("got %d rows, want 1", len(rows))
	}
	r := rows[0]
	if r.Median[implZtopo] != 200 || r.Median[implGo] != 300 || r.Median[implPy] != 100 {
		t.Errorf("got medians %v, want ztopo 200, go 300, py 100", r.Median)
	}
	if r.Runs[implPy] != 1 {
		t.Errorf("got %d py runs, want 1", r.Runs[implPy])
	}
	if r.Vs[implGo] != 200.0/300 || r.Vs[implPy] != 2 || len(r.Vs) != 2 {
		t.Errorf("got ratios %v, want go %v, py 2", r.Vs, 200.0/300)
	}
	// ztopo/go >= 1.0 is missed, ztopo/py >= 2 is met: the row misses.
	if r.Met == nil || *r.Met {
		t.Errorf("got target met %v, want false", r.Met)
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
