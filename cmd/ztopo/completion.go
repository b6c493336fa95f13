package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/ztopo/ztopo/runtime/control"
)

const completionUsage = `usage: ztopo completion bash|zsh|fish

Prints a shell completion script: verbs, their flags, the names of the
running topologies and topology files where a FILE|NAME goes, and node
names of the topology for logs, restart, top and tap. Install it with:

  bash:  ztopo completion bash > /etc/bash_completion.d/ztopo
         (or: source <(ztopo completion bash) in ~/.bashrc)
  zsh:   ztopo completion zsh > "${fpath[1]}/_ztopo"
         (or: source <(ztopo completion zsh) in ~/.zshrc)
  fish:  ztopo completion fish > ~/.config/fish/completions/ztopo.fish

The scripts ask ztopo itself for the words ('ztopo _complete'), so they
stay right as ztopo changes.

Exit status: 0 ok, 2 wrong usage.
`

const bashCompletion = `# bash completion for ztopo (ztopo completion bash)
_ztopo() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	local IFS=$'\n'
	COMPREPLY=($(compgen -W "$(ztopo _complete -- "${COMP_WORDS[@]:1:COMP_CWORD-1}" 2>/dev/null)" -- "$cur"))
}
complete -o default -F _ztopo ztopo
`

const zshCompletion = `#compdef ztopo
# zsh completion for ztopo (ztopo completion zsh)
_ztopo() {
	local -a words_
	words_=(${(f)"$(ztopo _complete -- ${words[2,CURRENT-1]} 2>/dev/null)"})
	compadd -a words_
	_files -g '*.y(a|)ml'
}
compdef _ztopo ztopo
`

const fishCompletion = `# fish completion for ztopo (ztopo completion fish)
complete -c ztopo -f -a '(ztopo _complete -- (commandline -opc)[2..-1] 2>/dev/null)'
`

func runCompletion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("completion")
	pos, code, ok := parseArgs(fs, "completion", completionUsage, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return usageError(stderr, "completion", completionUsage, "want one shell: bash, zsh or fish")
	}
	switch pos[0] {
	case "bash":
		fmt.Fprint(stdout, bashCompletion)
	case "zsh":
		fmt.Fprint(stdout, zshCompletion)
	case "fish":
		fmt.Fprint(stdout, fishCompletion)
	default:
		return usageError(stderr, "completion", completionUsage, "unknown shell %q (bash, zsh or fish)", pos[0])
	}
	return exitOK
}

// targetVerbs take FILE|NAME first; nodeVerbs then take node names.
var (
	targetVerbs = map[string]bool{"ps": true, "status": true, "reload": true, "down": true, "logs": true, "restart": true, "top": true, "tap": true}
	nodeVerbs   = map[string]bool{"logs": true, "restart": true, "tap": true}
	fileVerbs   = map[string]bool{"up": true, "validate": true, "graph": true, "plan": true, "config": true}
)

// _complete is registered here: it reads verbs, so verbs cannot name it.
func init() {
	verbs["_complete"] = verb{name: "_complete", summary: "the words that may come next (for completion scripts)", usage: "usage: ztopo _complete -- WORDS...\n", run: runComplete, hidden: true}
}

// runComplete is the hidden verb the completion scripts call: the words
// that may come next after the given ones, one a line.
func runComplete(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	for _, w := range completeWords(args) {
		fmt.Fprintln(stdout, w)
	}
	return exitOK
}

func completeWords(words []string) []string {
	if len(words) == 0 {
		return append(verbNames(), "help")
	}
	verb := words[0]
	v, ok := verbs[verb]
	if verb == "help" {
		return verbNames()
	}
	if !ok {
		return nil
	}
	var pos []string
	for _, w := range words[1:] {
		if !strings.HasPrefix(w, "-") {
			pos = append(pos, w)
		}
	}
	out := usageFlags(v.usage)
	switch {
	case verb == "completion":
		out = append(out, "bash", "zsh", "fish")
	case targetVerbs[verb] && len(pos) == 0:
		for _, e := range runningTopologies(context.Background()) {
			out = append(out, e.Name)
		}
		out = append(out, yamlFiles()...)
		if verb == "tap" {
			out = append(out, socketNames("")...)
		} else if nodeVerbs[verb] {
			out = append(out, nodeNames("")...)
		}
	case verb == "tap":
		out = append(out, socketNames(pos[0])...)
	case nodeVerbs[verb]:
		out = append(out, nodeNames(pos[0])...)
	case fileVerbs[verb]:
		out = append(out, yamlFiles()...)
	}
	return out
}

var flagLineRE = regexp.MustCompile(`(?m)^\s+(-{1,2}[a-zA-Z][\w-]*)(?:, (--[a-zA-Z][\w-]*))?`)

// usageFlags are the flags a verb's usage text documents.
func usageFlags(usage string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range flagLineRE.FindAllStringSubmatch(usage, -1) {
		for _, f := range m[1:] {
			if f != "" && !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	sort.Strings(out)
	return out
}

// nodeNames are the nodes and instances of a running topology, named by
// arg or, for "", the one running.
func nodeNames(arg string) []string {
	return statusNames(arg, false)
}

// socketNames are NODE.SOCKET and INSTANCE.SOCKET of the running topology
// named by arg (the one running when ""), for tap.
func socketNames(arg string) []string {
	return statusNames(arg, true)
}

func statusNames(arg string, sockets bool) []string {
	var tg target
	var err error
	if arg == "" {
		tg, err = soleTarget()
	} else {
		tg, err = resolveTarget(arg, "")
	}
	if err != nil {
		return nil
	}
	st, err := control.Status(context.Background(), tg.endpoint)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range st.Nodes {
		keys := []string{n.Node, n.Name}
		if sockets {
			keys = nil
			for _, so := range n.Sockets {
				keys = append(keys, n.Node+"."+so.Name, n.Name+"."+so.Name)
			}
		}
		for _, k := range keys {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

func yamlFiles() []string {
	var out []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, _ := filepath.Glob(pat)
		out = append(out, m...)
	}
	if _, err := os.Stat("topologies"); err == nil {
		m, _ := filepath.Glob("topologies/*.yaml")
		out = append(out, m...)
	}
	return out
}
