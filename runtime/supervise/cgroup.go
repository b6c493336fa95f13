package supervise

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Containment of a child's descendants. A process group does not hold
// what a child puts in a session of its own (`setsid prog &`): killing the
// group misses it, and once the child is gone its orphans belong to init.
// Two ways to find them again, the first that works:
//
//   - a cgroup v2 per child (Config.Contain), when ztopo may create one
//     below its own cgroup (root, or a delegated subtree): the child is
//     cloned into it (CLONE_INTO_CGROUP), so every descendant, however it
//     forked, stays in it, and cgroup.kill ends them all;
//   - otherwise a sweep by parenthood: when ztopo stops the child it first
//     notes every descendant the /proc parent links lead to, and kills
//     those still alive (same pid, same start time) once the child exited.
//     A descendant whose parent had already exited before the stop — a
//     double fork, or a child that exited by itself leaving one behind —
//     re-parented to init and cannot be found this way.

// cgroupSettle bounds the wait for a killed cgroup to empty before it is
// removed.
const cgroupSettle = 2 * time.Second

var (
	cgroupOnce sync.Once
	cgroupDir  string // where ztopo creates its children's cgroups; "" when it cannot
	cgroupSeq  atomic.Uint64
	// noCgroup makes Contain use the sweep by parenthood (tests).
	noCgroup atomic.Bool
)

// cgroupBase finds ztopo's own cgroup v2 directory and checks that a
// cgroup can be created in it.
func cgroupBase() string {
	cgroupOnce.Do(func() {
		mnt := cgroup2Mount()
		if mnt == "" {
			return
		}
		b, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			return
		}
		var own string
		for _, l := range strings.Split(string(b), "\n") {
			if p, ok := strings.CutPrefix(l, "0::"); ok {
				own = p
			}
		}
		if own == "" {
			return
		}
		dir := filepath.Join(mnt, own)
		probe := filepath.Join(dir, fmt.Sprintf("ztopo-%d-probe", os.Getpid()))
		if err := os.Mkdir(probe, 0o755); err != nil {
			return
		}
		_ = os.Remove(probe)
		cgroupDir = dir
		// The empty cgroups of a ztopo that was killed before it could
		// remove them.
		stale, _ := filepath.Glob(filepath.Join(dir, "ztopo-*-*"))
		for _, d := range stale {
			f := strings.SplitN(filepath.Base(d), "-", 3)
			if pid, err := strconv.Atoi(f[1]); err == nil && syscall.Kill(pid, 0) == syscall.ESRCH {
				_ = (&cgroup{dir: d}).remove()
			}
		}
	})
	return cgroupDir
}

// cgroup2Mount is the mount point of the cgroup v2 hierarchy, from
// /proc/self/mountinfo; "" when there is none.
func cgroup2Mount() string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 36 35 0:30 / /sys/fs/cgroup rw,... shared:9 - cgroup2 cgroup2 rw
		fields := strings.Fields(sc.Text())
		for i, fl := range fields {
			if fl == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && len(fields) > 4 {
				return fields[4]
			}
		}
	}
	return ""
}

// cgroup is one child's cgroup.
type cgroup struct {
	dir string
	fd  *os.File // the directory, for CLONE_INTO_CGROUP; closed once started
}

// newCgroup creates a cgroup for the child name; nil when cgroups cannot
// be used.
func newCgroup(name string) *cgroup {
	base := cgroupBase()
	if base == "" || noCgroup.Load() {
		return nil
	}
	leaf := fmt.Sprintf("ztopo-%d-%d-%s", os.Getpid(), cgroupSeq.Add(1), sanitize(name))
	dir := filepath.Join(base, leaf)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil
	}
	fd, err := os.Open(dir)
	if err != nil {
		_ = os.Remove(dir)
		return nil
	}
	return &cgroup{dir: dir, fd: fd}
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// procs lists the processes in the cgroup (and its descendants' cgroups,
// which a process node's own children may have created).
func (c *cgroup) procs() []int {
	var out []int
	_ = filepath.WalkDir(c.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
				out = append(out, pid)
			}
		}
		return nil
	})
	return out
}

// signal sends sig to every process in the cgroup.
func (c *cgroup) signal(sig syscall.Signal) {
	for _, pid := range c.procs() {
		_ = syscall.Kill(pid, sig)
	}
}

// kill ends every process in the cgroup, waits (bounded) for them to be
// gone and removes the cgroup. It returns how many processes were left.
func (c *cgroup) kill() int {
	left := len(c.procs())
	if left > 0 {
		// cgroup.kill (Linux 5.14) is atomic against forks; without it,
		// SIGKILL each process until none is left.
		if err := os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0); err != nil {
			c.signal(syscall.SIGKILL)
		}
	}
	deadline := time.Now().Add(cgroupSettle)
	for {
		if len(c.procs()) == 0 && c.remove() == nil {
			return left
		}
		if time.Now().After(deadline) {
			return left
		}
		c.signal(syscall.SIGKILL)
		time.Sleep(10 * time.Millisecond)
	}
}

// remove removes the cgroup and the cgroups below it, deepest first.
func (c *cgroup) remove() error {
	var dirs []string
	_ = filepath.WalkDir(c.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var err error
	for i := len(dirs) - 1; i >= 0; i-- {
		if e := os.Remove(dirs[i]); e != nil && !errors.Is(e, os.ErrNotExist) {
			err = e
		}
	}
	return err
}

// proc is a process found by the sweep: its pid and start time (clock
// ticks since boot), so that a pid reused meanwhile is never signalled.
type proc struct {
	pid   int
	start uint64
}

// descendants lists the processes whose /proc parent links lead to pid.
func descendants(pid int) []proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]proc{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, start, ok := procStat(p)
		if ok {
			children[ppid] = append(children[ppid], proc{p, start})
		}
	}
	var out []proc
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// procStat reads the parent pid and start time of pid from /proc/PID/stat.
func procStat(pid int) (ppid int, start uint64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// The command name may contain spaces and parentheses: the fields
	// after the last ')' are fixed.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] state, f[1] ppid, ..., f[19] starttime (field 22 of stat).
	if len(f) < 20 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, 0, false
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return ppid, start, err == nil
}

// killSwept sends SIGKILL to the processes of ps that still run with the
// same start time; it returns how many it signalled.
func killSwept(ps []proc) int {
	n := 0
	for _, p := range ps {
		if _, start, ok := procStat(p.pid); ok && start == p.start {
			if syscall.Kill(p.pid, syscall.SIGKILL) == nil {
				n++
			}
		}
	}
	return n
}
