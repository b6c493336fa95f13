package main

import (
	"io"

	"github.com/ztopo/ztopo/spec"
)

const configUsage = `usage: ztopo config [--json] FILE

Prints the topology as ztopo up would run it, like 'docker compose config':
variables interpolated (the environment overrides vars), defaults applied
to every node, replicas expanded into instances (worker.0, worker.1, ...),
and every endpoint as it will be bound or connected ('bind: auto' and
'connect: node.socket' resolved). Restart policies are in their long form,
durations written as text (250ms).

The output is YAML (--json: JSON), with instances in the topology's order.
It is for reading and diffing: instance names are not node names, so it is
not itself a topology file.

Flags:
  --env-file FILE        variables for ${VAR} from FILE (KEY=value lines)
                         instead of the .env beside the topology file;
                         repeatable, a later file wins; the environment
                         overrides both

Exit status: 0 ok, 1 invalid topology (every problem printed), 2 wrong usage.
`

func runConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("config")
	envFiles := addEnvFileFlag(fs)
	asJSON := fs.Bool("json", false, "")
	file, code, ok := parseFile(fs, "config", configUsage, args, stdout, stderr)
	if !ok {
		return code
	}
	t, ds := spec.Load(file, loadOptions("", *envFiles))
	if t == nil {
		printDiags(stderr, ds)
		return exitFailure
	}
	printDiags(stderr, ds) // warnings
	r := t.Resolve()
	var b []byte
	var err error
	if *asJSON {
		b, err = r.JSON()
	} else {
		b, err = r.YAML()
	}
	if err != nil {
		return fail(stderr, "config", err)
	}
	stdout.Write(b)
	return exitOK
}
