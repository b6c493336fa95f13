package kube

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

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
