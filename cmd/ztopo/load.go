package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ztopo/ztopo/spec"
)

// loadOptions are the same for every verb: the process environment
// overrides the env files (--env-file, else the .env beside the topology
// file), which override the file's vars, as in docker compose; ipc
// endpoints go to the default runtime directory of the topology's name (of
// its share, for a host), so that `plan` resolves `bind: auto` exactly as
// the running `up` did. host is the --host of the verb: "" for every node
// on this machine. The programs of command, exec and plugin nodes must
// exist: a typo fails validation (and up) rather than crash-looping at run
// time.
func loadOptions(host string, envFiles []string) spec.LoadOptions {
	return spec.LoadOptions{Env: os.LookupEnv, Host: host, CheckExecutables: true, EnvFiles: envFiles, DotEnv: true}
}

// envFileFlag is --env-file, which may be given more than once (a later
// file wins).
type envFileFlag []string

func (e *envFileFlag) String() string { return strings.Join(*e, ",") }

func (e *envFileFlag) Set(v string) error {
	if v == "" {
		return errors.New("want a file name")
	}
	*e = append(*e, v)
	return nil
}

// addEnvFileFlag registers --env-file on a verb that loads a topology file.
func addEnvFileFlag(fs *flag.FlagSet) *envFileFlag {
	var e envFileFlag
	fs.Var(&e, "env-file", "")
	return &e
}

// envFileUsage is the flag's line in the usage of the verbs that take it.
const envFileUsage = `  --env-file FILE        variables for ${VAR} from FILE (KEY=value lines)
                         instead of the .env beside the topology file;
                         repeatable, a later file wins; the environment
                         overrides both`

// printDiags writes diagnostics, warnings included, one per line, sorted.
func printDiags(w io.Writer, ds spec.Diags) {
	s := append(spec.Diags(nil), ds...)
	s.Sort()
	for _, d := range s {
		fmt.Fprintln(w, d.String())
	}
}

// fail prints why verb failed and gives exit status 1: a topology file's
// diagnostics as FILE:LINE:COL lines, anything else as "ztopo VERB: error".
func fail(stderr io.Writer, verb string, err error) int {
	var ds spec.Diags
	if errors.As(err, &ds) {
		printDiags(stderr, ds)
	} else {
		fmt.Fprintf(stderr, "ztopo %s: %v\n", verb, err)
	}
	return exitFailure
}

// watchedEnvFiles are the env files a load of path reads, for `up` to
// watch: the --env-file files, else the .env beside path.
func watchedEnvFiles(path string, envFiles []string) []string {
	if len(envFiles) > 0 {
		return envFiles
	}
	return []string{filepath.Join(filepath.Dir(path), spec.DotEnv)}
}
