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
// Files: the pods mount one projected volume at ConfigDir, where the
// topology file and every file it references by a path under its own
// directory appear at the same relative paths: from the ConfigMap, the
// topology, the public keys (security.keys) and the files that are not
// executables — wasm modules, and the arguments of exec handlers and
// commands that name files (scripts run by an interpreter); from one
// Secret per unit, the CURVE secret keys of that unit's nodes only, mode
// 0400. Executables (argv[0] given as a path, plugins) belong in the image.
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
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

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
	// EnvFiles and DotEnv are spec.LoadOptions': the env files whose
	// variables ${VAR} sees. Their variables go into the pods' environment
	// too (with the value the export used: the exporter's environment
	// wins), so that `ztopo up` in a pod resolves the file as the export
	// did; a node's `env` travels in the topology file itself.
	EnvFiles []string
	DotEnv   bool
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
	// Secrets are the names of the CURVE keys whose secrets its nodes use,
	// sorted: its Secret holds those and no other.
	Secrets []string
}

// File is one file of the projected volume: its path under ConfigDir and
// its contents.
type File struct {
	Path string
	Data []byte
}

// maxConfigMap is what the export puts in one ConfigMap at most: the API
// server refuses objects over 1 MiB, and the object has more than data.
const maxConfigMap = 1000 * 1000

// Manifests are the objects of an export, in the order they are applied.
type Manifests struct {
	Units   []Unit
	Objects []runtime.Object
}

// Build resolves the file at path (data, its contents) for the pods of
// namespace opts.Namespace and returns the objects that run it. Problems
// come back as spec.Diags with positions: everything spec refuses across
// hosts (inproc or ipc between pods, loopback binds), and names Kubernetes
// does not take. The builtin handlers must be registered with spec, as in
// ztopo (runtime/handler/builtin); this package does not import them, which
// would link libzmq into it.
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
	lopts := spec.LoadOptions{Env: env, Kubernetes: opts.Namespace, RuntimeDir: "/run/ztopo", EnvFiles: opts.EnvFiles, DotEnv: opts.DotEnv}
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
	files, ds := referenced(t, f)
	if ds.HasErrors() {
		ds.Sort()
		return nil, ds
	}
	secrets := map[string][]byte{}
	for _, u := range units {
		for _, k := range u.Secrets {
			if _, ok := secrets[k]; ok {
				continue
			}
			b, err := os.ReadFile(filepath.Join(t.Security.KeysDir, k+secretSuffix))
			if err != nil {
				return nil, fmt.Errorf("secret key %q: %w", k, err)
			}
			secrets[k] = b
		}
	}
	m := &Manifests{Units: units}
	cm := configMap(t.Name, opts.Namespace, data, files)
	m.Objects = append(m.Objects, cm)
	for _, u := range units {
		if len(u.Secrets) > 0 {
			m.Objects = append(m.Objects, secret(t.Name, opts.Namespace, u, secrets))
		}
	}
	for _, u := range units {
		if len(u.Ports) > 0 {
			m.Objects = append(m.Objects, service(t.Name, opts.Namespace, u))
		}
	}
	keysRel := ""
	if t.Security != nil && t.Security.KeysDir != "" {
		keysRel, _ = filepath.Rel(t.Dir, t.Security.KeysDir)
		keysRel = filepath.ToSlash(keysRel)
	}
	podEnv := podEnvOf(filename, env, lopts)
	for _, u := range units {
		// The checksum covers what the unit's pods mount: the ConfigMap
		// and their own secrets.
		h := sha256.New()
		h.Write(data)
		for _, fl := range files {
			fmt.Fprintf(h, "\x00%s\x00%d\x00", fl.Path, len(fl.Data))
			h.Write(fl.Data)
		}
		for _, k := range u.Secrets {
			fmt.Fprintf(h, "\x00%s\x00", k)
			h.Write(secrets[k])
		}
		checksum := hex.EncodeToString(h.Sum(nil))
		m.Objects = append(m.Objects, statefulSet(t.Name, opts, u, cm.Name, files, keysRel, checksum, podEnv))
	}
	return m, nil
}

// The certificate file suffixes (internal/curvecert).
const (
	publicSuffix = ".key"
	secretSuffix = ".key_secret"
)

// referenced lists the files of the ConfigMap besides the topology: the
// public keys its sockets name, wasm modules, and the files that exec
// handlers and commands name as arguments, each under the topology's
// directory. A path outside it is left to the image, except the keys
// directory, which must be under it (the pods find it relative to the
// file).
func referenced(t *spec.Topology, f *spec.File) ([]File, spec.Diags) {
	var ds spec.Diags
	seen := map[string]bool{}
	var out []File
	size := 0
	add := func(abs string, pos spec.Pos, what string, must bool) {
		rel, err := filepath.Rel(t.Dir, abs)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
			if must {
				ds = append(ds, spec.Diag{Pos: pos, Msg: fmt.Sprintf("%s %s is not under the topology's directory: the pods mount the topology's files at %s only", what, abs, ConfigDir), Hint: "move it beside the topology file"})
			}
			return
		}
		rel = filepath.ToSlash(rel)
		if seen[rel] || rel == ConfigKey {
			return
		}
		fi, err := os.Stat(abs)
		if err != nil || !fi.Mode().IsRegular() {
			if must {
				ds = append(ds, spec.Diag{Pos: pos, Msg: fmt.Sprintf("cannot read %s %s", what, abs)})
			}
			return
		}
		b, err := os.ReadFile(abs)
		if err != nil {
			ds = append(ds, spec.Diag{Pos: pos, Msg: fmt.Sprintf("cannot read %s %s: %v", what, abs, err)})
			return
		}
		size += len(b)
		if size > maxConfigMap {
			ds = append(ds, spec.Diag{Pos: pos, Msg: fmt.Sprintf("%s %s makes the ConfigMap larger than 1 MB, which Kubernetes refuses", what, rel), Hint: "put it in the image (FROM ztopo) and name it by an absolute path"})
			return
		}
		seen[rel] = true
		out = append(out, File{Path: rel, Data: b})
	}
	keysPos := spec.Pos{}
	if f != nil && f.Security != nil && f.Security.Keys != nil {
		keysPos = f.Security.Keys.Pos
	}
	for _, n := range t.Nodes {
		switch n.Handler.Kind {
		case spec.HandlerWasm:
			add(n.Handler.Path, n.Pos, "wasm module", false)
		case spec.HandlerExec, spec.HandlerCommand:
			// argv[0] is a program: the image's. Later arguments that
			// name files beside the topology (a script for an
			// interpreter, its data) go with the file.
			for _, a := range n.Handler.Argv[1:] {
				if a != "" && !filepath.IsAbs(a) {
					add(filepath.Join(t.Dir, a), n.Pos, "file", false)
				}
			}
		}
		for _, s := range n.Sockets {
			c := s.Curve
			if c == nil || t.Security == nil {
				continue
			}
			names := []string{c.Key}
			if c.ServerName != "" {
				names = append(names, c.ServerName)
			}
			for _, k := range c.Allow {
				names = append(names, k.Name)
			}
			for _, k := range names {
				add(filepath.Join(t.Security.KeysDir, k+publicSuffix), keysPos, "public key", true)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, ds
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
					if s.Curve != nil && !slices.Contains(u.Secrets, s.Curve.Key) {
						u.Secrets = append(u.Secrets, s.Curve.Key)
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
		sort.Strings(u.Secrets)
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

func configMap(topo, ns string, data []byte, files []File) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: topo + "-topology", Namespace: ns, Labels: objLabels(topo, "")},
		Data:       map[string]string{ConfigKey: string(data)},
	}
	for i, f := range files {
		k := fileKey(i, f.Path)
		if utf8.Valid(f.Data) {
			cm.Data[k] = string(f.Data)
		} else {
			if cm.BinaryData == nil {
				cm.BinaryData = map[string][]byte{}
			}
			cm.BinaryData[k] = f.Data
		}
	}
	return cm
}

// fileKey is the ConfigMap key of the i-th file: keys cannot hold '/', so
// the volume's items map each key to the file's path.
func fileKey(i int, p string) string {
	base := []byte(path.Base(p))
	for j, c := range base {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			base[j] = '_'
		}
	}
	return fmt.Sprintf("file%d-%s", i, base)
}

// secret is a unit's Secret: the secret certificates of its nodes' keys.
func secret(topo, ns string, u Unit, secrets map[string][]byte) *corev1.Secret {
	s := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: secretName(topo, u), Namespace: ns, Labels: objLabels(topo, u.Name)},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{},
	}
	for _, k := range u.Secrets {
		s.Data[k+secretSuffix] = secrets[k]
	}
	return s
}

func secretName(topo string, u Unit) string { return topo + "-" + u.Name + "-keys" }

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

// podEnvOf is the variables of the export's env files, by name, each with
// the value the export resolved the file with.
func podEnvOf(filename string, env func(string) (string, bool), lopts spec.LoadOptions) []corev1.EnvVar {
	vars, _ := spec.ReadEnvFiles(filename, lopts) // their problems were reported by the load
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]corev1.EnvVar, 0, len(names))
	for _, k := range names {
		v := vars[k].Value
		if env != nil {
			if ev, ok := env(k); ok {
				v = ev
			}
		}
		out = append(out, corev1.EnvVar{Name: k, Value: v})
	}
	return out
}

// volume is the unit's projected volume: the ConfigMap's files at their
// paths, and the unit's secret keys, mode 0400, in the keys directory.
func volume(topo string, u Unit, cm string, files []File, keysRel string) corev1.Volume {
	items := []corev1.KeyToPath{{Key: ConfigKey, Path: ConfigKey}}
	for i, f := range files {
		items = append(items, corev1.KeyToPath{Key: fileKey(i, f.Path), Path: f.Path})
	}
	src := []corev1.VolumeProjection{{ConfigMap: &corev1.ConfigMapProjection{
		LocalObjectReference: corev1.LocalObjectReference{Name: cm}, Items: items,
	}}}
	if len(u.Secrets) > 0 {
		var sitems []corev1.KeyToPath
		for _, k := range u.Secrets {
			sitems = append(sitems, corev1.KeyToPath{Key: k + secretSuffix, Path: path.Join(keysRel, k+secretSuffix), Mode: ptr(int32(0o400))})
		}
		src = append(src, corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: secretName(topo, u)}, Items: sitems,
		}})
	}
	return corev1.Volume{Name: "topology", VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{Sources: src, DefaultMode: ptr(int32(0o444))},
	}}
}

func statefulSet(topo string, opts Options, u Unit, cm string, files []File, keysRel, checksum string, podEnv []corev1.EnvVar) *appsv1.StatefulSet {
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
		Env: append([]corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"},
		}}}, podEnv...),
		Ports:          []corev1.ContainerPort{{Name: "metrics", ContainerPort: MetricsPort, Protocol: corev1.ProtocolTCP}},
		ReadinessProbe: probe("/readyz"),
		LivenessProbe:  probe("/healthz"),
		VolumeMounts:   []corev1.VolumeMount{{Name: "topology", MountPath: ConfigDir, ReadOnly: true}},
	}
	for _, p := range u.Ports {
		c.Ports = append(c.Ports, corev1.ContainerPort{Name: portName(p), ContainerPort: int32(p), Protocol: corev1.ProtocolTCP})
	}
	if len(u.Secrets) > 0 {
		// The kubelet writes a Secret's files owned by root, and ztopo
		// refuses a secret key readable by group or others (an fsGroup
		// would make it so): the container runs as root, the owner of its
		// secrets, with every capability dropped.
		c.SecurityContext = &corev1.SecurityContext{
			RunAsUser:                ptr(int64(0)),
			AllowPrivilegeEscalation: ptr(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		}
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
					Volumes:    []corev1.Volume{volume(topo, u, cm, files, keysRel)},
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
