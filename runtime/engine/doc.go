// Package engine runs a resolved topology: one ZeroMQ context for the whole
// process, one supervised node instance per spec.Node, the completion rule
// and an orderly, bounded shutdown.
//
// Context: Run creates the process's single ZeroMQ context (so inproc works
// between every goroutine node) and terminates it before returning. Every
// socket has a bounded linger, so termination cannot hang; the only wait is
// for the last messages of completed nodes (their linger is the drain
// grace), and Run bounds even that.
//
// Completion (SPEC §2): a node completes when its handler is done (generate
// after its count, count at expect/until). If the topology has completing
// nodes, Run returns nil once all of them completed, after draining and
// stopping the purely reactive ones. A topology without completing nodes
// runs until ctx is cancelled.
//
// Stopping, on cancel or after completion: producers (generate, and any
// node without a receiving socket) stop producing first, goroutine ones
// keeping their sockets open; then the engine waits until no handler holds
// a message and no socket counter moves any more (in-flight messages have
// drained) — at most Grace after a cancel, as long as the work left keeps
// shrinking after a completion; then it stops the rest in data-flow order,
// sources first, each level with a bounded wait. What was sent on a
// PUSH/PULL or PAIR edge of the topology and received by no node is then
// counted, logged and returned as a *Loss (drain.go). Kill skips the drain.
//
// Supervision: an instance that fails (a socket error such as a bind on a
// taken port, a handler error wrapping handler.ErrFatal, a panic) is
// restarted under its spec.Restart (runtime/supervise.Limiter: exponential
// backoff, at most MaxRestarts within Within). Past the limit it is failed
// for good, the others keep running, and Run's error names it. A restarted
// instance keeps its socket counters. Endpoints: an instance's sockets are
// closed before its replacement opens them (stop-before-start); zsock
// retries a bind while libzmq releases the address.
//
// Reload (Apply, reload.go): spec.Diff(running, new) is applied node by
// node; instances the plan leaves alone are not touched — unless they are
// connected over inproc to a node that stops or restarts: libzmq never
// re-establishes an inproc connection to a new binder (tcp and ipc
// reconnect), so they restart after it (Report.Dependents). A handler-only
// change stores the new handler in the node's atomic slot: its sockets stay
// open, a Runner (proxy, lbbroker, generate) returns and the node goes on
// with the new handler, and each message is handled by the old handler or
// the new one — none is lost. Removed nodes and the old instances of
// changed nodes stop before anything starts (stop-before-start, as for
// restarts: a bound endpoint passes from an old instance to its
// replacement, zsock retrying the bind). A changed node is a new instance:
// its Started, restarts and socket counters begin afresh; a swap keeps them.
// A reload is all or nothing: when a node's new definition fails (its
// handler cannot be built, it does not start), every node goes back to its
// previous one — peers never run on a mixture of two files.
//
// Stopping a node on reload drains it first. Closing a PULL (or REP)
// socket drops what libzmq queued for it — its own receive pipe, and the
// sending peer's pipe to it — and disconnecting first does not help: the
// pending messages of a pipe cannot be read once its reader has asked to
// end it. A PUSH (or DEALER) peer keeps routing to every connected peer,
// so nothing but the peer's own pause makes a worker's queue empty. The
// engine therefore lets a removed node work on until its socket counters
// stayed still for a few samples (150 ms): lossless when the flow pauses
// within Grace (the test scales workers 2 -> 4 -> 1 under a stream and the
// sink's count is exact; stopping at once lost a message or two at 1k
// msg/s), lossy only for what is queued when a stream outlasts Grace.
// Producers stop at once. A proxy's counters never move (messages pass
// inside libzmq), so a removed proxy is stopped after one quiet period.
//
// Where nodes run: each instance has an instanceRunner. A goroutine node
// is a node.Node on the engine's context. A `run: process` node runs in a
// child, `Options.Self _node`, and a `command` node is its program
// (process.go, runtime/procnode): supervised like the others (restart
// policy, backoff, failed for good past the limit), stopped with SIGTERM
// and, after Grace, SIGKILL, and dying with ztopo. The engine never builds
// a process node's exec or plugin handler (that would start its processes
// here): builtins are built once to learn whether they complete, exec and
// plugin handlers count as reactive, and a command as completing (exit 0).
// A handler change on a process node restarts it. Its counters come from
// its child's reports, at most a second old while it runs; a command's
// sockets are the program's own and have none, so the drain cannot see
// what moves through it.
//
// Inproc after a supervised restart: when an instance that binds an inproc
// endpoint runs again after a restart, the live instances connected to it
// restart too (they would never be reconnected, as on reload), each once
// its binder runs; a restart of theirs restarts their own inproc peers in
// turn, never going back along the chain. These restarts are counted in
// Restarts but not against the restart limit. On an inproc cycle (a
// connects to b, b to a) one link stays lost: after a restarts, b restarts
// for it, and a's connection to b dies with b's old socket — restarting a
// again would cut b's. Cycles of nodes that may fail want ipc.
package engine
