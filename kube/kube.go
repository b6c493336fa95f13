// Package kube builds the Kubernetes objects that run a topology on a
// cluster (`ztopo export kubernetes`), from the typed API structs of
// k8s.io/api — objects, never text templates.
//
// The unit of deployment is a share of the topology (spec.LoadOptions
// Kubernetes): per host when the file has hosts, else per node. Each unit
// is a StatefulSet whose pods run `ztopo up --kubernetes NS --host POD`
// on the file mounted from a ConfigMap: with hosts, one pod (HOST-0) runs
// the host's share; without, the pod NODE-I runs replica I of the node,
// the pod ordinal giving the replica. Units whose nodes bind get a
// headless Service (clusterIP None, publishNotReadyAddresses, so that
// peers reach a pod before it is ready, as ZeroMQ expects), and every
// connect between units names a pod's own DNS name,
// POD.SERVICE.NS.svc.cluster.local: libzmq connects to one DNS answer
// only, so a Service's virtual IP or a name with several answers would
// send every connect to one pod.
//
// Changes roll pods: the pod template carries the checksum of the
// topology, so `kubectl apply` of a changed file restarts the pods (all
// of them: every pod mounts the whole file). The in-place alternative —
// leave the checksum out (Options.InPlace) and let each pod's file watch
// see the kubelet's ConfigMap update and reload only what changed — keeps
// unchanged nodes running, at the cost of the kubelet's sync delay (up to
// a minute) and of a watcher that must follow the `..data` symlink swap.
package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/ztopo/ztopo/spec"
)

// Options are what the export needs beyond the file.
type Options struct {
	Namespace string // default "default"
	Image     string // default DefaultImage
	// InPlace leaves the config checksum out of the pod templates: a
	// changed ConfigMap is then applied by each pod's reload, not by
	// rolling the pods.
	InPlace bool
}

// DefaultImage is the image the manifests name unless told otherwise: the
// one the repository's Dockerfile builds (`docker build -t ztopo .`).
const DefaultImage = "ztopo:latest"

// Paths and ports inside the pods.
const (
	ConfigDir   = "/etc/ztopo"
	ConfigKey   = "topology.yaml"
	MetricsPort = 9464
	// ChecksumAnnotation holds the sha256 of the topology file.
	ChecksumAnnotation = "ztopo.io/config-checksum"
)

// Unit is one StatefulSet's worth of the topology.
type Unit struct {
	Name     string   // StatefulSet and Service name: the host, or the node
	Replicas int      // pods
	Pods     []string // their names, ordinal order
	Ports    []int    // tcp ports its nodes bind, sorted; none: no Service
	// ShareArg is what --host says in the pods: the host, or $(POD_NAME).
	ShareArg string
}

// Manifests are the objects of an export, in the order they are applied.
type Manifests struct {
	Units   []Unit
	Objects []runtime.Object
}

// Build resolves the file at path (data, its contents) for the pods of
// namespace opts.Namespace and returns the objects that run it. Problems
// come back as spec.Diags with positions: everything spec refuses across
// hosts (inproc or ipc between pods, loopback binds), and names Kubernetes
// does not take.
func Build(filename string, data []byte, env func(string) (string, bool), opts Options) (*Manifests, error) {
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.Image == "" {
		opts.Image = DefaultImage
	}
	if errs := validation.IsDNS1123Label(opts.Namespace); len(errs) > 0 {
		return nil, fmt.Errorf("namespace %q: %s", opts.Namespace, strings.Join(errs, "; "))
	}
	lopts := spec.LoadOptions{Env: env, Kubernetes: opts.Namespace, RuntimeDir: "/run/ztopo"}
	t, ds := spec.Parse(filename, data, lopts)
	f, _ := spec.ReadFile(filename, data)
	bad := append(spec.Diags(nil), ds...)
	if f != nil {
		for _, fn := range f.Nodes {
			// Without hosts a node names a StatefulSet, its pods and its
			// Service: a DNS-1123 label, with room for "-ORDINAL".
			if len(f.Hosts) == 0 {
				if errs := validation.IsDNS1035Label(fn.Name + "-999"); len(errs) > 0 {
					bad = append(bad, spec.Diag{Pos: fn.Pos, Msg: fmt.Sprintf("node name %q cannot name Kubernetes objects: %s", fn.Name, strings.Join(errs, "; ")), Hint: "use lower-case letters, digits and '-'"})
				}
			}
		}
		for _, fh := range f.Hosts {
			if errs := validation.IsDNS1035Label(fh.Name + "-0"); len(errs) > 0 {
				bad = append(bad, spec.Diag{Pos: fh.Pos, Msg: fmt.Sprintf("host name %q cannot name Kubernetes objects: %s", fh.Name, strings.Join(errs, "; ")), Hint: "use lower-case letters, digits and '-'"})
			}
		}
		if t != nil {
			if errs := validation.IsDNS1123Subdomain(t.Name + "-topology"); len(errs) > 0 {
				bad = append(bad, spec.Diag{Pos: f.Name.Pos, Msg: fmt.Sprintf("topology name %q cannot name Kubernetes objects: %s", t.Name, strings.Join(errs, "; "))})
			}
		}
	}
	if bad.HasErrors() || t == nil {
		bad.Sort()
		return nil, bad
	}

	units, err := unitsOf(filename, data, env, t, lopts, len(t.Hosts) > 0 && len(f.Hosts) > 0)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	checksum := hex.EncodeToString(sum[:])
	m := &Manifests{Units: units}
	cm := configMap(t.Name, opts.Namespace, data)
	m.Objects = append(m.Objects, cm)
	for _, u := range units {
		if len(u.Ports) > 0 {
			m.Objects = append(m.Objects, service(t.Name, opts.Namespace, u))
		}
	}
	for _, u := range units {
		m.Objects = append(m.Objects, statefulSet(t.Name, opts, u, cm.Name, checksum))
	}
	return m, nil
}

// unitsOf lists the StatefulSets: a host's share, or a node with its pods.
func unitsOf(filename string, data []byte, env func(string) (string, bool), t *spec.Topology, lopts spec.LoadOptions, hosts bool) ([]Unit, error) {
	byName := map[string]*Unit{}
	var names []string
	for _, n := range t.Nodes {
		name := n.Host
		if !hosts {
			name = n.Base
		}
		u, ok := byName[name]
		if !ok {
			u = &Unit{Name: name}
			byName[name] = u
			names = append(names, name)
		}
		if hosts {
			u.Replicas, u.ShareArg = 1, name
		} else {
			u.Replicas, u.ShareArg = n.Replicas, "$(POD_NAME)"
		}
	}
	sort.Strings(names)
	var out []Unit
	for _, name := range names {
		u := byName[name]
		for i := 0; i < u.Replicas; i++ {
			u.Pods = append(u.Pods, spec.PodName(name, i))
		}
		// The ports its pods bind, from the share each pod runs.
		ports := map[int]bool{}
		for _, pod := range u.Pods {
			share := pod
			if hosts {
				share = name
			}
			o := lopts
			o.Host = share
			st, ds := spec.Parse(filename, data, o)
			if st == nil {
				return nil, ds
			}
			for _, n := range st.Nodes {
				for _, s := range n.Sockets {
					for _, b := range s.Bind {
						addPort(ports, b)
					}
				}
				if n.Sync != nil && n.Sync.Bind != "" {
					addPort(ports, n.Sync.Bind)
				}
			}
		}
		for p := range ports {
			u.Ports = append(u.Ports, p)
		}
		sort.Ints(u.Ports)
		out = append(out, *u)
	}
	return out, nil
}

func addPort(ports map[int]bool, ep string) {
	e, err := spec.ParseEndpoint(ep, true)
	if err != nil || e.Transport != "tcp" {
		return
	}
	if p, err := strconv.Atoi(e.Port); err == nil {
		ports[p] = true
	}
}

func objLabels(topo, unit string) map[string]string {
	l := map[string]string{
		"app.kubernetes.io/name":       "ztopo",
		"app.kubernetes.io/instance":   topo,
		"app.kubernetes.io/managed-by": "ztopo-export",
	}
	if unit != "" {
		l["ztopo.io/unit"] = unit
	}
	return l
}

func selector(topo, unit string) map[string]string {
	return map[string]string{"app.kubernetes.io/instance": topo, "ztopo.io/unit": unit}
}

func configMap(topo, ns string, data []byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: topo + "-topology", Namespace: ns, Labels: objLabels(topo, "")},
		Data:       map[string]string{ConfigKey: string(data)},
	}
}

func service(topo, ns string, u Unit) *corev1.Service {
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: u.Name, Namespace: ns, Labels: objLabels(topo, u.Name)},
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 selector(topo, u.Name),
		},
	}
	for _, p := range u.Ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
			Name: "zmq-" + strconv.Itoa(p), Port: int32(p), TargetPort: intstr.FromInt32(int32(p)), Protocol: corev1.ProtocolTCP,
		})
	}
	return svc
}

func statefulSet(topo string, opts Options, u Unit, configMap, checksum string) *appsv1.StatefulSet {
	replicas := int32(u.Replicas)
	var annotations map[string]string
	if !opts.InPlace {
		annotations = map[string]string{ChecksumAnnotation: checksum}
	}
	probe := func(p string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: p, Port: intstr.FromString("metrics"),
		}}, PeriodSeconds: 5}
	}
	args := []string{"up", "--kubernetes", opts.Namespace, "--host", u.ShareArg,
		"--metrics", ":" + strconv.Itoa(MetricsPort), "--log-format", "json", path.Join(ConfigDir, ConfigKey)}
	if !opts.InPlace {
		args = append([]string{args[0], "--no-watch"}, args[1:]...)
	}
	c := corev1.Container{
		Name:    "ztopo",
		Image:   opts.Image,
		Command: []string{"ztopo"},
		Args:    args,
		Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"},
		}}},
		Ports:          []corev1.ContainerPort{{Name: "metrics", ContainerPort: MetricsPort, Protocol: corev1.ProtocolTCP}},
		ReadinessProbe: probe("/readyz"),
		LivenessProbe:  probe("/healthz"),
		VolumeMounts:   []corev1.VolumeMount{{Name: "topology", MountPath: ConfigDir, ReadOnly: true}},
	}
	for _, p := range u.Ports {
		c.Ports = append(c.Ports, corev1.ContainerPort{Name: portName(p), ContainerPort: int32(p), Protocol: corev1.ProtocolTCP})
	}
	sel := selector(topo, u.Name)
	return &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{Name: u.Name, Namespace: opts.Namespace, Labels: objLabels(topo, u.Name)},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    &replicas,
			ServiceName: u.Name,
			// Pods start together: start order never matters to ZeroMQ,
			// and replica 2 must not wait for replica 1 to be ready.
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: objLabels(topo, u.Name), Annotations: annotations},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{c},
					Volumes: []corev1.Volume{{Name: "topology", VolumeSource: corev1.VolumeSource{
						ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: configMap}},
					}}},
					// The drain grace of `ztopo up` (5s) fits well inside.
					TerminationGracePeriodSeconds: ptr(int64(30)),
				},
			},
		},
	}
}

// portName names a container port: at most 15 characters.
func portName(p int) string { return "zmq-" + strconv.Itoa(p) }

func ptr[T any](v T) *T { return &v }

// YAML renders objects as one multi-document YAML stream.
func YAML(objs []runtime.Object) ([]byte, error) {
	var b strings.Builder
	for i, o := range objs {
		y, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return []byte(b.String()), nil
}

// FileName is the name of an object's file under -o DIR: KIND-NAME.yaml.
func FileName(o runtime.Object) string {
	kind := strings.ToLower(o.GetObjectKind().GroupVersionKind().Kind)
	name := ""
	if m, ok := o.(metav1.Object); ok {
		name = m.GetName()
	}
	return kind + "-" + name + ".yaml"
}
