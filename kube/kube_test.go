package kube

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	_ "github.com/ztopo/ztopo/runtime/handler/builtin" // the files name builtin handlers
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden manifests in testdata/")

func noEnv(string) (string, bool) { return "", false }

func build(t *testing.T, name string, opts Options) *Manifests {
	t.Helper()
	path := filepath.Join("testdata", name+".yaml")
	if fi, err := os.Stat(filepath.Join("testdata", name)); err == nil && fi.IsDir() {
		path = filepath.Join(copyTree(t, filepath.Join("testdata", name)), "topology.yaml")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Build(path, data, noEnv, opts)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return m
}

var cases = []struct {
	name string
	opts Options
}{
	{"hosts", Options{Namespace: "zt"}},
	{"nodes", Options{Namespace: "pipelines", Image: "registry.example/ztopo:1.0"}},
	{"nodes-inplace", Options{InPlace: true}},
	{"secure", Options{Namespace: "zt"}},
}

// copyTree copies a testdata directory into a temporary one, with the
// secret keys' mode 0600 (git keeps no modes but the executable bit, and
// the loader refuses a secret others can read).
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, ".key_secret") {
			mode = 0o600
		}
		if err := os.WriteFile(out, b, mode); err != nil {
			return err
		}
		return os.Chmod(out, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestGolden compares the export with testdata/NAME.out.yaml; -update
// rewrites them.
func TestGolden(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.TrimSuffix(tc.name, "-inplace")
			got, err := YAML(build(t, src, tc.opts).Objects)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.name+".out.yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs:\n%s", path, got)
			}
		})
	}
}

// typed is a fresh typed object of a kind.
func typed(kind string) runtime.Object {
	switch kind {
	case "ConfigMap":
		return &corev1.ConfigMap{}
	case "Secret":
		return &corev1.Secret{}
	case "Service":
		return &corev1.Service{}
	case "StatefulSet":
		return &appsv1.StatefulSet{}
	}
	return nil
}

// TestStrictRoundTrip: every document decodes strictly (no unknown or
// misspelt field) into its typed struct, equal to the object built, and
// encodes back to the same bytes.
func TestStrictRoundTrip(t *testing.T) {
	for _, tc := range cases {
		m := build(t, strings.TrimSuffix(tc.name, "-inplace"), tc.opts)
		out, err := YAML(m.Objects)
		if err != nil {
			t.Fatal(err)
		}
		docs := strings.Split(string(out), "\n---\n")
		if len(docs) != len(m.Objects) {
			t.Fatalf("%s: %d documents for %d objects", tc.name, len(docs), len(m.Objects))
		}
		for i, doc := range docs {
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatal(err)
			}
			obj := typed(meta.Kind)
			if obj == nil {
				t.Fatalf("%s: document %d has unexpected kind %q", tc.name, i, meta.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Errorf("%s: %s does not decode strictly: %v", tc.name, meta.Kind, err)
				continue
			}
			if !reflect.DeepEqual(obj, m.Objects[i]) {
				t.Errorf("%s: %s %d decodes to another object than the one built", tc.name, meta.Kind, i)
			}
			again, err := yaml.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSuffix(doc, "\n") != strings.TrimSuffix(string(again), "\n") {
				t.Errorf("%s: %s does not encode back the same:\n%s\nthen\n%s", tc.name, meta.Kind, doc, again)
			}
		}
	}
}

// TestAPIRules checks what the API server would refuse, with the rules
// apimachinery exposes: names, label keys and values, ports, and that
// every StatefulSet's selector selects its own pods and every Service's
// selector selects a StatefulSet's pods.
func TestAPIRules(t *testing.T) {
	for _, tc := range cases {
		m := build(t, strings.TrimSuffix(tc.name, "-inplace"), tc.opts)
		var podLabels []labels.Set
		for _, o := range m.Objects {
			meta := o.(metav1.Object)
			what := fmt.Sprintf("%s %s %s", tc.name, o.GetObjectKind().GroupVersionKind().Kind, meta.GetName())
			check := func(rule string, errs []string) {
				if len(errs) > 0 {
					t.Errorf("%s: %s: %s", what, rule, strings.Join(errs, "; "))
				}
			}
			check("namespace", validation.IsDNS1123Label(meta.GetNamespace()))
			check("labels", labelErrs(meta.GetLabels()))
			switch o := o.(type) {
			case *corev1.ConfigMap:
				check("name", validation.IsDNS1123Subdomain(o.Name))
				for k := range o.Data {
					check("data key", validation.IsConfigMapKey(k))
				}
				for k := range o.BinaryData {
					check("binary data key", validation.IsConfigMapKey(k))
				}
			case *corev1.Secret:
				check("name", validation.IsDNS1123Subdomain(o.Name))
				for k := range o.Data {
					check("data key", validation.IsConfigMapKey(k))
				}
			case *corev1.Service:
				check("name", validation.IsDNS1035Label(o.Name))
				if o.Spec.ClusterIP != corev1.ClusterIPNone || !o.Spec.PublishNotReadyAddresses {
					t.Errorf("%s: not headless with publishNotReadyAddresses", what)
				}
				for _, p := range o.Spec.Ports {
					check("port", validation.IsValidPortNum(int(p.Port)))
					check("port name", validation.IsValidPortName(p.Name))
				}
			case *appsv1.StatefulSet:
				check("name", validation.IsDNS1123Label(o.Name))
				sel := labels.SelectorFromSet(o.Spec.Selector.MatchLabels)
				pl := labels.Set(o.Spec.Template.Labels)
				if !sel.Matches(pl) {
					t.Errorf("%s: selector %v does not match its pod labels %v", what, sel, pl)
				}
				check("pod labels", labelErrs(pl))
				podLabels = append(podLabels, pl)
				for _, c := range o.Spec.Template.Spec.Containers {
					check("container name", validation.IsDNS1123Label(c.Name))
					for _, p := range c.Ports {
						check("container port", validation.IsValidPortNum(int(p.ContainerPort)))
						check("container port name", validation.IsValidPortName(p.Name))
					}
					for _, pr := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
						if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Port.StrVal != "metrics" {
							t.Errorf("%s: probe not on the metrics port: %+v", what, pr)
						}
					}
				}
				_, sum := o.Spec.Template.Annotations[ChecksumAnnotation]
				if sum == tc.opts.InPlace {
					t.Errorf("%s: checksum annotation present %v with InPlace %v", what, sum, tc.opts.InPlace)
				}
			}
		}
		for _, o := range m.Objects {
			svc, ok := o.(*corev1.Service)
			if !ok {
				continue
			}
			sel, hit := labels.SelectorFromSet(svc.Spec.Selector), 0
			for _, pl := range podLabels {
				if sel.Matches(pl) {
					hit++
				}
			}
			if hit != 1 {
				t.Errorf("%s: Service %s selects the pods of %d StatefulSets, want 1", tc.name, svc.Name, hit)
			}
		}
	}
}

func labelErrs(l map[string]string) []string {
	var errs []string
	for k, v := range l {
		errs = append(errs, validation.IsQualifiedName(k)...)
		errs = append(errs, validation.IsValidLabelValue(v)...)
	}
	return errs
}

// TestUnits: per host with hosts, per node (a pod per replica) without.
func TestUnits(t *testing.T) {
	got := func(m *Manifests) string {
		var b strings.Builder
		for _, u := range m.Units {
			fmt.Fprintf(&b, "%s pods=%v ports=%v share=%s\n", u.Name, u.Pods, u.Ports, u.ShareArg)
		}
		return b.String()
	}
	h := build(t, "hosts", Options{Namespace: "zt"})
	if g := got(h); !strings.Contains(g, "core pods=[core-0] ports=[] share=core\n") || !strings.Contains(g, "store pods=[store-0] ports=[5558] share=store\n") {
		t.Errorf("hosts units:\n%s", g)
	}
	n := build(t, "nodes", Options{})
	if g := got(n); !strings.Contains(g, "worker pods=[worker-0 worker-1 worker-2] ports=[] share=$(POD_NAME)\n") || !strings.Contains(g, "sink pods=[sink-0] ports=[5558] share=$(POD_NAME)\n") {
		t.Errorf("nodes units:\n%s", g)
	}
}

// TestRefused: what cannot run as pods is refused with positions.
func TestRefused(t *testing.T) {
	src := `version: 1
name: bad
nodes:
  a_b:
    handler: generate
    sockets:
      out: {type: PUSH, bind: inproc://x}
  c:
    handler: log
    sockets:
      in: {type: PULL, connect: inproc://x}
      more: {type: PULL, connect: d.out}
  d:
    handler: generate
    sockets:
      out: {type: PUSH, bind: ipc:///tmp/d.sock}
`
	_, err := Build("t.yaml", []byte(src), noEnv, Options{})
	if err == nil {
		t.Fatal("Build: no error")
	}
	want := []string{
		`t.yaml:4:3: node name "a_b" cannot name Kubernetes objects: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?') (use lower-case letters, digits and '-')`,
		`t.yaml:11:33: inproc endpoint "inproc://x" links "c" on host "c-0" and "a_b" on host "a_b-0": only tcp crosses hosts (use bind: auto (with ports) or a tcp:// endpoint, or place both on one host)`,
		`t.yaml:12:35: ipc endpoint "ipc:///tmp/d.sock" links "c" on host "c-0" and "d" on host "d-0": only tcp crosses hosts (use bind: auto (with ports) or a tcp:// endpoint, or place both on one host)`,
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("got\n%s\nwant a line\n%s", got, w)
		}
	}
}

// build0 is the export of testdata/nodes.yaml with default options.
func build0(t *testing.T) *Manifests { return build(t, "nodes", Options{}) }

func (m *Manifests) statefulSets() []*appsv1.StatefulSet {
	var out []*appsv1.StatefulSet
	for _, o := range m.Objects {
		if s, ok := o.(*appsv1.StatefulSet); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestSecretsAndFiles: the CURVE secret keys are in Secrets, never in the
// ConfigMap, each unit's Secret holding the keys of its own nodes only; the
// projected volume puts every file at the path the topology names it by
// (keys beside the file, scripts, wasm modules), secrets with mode 0400;
// the pods that mount secrets run as their owner (root) with every
// capability dropped.
func TestSecretsAndFiles(t *testing.T) {
	m := build(t, "secure", Options{Namespace: "zt"})
	var cm *corev1.ConfigMap
	secrets := map[string]*corev1.Secret{}
	sets := map[string]*appsv1.StatefulSet{}
	for _, o := range m.Objects {
		switch o := o.(type) {
		case *corev1.ConfigMap:
			cm = o
		case *corev1.Secret:
			secrets[o.Name] = o
		case *appsv1.StatefulSet:
			sets[o.Name] = o
		}
	}
	for k, v := range cm.Data {
		if strings.Contains(k, "key_secret") || strings.Contains(v, "secret-key") {
			t.Errorf("ConfigMap entry %s holds a secret key", k)
		}
	}
	want := map[string][]string{
		"secure-ventilator-keys": {"ventilator.key_secret"},
		"secure-worker-keys":     {"worker.key_secret"},
		"secure-shout-keys":      {"sink.key_secret", "worker.key_secret"},
		"secure-sink-keys":       {"sink.key_secret"},
	}
	if len(secrets) != len(want) {
		t.Errorf("got %d Secrets, want %d", len(secrets), len(want))
	}
	for name, keys := range want {
		s := secrets[name]
		if s == nil {
			t.Errorf("no Secret %s", name)
			continue
		}
		var got []string
		for k, v := range s.Data {
			got = append(got, k)
			if !strings.Contains(string(v), "secret-key = ") {
				t.Errorf("Secret %s: %s is not a secret certificate", name, k)
			}
		}
		sort.Strings(got)
		if !reflect.DeepEqual(got, keys) {
			t.Errorf("Secret %s holds %v, want %v", name, got, keys)
		}
	}
	// Each pod's volume, as the kubelet would lay it out.
	for name, st := range sets {
		files := map[string]os.FileMode{}
		vols := st.Spec.Template.Spec.Volumes
		if len(vols) != 1 || vols[0].Projected == nil {
			t.Fatalf("StatefulSet %s: volumes %+v, want one projected volume", name, vols)
		}
		for _, src := range vols[0].Projected.Sources {
			switch {
			case src.ConfigMap != nil:
				if src.ConfigMap.Name != cm.Name {
					t.Errorf("%s: projects ConfigMap %s", name, src.ConfigMap.Name)
				}
				for _, it := range src.ConfigMap.Items {
					_, text := cm.Data[it.Key]
					_, bin := cm.BinaryData[it.Key]
					if !text && !bin {
						t.Errorf("%s: item %s is not in the ConfigMap", name, it.Key)
					}
					files[it.Path] = os.FileMode(*vols[0].Projected.DefaultMode)
				}
			case src.Secret != nil:
				sec := secrets[src.Secret.Name]
				if sec == nil {
					t.Fatalf("%s: projects a Secret %s that is not exported", name, src.Secret.Name)
				}
				for _, it := range src.Secret.Items {
					if _, ok := sec.Data[it.Key]; !ok {
						t.Errorf("%s: item %s is not in Secret %s", name, it.Key, sec.Name)
					}
					if it.Mode == nil || *it.Mode != 0o400 {
						t.Errorf("%s: secret %s mode %v, want 0400", name, it.Path, it.Mode)
					}
					files[it.Path] = os.FileMode(*it.Mode)
				}
			}
		}
		for _, p := range []string{"topology.yaml", "keys/sink.key", "keys/worker.key", "keys/ventilator.key", "filters/upper.py", "mods/shout.wasm"} {
			if files[p] != 0o444 {
				t.Errorf("%s: %s mode %v, want 0444 from the ConfigMap", name, p, files[p])
			}
		}
		var secretFiles []string
		for p, mode := range files {
			if strings.HasSuffix(p, ".key_secret") {
				secretFiles = append(secretFiles, strings.TrimPrefix(p, "keys/"))
				if mode != 0o400 {
					t.Errorf("%s: %s mode %v", name, p, mode)
				}
			}
		}
		sort.Strings(secretFiles)
		if w := want["secure-"+name+"-keys"]; !reflect.DeepEqual(secretFiles, w) {
			t.Errorf("%s: mounts secrets %v, want %v", name, secretFiles, w)
		}
		sc := st.Spec.Template.Spec.Containers[0].SecurityContext
		if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: security context %+v, want root with every capability dropped", name, sc)
		}
	}
	if got := string(cm.BinaryData["file4-shout.wasm"]); got != "\x00asm\x01\x00\x00\x00\x00\x03\x01x\xff" {
		t.Errorf("the wasm module in the ConfigMap: got %q", got)
	}
	// Without keys, pods run as the image's user.
	for _, s := range build(t, "nodes", Options{}).statefulSets() {
		if sc := s.Spec.Template.Spec.Containers[0].SecurityContext; sc != nil {
			t.Errorf("%s: security context %+v without secrets", s.Name, sc)
		}
	}
}

// TestKeysOutsideRefused: keys the pods could not find beside the file are
// refused with the position of security.keys.
func TestKeysOutsideRefused(t *testing.T) {
	dir := copyTree(t, filepath.Join("testdata", "secure"))
	sub := filepath.Join(dir, "topo")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "topology.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), "{keys: keys,", "{keys: ../keys,", 1))
	path := filepath.Join(sub, "topology.yaml")
	_, err = Build(path, data, noEnv, Options{})
	want := path + ":3:18: public key " + filepath.Join(dir, "keys", "sink.key") + " is not under the topology's directory: the pods mount the topology's files at /etc/ztopo only (move it beside the topology file)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// TestEnvFilesReachThePods: the variables of the export's env files go
// into every pod's environment with the value the export used (the
// exporter's environment wins over the file), so that `ztopo up` in a pod
// resolves ${VAR} as the export did; a node's env travels in the file.
func TestEnvFilesReachThePods(t *testing.T) {
	dir := t.TempDir()
	src := `version: 1
name: envpods
nodes:
  sink:
    handler: count
    sockets:
      in: {type: PULL, bind: "tcp://*:${PORT}"}
  cmd:
    command: [/bin/true]
    env: {WHO: "${WHO}"}
`
	file := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("PORT=5600\nWHO=dotenv\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) {
		if k == "WHO" {
			return "exporter", true
		}
		return "", false
	}
	m, err := Build(file, []byte(src), env, Options{DotEnv: true})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	sets := 0
	for _, o := range m.Objects {
		ss, ok := o.(*appsv1.StatefulSet)
		if !ok {
			continue
		}
		sets++
		got := ss.Spec.Template.Spec.Containers[0].Env
		if len(got) != 3 || got[0].Name != "POD_NAME" ||
			got[1] != (corev1.EnvVar{Name: "PORT", Value: "5600"}) || got[2] != (corev1.EnvVar{Name: "WHO", Value: "exporter"}) {
			t.Errorf("%s: container env %v, want POD_NAME, PORT=5600, WHO=exporter", ss.Name, got)
		}
	}
	if sets != 2 {
		t.Errorf("got %d StatefulSets, want 2", sets)
	}
	// Without DotEnv the .env is not read: ${PORT} is undefined.
	if _, err := Build(file, []byte(src), env, Options{}); err == nil || !strings.Contains(err.Error(), `undefined variable "PORT"`) {
		t.Errorf("Build without DotEnv: got %v, want undefined PORT", err)
	}
}
