package control

import (
	"context"
	"encoding/json"
	"time"

	"github.com/ztopo/ztopo/runtime/logbuf"
)

// VerbLogs asks for records of the topology's log (LogsHandler).
const VerbLogs = "logs"

// MaxLogRecords bounds the records of one logs reply; a caller that wants
// more asks again from the reply's Next.
const MaxLogRecords = 1000

// LogsRequest is the argument of VerbLogs.
type LogsRequest struct {
	After uint64    `json:"after,omitempty"` // records with a greater Seq
	Since time.Time `json:"since,omitzero"`  // records at or after this time
	Names []string  `json:"names,omitempty"` // instances (worker.1) or nodes (worker)
	Max   int       `json:"max,omitempty"`   // at most MaxLogRecords
}

// LogsReply is the answer to VerbLogs.
type LogsReply struct {
	Records []logbuf.Record `json:"records"`
	Next    uint64          `json:"next"` // the After of the request that continues this one
	Lost    uint64          `json:"lost"` // records evicted from the buffer before they were asked for
}

// LogsHandler is a Handler that keeps a log: Serve answers VerbLogs when
// its Handler implements it.
type LogsHandler interface {
	Logs(LogsRequest) (LogsReply, error)
}

// RingLogs answers a LogsRequest from a ring.
func RingLogs(g *logbuf.Ring, req LogsRequest) LogsReply {
	if req.Max <= 0 || req.Max > MaxLogRecords {
		req.Max = MaxLogRecords
	}
	res := g.Select(logbuf.Query{After: req.After, Since: req.Since, Names: req.Names, Max: req.Max})
	if res.Records == nil {
		res.Records = []logbuf.Record{}
	}
	return LogsReply{Records: res.Records, Next: res.Next, Lost: res.Lost}
}

// Logs asks the topology at endpoint for records.
func Logs(ctx context.Context, endpoint string, req LogsRequest) (LogsReply, error) {
	var rep LogsReply
	err := CallArgs(ctx, endpoint, VerbLogs, req, &rep)
	return rep, err
}

// args decodes a request's arguments into v; no arguments leave v as it is.
func (r request) args(v any) error {
	if len(r.Args) == 0 {
		return nil
	}
	return json.Unmarshal(r.Args, v)
}

// VerbRestart restarts node instances (RestartHandler).
const VerbRestart = "restart"

// RestartRequest is the argument of VerbRestart: instances (worker.1) or
// nodes (worker: every replica).
type RestartRequest struct {
	Names []string `json:"names"`
}

// RestartReply is the answer to VerbRestart.
type RestartReply struct {
	Restarted []string `json:"restarted"` // the instances, in topology order
}

// RestartHandler is a Handler that can restart instances: Serve answers
// VerbRestart when its Handler implements it.
type RestartHandler interface {
	Restart(RestartRequest) (RestartReply, error)
}
