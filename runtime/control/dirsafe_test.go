package control

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestCheckRuntimeDir: the runtime directory and every parent are checked
// as ssh checks its files (issue 11 item 10: another local user's
// `mkdir -m 0777 /tmp/ztopo-<uid>` was accepted, since only the leaf was
// checked, and let that user receive our ps and down requests).
func TestCheckRuntimeDir(t *testing.T) {
	uid := os.Getuid()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, base string) // base/ztopo/name is the runtime dir
		want  string                          // "" for safe; %s is base
		root  bool                            // needs root (chown)
	}{
		{name: "fresh", setup: func(t *testing.T, base string) {}},
		{
			name: "parent made by another user",
			root: true,
			setup: func(t *testing.T, base string) {
				mkdir(t, filepath.Join(base, "ztopo"), 0o777)
				if err := os.Chown(filepath.Join(base, "ztopo"), 4242, 4242); err != nil {
					t.Fatal(err)
				}
			},
			want: "runtime directory %[1]s/ztopo/name is not safe: its parent %[1]s/ztopo is owned by uid 4242, neither us (uid %[2]d) nor root; another user could take it over (move it away, or set XDG_RUNTIME_DIR to a private directory)",
		},
		{
			name:  "parent writable by others",
			setup: func(t *testing.T, base string) { mkdir(t, filepath.Join(base, "ztopo"), 0o777) },
			want:  "runtime directory %[1]s/ztopo/name is not safe: its parent %[1]s/ztopo is writable by group or others without the sticky bit (mode 0777); another user could take it over (move it away, or set XDG_RUNTIME_DIR to a private directory)",
		},
		{
			name:  "grandparent writable by group",
			setup: func(t *testing.T, base string) { chmod(t, base, 0o770) },
			want:  "runtime directory %[1]s/ztopo/name is not safe: its parent %[1]s is writable by group or others without the sticky bit (mode 0770); another user could take it over (move it away, or set XDG_RUNTIME_DIR to a private directory)",
		},
		{
			name:  "sticky parent, as /tmp",
			setup: func(t *testing.T, base string) { chmod(t, base, 0o777|os.ModeSticky) },
		},
		{
			name: "leaf is a symbolic link",
			setup: func(t *testing.T, base string) {
				mkdir(t, filepath.Join(base, "ztopo"), 0o700)
				mkdir(t, filepath.Join(base, "elsewhere"), 0o700)
				if err := os.Symlink(filepath.Join(base, "elsewhere"), filepath.Join(base, "ztopo", "name")); err != nil {
					t.Fatal(err)
				}
			},
			want: "runtime directory %[1]s/ztopo/name is not safe: it is a symbolic link",
		},
		{
			name: "leaf open to others",
			setup: func(t *testing.T, base string) {
				mkdir(t, filepath.Join(base, "ztopo"), 0o700)
				mkdir(t, filepath.Join(base, "ztopo", "name"), 0o755)
			},
			want: "runtime directory %[1]s/ztopo/name is not safe: it is accessible by group or others (mode 0755); it must be 0700",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && uid != 0 {
				t.Skip("needs root to make a directory of another user")
			}
			base := t.TempDir()
			tc.setup(t, base)
			dir := filepath.Join(base, "ztopo", "name")
			err := EnsureRuntimeDir(dir)
			want := ""
			if tc.want != "" {
				want = fmt.Sprintf(tc.want, base, uid)
			}
			if got := errText(err); got != want {
				t.Fatalf("EnsureRuntimeDir:\ngot  %s\nwant %s", got, want)
			}
			if want == "" {
				return
			}
			var u *UnsafeDirError
			if !errors.As(err, &u) {
				t.Errorf("got %T, want *UnsafeDirError", err)
			}
			// A client verb refuses the directory too, before it sends.
			err = Call(context.Background(), Endpoint(dir), VerbPing, nil)
			if got := errText(err); got != want {
				t.Errorf("Call:\ngot  %s\nwant %s", got, want)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	chmod(t, dir, mode) // past the umask
}

func chmod(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
}
