// Package plugins is the Go SDK for ztopo handler plugins: programs that
// do a node's work outside the ztopo binary and can be swapped while the
// topology runs.
//
// The protocol (ztopo-plugin/1) is small enough to speak from any language
// with a ZeroMQ binding:
//
//   - ztopo binds a ROUTER on a private ipc endpoint and starts the plugin
//     with ZTOPO_PLUGIN_ENDPOINT set to it (plus ZTOPO_NODE, ZTOPO_TOPOLOGY).
//   - The plugin connects a DEALER and sends ["READY", "ztopo-plugin/1"].
//   - ztopo sends ["REQ", id, frame...]; the plugin answers
//     ["REP", id, frame...] (no frame after id: the message is dropped) or
//     ["ERR", id, text]. id is opaque: echo it back unchanged. Many requests
//     may be in flight and answers may come in any order.
//   - ["STOP"] asks the plugin to finish what it holds and exit; ztopo kills
//     it after a grace period.
//
// A Go plugin is a main package that calls Serve (see examples/upper-go):
//
//	func main() {
//		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//		defer stop()
//		err := plugins.Serve(ctx, plugins.HandlerFunc(func(ctx context.Context, frames [][]byte) ([][]byte, error) {
//			return append(frames, []byte("seen")), nil
//		}))
//		if err != nil {
//			log.Fatal(err)
//		}
//	}
//
// The plugintest package runs a handler against an in-process host, for
// the plugin's own tests.
package plugins

import (
	"context"
	"errors"
	"os"
)

// Protocol is the name and version of the plugin protocol, sent in READY.
const Protocol = "ztopo-plugin/1"

// Commands: the first frame of every protocol message.
const (
	Ready = "READY" // plugin -> ztopo: ["READY", Protocol]
	Req   = "REQ"   // ztopo -> plugin: ["REQ", id, frame...]
	Rep   = "REP"   // plugin -> ztopo: ["REP", id, frame...]
	Err   = "ERR"   // plugin -> ztopo: ["ERR", id, text]
	Stop  = "STOP"  // ztopo -> plugin: ["STOP"]
)

// Environment variables ztopo sets for a plugin.
const (
	EnvEndpoint = "ZTOPO_PLUGIN_ENDPOINT" // where to connect the DEALER
	EnvNode     = "ZTOPO_NODE"            // the node instance, e.g. "worker.2"
	EnvTopology = "ZTOPO_TOPOLOGY"        // the topology name
)

// Handler does a plugin's work. Handle gets the frames of one message (the
// routing envelope already removed by ztopo) and returns the frames to send
// on; nil or no frames drops the message; an error is reported to ztopo as
// ERR with the error's text. Handle is called from several goroutines at
// once unless Options.Workers is 1; it may modify and return frames.
type Handler interface {
	Handle(ctx context.Context, frames [][]byte) ([][]byte, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, frames [][]byte) ([][]byte, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, frames [][]byte) ([][]byte, error) {
	return f(ctx, frames)
}

// ErrNoEndpoint is returned by Serve when the program was not started by
// ztopo (ZTOPO_PLUGIN_ENDPOINT is not set).
var ErrNoEndpoint = errors.New("plugins: " + EnvEndpoint + " is not set (is this program started by ztopo?)")

// Serve connects to the ztopo host named by ZTOPO_PLUGIN_ENDPOINT and
// answers its requests with h until ztopo sends STOP or ctx is done; then it
// finishes the requests it holds, answers any request that still comes with
// ERR "plugin is stopping", and returns nil.
func Serve(ctx context.Context, h Handler) error {
	ep := os.Getenv(EnvEndpoint)
	if ep == "" {
		return ErrNoEndpoint
	}
	return ServeEndpoint(ctx, ep, h, Options{})
}
