package main

import (
	"os"
	"strings"
	"testing"
)

// TestDocsNameEveryVerb: docs/cli.md, the reference users read, has a
// section for every command `ztopo help` lists.
func TestDocsNameEveryVerb(t *testing.T) {
	data, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range verbNames() {
		if !strings.Contains(string(data), "### `ztopo "+n) {
			t.Errorf("docs/cli.md has no section \"### `ztopo %s ...`\"", n)
		}
	}
}
