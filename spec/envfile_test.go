package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseEnvFile(t *testing.T) {
	src := strings.Join([]string{
		"# a comment",
		"",
		"PLAIN=value",
		"SPACED =  two words   ",
		"COMMENTED=abc # not part of it",
		"HASH=a#b",
		"export EXPORTED=yes",
		`DOUBLE="a \"q\" b\n\t\\ $X"`,
		`SINGLE='literal \n $X' # comment`,
		"EMPTY=",
		"EMPTY_QUOTED=\"\"",
		"DOLLAR=$HOME",
		"TWICE=first",
		"TWICE=second",
		"CRLF=dos\r",
		"    INDENTED=ok",
	}, "\n")
	got, ds := ParseEnvFile("x.env", []byte(src))
	if len(ds) > 0 {
		t.Fatalf("got diagnostics:\n%s", render(ds))
	}
	want := map[string]string{
		"PLAIN": "value", "SPACED": "two words", "COMMENTED": "abc", "HASH": "a#b", "EXPORTED": "yes",
		"DOUBLE": "a \"q\" b\n\t\\ $X", "SINGLE": `literal \n $X`, "EMPTY": "", "EMPTY_QUOTED": "",
		"DOLLAR": "$HOME", "TWICE": "second", "CRLF": "dos", "INDENTED": "ok",
	}
	vals := map[string]string{}
	for k, v := range got {
		vals[k] = v.Value
	}
	if !reflect.DeepEqual(vals, want) {
		t.Errorf("got %q\nwant %q", vals, want)
	}
	if p := got["TWICE"].Pos; p != (Pos{File: "x.env", Line: 14, Col: 1}) {
		t.Errorf("TWICE: got position %v, want x.env:14:1 (the later line wins)", p)
	}
	if p := got["INDENTED"].Pos; p != (Pos{File: "x.env", Line: 16, Col: 5}) {
		t.Errorf("INDENTED: got position %v, want x.env:16:5", p)
	}
}

func TestParseEnvFileErrors(t *testing.T) {
	src := strings.Join([]string{
		"OK=1",
		"no equals sign",
		"1X=2",
		"BAD-NAME=3",
		`OPEN="never closed`,
		"  SQ='x' junk",
		"OPEN1='never closed",
		"LAST=fine",
	}, "\n")
	got, ds := ParseEnvFile("dir/.env", []byte(src))
	want := strings.Join([]string{
		`dir/.env:2:1: env file line has no '=': "no equals sign" (write NAME=value)`,
		`dir/.env:3:1: bad variable name "1X" in env file: use letters, digits and '_', not starting with a digit`,
		`dir/.env:4:1: bad variable name "BAD-NAME" in env file: use letters, digits and '_', not starting with a digit`,
		`dir/.env:5:6: unterminated double-quoted value: a value ends on its line (write \n for a newline)`,
		`dir/.env:6:6: unexpected "junk" after the closing quote`,
		`dir/.env:7:7: unterminated single-quoted value: a value ends on its line`,
	}, "\n") + "\n"
	if r := render(ds); r != want {
		t.Errorf("got\n%swant\n%s", r, want)
	}
	// Every good line is kept: a mistake loses only its own line.
	if len(got) != 2 || got["OK"].Value != "1" || got["LAST"].Value != "fine" {
		t.Errorf("got %v, want OK=1 and LAST=fine", got)
	}
}

// envTopology is a command node whose env shows where each ${VAR} came
// from: vars, the env files, or the process environment.
const envTopology = `version: 1
name: envp
vars: {A: vars, B: vars, C: vars, D: vars}
nodes:
  cmd:
    command: [/bin/true]
    replicas: 2
    env:
      A: ${A}
      B: ${B}
      C: ${C}
      D: ${D}
      WHO: ${NODE} ${REPLICA}
  proc:
    run: process
    handler: forward
    env: {A: "${A}"}
    sockets:
      in: {type: PULL, bind: auto}
  plain:
    handler: forward
    sockets:
      in: {type: PULL, bind: auto}
`

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestEnvPrecedence(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"topology.yaml": envTopology,
		".env":          "B=dotenv\nC=dotenv\nD=dotenv\n",
		"one.env":       "B=one\nC=one\n",
		"two.env":       "C=two\n",
	})
	file := filepath.Join(dir, "topology.yaml")
	procEnv := mapEnv(map[string]string{"D": "process"})
	cases := []struct {
		name string
		opts LoadOptions
		want map[string]string // A B C D of cmd.0
	}{
		{"no env files", LoadOptions{}, map[string]string{"A": "vars", "B": "vars", "C": "vars", "D": "process"}},
		{".env beside the file", LoadOptions{DotEnv: true}, map[string]string{"A": "vars", "B": "dotenv", "C": "dotenv", "D": "process"}},
		// --env-file replaces .env (docker compose): D is not dotenv.
		{"--env-file, a later one wins", LoadOptions{DotEnv: true, EnvFiles: []string{filepath.Join(dir, "one.env"), filepath.Join(dir, "two.env")}},
			map[string]string{"A": "vars", "B": "one", "C": "two", "D": "process"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Env, tc.opts.RuntimeDir = procEnv, testRuntimeDir
			topo, ds := Load(file, tc.opts)
			if topo == nil {
				t.Fatalf("load: %s", render(ds))
			}
			var cmd0, cmd1, proc, plain *Node
			for _, n := range topo.Nodes {
				switch n.Name {
				case "cmd.0":
					cmd0 = n
				case "cmd.1":
					cmd1 = n
				case "proc":
					proc = n
				case "plain":
					plain = n
				}
			}
			want := map[string]string{"WHO": "cmd.0 0"}
			for k, v := range tc.want {
				want[k] = v
			}
			if !reflect.DeepEqual(cmd0.Env, want) {
				t.Errorf("cmd.0 env: got %v, want %v", cmd0.Env, want)
			}
			if got := cmd1.Env["WHO"]; got != "cmd.1 1" {
				t.Errorf("cmd.1 env WHO: got %q, want %q", got, "cmd.1 1")
			}
			// The vars a command gets are resolved the same way.
			if !reflect.DeepEqual(cmd0.Vars, tc.want) {
				t.Errorf("cmd.0 vars: got %v, want %v", cmd0.Vars, tc.want)
			}
			ce := cmd0.ChildEnv()
			if ce["ZTOPO_VAR_D"] != "process" || ce["A"] != tc.want["A"] || len(ce) != 9 {
				t.Errorf("cmd.0 child env: got %v, want 4 ZTOPO_VAR_ and 5 env variables", ce)
			}
			if !reflect.DeepEqual(proc.Env, map[string]string{"A": "vars"}) || proc.Vars != nil {
				t.Errorf("proc: got env %v vars %v, want env A=vars and no vars", proc.Env, proc.Vars)
			}
			if plain.Env != nil || plain.Vars != nil || plain.ChildEnv() != nil {
				t.Errorf("plain: got env %v vars %v, want none", plain.Env, plain.Vars)
			}
		})
	}
}

func TestEnvFileProblems(t *testing.T) {
	t.Run("a missing --env-file is an error", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{"topology.yaml": envTopology})
		missing := filepath.Join(dir, "nope.env")
		_, ds := Load(filepath.Join(dir, "topology.yaml"), LoadOptions{Env: mapEnv(nil), RuntimeDir: testRuntimeDir, EnvFiles: []string{missing}})
		if got, want := render(ds), missing+": cannot read env file: no such file or directory\n"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("no .env is fine", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{"topology.yaml": envTopology})
		if topo, ds := Load(filepath.Join(dir, "topology.yaml"), LoadOptions{Env: mapEnv(nil), RuntimeDir: testRuntimeDir, DotEnv: true}); topo == nil || len(ds) > 0 {
			t.Errorf("got %s, want no diagnostics", render(ds))
		}
	})
	t.Run(".env mistakes have positions, with the file's own", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{
			"topology.yaml": envTopology + "  w:\n    replicas: ${N}\n    handler: forward\n    sockets:\n      in: {type: PULL, bind: auto}\n",
			".env":          "# settings\nN=abc\nbroken\n",
		})
		dotenv := filepath.Join(dir, ".env")
		topo, ds := Load(filepath.Join(dir, "topology.yaml"), LoadOptions{Env: mapEnv(nil), RuntimeDir: testRuntimeDir, DotEnv: true})
		want := strings.Join([]string{
			dotenv + `:3:1: env file line has no '=': "broken" (write NAME=value)`,
			filepath.Join(dir, "topology.yaml") + `:25:15: replicas must be an integer, got "abc" (${N} is "abc", from ` + dotenv + `:2)`,
		}, "\n") + "\n"
		if topo != nil || render(ds) != want {
			t.Errorf("got\n%swant\n%s", render(ds), want)
		}
	})
}

// An env change restarts that node alone, and the plan says what changed.
func TestEnvChangeRestartsTheNode(t *testing.T) {
	load := func(src string) *Topology {
		t.Helper()
		topo, ds := Parse("/src/topology.yaml", []byte(src), LoadOptions{Env: mapEnv(nil), RuntimeDir: testRuntimeDir})
		if topo == nil {
			t.Fatalf("load: %s", render(ds))
		}
		return topo
	}
	old := load(envTopology)
	cur := load(strings.Replace(envTopology, `env: {A: "${A}"}`, `env: {A: "${A}", EXTRA: "1"}`, 1))
	p := Diff(old, cur)
	if !reflect.DeepEqual(p.Changed, []string{"proc"}) || len(p.HandlerOnly) != 0 || len(p.Unchanged) != 3 {
		t.Errorf("got plan %+v, want proc restarted, 3 unchanged", p)
	}
	var o, n *Node
	for i := range old.Nodes {
		if old.Nodes[i].Name == "proc" {
			o, n = old.Nodes[i], cur.Nodes[i]
		}
	}
	if got, want := Changes(o, n), []string{"env.EXTRA: (none) → 1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("changes: got %q, want %q", got, want)
	}
	// A var's value reaches every command as ZTOPO_VAR_: they restart.
	cur = load(strings.Replace(envTopology, "A: vars, B", "A: other, B", 1))
	if p := Diff(old, cur); !reflect.DeepEqual(p.Changed, []string{"cmd.0", "cmd.1", "proc"}) {
		t.Errorf("var change: got restarts %v, want cmd.0 cmd.1 proc", p.Changed)
	}
}
