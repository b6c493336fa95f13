package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

func testPublic(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("keys", name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(data), `public-key = "`)
	return rest[:40]
}

// TestCurveResolve: a server's allow list defaults to the keys of the
// clients that connect to it by reference; clients get the server's public
// key from the reference, or from server_key for a literal endpoint; the
// model holds the path of each secret, never a secret.
func TestCurveResolve(t *testing.T) {
	keyDir(t, &txtar.Archive{})
	src := `version: 1
name: c
security: {keys: keys, require: curve}
nodes:
  sink:
    handler: count
    sockets:
      in: {type: PULL, bind: "tcp://127.0.0.1:5701", curve: {server: sink}}
      any: {type: PULL, bind: "tcp://127.0.0.1:5702", curve: {server: sink, allow: ["*"]}}
  worker:
    replicas: 2
    handler: generate
    sockets:
      out: {type: PUSH, connect: sink.in, curve: {client: worker}}
  lit:
    handler: generate
    sockets:
      out: {type: PUSH, connect: "tcp://127.0.0.1:5702", curve: {client: other, server_key: sink}}
`
	topo, ds := Parse("topology.yaml", []byte(src), LoadOptions{Env: mapEnv(nil), RuntimeDir: testRuntimeDir})
	if topo == nil || len(ds) != 0 {
		t.Fatalf("got diagnostics:\n%v", ds)
	}
	dir, _ := filepath.Abs("keys")
	sink, worker, other := testPublic(t, "sink"), testPublic(t, "worker"), testPublic(t, "other")
	if !topo.Security.RequireCurve || topo.Security.KeysDir != dir {
		t.Errorf("got security %+v", topo.Security)
	}
	got := topo.Node("sink").Socket("in").Curve
	want := &Curve{Server: true, Key: "sink", Public: sink, SecretFile: filepath.Join(dir, "sink.key_secret"), Allow: []CurveKey{{"worker", worker}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sink.in: got %+v, want %+v", got, want)
	}
	if c := topo.Node("sink").Socket("any").Curve; !c.AllowAny || c.Allow != nil {
		t.Errorf("sink.any: got %+v, want AllowAny", c)
	}
	for _, name := range []string{"worker.0", "worker.1"} {
		got := topo.Node(name).Socket("out").Curve
		want := &Curve{Key: "worker", Public: worker, SecretFile: filepath.Join(dir, "worker.key_secret"), ServerName: "sink", ServerKey: sink}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s.out: got %+v, want %+v", name, got, want)
		}
	}
	if c := topo.Node("lit").Socket("out").Curve; c.Public != other || c.ServerKey != sink || c.ServerName != "sink" {
		t.Errorf("lit.out: got %+v", c)
	}
	// No secret anywhere in the model.
	secret, err := os.ReadFile(filepath.Join("keys", "sink.key_secret"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(secret), `secret-key = "`)
	if s := rest[:40]; strings.Contains(strings.ReplaceAll(reflectString(topo), " ", ""), s) {
		t.Fatal("the resolved topology holds a secret key")
	}
}

func reflectString(v any) string {
	var b strings.Builder
	var walk func(reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				walk(v.Field(i))
			}
		case reflect.Slice, reflect.Array:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		case reflect.Map:
			for _, k := range v.MapKeys() {
				walk(k)
				walk(v.MapIndex(k))
			}
		case reflect.String:
			b.WriteString(v.String())
			b.WriteByte('\n')
		}
	}
	walk(reflect.ValueOf(v))
	return b.String()
}

// TestDiffAllow: a CURVE server whose allow list only lets more clients in
// is updated in place (AllowOnly); one that revokes a key, or whose ZAP
// handler runs in a child, restarts, and RestartReason says why.
func TestDiffAllow(t *testing.T) {
	keyDir(t, &txtar.Archive{})
	src := func(allow, run, handler string) *Topology {
		t.Helper()
		s := `version: 1
name: c
security: {keys: keys}
nodes:
  sink:
    handler: ` + handler + run + `
    sockets:
      in: {type: PULL, bind: "tcp://127.0.0.1:5701", curve: {server: sink, allow: [` + allow + `]}}
`
		topo, ds := Parse("topology.yaml", []byte(s), LoadOptions{Env: mapEnv(nil), RuntimeDir: testRuntimeDir})
		if topo == nil || ds.HasErrors() {
			t.Fatalf("got diagnostics:\n%v", ds)
		}
		return topo
	}
	const proc = "\n    run: process"
	for _, tc := range []struct {
		name      string
		old, new  *Topology
		allowOnly bool
		why       string
	}{
		{"a key added", src("worker", "", "count"), src("worker, other", "", "count"), true, ""},
		{"any client", src("worker", "", "count"), src(`"*"`, "", "count"), true, ""},
		{"a key revoked", src("worker, other", "", "count"), src("worker", "", "count"), false,
			"no longer allowed on CURVE server in: other: libzmq cannot close one client's session, so the socket is opened afresh (its allowed clients reconnect by themselves)"},
		{"any client no more", src(`"*"`, "", "count"), src("worker", "", "count"), false,
			`no longer allowed on CURVE server in: "*": libzmq cannot close one client's session, so the socket is opened afresh (its allowed clients reconnect by themselves)`},
		{"a key added to a process node", src("worker", proc, "count"), src("worker, other", proc, "count"), false,
			"the allow list of a process or command node lives in its child process: a new list means a new process"},
		{"a key and the handler", src("worker", "", "count"), src("worker, other", "", "log"), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Diff(tc.old, tc.new)
			if got := len(p.AllowOnly) == 1 && len(p.Changed) == 0; got != tc.allowOnly {
				t.Fatalf("got plan %+v, want allow-only %v", p, tc.allowOnly)
			}
			if !tc.allowOnly && !reflect.DeepEqual(p.Changed, []string{"sink"}) {
				t.Fatalf("got plan %+v, want sink restarted", p)
			}
			if p.Empty() {
				t.Error("the plan is empty")
			}
			if got := RestartReason(tc.old.Node("sink"), tc.new.Node("sink")); got != tc.why {
				t.Errorf("got reason %q, want %q", got, tc.why)
			}
		})
	}
}

// TestShareNeedsOwnSecrets: a host's share needs the secret keys of its
// own nodes only (a host, or a pod, holds no other's secrets); the whole
// file, on one machine, needs them all.
func TestShareNeedsOwnSecrets(t *testing.T) {
	keyDir(t, &txtar.Archive{})
	if err := os.Remove(filepath.Join("keys", "worker.key_secret")); err != nil {
		t.Fatal(err)
	}
	src := `version: 1
name: c
security: {keys: keys, require: curve}
hosts:
  a: {address: 10.0.0.1}
  b: {address: 10.0.0.2}
ports: {from: 7000, to: 7100}
nodes:
  sink:
    host: a
    handler: count
    sockets:
      in: {type: PULL, bind: auto, curve: {server: sink}}
  worker:
    host: b
    handler: generate
    sockets:
      out: {type: PUSH, connect: sink.in, curve: {client: worker}}
`
	topo, ds := Parse("topology.yaml", []byte(src), LoadOptions{Env: mapEnv(nil), RuntimeDir: testRuntimeDir, Host: "a"})
	if topo == nil || ds.HasErrors() {
		t.Fatalf("share a: got diagnostics:\n%v", ds)
	}
	if c := topo.Nodes[0].Sockets[0].Curve; c == nil || len(c.Allow) != 1 || c.Allow[0].Name != "worker" {
		t.Fatalf("share a: sink.in curve %+v, want worker allowed", c)
	}
	_, ds = Parse("topology.yaml", []byte(src), LoadOptions{Env: mapEnv(nil), RuntimeDir: testRuntimeDir, Host: "b"})
	if want := `topology.yaml:18:59: key "worker" has no secret certificate keys/worker.key_secret`; !strings.Contains(render(ds), want) {
		t.Errorf("share b: got\n%s\nwant a line starting %s", render(ds), want)
	}
	_, ds = Parse("topology.yaml", []byte(src), LoadOptions{Env: mapEnv(nil), RuntimeDir: testRuntimeDir})
	if want := `topology.yaml:18:59: key "worker" has no secret certificate keys/worker.key_secret`; !strings.Contains(render(ds), want) {
		t.Errorf("whole file: got\n%s\nwant a line starting %s", render(ds), want)
	}
}
