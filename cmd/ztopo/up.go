package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	oklog "github.com/oklog/run"

	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/runtime/engine"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/logbuf"
	"github.com/ztopo/ztopo/runtime/metrics"
	"github.com/ztopo/ztopo/runtime/service"
	"github.com/ztopo/ztopo/runtime/ui"
	"github.com/ztopo/ztopo/runtime/watch"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/spec"

	// Handler registrations, made in the packages' init: builtin fills
	// handler.Builtins (echo, forward, ...), exechandler and pluginhost put
	// the "exec" and "plugin" factories in handler.Kinds. They are linked
	// into the whole binary, so `ztopo _node` children have them too.
	_ "github.com/ztopo/ztopo/runtime/handler/builtin"
	"github.com/ztopo/ztopo/runtime/handler/exechandler"
	"github.com/ztopo/ztopo/runtime/handler/pluginhost"
	"github.com/ztopo/ztopo/runtime/handler/wasmhost"
)

const upUsage = `usage: ztopo up [flags] FILE

Runs the topology in the foreground until SIGINT/SIGTERM or 'ztopo down'
(with -d: in the background). A
topology whose nodes complete (a generate with a count, a count with expect)
ends by itself once they have. While it runs, edits to FILE are applied:
only the nodes whose definition changed restart; SIGHUP and 'ztopo reload'
reload too. An invalid edit is logged (FILE:LINE:COL: message) and the
running topology is left as it is.

The first SIGINT or SIGTERM stops the producers, lets in-flight messages
drain for at most the grace period, then stops everything; a second one
exits at once (exit status 1: messages may have been lost).

Flags:
  -d, --detach            run in the background: return once every node runs
                          (exit 0), or with the errors if one fails to start
                          within 60s (exit 1, and nothing is left running);
                          the log is then read with 'ztopo logs'
  --no-watch              do not watch FILE (nor exec, plugin and wasm files) for changes
  --log-format text|json  log format (default text)
  --log-level LEVEL       trace, debug, info, warn or error (default info)
  --grace DUR             drain grace on stop, e.g. 2s (default 5s)
  --metrics ADDR          serve Prometheus metrics at http://ADDR/metrics
                          (port 0 picks one; the log says which), and
                          /healthz (200 while up runs) and /readyz (200
                          once every node runs or completed, else 503)
  --host HOST             run only the nodes the file places on HOST (its
                          hosts): a share of its own, with its own control
                          socket (ps, status, reload, down --host HOST)
  --ui ADDR               serve a live picture of the topology at http://ADDR/
                          (loopback only; port 0 picks one; the log says which)
  --ui-public             allow --ui on a non-loopback address: the page has no
                          authentication, anyone who reaches it sees the topology
  --kubernetes NS         placement of the pods of 'ztopo export kubernetes'
                          in namespace NS (peers at their pods' DNS names);
                          with --host POD, what that pod runs
  --env-file FILE        variables for ${VAR} from FILE (KEY=value lines)
                         instead of the .env beside the topology file;
                         repeatable, a later file wins; the environment
                         overrides both

Exit status: 0 success (the topology completed, or was stopped by a signal
or 'ztopo down'), 1 invalid topology, a node that failed for good, or
another instance already running the topology, 2 wrong usage, 3 the
topology stopped but messages sent inside it were received by no node (lost
at stop when the drain grace ended first, or at a crash or restart); the
log says how many and on which edge.
`

// Actor results that are not failures of the topology.
var (
	errForced = errors.New("forced exit on a second signal")
)

// engineDone is the engine actor's result: the group ended because the
// engine returned, with err (nil: completed or stopped cleanly).
type engineDone struct{ err error }

func (e *engineDone) Error() string {
	if e.err == nil {
		return "topology stopped"
	}
	return e.err.Error()
}

// dupSignal is how soon after the first stop signal another one counts as
// the same request delivered twice rather than a user's second Ctrl-C.
const dupSignal = 250 * time.Millisecond

func runUp(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("up")
	envFiles := addEnvFileFlag(fs)
	noWatch := fs.Bool("no-watch", false, "")
	logFormat := fs.String("log-format", "text", "")
	logLevel := fs.String("log-level", "info", "")
	grace := fs.Duration("grace", engine.DefaultGrace, "")
	metricsAddr := fs.String("metrics", "", "")
	uiAddr := fs.String("ui", "", "")
	uiPublic := fs.Bool("ui-public", false, "")
	detach := fs.Bool("d", false, "")
	fs.BoolVar(detach, "detach", false, "")
	host := fs.String("host", "", "")
	kube := fs.String("kubernetes", "", "")
	path, code, ok := parseFile(fs, "up", upUsage, args, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case *logFormat != "text" && *logFormat != "json":
		return usageError(stderr, "up", upUsage, "--log-format must be text or json, got %q", *logFormat)
	case *grace <= 0:
		return usageError(stderr, "up", upUsage, "--grace must be positive, got %v", *grace)
	}
	if *uiAddr != "" {
		if err := checkUIAddr(*uiAddr, *uiPublic); err != nil {
			return usageError(stderr, "up", upUsage, "%v", err)
		}
	}
	level := hclog.LevelFromString(*logLevel)
	if level == hclog.NoLevel || level == hclog.Off {
		return usageError(stderr, "up", upUsage, "--log-level must be trace, debug, info, warn or error, got %q", *logLevel)
	}
	if *detach {
		return runDetached(args, stdout, stderr)
	}
	pipe := detachedPipe() // up -d's background: warnings and errors to the pipe until ready
	if pipe != nil {
		stderr = detachedOutput{pipe}
	}

	// Signals are caught from here on: a Ctrl-C while starting must still
	// stop the topology in order and remove the runtime directory.
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigc)
	defer survivePipes()()

	logger, logs := newUpLogger(stderr, *logFormat == "json", level)
	if pipe != nil {
		logs.SetOutputLevel(hclog.Warn)
	}
	if *host != "" {
		logger = logger.With("host", *host)
	}

	// The watcher comes before the first read: an edit made between the
	// read and the start of the watch would otherwise never be applied.
	var w *watch.Watcher
	var werr error
	if !*noWatch {
		w, werr = watch.New(path, logger.Named("watch"))
		if werr == nil {
			// The env files feed ${VAR}: an edit to one is an edit to the
			// topology. A .env that does not exist yet is watched for.
			for _, ef := range watchedEnvFiles(path, *envFiles) {
				if err := w.Add(ef); err != nil {
					logger.Warn("cannot watch env file; edits to it apply on SIGHUP or ztopo reload", "file", ef, "error", err)
				}
			}
		}
	}
	lopts := loadOptions(*host, *envFiles)
	lopts.Kubernetes = *kube
	t, ds := spec.Load(path, lopts)
	if t != nil && t.Share != "" && len(t.Nodes) == 0 {
		t, ds = nil, append(ds, spec.Diag{Pos: spec.Pos{File: path}, Msg: fmt.Sprintf("host %q has no nodes: no node names it as its host", t.Share)})
	}
	if t == nil {
		printDiags(stderr, ds)
		if w != nil {
			w.Close()
		}
		return exitFailure
	}
	// Warnings of a valid file go to the log, which may be JSON.
	for _, d := range ds {
		logger.Warn(d.String())
	}
	if werr != nil {
		fmt.Fprintf(stderr, "ztopo up: %v\n", werr)
		return exitFailure
	}

	logs.Printer.Reserve(instanceNames(t)...)
	u, err := newUpRun(t, path, upOptions{
		logger:  logger,
		logs:    logs,
		grace:   *grace,
		noWatch: *noWatch,
		metrics: *metricsAddr,
		host:    *host,
		ui:      *uiAddr,
		load:    lopts,
		watcher: w,
		signals: sigc,
	})
	if err != nil {
		if w != nil {
			w.Close()
		}
		fmt.Fprintf(stderr, "ztopo up: %v\n", err)
		return exitFailure
	}
	if pipe != nil {
		go u.awaitReady(pipe)
	}
	return u.run(stderr)
}

type upOptions struct {
	logger  hclog.Logger
	logs    *logbuf.Sink // the log kept for ztopo logs
	grace   time.Duration
	noWatch bool
	metrics string // listen address, "" for none
	host    string // --host: the share run, "" for the whole file
	ui      string // --ui listen address, "" for none
	load    spec.LoadOptions
	watcher *watch.Watcher
	signals chan os.Signal
}

// upRun is one `ztopo up`: the running topology's service and what the
// process adds around it (listeners, the control socket's ownership).
type upRun struct {
	opts upOptions
	log  hclog.Logger
	svc  *service.Service
	mln  net.Listener // metrics, nil without --metrics
	uln  net.Listener // the page, nil without --ui

	notOwner atomic.Bool // another instance serves the control socket
}

// handlerKinds gives the exec and plugin handler factories: the default
// registrations, which watch exec scripts and plugin files and swap them on
// change, or ones that do not watch.
func handlerKinds(watch bool) *handler.Registry {
	if watch {
		return handler.Kinds
	}
	kinds := handler.NewRegistry()
	kinds.Register(string(spec.HandlerExec), exechandler.NewFactory(false))
	kinds.Register(string(spec.HandlerPlugin), pluginhost.NewFactory(false))
	kinds.Register(string(spec.HandlerWasm), wasmhost.NewFactory(false))
	return kinds
}

// newUpRun prepares what can fail before anything is started; the runtime
// directory comes last, so that no failure here leaves it behind.
func newUpRun(t *spec.Topology, file string, opts upOptions) (*upRun, error) {
	eopts := engine.Options{Logger: opts.logger, Grace: opts.grace}
	// Process nodes re-execute this binary as `ztopo _node`. Should the
	// platform not tell its path, the engine refuses them by name.
	if self, err := os.Executable(); err == nil {
		eopts.Self = self
	}
	if opts.noWatch {
		// --no-watch means no watching at all, in this process and in the
		// children of process nodes.
		eopts.Kinds, eopts.NoWatch = handlerKinds(false), true
	}
	u := &upRun{
		opts: opts,
		log:  opts.logger,
		svc:  service.New(t, file, service.Options{Logger: opts.logger, Engine: eopts, Load: opts.load, Logs: opts.logs.Ring()}),
	}
	if opts.metrics != "" {
		ln, err := net.Listen("tcp", opts.metrics)
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		u.mln = ln
	}
	if opts.ui != "" {
		ln, err := net.Listen("tcp", opts.ui)
		if err != nil {
			if u.mln != nil {
				u.mln.Close()
			}
			return nil, fmt.Errorf("ui: %w", err)
		}
		u.uln = ln
	}
	if err := control.EnsureRuntimeDir(t.RuntimeDir); err != nil {
		for _, ln := range []net.Listener{u.mln, u.uln} {
			if ln != nil {
				ln.Close()
			}
		}
		return nil, err
	}
	return u, nil
}

// run runs the group until the engine returns, and gives the exit code.
func (u *upRun) run(stderr io.Writer) int {
	t := u.svc.Topology()
	var g oklog.Group

	// Signals. The first SIGINT/SIGTERM stops the topology in order; this
	// actor keeps running so that a second one can force the exit. SIGHUP
	// is a reload request.
	g.Add(withCancel(func(ctx context.Context) error {
		var first time.Time
		for {
			select {
			case <-ctx.Done():
				return nil
			case s := <-u.opts.signals:
				switch {
				case s == syscall.SIGHUP:
					u.log.Info("reload requested", "by", "SIGHUP")
					u.svc.RequestReload()
				case first.IsZero():
					first = time.Now()
					u.svc.Stop(fmt.Errorf("signal %v", s))
				case time.Since(first) < dupSignal:
					// timeout(1) and `kill -- -PGID` signal the process
					// and its group: one request, delivered twice.
					u.log.Debug("signal repeated at once, taken as the same request", "signal", s.String())
				default:
					u.log.Warn("second signal, exiting at once", "signal", s.String())
					u.svc.Kill()
					return errForced
				}
			}
		}
	}))

	// Control socket: the service's verbs. It has a ZeroMQ context
	// of its own (ipc needs nothing from the nodes' context), created, used
	// and terminated in this actor's goroutine. Serve fails at once when
	// another instance serves the topology; the engine waits for Serve to
	// be ours before it starts anything.
	g.Add(withCancel(func(ctx context.Context) error {
		zctx, err := zsock.NewContext()
		if err != nil {
			return fmt.Errorf("control socket: %w", err)
		}
		defer zctx.Term()
		err = control.Serve(ctx, zctx, control.Endpoint(t.RuntimeDir), u.svc, u.log.Named("control"))
		var re *control.RunningError
		if errors.As(err, &re) {
			u.notOwner.Store(true)
		}
		if err == nil && ctx.Err() == nil {
			err = errors.New("control socket stopped")
		}
		return err
	}))

	// Watcher: content changes of the file are reload requests. A watcher
	// that breaks is logged and left; the topology keeps running.
	if w := u.opts.watcher; w != nil {
		g.Add(withCancel(func(ctx context.Context) error {
			errc := make(chan error, 1)
			go func() { errc <- w.Run(ctx) }()
			for p := range w.Events() {
				u.log.Info("topology file changed", "file", p)
				u.svc.RequestReload()
			}
			if err := <-errc; err != nil && ctx.Err() == nil {
				u.log.Error("file watch stopped; edits are no longer applied (SIGHUP and ztopo reload still work)", "error", err)
				<-ctx.Done()
			}
			return nil
		}))
	}

	// Reload loop: one reload at a time, of the latest request.
	g.Add(withCancel(func(ctx context.Context) error {
		u.svc.RunReloads(ctx)
		return nil
	}))

	// Rates: counters sampled twice a second for ps and status.
	g.Add(withCancel(func(ctx context.Context) error {
		u.svc.RunRates(ctx)
		return nil
	}))

	// Progress: one info line per unfinished counted node every 10 s.
	g.Add(withCancel(func(ctx context.Context) error {
		u.svc.RunProgress(ctx)
		return nil
	}))

	// Metrics, with --metrics.
	if u.mln != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler(u.svc.MetricsSnapshot))
		mux.HandleFunc("/healthz", u.svc.Healthz)
		mux.HandleFunc("/readyz", u.svc.Readyz)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		u.log.Info("serving metrics", "url", "http://"+u.mln.Addr().String()+"/metrics")
		g.Add(serveHTTP(srv, u.mln, "metrics", nil))
	}

	// The live page, with --ui: it reads the status only while a page is
	// connected; its event streams end with the group.
	if u.uln != nil {
		ctx, cancel := context.WithCancel(context.Background())
		page := ui.New(ui.Source{Topology: u.svc.Topology, Status: u.svc.Status, Logs: u.opts.logs.Ring(), Tap: u.svc.AttachTap}, u.log)
		srv := &http.Server{Handler: page, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
		u.log.Info("serving the live page", "url", "http://"+u.uln.Addr().String()+"/")
		g.Add(serveHTTP(srv, u.uln, "ui", cancel))
	}

	// Engine: runs the topology; when it returns, the group ends.
	{
		g.Add(func() error {
			if !u.awaitControl() {
				return &engineDone{} // stopped before it started
			}
			err := u.svc.Run()
			if errors.Is(err, service.ErrAbandoned) {
				return errForced
			}
			if !u.svc.IsKilled() {
				u.holdForPage(err)
			}
			return &engineDone{err: err}
		}, func(err error) {
			if !errors.Is(err, errForced) {
				u.svc.Stop(fmt.Errorf("ztopo is exiting: %w", err))
			}
		})
	}

	err := g.Run()
	if !u.notOwner.Load() {
		control.RemoveRuntimeDir(t.RuntimeDir, u.log)
	}
	var ed *engineDone
	switch {
	case errors.Is(err, errForced):
		return exitFailure
	case errors.As(err, &ed):
		if ed.err != nil {
			fmt.Fprintf(stderr, "ztopo up: %v\n", ed.err)
			var loss *engine.Loss
			if errors.As(ed.err, &loss) && errors.Unwrap(ed.err) == nil {
				return exitLoss
			}
			return exitFailure
		}
		return exitOK
	case err == nil:
		return exitOK
	}
	fmt.Fprintf(stderr, "ztopo up: %v\n", err)
	return exitFailure
}

// awaitControl waits until our control socket answers, so that the engine
// never starts next to another instance of the topology: it would bind the
// same ports and, worse, take over its ipc paths. False when the topology
// was stopped (or the group ended) first.
func (u *upRun) awaitControl() bool {
	endpoint := control.Endpoint(u.svc.Topology().RuntimeDir)
	stopped := u.svc.StopContext()
	for {
		ctx, cancel := context.WithTimeout(stopped, time.Second)
		pong, err := control.Ping(ctx, endpoint)
		cancel()
		if err == nil && pong.Pid == os.Getpid() {
			return true
		}
		select {
		case <-stopped.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// holdForPage keeps a topology that ended by itself on show while --ui
// serves its page: a batch ends in a moment, and the page is where its
// final states and counts are read. It returns on a signal or ztopo down;
// up then exits as the topology's end says.
func (u *upRun) holdForPage(err error) {
	if u.uln == nil || u.svc.StopContext().Err() != nil {
		return
	}
	state := "completed"
	if err != nil {
		state = "failed"
	}
	u.log.Info("topology "+state+"; the live page keeps showing it until interrupted or ztopo down", "url", "http://"+u.uln.Addr().String()+"/")
	select {
	case <-u.svc.StopContext().Done():
	case <-u.svc.Killed():
	}
}

// checkUIAddr refuses a --ui address that is not loopback unless the user
// said --ui-public: the page has no authentication.
func checkUIAddr(addr string, public bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--ui wants HOST:PORT, e.g. 127.0.0.1:8080: %v", err)
	}
	if public {
		return nil
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("--ui %s is not a loopback address: the page has no authentication; add --ui-public to serve it there anyway", addr)
}

// withCancel makes run an actor of an oklog group: run gets a context that
// is cancelled when the group ends.
func withCancel(run func(ctx context.Context) error) (execute func() error, interrupt func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error { return run(ctx) }, func(error) { cancel() }
}

// serveHTTP makes srv on ln an actor of an oklog group (what names it in
// its error); when the group ends, stop (if not nil) is called and srv is
// shut down, waiting up to 2s for its requests.
func serveHTTP(srv *http.Server, ln net.Listener, what string, stop func()) (execute func() error, interrupt func(error)) {
	execute = func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s server: %w", what, err)
		}
		return nil
	}
	interrupt = func(error) {
		if stop != nil {
			stop()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}
	return execute, interrupt
}
