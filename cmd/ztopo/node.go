package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	// The handlers a node child can run. A child builds its handler itself,
	// so it needs the same registries as `ztopo up`.
	_ "github.com/ztopo/ztopo/runtime/handler/builtin"
	"github.com/ztopo/ztopo/runtime/procnode"
)

// nodeUsage documents the hidden verb for whoever finds it in ps output.
const nodeUsage = `usage: ztopo _node

Runs one node instance of a "run: process" node. ztopo up starts it, with
the node in the environment and an event pipe on file descriptor 3; it is
not meant to be run by hand. Exit status 0 when the node completed or was
stopped by SIGTERM or SIGINT, 1 when it failed.
`

func runNode(args []string, stdout, stderr io.Writer) int {
	fs := newFlags(procnode.ChildVerb)
	if code, ok := parseFlags(fs, procnode.ChildVerb, nodeUsage, args, stdout, stderr); !ok {
		return code
	}
	// SIGTERM is how the parent stops the node; SIGINT reaches the child
	// too when ztopo runs in a terminal, since Ctrl-C signals the whole
	// foreground group. Either one stops the node the same orderly way.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := procnode.RunChild(ctx, handlerKinds)
	switch {
	case err == nil, ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return exitOK
	case !procnode.Reported(err):
		fmt.Fprintf(stderr, "ztopo %s: %v\n", procnode.ChildVerb, err)
	}
	return exitFailure
}
