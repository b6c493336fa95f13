// Command chrootbuild builds the image a Dockerfile describes without a
// Docker engine, to check that its instructions really build and run ztopo
// where no engine is at hand (`make image-check`, as root, with network
// access to a Debian mirror and the Go module proxy).
//
// Each FROM becomes a Debian root filesystem made by debootstrap for the
// suite its tag names (debian:trixie-slim and golang:1.26-trixie are both
// trixie); a golang image also gets this machine's Go toolchain at
// /usr/local/go, read-only, which must be the tag's Go release. Then the
// Dockerfile's own instructions run in it, in order: RUN under chroot with
// the stage's ENV, WORKDIR and USER; COPY from the build context (minus
// .dockerignore) or from an earlier stage's root. What is not emulated:
// layers, the image's metadata beyond ENTRYPOINT/CMD/ENV/USER, and the
// exact package set of the official base images (debootstrap's minbase is
// smaller, so a missing dependency shows up here first).
//
// Finally the last stage's ENTRYPOINT and CMD run as its USER, and so does
// `ztopo up` of a topology given with -topology: the binary, its libzmq5
// and its runtime directory work in the image's own root.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chrootbuild:", err)
		os.Exit(1)
	}
}

type options struct {
	dockerfile, context, roots, mirror, topology, expect string
}

func run() error {
	var o options
	flag.StringVar(&o.dockerfile, "f", "Dockerfile", "the Dockerfile")
	flag.StringVar(&o.context, "context", ".", "the build context")
	flag.StringVar(&o.roots, "roots", "/var/tmp/ztopo-image-check", "where Debian roots are kept (made once per suite) and stages are built; outside the source tree, which go ./... would walk")
	flag.StringVar(&o.mirror, "mirror", "http://deb.debian.org/debian", "the Debian mirror for debootstrap")
	flag.StringVar(&o.topology, "topology", "topologies/pipeline.yaml", "a topology to run with the image's ztopo (empty: none)")
	flag.StringVar(&o.expect, "expect", `received 100000 messages`, "what that run's output must contain")
	flag.Parse()
	if os.Geteuid() != 0 {
		return errors.New("needs root (debootstrap, chroot, mounts)")
	}
	data, err := os.ReadFile(o.dockerfile)
	if err != nil {
		return err
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s: %w", o.dockerfile, err)
	}
	b := &builder{o: o, stages: map[string]*stage{}}
	defer b.unmountAll()
	var cur *stage
	for _, n := range res.AST.Children {
		words := argsOf(n)
		at := fmt.Sprintf("%s:%d", o.dockerfile, n.StartLine)
		fmt.Printf("%s: %s\n", at, n.Original)
		ins := strings.ToUpper(n.Value)
		if ins != "FROM" && ins != "ARG" && cur == nil {
			return fmt.Errorf("%s: %s before FROM", at, ins)
		}
		switch ins {
		case "FROM":
			cur, err = b.from(words)
		case "RUN":
			err = b.run(cur, strings.Join(words, " "))
		case "WORKDIR":
			cur.workdir = path.Join(cur.workdir, words[0])
			err = os.MkdirAll(filepath.Join(cur.root, cur.workdir), 0o755)
		case "ENV":
			for i := 0; i+1 < len(words); i += 3 { // name, value, separator
				v := unquote(words[i+1])
				cur.env[words[i]] = os.Expand(v, func(k string) string { return cur.env[k] })
			}
		case "USER":
			cur.user = words[0]
		case "COPY":
			err = b.copy(cur, n.Flags, words)
		case "ENTRYPOINT":
			cur.entrypoint = words
		case "CMD":
			cur.cmd = words
		case "EXPOSE", "ARG":
		default:
			err = fmt.Errorf("instruction %s is not emulated", ins)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
	}
	if cur == nil {
		return errors.New("no stage")
	}
	return b.check(cur)
}

// argsOf are an instruction's words (a shell-form RUN is one string; ENV
// comes as name, value, separator triples).
func argsOf(n *parser.Node) []string {
	var out []string
	for a := n.Next; a != nil; a = a.Next {
		out = append(out, a.Value)
	}
	return out
}

// defaultPath is the PATH of a Debian image.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

type stage struct {
	name, root, workdir, user string
	env                       map[string]string
	entrypoint, cmd           []string
}

type builder struct {
	o      options
	stages map[string]*stage
	mounts []string // to unmount, last first
	n      int
}

var (
	debianTag = regexp.MustCompile(`^debian:(\w+)(-slim)?$`)
	golangTag = regexp.MustCompile(`^golang:(\d+\.\d+)(\.\d+)?-(\w+)$`)
)

// from makes a stage's root: a copy of the suite's debootstrapped root.
func (b *builder) from(words []string) (*stage, error) {
	image := words[0]
	st := &stage{workdir: "/", env: map[string]string{"PATH": defaultPath}}
	if len(words) == 3 && strings.EqualFold(words[1], "as") {
		st.name = words[2]
	}
	var suite, goRelease string
	if m := debianTag.FindStringSubmatch(image); m != nil {
		suite = m[1]
	} else if m := golangTag.FindStringSubmatch(image); m != nil {
		goRelease, suite = m[1], m[3]
	} else {
		return nil, fmt.Errorf("base image %s: only debian:SUITE[-slim] and golang:X.Y-SUITE are emulated", image)
	}
	base, err := b.suiteRoot(suite)
	if err != nil {
		return nil, err
	}
	if goRelease != "" {
		if base, err = b.golangRoot(base, suite); err != nil {
			return nil, err
		}
	}
	b.n++
	st.root, err = filepath.Abs(filepath.Join(b.o.roots, fmt.Sprintf("stage%d", b.n)))
	if err != nil {
		return nil, err
	}
	_ = os.RemoveAll(st.root)
	if err := sh("cp", "-a", base, st.root); err != nil {
		return nil, err
	}
	if err := b.mount(st.root, goRelease); err != nil {
		return nil, err
	}
	if goRelease != "" {
		// The golang image's environment.
		st.env["GOPATH"] = "/go"
		st.env["PATH"] = "/go/bin:/usr/local/go/bin:" + st.env["PATH"]
		// The build's way to the module proxy: this machine's settings.
		for _, k := range []string{"GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GOFLAGS"} {
			if v, ok := os.LookupEnv(k); ok {
				st.env[k] = v
			}
		}
	}
	if st.name != "" {
		b.stages[st.name] = st
	}
	return st, nil
}

// suiteRoot debootstraps a suite once and keeps it under roots.
func (b *builder) suiteRoot(suite string) (string, error) {
	dir, err := filepath.Abs(filepath.Join(b.o.roots, "debootstrap-"+suite))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/debian_version")); err == nil {
		return dir, nil
	}
	tmp := dir + ".partial"
	_ = os.RemoveAll(tmp)
	if err := sh("debootstrap", "--variant=minbase", suite, tmp, b.o.mirror); err != nil {
		return "", fmt.Errorf("debootstrap %s: %w", suite, err)
	}
	return dir, os.Rename(tmp, dir)
}

// golangPackages are what the official golang image installs on Debian
// (its Dockerfile, on buildpack-deps:SUITE-scm): cgo's compilers and the
// certificates and git that `go mod download` needs.
var golangPackages = []string{"ca-certificates", "curl", "git", "gcc", "g++", "libc6-dev", "make", "pkg-config"}

// golangRoot is the suite's root with golangPackages, made once.
func (b *builder) golangRoot(base, suite string) (string, error) {
	dir := filepath.Join(filepath.Dir(base), "golang-"+suite)
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	_ = os.RemoveAll(dir)
	if err := sh("cp", "-a", base, dir); err != nil {
		return "", err
	}
	st := &stage{root: dir, workdir: "/", env: map[string]string{"PATH": defaultPath, "DEBIAN_FRONTEND": "noninteractive"}}
	mounted := len(b.mounts)
	if err := b.mount(dir, ""); err != nil {
		return "", err
	}
	defer b.unmountTo(mounted)
	if err := b.run(st, "apt-get update -qq && apt-get install -y -qq --no-install-recommends "+strings.Join(golangPackages, " ")); err != nil {
		return "", fmt.Errorf("golang image packages: %w", err)
	}
	return dir, os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644)
}

// mount gives a root /proc, /dev, the host's DNS settings and, for a
// golang stage, this machine's Go at /usr/local/go.
func (b *builder) mount(root, goRelease string) error {
	if err := b.mountOne("proc", filepath.Join(root, "proc"), "proc", 0); err != nil {
		return err
	}
	if err := b.mountOne("/dev", filepath.Join(root, "dev"), "", syscall.MS_BIND|syscall.MS_REC); err != nil {
		return err
	}
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return err
	}
	_ = os.Remove(filepath.Join(root, "etc/resolv.conf"))
	if err := os.WriteFile(filepath.Join(root, "etc/resolv.conf"), resolv, 0o644); err != nil {
		return err
	}
	if goRelease == "" {
		return nil
	}
	if v := strings.TrimPrefix(runtime.Version(), "go"); v != goRelease && !strings.HasPrefix(v, goRelease+".") {
		return fmt.Errorf("the image wants Go %s; this machine's is %s", goRelease, v)
	}
	dst := filepath.Join(root, "usr/local/go")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if err := b.mountOne(runtime.GOROOT(), dst, "", syscall.MS_BIND); err != nil {
		return err
	}
	// Read-only needs a remount of the bind.
	return syscall.Mount("", dst, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, "")
}

func (b *builder) mountOne(src, dst, fstype string, flags uintptr) error {
	if err := syscall.Mount(src, dst, fstype, flags, ""); err != nil {
		return fmt.Errorf("mount %s on %s: %w", src, dst, err)
	}
	b.mounts = append(b.mounts, dst)
	return nil
}

func (b *builder) unmountAll() { b.unmountTo(0) }

// unmountTo undoes the mounts made after the first n.
func (b *builder) unmountTo(n int) {
	for i := len(b.mounts) - 1; i >= n; i-- {
		if err := syscall.Unmount(b.mounts[i], syscall.MNT_DETACH); err != nil {
			fmt.Fprintf(os.Stderr, "chrootbuild: unmount %s: %v\n", b.mounts[i], err)
		}
	}
	b.mounts = b.mounts[:n]
}

// run runs a shell-form RUN in the stage's root. The build trusts this
// machine's certificate authorities (a TLS-inspecting egress proxy has its
// own), through SSL_CERT_FILE, as a build behind such a proxy is given
// them; the image's own certificate store is left as its packages make it.
func (b *builder) run(st *stage, script string) error {
	cmd := st.chroot(context.Background(), "/bin/sh", "-c", script)
	if ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		if err := os.WriteFile(filepath.Join(st.root, buildCA), ca, 0o644); err != nil {
			return err
		}
		cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+buildCA)
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// buildCA is where run puts this machine's certificate authorities.
const buildCA = "/etc/chrootbuild-ca.crt"

// chroot is a command in the stage's root, in its WORKDIR, as its USER,
// with only its ENV.
func (st *stage) chroot(ctx context.Context, argv ...string) *exec.Cmd {
	args := []string{}
	if st.user != "" {
		// Numeric: the name lives in the root's /etc/passwd, not ours.
		args = append(args, "--userspec="+st.userspec())
	}
	// chroot(8) starts in /: the WORKDIR is entered by a shell.
	inner := append([]string{"/bin/sh", "-c", `cd "$1" && shift && exec "$@"`, "sh", st.workdir}, argv...)
	cmd := exec.CommandContext(ctx, "chroot", append(append(args, st.root), inner...)...)
	cmd.Env = []string{"HOME=/root"}
	if st.user != "" {
		cmd.Env = []string{"HOME=/"}
	}
	for k, v := range st.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// userspec is USER as uid:gid from the root's /etc/passwd (a name), or as
// given (numbers).
func (st *stage) userspec() string {
	if strings.Contains(st.user, ":") {
		return st.user
	}
	data, _ := os.ReadFile(filepath.Join(st.root, "etc/passwd"))
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, ":")
		if len(f) > 3 && (f[0] == st.user || f[2] == st.user) {
			return f[2] + ":" + f[3]
		}
	}
	return st.user + ":" + st.user
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// copy does COPY [--from=STAGE] SRC... DEST.
func (b *builder) copy(st *stage, flags []string, words []string) error {
	from := b.o.context
	for _, f := range flags {
		if name, ok := strings.CutPrefix(f, "--from="); ok {
			src := b.stages[name]
			if src == nil {
				return fmt.Errorf("COPY --from=%s: no such stage", name)
			}
			from = src.root
		} else {
			return fmt.Errorf("COPY flag %s is not emulated", f)
		}
	}
	if len(words) < 2 {
		return errors.New("COPY needs a source and a destination")
	}
	srcs, dest := words[:len(words)-1], words[len(words)-1]
	if !path.IsAbs(dest) {
		dest = path.Join(st.workdir, dest)
	}
	if strings.HasSuffix(words[len(words)-1], "/") || len(srcs) > 1 {
		dest += "/"
	}
	var ignore []string
	if from == b.o.context {
		ignore = dockerignore(filepath.Join(b.o.context, ".dockerignore"))
	}
	for _, s := range srcs {
		src := filepath.Join(from, s)
		info, err := os.Stat(src)
		if err != nil {
			return err
		}
		target := filepath.Join(st.root, dest)
		if strings.HasSuffix(dest, "/") && !info.IsDir() {
			target = filepath.Join(target, filepath.Base(src))
		}
		if err := copyTree(src, target, from, ignore); err != nil {
			return err
		}
	}
	return nil
}

// dockerignore reads the patterns of a .dockerignore (no negations).
func dockerignore(file string) []string {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, strings.TrimSuffix(l, "/"))
		}
	}
	return out
}

func ignored(rel string, patterns []string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, rel); ok {
			return true
		}
		if ok, _ := path.Match(p, path.Base(rel)); ok && !strings.Contains(p, "/") {
			return true
		}
	}
	return false
}

// copyTree copies a file or a directory's contents to target.
func copyTree(src, target, base string, ignore []string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		if rel != "." && ignored(filepath.ToSlash(rel), ignore) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		within, _ := filepath.Rel(src, p)
		dst := filepath.Join(target, within)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, dst)
		default:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, data, info.Mode().Perm())
		}
	})
}

// check runs the image's ENTRYPOINT and CMD, then a topology with it.
func (b *builder) check(st *stage) error {
	argv := append(append([]string{}, st.entrypoint...), st.cmd...)
	if len(argv) == 0 {
		return errors.New("the image has neither ENTRYPOINT nor CMD")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := st.chroot(ctx, argv...).CombinedOutput()
	fmt.Printf("image: %s -> %s", strings.Join(argv, " "), out)
	if err != nil {
		return fmt.Errorf("the image's command %v: %w", argv, err)
	}
	if b.o.topology == "" {
		return nil
	}
	data, err := os.ReadFile(b.o.topology)
	if err != nil {
		return err
	}
	const inside = "/tmp/image-check.yaml"
	if err := os.WriteFile(filepath.Join(st.root, inside), data, 0o644); err != nil {
		return err
	}
	up := append(append([]string{}, st.entrypoint...), "up", inside)
	out, err = st.chroot(ctx, up...).CombinedOutput()
	fmt.Printf("image: %s ->\n%s", strings.Join(up, " "), out)
	if err != nil {
		return fmt.Errorf("%v: %w", up, err)
	}
	if !strings.Contains(string(out), b.o.expect) {
		return fmt.Errorf("%v: no %q in its output", up, b.o.expect)
	}
	fmt.Println("image check passed")
	return nil
}

func sh(argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}
