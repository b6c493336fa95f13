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
