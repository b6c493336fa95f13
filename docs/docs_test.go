package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// pages are the Markdown files a user reads: the README, these pages, and
// the plugin SDK's.
var pages = []string{"../README.md", "../plugins/README.md", "../wasm/README.md"}

func allPages(t *testing.T) []string {
	t.Helper()
	ps := append([]string(nil), pages...)
	mds, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append(ps, mds...)
}

var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestLinksResolve: every relative link of every page names a file of the
// repository. A user who clones it has nothing else (issue 12 item 17: the
// README linked to a SPEC.md in a folder beside the repository).
// outside is the folder beside the repository that the first README
// linked to; spelt in two parts so that this file does not name it either.
const outside = ".." + "/shared"

func TestLinksResolve(t *testing.T) {
	for _, p := range allPages(t) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range linkRE.FindAllStringSubmatch(string(data), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			full := filepath.Join(filepath.Dir(p), target)
			if _, err := os.Stat(full); err != nil {
				t.Errorf("%s: link %q: %v", p, m[1], err)
			}
			abs, _ := filepath.Abs(full)
			root, _ := filepath.Abs("..")
			if rel, err := filepath.Rel(root, abs); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: link %q leaves the repository", p, m[1])
			}
		}
		if strings.Contains(string(data), outside) {
			t.Errorf("%s mentions %s, which a user does not have", p, outside)
		}
	}
}

// TestReadmeLinksEveryPage: each reference page is reachable from the
// README, and from docs/README.md.
func TestReadmeLinksEveryPage(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	index, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	mds, _ := filepath.Glob("*.md")
	if len(mds) < 6 {
		t.Fatalf("got %d pages in docs/, want the index and 5 topics", len(mds))
	}
	for _, md := range mds {
		if md == "README.md" {
			continue
		}
		if !strings.Contains(string(readme), "(docs/"+md) {
			t.Errorf("README.md does not link docs/%s", md)
		}
		if !strings.Contains(string(index), "("+md+")") {
			t.Errorf("docs/README.md does not link %s", md)
		}
	}
}

// TestReadmeGettingStarted: what a newcomer needs before anything else is
// said on the README's first screen: the two commands, where the binary
// is, how to install it, and that the first build takes minutes.
func TestReadmeGettingStarted(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for _, want := range []string{"make run", "make test", "./bin/ztopo", "make install", "go install github.com/ztopo/ztopo/cmd/ztopo@latest", "CGO_ENABLED=1", "few minutes"} {
		if !strings.Contains(s, want) {
			t.Errorf("README.md does not say %q", want)
		}
	}
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\ninstall: build\n", "\nrun: build\n", "\ntest: deps-test\n", "takes a few minutes"} {
		if !strings.Contains(string(mk), want) {
			t.Errorf("Makefile lacks %q", want)
		}
	}
}
