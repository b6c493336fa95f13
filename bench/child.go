package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"
)

// childEnv marks a process started by the suite to do one run.
const childEnv = "ZTOPO_BENCH_CHILD"

// childMain does one run of one scenario in one Go implementation and prints
// its Result as a JSON line on stdout.
func childMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench-child", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("scenario", "", "scenario name")
	impl := fs.String("impl", "", "ztopo or go")
	quick := fs.Bool("quick", false, "tiny counts")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile here")
	count := fs.Int("count", 0, "messages (round trips) instead of the scenario's: for profiling one run by hand")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var sc *Scenario
	for _, s := range scenarios() {
		if s.Name == *name {
			sc = &s
			break
		}
	}
	if sc == nil {
		fmt.Fprintf(stderr, "bench: unknown scenario %q\n", *name)
		return 2
	}
	fn := sc.Go
	if *impl == implZtopo {
		fn = sc.Ztopo
	}
	if fn == nil || (*impl != implGo && *impl != implZtopo) {
		fmt.Fprintf(stderr, "bench: scenario %s has no %q implementation\n", sc.Name, *impl)
		return 2
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if *quick {
		runBound = 20 * time.Second
	}
	p := sc.params(*quick)
	if *count > 0 {
		p.Count = *count
	}
	if sc.CClient {
		p.Client = os.Getenv(clientEnv)
	}
	r := measure(fn, p)
	r.Scenario, r.Impl = sc.Name, *impl
	data, _ := json.Marshal(r)
	fmt.Fprintf(stdout, "%s\n", data)
	if r.Err != "" {
		return 1
	}
	return 0
}

// measure runs fn and adds the per-message costs of the whole process.
func measure(fn func(Params) (Result, error), p Params) Result {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cgo0 := runtime.NumCgoCall()
	r, err := fn(p)
	cgo1 := runtime.NumCgoCall()
	runtime.ReadMemStats(&m1)
	if err != nil {
		r.Err = err.Error()
	}
	if r.Msgs > 0 {
		n := float64(r.Msgs)
		r.AllocsPerMsg = float64(m1.Mallocs-m0.Mallocs) / n
		r.BytesPerMsg = float64(m1.TotalAlloc-m0.TotalAlloc) / n
		r.CgoPerMsg = float64(cgo1-cgo0) / n
	}
	if r.Rate == 0 && r.Seconds > 0 && r.P50us == 0 && r.StartupMs == 0 {
		r.Rate = float64(r.Msgs) / r.Seconds
	}
	return r
}

// endpoints hands out endpoints of one transport for one run: tcp on a free
// loopback port, ipc in a private temporary directory (short, so that the
// path stays under the 107 bytes of a socket address), inproc by name.
type endpoints struct {
	transport string
	dir       string
	n         int
}

// newEndpoints makes one endpoint on transport per name, for the ztopo and
// the go side of a scenario alike; close removes what ipc made.
func newEndpoints(transport string, names ...string) (*endpoints, []string, error) {
	e := &endpoints{transport: transport}
	if transport == "ipc" {
		dir, err := os.MkdirTemp("", "zb")
		if err != nil {
			return nil, nil, err
		}
		e.dir = dir
	}
	eps := make([]string, len(names))
	for i, name := range names {
		ep, err := e.next(name)
		if err != nil {
			e.close()
			return nil, nil, err
		}
		eps[i] = ep
	}
	return e, eps, nil
}

func (e *endpoints) next(name string) (string, error) {
	e.n++
	switch e.transport {
	case "tcp":
		return freeTCP()
	case "ipc":
		return "ipc://" + filepath.Join(e.dir, fmt.Sprintf("%s%d", name, e.n)), nil
	case "inproc":
		return fmt.Sprintf("inproc://bench-%s-%d", name, e.n), nil
	}
	return "", fmt.Errorf("unknown transport %q", e.transport)
}

func (e *endpoints) close() {
	if e.dir != "" {
		os.RemoveAll(e.dir)
	}
}

// freeTCP is a tcp://127.0.0.1:PORT endpoint on a free port (freePort).
func freeTCP() (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("tcp://127.0.0.1:%d", port), nil
}

// freePort asks the kernel for a free loopback port. It is free when asked,
// which is good enough on a machine where nothing else races for ports in
// the same second; a run that loses the race fails loudly at bind.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// procStatus reads this process's resident memory (MiB) and OS threads
// from /proc/self/status.
func procStatus() (rssMiB float64, threads int) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			kb, _ := strconv.ParseFloat(f[1], 64)
			rssMiB = kb / 1024
		case "Threads:":
			threads, _ = strconv.Atoi(f[1])
		}
	}
	return rssMiB, threads
}

// percentiles returns the p50 and p99 of ds in microseconds (nearest rank).
func percentiles(ds []time.Duration) (p50, p99 float64) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		if i < 0 {
			i = 0
		}
		return s[i]
	}
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	return us(rank(0.50)), us(rank(0.99))
}

// payload is size bytes of lower-case letters, so that an upper-casing
// stage has work to do on every byte.
func payload(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}
