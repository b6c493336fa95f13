package main

import (
	"context"
	"net"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ztopo/ztopo/internal/testutil"
)

// uiTopology runs for ever: a generator, two process workers that restart
// after 3 s (so that a page updated once a second sees them restarting),
// and a sink.
const uiTopology = `version: 1
name: uitest
nodes:
  ventilator:
    handler: generate
    config: {interval: 2ms, size: 16}
    sockets:
      out: {type: PUSH, bind: auto}
  worker:
    replicas: 2
    run: process
    handler: forward
    restart: {policy: always, backoff_min: 3s, backoff_max: 3s}
    sockets:
      in:  {type: PULL, connect: ventilator.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    sockets:
      in: {type: PULL, bind: auto}
`

// uiExtra is uiTopology with one node more, for the reload.
const uiExtra = uiTopology + `  extra:
    handler: generate
    config: {interval: 100ms, payload: x}
    sockets:
      out: {type: PUSH, connect: sink.in}
`

// chromium finds Debian's Chromium; in CI its absence fails the test, since
// scripts/deps.sh installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium at /usr/bin/chromium (Debian: chromium): the UI tests need it")
	}
	t.Skip("no Chromium at /usr/bin/chromium (Debian: chromium)")
	return ""
}

// browser starts a headless Chromium for the test, with the flags that keep
// it off the network and a profile of its own.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 640),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// freeAddr is a loopback address with a port nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// pageWait evaluates js in the page every 100 ms until it returns true; it
// fails the test, naming what, after e2eBound.
func pageWait(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	deadline := time.Now().Add(e2eBound)
	var last string
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify([...document.querySelectorAll("#graph g.node")].map(g => [g.dataset.name, g.dataset.state]))`))
			t.Fatalf("the page never showed %s (last error %q; nodes %s)", what, last, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestUIInBrowser drives the --ui page in a real headless Chromium: every
// node is drawn, the worker->sink edge shows a rate while traffic flows, a
// SIGKILLed process worker turns to restarting and back, and a reload that
// adds a node draws it without a page refresh. With ZTOPO_UI_SCREENSHOT set
// it also writes a screenshot there (make ui-screenshot).
func TestUIInBrowser(t *testing.T) {
	bin := buildZtopo(t)
	ctx := browser(t)
	d := newE2EDir(t)
	file := d.write(t, "topology.yaml", uiTopology)
	addr := freeAddr(t)
	u := startUp(t, bin, d, "--ui", addr, file)
	u.waitLog(regexp.MustCompile(`serving the live page`))

	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatal(err)
	}
	pageWait(t, ctx, "the three nodes", `[...document.querySelectorAll("#graph g.node")].map(g => g.dataset.name).sort().join() === "sink,ventilator,worker"`)
	pageWait(t, ctx, "every node running", `[...document.querySelectorAll("#graph g.node")].every(g => g.dataset.state === "running")`)
	pageWait(t, ctx, "a rate on worker->sink", `(() => { const e = document.querySelector('#graph g.edge[data-a="worker"][data-b="sink"]'); return !!e && +e.dataset.rate > 0; })()`)

	if shot := os.Getenv("ZTOPO_UI_SCREENSHOT"); shot != "" {
		// Open the worker's panel first: the picture shows what a click gives.
		err := chromedp.Do(ctx,
			chromedp.Evaluate[chromedp.Void](`void select("worker")`),
			chromedp.Sleep(4*time.Second), // rates of process nodes settle
		)
		if err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// SIGKILL worker.0's process: restarting (for its 3 s backoff), then
	// running again with one restart.
	pid, err := chromedp.Run(ctx, chromedp.Evaluate[int](`last.status.nodes.find(n => n.name === "worker.0").pid`))
	if err != nil || pid <= 0 {
		t.Fatalf("worker.0's pid from the page: %d, %v", pid, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	pageWait(t, ctx, "worker restarting", `document.querySelector('#graph g.node[data-name="worker"]').dataset.state === "restarting"`)
	pageWait(t, ctx, "worker running again after a restart", `(() => { const g = document.querySelector('#graph g.node[data-name="worker"]'); return g.dataset.state === "running" && +g.dataset.restarts === 1; })()`)

	// A reload that adds a node: the page draws it without being reloaded.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.marker = 42`)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(uiExtra), 0o644); err != nil {
		t.Fatal(err)
	}
	pageWait(t, ctx, "the added node, running", `(() => { const g = document.querySelector('#graph g.node[data-name="extra"]'); return !!g && g.dataset.state === "running" && window.marker === 42; })()`)

	// The SIGKILL lost what worker.0 held: up says so with exit 3 (0 when
	// it happened to hold nothing).
	u.signal(syscall.SIGTERM)
	switch code := u.exitCode(e2eBound); {
	case code == 0:
	case code == 3 && strings.Contains(u.log(), "messages lost"):
	default:
		t.Fatalf("up exited %d, want 0, or 3 with the messages lost\n%s", code, u.log())
	}
}

// TestUIShowsCompletedBatch: topologies/pipeline.yaml ends in a moment; with
// --ui, up keeps its page until interrupted, showing every node and the
// sink's final count, then exits 0. A page opened meanwhile reconnects by
// itself when up is started again.
func TestUIShowsCompletedBatch(t *testing.T) {
	bin := buildZtopo(t)
	ctx := browser(t)
	d := newE2EDir(t)
	file := testutil.RepoPath(t, "topologies/pipeline.yaml")
	addr := freeAddr(t)
	u := startUp(t, bin, d, "--no-watch", "--ui", addr, file)
	u.waitLog(regexp.MustCompile(`topology completed; the live page keeps showing it`))
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatal(err)
	}
	pageWait(t, ctx, "every node of pipeline.yaml", `[...document.querySelectorAll("#graph g.node")].map(g => g.dataset.name).sort().join() === "sink,ventilator,worker"`)
	pageWait(t, ctx, "the sink completed with 100000 messages", `(() => {
		const g = document.querySelector('#graph g.node[data-name="sink"]');
		const s = last.status.nodes.find(n => n.name === "sink");
		return g.dataset.state === "completed" && s.msgs_in === 100000; })()`)
	u.signal(syscall.SIGTERM)
	if code := u.exitCode(e2eBound); code != 0 {
		t.Fatalf("up exited %d, want 0\n%s", code, u.log())
	}
	pageWait(t, ctx, "the page noticing up is gone", `document.getElementById("conn").textContent === "reconnecting…"`)

	// up again on the same address: the open page picks it up by itself.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.marker = 7`)); err != nil {
		t.Fatal(err)
	}
	u2 := startUp(t, bin, d, "--no-watch", "--ui", addr, file)
	u2.waitLog(regexp.MustCompile(`topology completed; the live page keeps showing it`))
	pageWait(t, ctx, "the page live again, not reloaded", `document.getElementById("conn").textContent === "live" && window.marker === 7 && last.status.pid !== 0`)
	u2.signal(syscall.SIGTERM)
	if code := u2.exitCode(e2eBound); code != 0 {
		t.Fatalf("second up exited %d, want 0\n%s", code, u2.log())
	}
}

// TestUIRefusesPublicAddress: a non-loopback --ui address needs --ui-public.
func TestUIRefusesPublicAddress(t *testing.T) {
	var out, errb strings.Builder
	code := run([]string{"up", "--ui", "0.0.0.0:8080", "topology.yaml"}, &out, &errb)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	want := "--ui 0.0.0.0:8080 is not a loopback address: the page has no authentication; add --ui-public to serve it there anyway"
	if !strings.Contains(errb.String(), want) {
		t.Fatalf("stderr %q does not say %q", errb.String(), want)
	}
	for _, ok := range []string{"127.0.0.1:0", "localhost:8080", "[::1]:8080"} {
		if err := checkUIAddr(ok, false); err != nil {
			t.Errorf("checkUIAddr(%q): %v, want nil", ok, err)
		}
	}
	if err := checkUIAddr("0.0.0.0:8080", true); err != nil {
		t.Errorf("checkUIAddr with --ui-public: %v, want nil", err)
	}
}

// TestUITap: the node panel's tap button shows the messages passing a
// socket live, and stop detaches the tap.
func TestUITap(t *testing.T) {
	bin := buildZtopo(t)
	ctx := browser(t)
	d := newE2EDir(t)
	file := d.write(t, "topology.yaml", `version: 1
name: uitaptest
nodes:
  gen:
    handler: generate
    config: {interval: 5ms, payload: hi}
    sockets:
      out: {type: PUSH, bind: auto}
  worker:
    handler: forward
    sockets:
      in:  {type: PULL, connect: gen.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    sockets:
      in: {type: PULL, bind: auto}
`)
	addr := freeAddr(t)
	u := startUp(t, bin, d, "--ui", addr, file)
	u.waitLog(regexp.MustCompile(`serving the live page`))
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatal(err)
	}
	pageWait(t, ctx, "every node running", `[...document.querySelectorAll("#graph g.node")].length === 3 && [...document.querySelectorAll("#graph g.node")].every(g => g.dataset.state === "running")`)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`void select("worker")`)); err != nil {
		t.Fatal(err)
	}
	pageWait(t, ctx, "the tap button of worker.out", `!!document.querySelector('button.tapbtn[data-node="worker"][data-socket="out"]')`)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('button.tapbtn[data-node="worker"][data-socket="out"]').click()`)); err != nil {
		t.Fatal(err)
	}
	pageWait(t, ctx, "tapped messages", `/^\d\d:\d\d:\d\d\.\d{6} worker\.out out "hi"$/m.test(document.getElementById("taplines").textContent) && /^\d+ messages shown, \d+ not shown/.test(document.getElementById("tapstat").textContent)`)
	u.waitLog(regexp.MustCompile(`tap attached from the page: socket=worker.out instances=worker`))
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("tapstop").click()`)); err != nil {
		t.Fatal(err)
	}
	u.waitLog(regexp.MustCompile(`tap detached from the page: socket=worker.out copied=\d+ lost=\d+`))
	u.signal(syscall.SIGTERM)
	if code := u.exitCode(e2eBound); code != 0 {
		t.Fatalf("up exited %d, want 0\n%s", code, u.log())
	}
}
