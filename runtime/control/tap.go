package control

import (
	"context"

	"github.com/ztopo/ztopo/runtime/tap"
)

// The tap verbs (TapHandler). A tap client attaches, then reads what was
// copied since its last read, over and over, and detaches. The copies wait
// in a bounded buffer in the topology's process: a client that reads too
// seldom loses copies (counted), never slows the topology. A tap nobody
// read for TapLease is detached by the topology (its client died).
const (
	VerbTap     = "tap"      // TapRequest -> TapReply
	VerbTapRead = "tap-read" // TapReadRequest -> TapReadReply
	VerbUntap   = "untap"    // TapReadRequest (ID) -> TapReadReply (the last copies, the totals)
)

// MaxTapRecords and MaxTapBytes bound one tap-read reply.
const (
	MaxTapRecords = 1000
	MaxTapBytes   = 4 << 20
)

// TapRequest is the argument of VerbTap.
type TapRequest struct {
	Node   string `json:"node"` // an instance (worker.1) or a node (worker: every replica)
	Socket string `json:"socket"`
	Buffer int    `json:"buffer,omitempty"` // copies held for the client; 0: tap.DefaultBuffer
}

// TapReply is the answer to VerbTap.
type TapReply struct {
	ID        string   `json:"id"`
	Instances []string `json:"instances"` // the instances tapped
}

// TapReadRequest is the argument of VerbTapRead and VerbUntap.
type TapReadRequest struct {
	ID  string `json:"id"`
	Max int    `json:"max,omitempty"` // at most MaxTapRecords
}

// TapReadReply is the answer to VerbTapRead and VerbUntap.
type TapReadReply struct {
	Records []tap.Record `json:"records"`
	Lost    uint64       `json:"lost"`   // copies dropped so far: the buffer was full
	Copied  uint64       `json:"copied"` // copies buffered so far
	// More: records are still buffered beyond this reply.
	More bool `json:"more,omitempty"`
}

// TapHandler is a Handler that can tap sockets: Serve answers the tap verbs
// when its Handler implements it.
type TapHandler interface {
	Tap(TapRequest) (TapReply, error)
	TapRead(TapReadRequest) (TapReadReply, error)
	Untap(TapReadRequest) (TapReadReply, error)
}

// Tap attaches a tap at endpoint.
func Tap(ctx context.Context, endpoint string, req TapRequest) (TapReply, error) {
	var rep TapReply
	err := CallArgs(ctx, endpoint, VerbTap, req, &rep)
	return rep, err
}

// TapRead reads a tap's copies at endpoint.
func TapRead(ctx context.Context, endpoint string, req TapReadRequest) (TapReadReply, error) {
	var rep TapReadReply
	err := CallArgs(ctx, endpoint, VerbTapRead, req, &rep)
	return rep, err
}

// Untap detaches a tap at endpoint and returns what it still held.
func Untap(ctx context.Context, endpoint string, req TapReadRequest) (TapReadReply, error) {
	var rep TapReadReply
	err := CallArgs(ctx, endpoint, VerbUntap, req, &rep)
	return rep, err
}
