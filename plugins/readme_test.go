package plugins_test

import (
	"os"
	"strings"
	"testing"
)

// The README shows the Python example plugin in full, for readers to copy:
// it must stay the file that the tests run (less its docstring).
func TestReadmeShowsPythonExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("examples/python/upper_plugin.py")
	if err != nil {
		t.Fatal(err)
	}
	const fence = "```python\n"
	r := string(readme)
	i := strings.Index(r, fence)
	if i < 0 {
		t.Fatal("no python listing in README.md")
	}
	listing := r[i+len(fence):]
	listing = listing[:strings.Index(listing, "```")]

	s := string(src)
	d := strings.Index(s, `"""`)
	e := strings.Index(s[d+3:], `"""`) + d + 6
	want := s[:d] + strings.TrimLeft(s[e:], "\n")
	if listing != want {
		t.Errorf("README.md's listing differs from examples/python/upper_plugin.py (less its docstring)")
	}
}
