package kube

// The Dockerfile builds the image the manifests name. No Docker engine runs
// where these tests run, so the image itself is never built here; what can
// be checked without one is: the file parses (BuildKit's own parser), its
// stages are what the manifests rely on, its build command is the one
// `make build` runs and does build ztopo on this machine, and the Debian
// packages its stages install exist.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/ztopo/ztopo/internal/testutil"
)

// stage is one FROM of a Dockerfile and the instructions under it.
type stage struct {
	image, name string
	ins         []*parser.Node
}

func dockerStages(t *testing.T) ([]stage, *parser.Result) {
	t.Helper()
	data, err := os.ReadFile(testutil.RepoPath(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Dockerfile does not parse: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile:%d: %s", w.Location.Start.Line, w.Short)
	}
	var stages []stage
	for _, n := range res.AST.Children {
		if strings.EqualFold(n.Value, "from") {
			st := stage{image: n.Next.Value}
			if a := n.Next.Next; a != nil && strings.EqualFold(a.Value, "as") && a.Next != nil {
				st.name = a.Next.Value
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if !strings.EqualFold(n.Value, "arg") {
				t.Fatalf("Dockerfile:%d: %s before FROM", n.StartLine, n.Value)
			}
			continue
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, n)
	}
	if len(stages) != 2 {
		t.Fatalf("Dockerfile has %d stages, want 2 (build, runtime)", len(stages))
	}
	return stages, res
}

// args are the words of an instruction (RUN in shell form: one string).
func args(n *parser.Node) []string {
	var out []string
	for a := n.Next; a != nil; a = a.Next {
		out = append(out, a.Value)
	}
	return out
}

// commands splits a RUN's shell command at && into simple commands.
func commands(run *parser.Node) [][]string {
	var out [][]string
	for _, c := range strings.Split(strings.Join(args(run), " "), "&&") {
		if f := strings.Fields(c); len(f) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// goBuild finds the `go build` of a command list: its environment
// assignments and its arguments after "build".
func goBuild(cmds [][]string) (env, argv []string, ok bool) {
	for _, c := range cmds {
		i := 0
		for i < len(c) && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`).MatchString(c[i]) {
			i++
		}
		if len(c) > i+1 && (c[i] == "go" || c[i] == "$(GO)") && c[i+1] == "build" {
			return c[:i], c[i+2:], true
		}
	}
	return nil, nil, false
}

// withoutOutput drops "-o PATH" and returns it apart.
func withoutOutput(argv []string) (rest []string, out string) {
	for i := 0; i < len(argv); i++ {
		if argv[i] == "-o" && i+1 < len(argv) {
			out = argv[i+1]
			i++
			continue
		}
		rest = append(rest, argv[i])
	}
	return rest, out
}

// TestDockerfileStages: a Go build stage, then a Debian runtime stage that
// copies the binary built onto PATH under the name the pods run, exposes
// the metrics port of the probes, and starts ztopo.
func TestDockerfileStages(t *testing.T) {
	stages, _ := dockerStages(t)
	build, rt := stages[0], stages[1]
	if build.name == "" || !strings.HasPrefix(build.image, "golang:") {
		t.Errorf("first stage: FROM %s AS %q, want a golang image with a name", build.image, build.name)
	}
	if !strings.HasPrefix(rt.image, "debian:") {
		t.Errorf("runtime stage: FROM %s, want debian", rt.image)
	}
	var built string
	for _, n := range build.ins {
		if strings.EqualFold(n.Value, "run") {
			if _, argv, ok := goBuild(commands(n)); ok {
				_, built = withoutOutput(argv)
			}
		}
	}
	if built == "" {
		t.Fatal("build stage: no RUN go build -o ...")
	}
	m := build0(t)
	c := m.statefulSets()[0].Spec.Template.Spec.Containers[0]
	copied, exposed, entry := false, false, ""
	for _, n := range rt.ins {
		a := args(n)
		switch strings.ToLower(n.Value) {
		case "copy":
			// COPY --from=build SRC DEST: onto PATH, under the name the
			// manifests' containers run.
			if len(n.Flags) == 1 && n.Flags[0] == "--from="+build.name && len(a) == 2 && a[0] == built &&
				a[1] == "/usr/local/bin/"+c.Command[0] {
				copied = true
			}
		case "expose":
			for _, p := range a {
				if p == strconv.Itoa(MetricsPort) || p == strconv.Itoa(MetricsPort)+"/tcp" {
					exposed = true
				}
			}
		case "entrypoint":
			if n.Attributes["json"] && len(a) > 0 {
				entry = a[0]
			}
		}
	}
	if !copied {
		t.Errorf("runtime stage: no COPY --from=%s %s /usr/local/bin/%s (the pods run %q)", build.name, built, c.Command[0], c.Command[0])
	}
	if !exposed {
		t.Errorf("runtime stage: no EXPOSE %d (the probes' metrics port)", MetricsPort)
	}
	if entry != c.Command[0] {
		t.Errorf("runtime stage: ENTRYPOINT [%q], want [%q]", entry, c.Command[0])
	}
}

// TestDockerfileNamesTheImage: the tag the Dockerfile's own build line
// gives (`docker build -t TAG .`) is the image the manifests name by
// default.
func TestDockerfileNamesTheImage(t *testing.T) {
	data, err := os.ReadFile(testutil.RepoPath(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^#\s+docker build -t (\S+) \.$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("Dockerfile: no comment line `docker build -t TAG .`")
	}
	tag := string(m[1])
	if !strings.Contains(tag, ":") {
		tag += ":latest"
	}
	if tag != DefaultImage {
		t.Errorf("the Dockerfile builds %s, the manifests name %s", tag, DefaultImage)
	}
	for _, s := range build0(t).statefulSets() {
		if got := s.Spec.Template.Spec.Containers[0].Image; got != DefaultImage {
			t.Errorf("StatefulSet %s runs image %s, want %s", s.Name, got, DefaultImage)
		}
	}
}

// TestDockerfileBuildCommand: the build stage's `go build` is the one
// `make build` runs (the output path aside), and it builds a ztopo that
// runs, here, for real.
func TestDockerfileBuildCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ztopo")
	}
	stages, _ := dockerStages(t)
	var env, argv []string
	found := false
	for _, n := range stages[0].ins {
		if strings.EqualFold(n.Value, "run") {
			if e, a, ok := goBuild(commands(n)); ok {
				env, argv, found = e, a, true
			}
		}
	}
	if !found {
		t.Fatal("build stage: no RUN go build")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skipf("no make to compare the build command with: %v", err)
	}
	root := filepath.Dir(testutil.RepoPath(t, "Makefile"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// -n prints the recipe without running it (nor deps.sh).
	mk := exec.CommandContext(ctx, "make", "-n", "--no-print-directory", "-C", root, "build", "GO=go")
	out, err := mk.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build: %v\n%s", err, out)
	}
	var lines [][]string
	for _, l := range strings.Split(string(out), "\n") {
		lines = append(lines, strings.Fields(l))
	}
	_, makeArgv, ok := goBuild(lines)
	if !ok {
		t.Fatalf("make -n build runs no go build:\n%s", out)
	}
	dock, _ := withoutOutput(argv)
	mine, _ := withoutOutput(makeArgv)
	if strings.Join(dock, " ") != strings.Join(mine, " ") {
		t.Errorf("Dockerfile builds with `go build %s`, make with `go build %s`", strings.Join(argv, " "), strings.Join(makeArgv, " "))
	}
	for _, e := range env {
		if e != "CGO_ENABLED=1" {
			t.Errorf("Dockerfile's go build runs with %s; only CGO_ENABLED=1 is expected (libzmq is linked with cgo)", e)
		}
	}

	bin := filepath.Join(t.TempDir(), "ztopo")
	run := exec.CommandContext(ctx, "go", append([]string{"build", "-o", bin}, dock...)...)
	run.Dir = root
	run.Env = append(os.Environ(), env...)
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's go build, run here: %v\n%s", err, out)
	}
	ver, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(ver), "ztopo ") {
		t.Fatalf("the binary built: ztopo version: %v: %q", err, ver)
	}
}

// TestDockerfilePackages: the packages each stage installs with apt-get
// exist in Debian, as far as this machine's apt knows them (the image's
// release may be a newer one than this machine's: the test says so).
func TestDockerfilePackages(t *testing.T) {
	if _, err := exec.LookPath("apt-cache"); err != nil {
		t.Skip("no apt-cache on this machine: the Dockerfile's Debian packages are not checked")
	}
	stages, _ := dockerStages(t)
	for _, st := range stages {
		var pkgs []string
		for _, n := range st.ins {
			if !strings.EqualFold(n.Value, "run") {
				continue
			}
			for _, c := range commands(n) {
				i := 0
				for i < len(c) && strings.Contains(c[i], "=") {
					i++
				}
				if len(c) < i+2 || c[i] != "apt-get" || c[i+1] != "install" {
					continue
				}
				for _, w := range c[i+2:] {
					if !strings.HasPrefix(w, "-") {
						pkgs = append(pkgs, w)
					}
				}
			}
		}
		if strings.HasPrefix(st.image, "debian:") && len(pkgs) == 0 {
			t.Errorf("runtime stage installs nothing with apt-get; want libzmq5")
		}
		if strings.HasPrefix(st.image, "debian:") && !contains(pkgs, "libzmq5") {
			t.Errorf("runtime stage installs %v, want libzmq5 among them", pkgs)
		}
		if len(pkgs) == 0 {
			continue
		}
		release := st.image[strings.Index(st.image, ":")+1:]
		if here := osRelease(); !strings.Contains(release, here) {
			t.Logf("stage %s (FROM %s): its packages are looked up in this machine's Debian release, %q", st.name, st.image, here)
		}
		out, err := exec.Command("apt-cache", append([]string{"show", "--no-all-versions"}, pkgs...)...).CombinedOutput()
		if err != nil && strings.Contains(string(out), "No packages found") && os.Geteuid() == 0 {
			// An empty package index (a fresh container): read it once.
			if u, uerr := exec.Command("apt-get", "update", "-qq").CombinedOutput(); uerr != nil {
				t.Skipf("apt-get update: %v: %s", uerr, u)
			}
			out, err = exec.Command("apt-cache", append([]string{"show", "--no-all-versions"}, pkgs...)...).CombinedOutput()
		}
		if err != nil {
			t.Errorf("stage %s: apt-cache show %s: %v\n%s", st.name, strings.Join(pkgs, " "), err, out)
			continue
		}
		for _, p := range pkgs {
			if !regexp.MustCompile(`(?m)^Package: ` + regexp.QuoteMeta(p) + `$`).Match(out) {
				t.Errorf("stage %s: Debian has no package %s", st.name, p)
			}
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func osRelease() string {
	b, _ := os.ReadFile("/etc/os-release")
	if m := regexp.MustCompile(`(?m)^VERSION_CODENAME=(\S+)$`).FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return "unknown"
}
