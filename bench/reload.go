package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	zmq "github.com/pebbe/zmq4"

	"github.com/ztopo/ztopo/runtime/watch"
	"github.com/ztopo/ztopo/spec"
)

// reloadNodes is the size of the reload scenario's topology (issue 5: a
// 50-node topology).
const reloadNodes = 50

// ztopoReload measures issue 5's figure: from the save of the topology file
// to the new handler serving, on a 50-node topology (one REP service and 49
// idle nodes). It goes through the same path as `ztopo up`: the directory
// watcher (with its debounce), spec.Load, engine.Apply. Each round trip
// alternates the service's handler between echo and upper; the clock starts
// before the file is written and stops at the first reply of the new handler.
func ztopoReload(p Params) (Result, error) {
	start := time.Now()
	dir, err := os.MkdirTemp("", "zr")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	ep, err := freeTCP()
	if err != nil {
		return Result{}, err
	}
	file := filepath.Join(dir, "topology.yaml")
	write := func(h string) error {
		return os.WriteFile(file, fmt.Appendf(nil, `version: 1
name: bench-reload
nodes:
  svc:
    handler: %s
    sockets:
      in: {type: REP, bind: %q}
  idle:
    replicas: %d
    handler: log
    sockets:
      in: {type: PULL, bind: auto}
`, h, ep, reloadNodes-1), 0o644)
	}
	if err := write("echo"); err != nil {
		return Result{}, err
	}
	opts := spec.LoadOptions{RuntimeDir: filepath.Join(dir, "run")}
	w, err := watch.New(file, hclog.NewNullLogger())
	if err != nil {
		return Result{}, err
	}
	t, diags := spec.Load(file, opts)
	if t == nil {
		w.Close()
		return Result{}, diags
	}
	e, err := newEngine(t)
	if err != nil {
		w.Close()
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), runBound+time.Duration(p.Count)*time.Second)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- e.Run(ctx) }()
	watched := make(chan error, 1)
	go func() { watched <- w.Run(ctx) }()
	// The reload loop of `ztopo up`, without its logging.
	reloaded := make(chan error, 1)
	go func() {
		var rerr error
		for range w.Events() {
			t, diags := spec.Load(file, opts)
			if t == nil {
				rerr = errors.Join(rerr, diags)
				continue
			}
			if _, err := e.Apply(ctx, t); err != nil {
				rerr = errors.Join(rerr, err)
			}
		}
		reloaded <- rerr
	}()

	lat, cerr := reloadClient(ep, write, warmupReloads(p), p.Count)
	cancel()
	err = errors.Join(cerr, <-ran, <-watched, <-reloaded)
	return latencyResult(p, lat, start), err
}

func warmupReloads(p Params) int {
	if p.Quick {
		return 1
	}
	return 3
}

// reloadClient waits for the echo service, then times warm+n reloads: each
// writes the file with the other handler and asks until the reply shows it.
func reloadClient(ep string, write func(string) error, warm, n int) ([]time.Duration, error) {
	return withREQ(ep, func(s *zmq.Socket) ([]time.Duration, error) {
		ask := func() (string, error) {
			if _, err := s.Send("hello", 0); err != nil {
				return "", err
			}
			return s.Recv(0)
		}
		if rep, err := ask(); err != nil || rep != "hello" {
			return nil, fmt.Errorf("first request: got %q, %v; want \"hello\"", rep, err)
		}
		lat := make([]time.Duration, 0, n)
		for i := 0; i < warm+n; i++ {
			h, want := "upper", "HELLO"
			if i%2 == 1 {
				h, want = "echo", "hello"
			}
			t0 := time.Now()
			if err := write(h); err != nil {
				return lat, err
			}
			deadline := t0.Add(recvTimeout)
			for {
				rep, err := ask()
				if err != nil {
					return lat, fmt.Errorf("reload %d: %w", i, err)
				}
				if rep == want {
					break
				}
				if time.Now().After(deadline) {
					return lat, fmt.Errorf("reload %d: handler %s not serving after %v", i, h, recvTimeout)
				}
			}
			if i >= warm {
				lat = append(lat, time.Since(t0))
			}
		}
		return lat, nil
	})
}
