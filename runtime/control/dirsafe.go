package control

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// UnsafeDirError says why a runtime directory is not trusted. Its message
// names the directory and what is wrong, and tells what to do.
type UnsafeDirError struct {
	Dir     string // the runtime directory
	Culprit string // the directory at fault: Dir or one of its parents
	Reason  string
}

func (e *UnsafeDirError) Error() string {
	if e.Culprit == e.Dir {
		return fmt.Sprintf("runtime directory %s is not safe: %s", e.Dir, e.Reason)
	}
	return fmt.Sprintf("runtime directory %s is not safe: its parent %s %s; another user could take it over (move it away, or set XDG_RUNTIME_DIR to a private directory)", e.Dir, e.Culprit, e.Reason)
}

// CheckRuntimeDir verifies, as ssh does for its files, that no one but us
// (and root) can replace or enter dir: dir itself must be a real directory
// (no symbolic link) owned by us with no access for group or others; every
// parent up to / must be owned by us or root, and writable by group or
// others only with the sticky bit (/tmp), which forbids renaming or
// removing other users' entries. Without the parents' check, a directory
// another user made (mkdir -m 0777 /tmp/ztopo-UID) lets that user swap our
// runtime directory for theirs and receive our control requests.
func CheckRuntimeDir(dir string) error {
	uid := os.Getuid()
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("runtime directory: %w", err)
	}
	bad := func(culprit, format string, args ...any) error {
		return &UnsafeDirError{Dir: dir, Culprit: culprit, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return bad(dir, "it is a symbolic link")
	case !fi.IsDir():
		return bad(dir, "it is not a directory")
	}
	if owner := ownerOf(fi); owner != uid {
		return bad(dir, "it is owned by uid %d, not by us (uid %d)", owner, uid)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return bad(dir, "it is accessible by group or others (mode %04o); it must be 0700", perm)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("runtime directory: %w", err)
	}
	// Parents as the kernel walks them: symbolic links resolved (a link
	// in a shared directory points wherever its maker wants, and the
	// directory it reaches is what must be safe).
	parent, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return fmt.Errorf("runtime directory: %w", err)
	}
	for p := parent; ; p = filepath.Dir(p) {
		pfi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("runtime directory: %w", err)
		}
		owner := ownerOf(pfi)
		if owner != uid && owner != 0 {
			return bad(p, "is owned by uid %d, neither us (uid %d) nor root", owner, uid)
		}
		if perm := pfi.Mode().Perm(); perm&0o022 != 0 && pfi.Mode()&os.ModeSticky == 0 {
			return bad(p, "is writable by group or others without the sticky bit (mode %04o)", perm)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func ownerOf(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
