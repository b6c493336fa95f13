package procnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/node"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/spec"
)

// termBound bounds the child's ZeroMQ context termination. Every socket has
// a bounded linger, so it ends; if a handler leaked a socket anyway, the
// process exits regardless, and the kernel closes what is left.
const termBound = 5 * time.Second

// reportedError is a failure the parent has already been told about on the
// event pipe.
type reportedError struct{ error }

func (e reportedError) Unwrap() error { return e.error }

// Reported reports whether RunChild's error was already sent to the parent
// (which logs it and puts it in Run's error), so the caller need not print
// it again.
func Reported(err error) bool {
	var r reportedError
	return errors.As(err, &r)
}

// RunChild is the child side of a process node, `ztopo _node`: it reads the
// node from EnvSpec, runs it with its own ZeroMQ context and reports to the
// parent on file descriptor 3 until the node completes (nil), ctx is
// cancelled — the caller cancels it on SIGTERM and SIGINT — (ctx's error),
// or the node fails (another error). The caller maps these to exit status
// 0, 0 and 1.
//
// kinds gives the exec and plugin handler factories, with file watching on
// or off as the parent asked (Config.NoWatch); nil means handler.Kinds,
// which watch.
func RunChild(ctx context.Context, kinds func(watch bool) *handler.Registry) error {
	js := os.Getenv(EnvSpec)
	if js == "" {
		return fmt.Errorf("%s is not set: `ztopo %s` runs one node of `ztopo up`, which starts it", EnvSpec, ChildVerb)
	}
	levelName := os.Getenv(EnvLogLevel)
	hold := os.Getenv(EnvHold) == "1"
	reg := handler.Kinds
	if kinds != nil {
		reg = kinds(os.Getenv(EnvNoWatch) != "1")
	}
	// Read once; the processes this node starts (exec and plugin handlers)
	// must not take themselves for node children.
	os.Unsetenv(EnvSpec)
	os.Unsetenv(EnvLogLevel)
	os.Unsetenv(EnvHold)
	os.Unsetenv(EnvNoWatch)
	var st syscall.Stat_t
	if err := syscall.Fstat(eventsFD, &st); err != nil {
		return fmt.Errorf("event pipe (file descriptor %d): %w", eventsFD, err)
	}
	// Inherited without close-on-exec: set it, so that the processes this
	// node starts (exec and plugin handlers) do not hold the parent's pipe.
	syscall.CloseOnExec(eventsFD)
	f := os.NewFile(eventsFD, "ztopo-events")
	defer f.Close()
	lw := &lineWriter{w: f}

	level := hclog.LevelFromString(levelName)
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	// The parent stamps each entry when it logs it again.
	logger := childLogger{hclog.New(&hclog.LoggerOptions{Output: lw, JSONFormat: true, Level: level, DisableTime: true})}

	err := serveChild(ctx, js, hold, reg, lw, logger)
	switch {
	case err == nil:
		lw.send(event{Event: eventCompleted})
		return nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return ctx.Err()
	}
	lw.send(event{Event: eventFailed, Error: err.Error()})
	return reportedError{err}
}

func serveChild(ctx context.Context, js string, hold bool, kinds *handler.Registry, lw *lineWriter, logger hclog.Logger) error {
	topo, n, drain, err := decodeSpec(js)
	if err != nil {
		return err
	}
	h, err := buildHandler(topo, n, kinds, logger)
	if err != nil {
		return err
	}
	zctx, err := zsock.NewContext()
	if err != nil {
		return err
	}
	defer termContext(zctx, logger)

	stats := make(map[string]*zsock.Stats, len(n.Sockets))
	for _, s := range n.Sockets {
		stats[s.Name] = &zsock.Stats{}
	}
	report := func() {
		ev := event{Event: eventStats, Sockets: make(map[string]wireCounts, len(stats))}
		for name, s := range stats {
			ev.Sockets[name] = toWire(s.Snapshot())
		}
		lw.send(ev)
	}
	nd := node.New(node.Config{
		Spec:      n,
		Context:   zctx,
		Handler:   h,
		Logger:    logger,
		Stats:     stats,
		Drain:     drain,
		OnRunning: func() { lw.send(event{Event: eventRunning}) },
		// Reported at once, not at exit: a held child completes long before
		// it is stopped, and the topology may be waiting for it.
		OnCompleted:    func() { lw.send(event{Event: eventCompleted}) },
		HoldOnComplete: hold,
	})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(StatsInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				report()
			case <-stop:
				return
			}
		}
	}()
	err = nd.Run(ctx)
	close(stop)
	wg.Wait()
	report() // final counters, after every socket is closed
	return err
}

// buildHandler builds the node's handler the way the engine does for a
// goroutine node: builtins from handler.Builtins, exec and plugin handlers
// from kinds.
func buildHandler(t *spec.Topology, n *spec.Node, kinds *handler.Registry, logger hclog.Logger) (any, error) {
	var f handler.Factory
	var ok bool
	switch n.Handler.Kind {
	case spec.HandlerBuiltin:
		if f, ok = handler.Builtins.Lookup(n.Handler.Name); !ok {
			return nil, fmt.Errorf("unknown builtin handler %q (this ztopo has: %s)", n.Handler.Name, strings.Join(handler.Builtins.Names(), ", "))
		}
	case spec.HandlerExec, spec.HandlerPlugin, spec.HandlerWasm:
		if f, ok = kinds.Lookup(string(n.Handler.Kind)); !ok {
			return nil, fmt.Errorf("this ztopo cannot run %s handlers", n.Handler.Kind)
		}
	default:
		return nil, fmt.Errorf("a %q handler does not run in a node process", n.Handler.Kind)
	}
	h, err := f(n.Config, handler.Env{Node: n, Topo: t, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("handler %s: %w", handlerName(n), err)
	}
	return h, nil
}

func handlerName(n *spec.Node) string {
	if n.Handler.Kind == spec.HandlerBuiltin {
		return n.Handler.Name
	}
	return string(n.Handler.Kind)
}

type terminator interface{ Term() error }

func termContext(zctx terminator, logger hclog.Logger) {
	done := make(chan error, 1)
	go func() { done <- zctx.Term() }()
	select {
	case err := <-done:
		if err != nil {
			logger.Warn("zeromq context termination failed", "error", err)
		}
	case <-time.After(termBound):
		logger.Warn("zeromq context termination still blocked, exiting anyway", "after", termBound)
	}
}
