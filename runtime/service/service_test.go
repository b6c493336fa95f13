package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/spec"

	_ "github.com/ztopo/ztopo/runtime/handler/builtin" // generate, forward, count
)

// endless is a stream that runs until stopped: every peer is a goroutine,
// so `bind: auto` is inproc.
func endless(name string, workers int) string {
	return fmt.Sprintf(`version: 1
name: %s
nodes:
  ventilator:
    handler: generate
    config: {interval: 1ms}
    sockets:
      out: {type: PUSH, bind: auto}
  worker:
    replicas: %d
    handler: forward
    sockets:
      in: {type: PULL, connect: ventilator.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    config: {expect: 100000000}
    sockets:
      in: {type: PULL, bind: auto}
`, name, workers)
}

// fixture is a service of a file the test writes and rewrites.
type fixture struct {
	file   string
	svc    *Service
	done   chan error    // Run's result
	loops  chan struct{} // closed when RunReloads and RunRates returned
	cancel context.CancelFunc
}

// newFixture loads yaml from a file in a fresh directory and makes its
// service; start runs it.
func newFixture(t *testing.T, yaml string) *fixture {
	t.Helper()
	dir, err := os.MkdirTemp("", "zt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fixture{file: filepath.Join(dir, "topology.yaml")}
	f.write(t, yaml)
	lopts := spec.LoadOptions{Env: func(string) (string, bool) { return "", false }, RuntimeDir: dir}
	topo, ds := spec.Load(f.file, lopts)
	if topo == nil {
		t.Fatalf("load:\n%v", ds)
	}
	f.svc = New(topo, f.file, Options{Load: lopts})
	return f
}

func (f *fixture) write(t *testing.T, yaml string) {
	t.Helper()
	if err := os.WriteFile(f.file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
}

// start runs the service as `ztopo up` does, and waits until every
// instance runs. The test's cleanup stops it if the test did not.
func (f *fixture) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done, f.loops = cancel, make(chan error, 1), make(chan struct{})
	reloads, rates := make(chan struct{}), make(chan struct{})
	go func() { f.svc.RunReloads(ctx); close(reloads) }()
	go func() { f.svc.RunRates(ctx); close(rates) }()
	go func() { <-reloads; <-rates; close(f.loops) }()
	go func() { f.done <- f.svc.Run() }()
	t.Cleanup(func() {
		f.svc.Stop(errors.New("test over"))
		f.wait(t)
	})
	testutil.WaitFor(t, "every instance running", func() bool {
		st := f.svc.Status()
		for _, n := range st.Nodes {
			if n.State != "running" {
				return false
			}
		}
		return len(st.Nodes) == len(f.svc.Topology().Nodes)
	})
}

// wait waits for Run and then ends the loops, as the run group does.
func (f *fixture) wait(t *testing.T) error {
	t.Helper()
	var err error
	select {
	case err = <-f.done:
		f.done <- err // for a second wait (the cleanup)
	case <-time.After(testutil.Bound):
		t.Fatalf("Run did not return within %v of the stop", testutil.Bound)
	}
	f.cancel()
	<-f.loops
	return err
}

// instance is the status of the instance named name, or the zero value.
func instance(st control.StatusReply, name string) control.InstanceStatus {
	for _, n := range st.Nodes {
		if n.Name == name {
			return n
		}
	}
	return control.InstanceStatus{}
}

func names(st control.StatusReply) []string {
	var out []string
	for _, n := range st.Nodes {
		out = append(out, n.Name)
	}
	return out
}

func TestStatus(t *testing.T) {
	f := newFixture(t, endless("svcstatus", 2))

	st := f.svc.Status()
	if st.State != "starting" || st.Name != "svcstatus" || st.File != f.file || st.PID != os.Getpid() || st.GraceMS != 5000 {
		t.Errorf("before Run: got state %q, name %q, file %q, pid %d, grace %d ms; want starting, svcstatus, %s, %d, 5000",
			st.State, st.Name, st.File, st.PID, st.GraceMS, f.file, os.Getpid())
	}
	if st.Nodes == nil || len(st.Nodes) != 0 {
		t.Errorf("before Run: got nodes %#v, want an empty list (JSON [], not null)", st.Nodes)
	}

	f.start(t)
	st = f.svc.Status()
	if got, want := names(st), []string{"sink", "ventilator", "worker.0", "worker.1"}; !slices.Equal(got, want) {
		t.Fatalf("instances: got %v, want %v", got, want)
	}
	if st.State != "running" {
		t.Errorf("state: got %q, want running", st.State)
	}
	sink, worker := instance(st, "sink"), instance(st, "worker.0")
	if sink.Node != "sink" || sink.Run != "goroutine" || sink.PID != 0 || sink.ExpectIn != 100000000 || sink.ExpectOut != 0 || sink.UptimeSeconds <= 0 {
		t.Errorf("sink: got %+v, want node sink, goroutine, pid 0, expect_in 100000000, an uptime", sink)
	}
	if worker.Node != "worker" || len(worker.Sockets) != 2 {
		t.Fatalf("worker.0: got %+v, want node worker with 2 sockets", worker)
	}
	in, out := worker.Sockets[0], worker.Sockets[1]
	if in.Name != "in" || in.Type != "PULL" || len(in.Connect) != 1 || !strings.HasPrefix(in.Connect[0], "inproc://") || len(in.Bind) != 0 {
		t.Errorf("worker.0.in: got %+v, want PULL connected to one inproc endpoint", in)
	}
	if out.Name != "out" || out.Type != "PUSH" || out.DropsUnseen != "" {
		t.Errorf("worker.0.out: got %+v, want PUSH, no unseen drops", out)
	}
	if sk := sink.Sockets[0]; sk.Type != "PULL" || !slices.Equal(sk.Bind, worker.Sockets[1].Connect) {
		t.Errorf("sink.in: got %+v, want PULL bound where worker.0.out connects (%v)", sk, worker.Sockets[1].Connect)
	}

	// Counters flow and the sampler gives rates; an instance's totals are
	// its sockets' sums.
	testutil.WaitFor(t, "a rate at the sink", func() bool {
		st = f.svc.Status()
		return instance(st, "sink").RateIn > 0 && instance(st, "sink").MsgsIn > 0
	})
	for _, n := range st.Nodes {
		var in, out uint64
		var rin, rout float64
		for _, s := range n.Sockets {
			in, out, rin, rout = in+s.MsgsIn, out+s.MsgsOut, rin+s.RateIn, rout+s.RateOut
		}
		if n.MsgsIn != in || n.MsgsOut != out || n.RateIn != rin || n.RateOut != rout {
			t.Errorf("%s: got in %d out %d rates %v/%v, want its sockets' sums %d %d %v/%v", n.Name, n.MsgsIn, n.MsgsOut, n.RateIn, n.RateOut, in, out, rin, rout)
		}
	}

	if err := f.svc.Down(); err != nil {
		t.Fatal(err)
	}
	if got := f.svc.Status().State; got != "stopping" {
		t.Errorf("after down: got state %q, want stopping", got)
	}
	if err := f.wait(t); err != nil {
		t.Errorf("Run after down: got %v, want nil", err)
	}
}

// TestReloadThroughTheFunnel: control's reload goes through the one reload
// path; an invalid file or a renamed topology is rejected and the running
// topology kept; a valid edit is applied; once the loop has ended, a
// reload says the topology is stopping.
func TestReloadThroughTheFunnel(t *testing.T) {
	f := newFixture(t, endless("svcreload", 2))
	f.start(t)
	running := f.svc.Topology()

	f.write(t, strings.Replace(endless("svcreload", 2), "handler: forward", "handler: forwrd", 1))
	rep, err := f.svc.Reload()
	if want := f.file + " is invalid; the running topology is unchanged"; err == nil || err.Error() != want {
		t.Fatalf("invalid file: got error %v, want %q", err, want)
	}
	if rep == nil || rep.Result != control.ReloadRejected || rep.File != f.file || rep.Plan != nil || len(rep.Diagnostics) != 1 ||
		!strings.HasPrefix(rep.Diagnostics[0], f.file+":11:14: ") || !strings.Contains(rep.Diagnostics[0], `did you mean "forward"?`) {
		t.Fatalf("invalid file: got %+v, want rejected, no plan, one diagnostic at %s:11:14 suggesting forward", rep, f.file)
	}
	if f.svc.Topology() != running || len(f.svc.Instances()) != 4 {
		t.Errorf("after a rejected reload: the running topology changed (%d instances)", len(f.svc.Instances()))
	}

	f.write(t, endless("renamed", 2))
	rep, err = f.svc.Reload()
	if err == nil || !strings.Contains(err.Error(), `the topology name cannot change while it runs ("svcreload" to "renamed")`) || rep.Result != control.ReloadRejected {
		t.Fatalf("rename: got %+v, %v; want rejected, the name cannot change", rep, err)
	}

	f.write(t, endless("svcreload", 3))
	rep, err = f.svc.Reload()
	if err != nil || rep.Result != control.ReloadApplied || !slices.Equal(rep.Plan.Start, []string{"worker.2"}) ||
		len(rep.Plan.Stop)+len(rep.Plan.Restart)+len(rep.Plan.Swap) != 0 || len(rep.Plan.Unchanged) != 4 {
		t.Fatalf("valid edit: got %+v (plan %+v), %v; want applied, start worker.2, 4 unchanged", rep, rep.Plan, err)
	}
	if got := names(f.svc.Status()); !slices.Contains(got, "worker.2") || f.svc.Topology().Node("worker.2") == nil {
		t.Errorf("after the edit: instances %v, want worker.2 among them and in the running topology", got)
	}

	rep, err = f.svc.Reload()
	if err != nil || rep.Result != control.ReloadUnchanged || !rep.Plan.Empty() {
		t.Fatalf("same file again: got %+v, %v; want unchanged, an empty plan", rep, err)
	}
	st := f.svc.Status()
	if st.Reloads != 2 || st.ReloadsRejected != 2 || st.ReloadsFailed != 0 {
		t.Errorf("reload counts: got %d applied, %d rejected, %d failed; want 2, 2, 0", st.Reloads, st.ReloadsRejected, st.ReloadsFailed)
	}

	f.svc.Down()
	if err := f.wait(t); err != nil {
		t.Errorf("Run after down: got %v, want nil", err)
	}
	rep, err = f.svc.Reload()
	if rep != nil || err == nil || err.Error() != "the topology is stopping" {
		t.Errorf("reload after the end: got %+v, %v; want no reply, the topology is stopping", rep, err)
	}
}

// TestVerbsBeforeAndAfterStart: the verbs that need the engine say the
// topology is starting until it exists; readiness follows the instances.
func TestVerbsBeforeAndAfterStart(t *testing.T) {
	f := newFixture(t, endless("svcverbs", 1))
	for name, err := range map[string]error{
		"restart": second(f.svc.Restart(control.RestartRequest{Names: []string{"sink"}})),
		"tap":     second(f.svc.Tap(control.TapRequest{Node: "sink", Socket: "in"})),
	} {
		if err == nil || err.Error() != "the topology is starting" {
			t.Errorf("%s before the engine: got %v, want the topology is starting", name, err)
		}
	}
	if _, err := f.svc.Logs(control.LogsRequest{}); err == nil || err.Error() != "this topology keeps no log" {
		t.Errorf("logs without a ring: got %v, want this topology keeps no log", err)
	}
	if code, body := probe(t, f.svc.Readyz); code != http.StatusServiceUnavailable || body != "starting: the engine has not started yet\n" {
		t.Errorf("readyz before the engine: got %d %q, want 503 starting", code, body)
	}

	f.start(t)
	if code, body := probe(t, f.svc.Readyz); code != http.StatusOK || body != "ok\n" {
		t.Errorf("readyz running: got %d %q, want 200 ok", code, body)
	}
	_, err := f.svc.Restart(control.RestartRequest{Names: []string{"wrker"}})
	if want := `topology svcverbs has no node or instance "wrker" (did you mean "worker"?)`; err == nil || err.Error() != want {
		t.Errorf("restart of an unknown node: got %v, want %q", err, want)
	}
	rep, err := f.svc.Restart(control.RestartRequest{Names: []string{"worker"}})
	if err != nil || !slices.Equal(rep.Restarted, []string{"worker.0"}) {
		t.Errorf("restart worker: got %+v, %v; want worker.0", rep, err)
	}
	testutil.WaitFor(t, "worker.0 restarted and running", func() bool {
		n := instance(f.svc.Status(), "worker.0")
		return n.Restarts == 1 && n.State == "running"
	})

	f.svc.Stop(errors.New("test stop"))
	if code, body := probe(t, f.svc.Readyz); code != http.StatusServiceUnavailable || body != "stopping: test stop\n" {
		t.Errorf("readyz stopping: got %d %q, want 503 stopping: test stop", code, body)
	}
}

func second[T any](_ T, err error) error { return err }

func probe(t *testing.T, h http.HandlerFunc) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h(rec, httptest.NewRequest("GET", "/readyz", nil))
	return rec.Code, rec.Body.String()
}
