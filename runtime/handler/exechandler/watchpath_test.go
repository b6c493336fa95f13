package exechandler

import (
	"path/filepath"
	"testing"
)

func TestWatchPath(t *testing.T) {
	script, _ := filepath.Abs("testdata/upper.py")
	dir, _ := filepath.Abs("testdata")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"interpreter and script", Config{Argv: []string{"/usr/bin/python3", "-u", script}}, script},
		{"script relative to Dir", Config{Argv: []string{"python3", "upper.py"}, Dir: dir}, script},
		{"executable path", Config{Argv: []string{"/usr/local/bin/filter", "s/a/b/"}}, "/usr/local/bin/filter"},
		{"nothing to watch", Config{Argv: []string{"sed", "-u", "s/a/b/"}}, ""},
		{"explicit", Config{Argv: []string{"sed"}, WatchPath: "/etc/filter.sed"}, "/etc/filter.sed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.watchPath(); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
