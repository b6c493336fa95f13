package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ztopo/ztopo/kube"
)

const exportUsage = `usage: ztopo export kubernetes [--namespace NS] [--image IMAGE] [--in-place] [-o DIR] FILE

Prints Kubernetes manifests (multi-document YAML) that run the topology on
a cluster:

  ConfigMap NAME-topology  the topology file and the files it names under its
                           directory (public keys, wasm modules, scripts
                           given to exec handlers and commands), mounted at
                           /etc/ztopo at their relative paths
  Secret NAME-UNIT-keys    the CURVE secret keys of a unit's own nodes,
                           mounted mode 0400 in the keys directory
  Service UNIT             headless (clusterIP None, publishNotReadyAddresses)
                           for each unit whose nodes bind
  StatefulSet UNIT         per host when the file has hosts (one pod runs
                           the host's share), else per node (pod UNIT-I runs
                           replica I); probes on /readyz and /healthz

Connects between units go to each pod's own DNS name,
POD.UNIT.NS.svc.cluster.local (libzmq connects to one DNS answer only).
The pod template carries the file's checksum, so applying a changed file
rolls the pods; --in-place leaves it out, and the pods reload the file when
the kubelet updates the ConfigMap.

    ztopo export kubernetes topology.yaml | kubectl apply -f -

Flags:
  --namespace NS   the namespace (default "default")
  --image IMAGE    the ztopo image (default ztopo:latest, see Dockerfile)
  --in-place       reload in place on ConfigMap updates instead of rolling
  -o DIR           write one file per object into DIR instead of stdout
  --env-file FILE        variables for ${VAR} from FILE (KEY=value lines)
                         instead of the .env beside the topology file;
                         repeatable, a later file wins; the environment
                         overrides both

Exit status: 0 ok, 1 invalid topology (or one Kubernetes cannot run: inproc
or ipc between pods, names that are not DNS labels), 2 wrong usage.
`

func runExport(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("export")
	envFiles := addEnvFileFlag(fs)
	ns := fs.String("namespace", "default", "")
	image := fs.String("image", kube.DefaultImage, "")
	inPlace := fs.Bool("in-place", false, "")
	dir := fs.String("o", "", "")
	pos, code, ok := parseArgs(fs, "export", exportUsage, args, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case len(pos) == 0:
		return usageError(stderr, "export", exportUsage, "want a target (kubernetes) and a topology file")
	case pos[0] != "kubernetes":
		return usageError(stderr, "export", exportUsage, "unknown target %q%s", pos[0], didYouMean(pos[0], []string{"kubernetes"}))
	case len(pos) != 2:
		return usageError(stderr, "export", exportUsage, "want one topology file, got %d", len(pos)-1)
	}
	file := pos[1]
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "%s: cannot read topology: %v\n", file, unwrapPath(err))
		return exitFailure
	}
	m, err := kube.Build(file, data, os.LookupEnv, kube.Options{Namespace: *ns, Image: *image, InPlace: *inPlace, EnvFiles: *envFiles, DotEnv: true})
	if err != nil {
		return fail(stderr, "export", err)
	}
	if *dir == "" {
		out, err := kube.YAML(m.Objects)
		if err != nil {
			fmt.Fprintf(stderr, "ztopo export: %v\n", err)
			return exitFailure
		}
		stdout.Write(out)
		return exitOK
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "ztopo export: %v\n", err)
		return exitFailure
	}
	for _, o := range m.Objects {
		out, err := kube.YAML([]runtime.Object{o})
		if err == nil {
			err = os.WriteFile(filepath.Join(*dir, kube.FileName(o)), out, 0o644)
		}
		if err != nil {
			fmt.Fprintf(stderr, "ztopo export: %v\n", err)
			return exitFailure
		}
	}
	return exitOK
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
