package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/spec"
)

// version is set at build time: go build -ldflags "-X main.version=1.2.3".
var version = "0.1.0-dev"

const versionUsage = `usage: ztopo version

Prints the version of ztopo, the version of the libzmq it is linked with and
that library's capabilities (curve: encryption; ipc: Unix sockets; pgm:
reliable multicast), the Go version, and the names of the builtin handlers.
`

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version")
	if code, ok := parseFlags(fs, "version", versionUsage, args, stdout, stderr); !ok {
		return code
	}
	lib := zsock.LinkedLibrary()
	var names []string
	for _, h := range spec.BuiltinHandlers() {
		names = append(names, h.Name)
	}
	fmt.Fprintf(stdout, "ztopo %s\n", version)
	fmt.Fprintf(stdout, "libzmq: %s\n", lib.Version)
	fmt.Fprintf(stdout, "capabilities: curve=%s ipc=%s pgm=%s\n", yesNo(lib.Curve), yesNo(lib.IPC), yesNo(lib.PGM))
	fmt.Fprintf(stdout, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(stdout, "builtin handlers: %s\n", strings.Join(names, " "))
	return exitOK
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
