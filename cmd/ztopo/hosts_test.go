package main

// End-to-end tests of one file run as several hosts' shares (`ztopo up
// --host`): on loopback addresses of this machine, and, as root, in
// network namespaces joined by a bridge.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/ztopo/ztopo/kube"
	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/spec"
)

// spreadHosts are the three hosts of the spread topologies.
var spreadHosts = [3]string{"edge", "core", "store"}

// spreadFile is ventilator (edge) → 3 workers (core) → sink (store), every
// edge crossing hosts through bind: auto. count 0: a generator that runs
// until stopped, and a sink that counts until stopped.
func spreadFile(name string, addrs [3]string, base, count int) string {
	gen, sink := fmt.Sprintf("{count: %d, size: 16}", count), fmt.Sprintf("{expect: %d}", count)
	if count == 0 {
		gen, sink = "{size: 16, interval: 1ms}", "{}"
	}
	return fmt.Sprintf(`version: 1
name: %s
hosts:
  edge: {address: %s}
  core: {address: %s}
  store: {address: %s}
ports: {from: %d, to: %d}
nodes:
  ventilator:
    host: edge
    handler: generate
    config: %s
    sockets:
      out: {type: PUSH, bind: auto}
  worker:
    host: core
    replicas: 3
    handler: forward
    sockets:
      in: {type: PULL, connect: ventilator.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    host: store
    handler: count
    config: %s
    sockets:
      in: {type: PULL, bind: auto}
`, name, addrs[0], addrs[1], addrs[2], base, base+99, gen, sink)
}

// lateFile is a generator on edge that connects to a sink on store, the
// sink's bind: auto crossing hosts; options are the PUSH socket's own
// (flow YAML, or "").
func lateFile(name string, addrs [3]string, base, count int, options string) string {
	if options != "" {
		options = ", options: " + options
	}
	return fmt.Sprintf(`version: 1
name: %s
hosts:
  edge: {address: %s}
  store: {address: %s}
ports: {from: %d, to: %d}
nodes:
  ventilator:
    host: edge
    handler: generate
    config: {count: %d, size: 16}
    sockets:
      out: {type: PUSH, connect: sink.in%s}
  sink:
    host: store
    handler: count
    config: {expect: %d}
    sockets:
      in: {type: PULL, bind: auto}
`, name, addrs[0], addrs[2], base, base+99, count, options, count)
}

// spreadRun starts the three shares of a file, each under prefix(host).
type spreadRun struct {
	t      *testing.T
	bin    string
	d      e2eDir
	file   string
	name   string
	prefix func(host string) []string
	ups    map[string]*upProc
}

func (s *spreadRun) start(host string) *upProc {
	s.t.Helper()
	u := startUpIn(s.t, s.prefix(host), s.bin, s.d, "--no-watch", "--grace", e2eGrace.String(), "--host", host, s.file)
	s.ups[host] = u
	return u
}

// status is the status of a host's share, through its control socket.
// exit waits for host's up to exit and checks its exit status.
func (s *spreadRun) exit(host string, want int) {
	s.t.Helper()
	if code := s.ups[host].exitCode(e2eBound); code != want {
		s.t.Fatalf("%s: exit status %d, want %d", host, code, want)
	}
}

// received checks that host's log says its sink received n messages.
func (s *spreadRun) received(host string, n int) {
	s.t.Helper()
	if want := fmt.Sprintf("received %d messages in ", n); !strings.Contains(s.ups[host].log(), want) {
		s.t.Errorf("%s's log has no %q", host, want)
	}
}

func (s *spreadRun) status(host string, ok func(control.StatusReply) bool) control.StatusReply {
	s.t.Helper()
	return s.ups[host].waitStatus(s.d.topologyRuntime(s.name+"@"+host), ok)
}

func msgsIn(st control.StatusReply, node string) uint64 {
	var n uint64
	for _, in := range st.Nodes {
		if in.Node == node {
			n += in.MsgsIn
		}
	}
	return n
}

// testSpread runs a batch over three hosts' shares and checks the exact
// count, then a never-ending pipeline where one host's up is killed and
// restarted while the others keep running.
func testSpread(t *testing.T, addrs [3]string, prefix func(host string) []string) {
	bin := buildZtopo(t)
	d := newE2EDir(t)
	base := 20000 + rand.IntN(40000)
	const n = 3000

	t.Run("batch", func(t *testing.T) {
		name := fmt.Sprintf("spread%d", base)
		s := &spreadRun{t: t, bin: bin, d: d, name: name, prefix: prefix, ups: map[string]*upProc{},
			file: d.write(t, name+".yaml", spreadFile(name, addrs, base, n))}
		// Any start order works; the sink last shows that nothing is lost
		// while a host is still missing.
		s.start("edge")
		s.start("core")
		core := s.status("core", func(st control.StatusReply) bool { return allRunning(st) && len(st.Nodes) == 3 })
		if got := core.Name; got != name {
			t.Errorf("core share's name: got %q, want %q", got, name)
		}
		s.start("store")
		s.exit("store", 0)
		s.received("store", n)
		// The host whose nodes all completed exits 0 once its peers took
		// what it sent.
		s.exit("edge", 0)
		// The workers are reactive: their host runs until stopped.
		st := s.status("core", func(st control.StatusReply) bool { return msgsIn(st, "worker") == n })
		for _, in := range st.Nodes {
			if in.MsgsIn != in.MsgsOut {
				t.Errorf("%s: in %d, out %d", in.Name, in.MsgsIn, in.MsgsOut)
			}
		}
		s.ups["core"].signal(syscall.SIGTERM)
		s.exit("core", 0)
	})

	// A producer whose consumer's host starts late: the producer's share
	// must not complete and exit with its messages queued inside libzmq
	// for a connection that is not up yet. It exits 0 only once the
	// consumer's host has taken every message.
	t.Run("late consumer", func(t *testing.T) {
		name := fmt.Sprintf("spreadl%d", base)
		const late = 500 // under the high-water mark: all of it fits in libzmq's queue
		s := &spreadRun{t: t, bin: bin, d: d, name: name, prefix: prefix, ups: map[string]*upProc{},
			file: d.write(t, name+".yaml", lateFile(name, addrs, base+200, late, ""))}
		s.start("edge")
		s.status("edge", allRunning)
		// The consumer's host starts only now; the producer's share must
		// still be there, waiting for it.
		select {
		case <-s.ups["edge"].done:
			t.Fatalf("edge exited (%v) before its consumer's host started: what it sent is lost", s.ups["edge"].err)
		default:
		}
		s.start("store")
		s.exit("store", 0)
		s.received("store", late)
		s.exit("edge", 0)
	})

	t.Run("kill", func(t *testing.T) {
		name := fmt.Sprintf("spreadk%d", base)
		s := &spreadRun{t: t, bin: bin, d: d, name: name, prefix: prefix, ups: map[string]*upProc{},
			file: d.write(t, name+".yaml", spreadFile(name, addrs, base+100, 0))}
		for _, h := range spreadHosts {
			s.start(h)
		}
		s.status("store", func(st control.StatusReply) bool { return msgsIn(st, "sink") > 200 })
		edgePid, storePid := s.ups["edge"].cmd.Process.Pid, s.ups["store"].cmd.Process.Pid

		// SIGKILL: no orderly stop, the control socket left behind.
		old := s.ups["core"]
		if err := old.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		old.wait(e2eBound)
		before := msgsIn(s.status("store", func(control.StatusReply) bool { return true }), "sink")

		s.start("core")
		s.status("core", func(st control.StatusReply) bool { return msgsIn(st, "worker") > 200 })
		st := s.status("store", func(st control.StatusReply) bool { return msgsIn(st, "sink") > before+200 })
		for _, h := range []string{"edge", "store"} {
			select {
			case <-s.ups[h].done:
				t.Fatalf("%s's up exited (%v) while core was away", h, s.ups[h].err)
			default:
			}
		}
		if s.ups["edge"].cmd.Process.Pid != edgePid || s.ups["store"].cmd.Process.Pid != storePid {
			t.Fatal("edge or store was restarted")
		}
		for _, in := range st.Nodes {
			if in.Restarts != 0 || in.State != "running" {
				t.Errorf("store %s: state %s, restarts %d; want running, 0", in.Name, in.State, in.Restarts)
			}
		}
		for _, h := range spreadHosts {
			s.ups[h].signal(syscall.SIGTERM)
		}
		for _, h := range spreadHosts {
			if code := s.ups[h].exitCode(e2eBound); code != 0 {
				t.Errorf("%s: exit status %d, want 0", h, code)
			}
		}
	})
}

// TestHostsOnLoopback runs the shares on this machine's loopback
// addresses 127.0.0.1-3: every process binds its own ports, and peers
// reach them through the hosts' addresses.
func TestHostsOnLoopback(t *testing.T) {
	testSpread(t, [3]string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}, func(string) []string { return nil })
}

// TestHostsInNetworkNamespaces runs each host's share in a network
// namespace of its own, the three joined by a bridge that lives in a
// fourth namespace (so no firewall of this machine's sees the traffic).
// Addresses 10.231.X.1-3 exist inside those namespaces only; everything
// is removed at the end, failed or not.
func TestHostsInNetworkNamespaces(t *testing.T) {
	nets := newNetns(t, 3)
	testSpread(t, [3]string{nets.addrs[0], nets.addrs[1], nets.addrs[2]}, func(host string) []string {
		for i, h := range spreadHosts {
			if h == host {
				return []string{"ip", "netns", "exec", nets.names[i]}
			}
		}
		t.Fatalf("no namespace for host %q", host)
		return nil
	})
}

// netns is a set of network namespaces joined by a bridge.
type netns struct {
	names []string // namespaces, one per host
	addrs []string // their addresses, in order
}

// newNetns creates count namespaces with one veth each, attached to a
// bridge in a namespace of its own, or skips the test when that is not
// possible (not root, no ip(8)).
func newNetns(t *testing.T, count int) netns {
	t.Helper()
	if testing.Short() {
		t.Skip("creates network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root: run the tests as root to run several hosts in namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) is not installed; scripts/deps.sh installs it")
	}
	id := fmt.Sprintf("%d", os.Getpid()%100000)
	subnet := fmt.Sprintf("10.231.%d", os.Getpid()%250+1)
	br := "ztb" + id
	brNS := "zt" + id + "br"
	var cleanups []func()
	t.Cleanup(func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	})
	ip := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			if strings.Contains(string(out), "Operation not permitted") && len(cleanups) == 0 {
				t.Skipf("cannot create network namespaces here: ip %s: %s", strings.Join(args, " "), out)
			}
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	addNS := func(name string) {
		ip("netns", "add", name)
		cleanups = append(cleanups, func() {
			// Deleting a namespace deletes the veth ends inside it, and
			// with them their peers; the bridge goes with its namespace.
			exec.Command("ip", "netns", "del", name).Run()
			os.RemoveAll(filepath.Join("/etc/netns", name))
		})
	}
	addNS(brNS)
	ip("-n", brNS, "link", "add", br, "type", "bridge")
	ip("-n", brNS, "link", "set", br, "up")
	n := netns{}
	for i := 0; i < count; i++ {
		name := fmt.Sprintf("zt%sh%d", id, i)
		addr := fmt.Sprintf("%s.%d", subnet, i+1)
		addNS(name)
		peer := fmt.Sprintf("ztv%sh%d", id, i)
		ip("-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", brNS)
		ip("-n", brNS, "link", "set", peer, "master", br)
		ip("-n", brNS, "link", "set", peer, "up")
		ip("-n", name, "addr", "add", addr+"/24", "dev", "eth0")
		ip("-n", name, "link", "set", "eth0", "up")
		ip("-n", name, "link", "set", "lo", "up")
		n.names = append(n.names, name)
		n.addrs = append(n.addrs, addr)
	}
	// The bridge forwards once its ports are up; ping each address from
	// the first namespace until it answers.
	for _, a := range n.addrs[1:] {
		deadline := time.Now().Add(e2eBound)
		for {
			err := exec.Command("ip", "netns", "exec", n.names[0], "ping", "-c", "1", "-W", "1", a).Run()
			if err == nil {
				break
			}
			if _, lerr := exec.LookPath("ping"); lerr != nil {
				break // no ping: the test's own reconnects cover it
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not answer from %s: %v", a, n.names[0], err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return n
}

// TestUpHealthAndReadiness: /healthz answers 200 while up runs; /readyz
// 503, naming the instance, while a node waits at its sync barrier, and
// 200 once it runs.
func TestUpHealthAndReadiness(t *testing.T) {
	bin := buildZtopo(t)
	d := newE2EDir(t)
	syncEP := d.ipc("sync.sock")
	file := d.write(t, "ready.yaml", fmt.Sprintf(`version: 1
name: e2eready
nodes:
  gate:
    handler: log
    sync: {expect: 1, bind: %s}
    sockets:
      in: {type: PULL, bind: auto}
`, syncEP))
	up, base := startUpMetrics(t, bin, d, file)
	ctx, cancel := context.WithTimeout(context.Background(), e2eBound)
	defer cancel()
	get := func(path string) (int, string) { return httpGet(t, ctx, base+path) }
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: got %d %q, want 200 \"ok\\n\"", code, body)
	}
	// Not ready until the barrier opens: the engine may still be starting.
	for {
		code, body := get("/readyz")
		if code != http.StatusServiceUnavailable {
			t.Fatalf("/readyz before the sync: got %d %q, want 503", code, body)
		}
		if body == "gate: starting\n" {
			break
		}
		if body != "starting: the engine has not started yet\n" {
			t.Fatalf("/readyz before the sync: got %q", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	syncPeer(t, syncEP)
	up.waitStatus(d.topologyRuntime("e2eready"), allRunning)
	if code, body := get("/readyz"); code != 200 || body != "ok\n" {
		t.Errorf("/readyz once running: got %d %q, want 200 \"ok\\n\"", code, body)
	}
	up.signal(syscall.SIGTERM)
	if code := up.exitCode(e2eBound); code != 0 {
		t.Fatalf("exit status after SIGTERM: got %d, want 0", code)
	}
}

// syncPeer signals a sync barrier as a zguide sync client does: a REQ
// sends, and receives the answer.
func syncPeer(t *testing.T, endpoint string) {
	t.Helper()
	s, done := peerSocket(t, zmq4.REQ)
	defer done()
	s.SetLinger(0)
	s.SetRcvtimeo(e2eBound)
	if err := s.Connect(endpoint); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send("", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(0); err != nil {
		t.Fatalf("sync answer: %v", err)
	}
}

// TestExportRun runs what `ztopo export kubernetes` emits without a
// cluster: each pod of each StatefulSet in a network namespace of its
// own, its container's command and arguments as the kubelet would run
// them ($(POD_NAME) from the downward API), its projected volume laid out
// as the kubelet would (the ConfigMap's items and the pod's own Secret's
// items at their paths and modes), and the pods' DNS names — the headless
// Services' per-pod records — in each namespace's hosts file
// (/etc/netns/NAME/hosts, which ip netns exec mounts over /etc/hosts).
// Every edge is CURVE, with the keys the Secrets carry. The batch
// delivers the exact count.
func TestExportRun(t *testing.T) {
	const n = 3000
	const ns = "zt"
	name := fmt.Sprintf("kbatch%d", os.Getpid()%100000)
	src := fmt.Sprintf(`version: 1
name: %s
security: {keys: keys, require: curve}
nodes:
  ventilator:
    handler: generate
    config: {count: %d, size: 16}
    sockets:
      out: {type: PUSH, bind: auto, curve: {server: ventilator}}
  worker:
    replicas: 3
    handler: forward
    sockets:
      in: {type: PULL, connect: ventilator.out, curve: {client: worker}}
      out: {type: PUSH, connect: sink.in, curve: {client: worker}}
  sink:
    handler: count
    config: {expect: %d}
    sockets:
      in: {type: PULL, bind: "tcp://*:5558", curve: {server: sink}}
`, name, n, n)
	bin := buildZtopo(t)
	d := newE2EDir(t)
	src0 := filepath.Join(d.root, "src")
	for _, k := range []string{"ventilator", "worker", "sink"} {
		if out, err := exec.Command(bin, "keys", "gen", k, "--dir", filepath.Join(src0, "keys")).CombinedOutput(); err != nil {
			t.Fatalf("keys gen %s: %v: %s", k, err, out)
		}
	}
	topoFile := filepath.Join(src0, "topology.yaml")
	if err := os.WriteFile(topoFile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := kube.Build(topoFile, []byte(src), func(string) (string, bool) { return "", false }, kube.Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	type pod struct {
		name    string
		set     string
		ordinal int
		c       corev1.Container
		vol     *corev1.ProjectedVolumeSource
	}
	var pods []pod
	configMaps := map[string]*corev1.ConfigMap{}
	secrets := map[string]*corev1.Secret{}
	for _, o := range m.Objects {
		switch o := o.(type) {
		case *corev1.ConfigMap:
			configMaps[o.Name] = o
		case *corev1.Secret:
			secrets[o.Name] = o
		case *appsv1.StatefulSet:
			for i := 0; i < int(*o.Spec.Replicas); i++ {
				pods = append(pods, pod{name: fmt.Sprintf("%s-%d", o.Name, i), set: o.Name, ordinal: i,
					c: o.Spec.Template.Spec.Containers[0], vol: o.Spec.Template.Spec.Volumes[0].Projected})
			}
		}
	}
	if len(pods) != 5 {
		t.Fatalf("got %d pods, want 5 (ventilator, 3 workers, sink)", len(pods))
	}
	nets := newNetns(t, len(pods))
	// The cluster DNS: every pod's name at its namespace's address.
	var hosts strings.Builder
	hosts.WriteString("127.0.0.1 localhost\n")
	for i, p := range pods {
		fmt.Fprintf(&hosts, "%s %s\n", nets.addrs[i], spec.PodAddress(p.set, p.ordinal, p.set, ns))
	}
	// Each pod's projected volume, as the kubelet writes it (owned by
	// root, as the test runs; the pods with secrets run as root).
	mountOf := func(p pod) string {
		t.Helper()
		mount := filepath.Join(d.root, "vol-"+p.name)
		write := func(rel string, data []byte, mode int32) {
			t.Helper()
			f := filepath.Join(mount, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f, data, os.FileMode(mode)); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(f, os.FileMode(mode)); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range p.vol.Sources {
			switch {
			case s.ConfigMap != nil:
				cm := configMaps[s.ConfigMap.Name]
				for _, it := range s.ConfigMap.Items {
					data, ok := cm.Data[it.Key]
					if !ok {
						t.Fatalf("pod %s: ConfigMap %s has no key %s", p.name, cm.Name, it.Key)
					}
					write(it.Path, []byte(data), *p.vol.DefaultMode)
				}
			case s.Secret != nil:
				sec := secrets[s.Secret.Name]
				for _, it := range s.Secret.Items {
					data, ok := sec.Data[it.Key]
					if !ok {
						t.Fatalf("pod %s: Secret %s has no key %s", p.name, s.Secret.Name, it.Key)
					}
					write(it.Path, data, *it.Mode)
				}
			}
		}
		return mount
	}
	ups := map[string]*upProc{}
	for i, p := range pods {
		dir := filepath.Join("/etc/netns", nets.names[i])
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hosts.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for _, e := range p.c.Env {
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name" {
				env[e.Name] = p.name
			}
		}
		if p.c.Command[0] != "ztopo" || p.c.Args[0] != "up" {
			t.Fatalf("pod %s runs %v %v, want ztopo up", p.name, p.c.Command, p.c.Args)
		}
		mount := mountOf(p)
		var args []string
		for _, a := range p.c.Args[1:] {
			for k, v := range env {
				a = strings.ReplaceAll(a, "$("+k+")", v)
			}
			a = strings.Replace(a, kube.ConfigDir+"/", mount+"/", 1)
			args = append(args, a)
		}
		if p.c.SecurityContext == nil || p.c.SecurityContext.RunAsUser == nil || *p.c.SecurityContext.RunAsUser != 0 {
			t.Fatalf("pod %s mounts secrets but does not run as their owner, root: %+v", p.name, p.c.SecurityContext)
		}
		// Its own secret only: a worker's pod has no sink key.
		own := map[string]string{"ventilator": "ventilator", "worker": "worker", "sink": "sink"}[p.set]
		secretFiles, _ := filepath.Glob(filepath.Join(mount, "keys", "*.key_secret"))
		if len(secretFiles) != 1 || filepath.Base(secretFiles[0]) != own+".key_secret" {
			t.Fatalf("pod %s mounts secrets %v, want only %s.key_secret", p.name, secretFiles, own)
		}
		ups[p.name] = startUpIn(t, []string{"ip", "netns", "exec", nets.names[i]}, bin, d, args...)
	}
	if code := ups["sink-0"].exitCode(e2eBound); code != 0 {
		t.Fatalf("sink-0: exit status %d, want 0", code)
	}
	if want := fmt.Sprintf("received %d messages in ", n); !strings.Contains(ups["sink-0"].log(), want) {
		t.Errorf("sink-0's log has no %q", want)
	}
	if code := ups["ventilator-0"].exitCode(e2eBound); code != 0 {
		t.Fatalf("ventilator-0: exit status %d, want 0", code)
	}
	// A forward's counters come from libzmq's proxy statistics and lag
	// by up to a second: wait for the workers' sum to settle at n.
	workerStatus := func(i int) control.StatusReply {
		w := fmt.Sprintf("worker-%d", i)
		return ups[w].waitStatus(d.topologyRuntime(name+"@"+w), func(st control.StatusReply) bool { return len(st.Nodes) == 1 })
	}
	var through uint64
	deadline := time.Now().Add(e2eBound)
	for {
		through = 0
		for i := 0; i < 3; i++ {
			st := workerStatus(i)
			if st.Nodes[0].Name != fmt.Sprintf("worker.%d", i) {
				t.Fatalf("pod worker-%d runs %s, want worker.%d", i, st.Nodes[0].Name, i)
			}
			through += msgsIn(st, "worker")
		}
		if through == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := 0; i < 3; i++ {
		w := fmt.Sprintf("worker-%d", i)
		ups[w].signal(syscall.SIGTERM)
		if code := ups[w].exitCode(e2eBound); code != 0 {
			t.Errorf("%s: exit status %d, want 0", w, code)
		}
	}
	if through != n {
		t.Errorf("the workers forwarded %d messages, want %d", through, n)
	}
}
