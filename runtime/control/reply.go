package control

import (
	"context"
	"time"
)

// The replies of ps, status, reload and ping: the schema the server fills
// and the clients decode, one definition for both. Their JSON is also what
// `ztopo status --json`, `ps --json` and `reload --json` print, so a field
// renamed here changes a public format (reply_test.go pins it).

// StatusReply is the answer to VerbPs and VerbStatus.
type StatusReply struct {
	Name            string           `json:"name"`
	File            string           `json:"file"`
	PID             int              `json:"pid"`
	State           string           `json:"state"` // starting, running, degraded (a node failed for good) or stopping
	Started         time.Time        `json:"started"`
	UptimeSeconds   float64          `json:"uptime_seconds"`
	GraceMS         int64            `json:"grace_ms"`
	Reloads         uint64           `json:"reloads"` // applied reloads
	ReloadsRejected uint64           `json:"reloads_rejected"`
	ReloadsFailed   uint64           `json:"reloads_failed"`
	Nodes           []InstanceStatus `json:"nodes"` // node instances, in topology order
}

// InstanceStatus is one node instance; MsgsIn/MsgsOut and the rates are
// its sockets' summed.
type InstanceStatus struct {
	Name          string  `json:"name"`
	Node          string  `json:"node"`
	Run           string  `json:"run"`
	PID           int     `json:"pid"` // 0 for a goroutine
	State         string  `json:"state"`
	Restarts      int     `json:"restarts"`
	UptimeSeconds float64 `json:"uptime_seconds"` // 0 unless starting, running or stalled
	Error         string  `json:"error,omitempty"`
	MsgsIn        uint64  `json:"msgs_in"`
	MsgsOut       uint64  `json:"msgs_out"`
	// ExpectIn and ExpectOut are what the node completes at: a count's
	// expect, a generate's count; absent when it has none.
	ExpectIn  int            `json:"expect_in,omitempty"`
	ExpectOut int            `json:"expect_out,omitempty"`
	RateIn    float64        `json:"rate_in"`
	RateOut   float64        `json:"rate_out"`
	Sockets   []SocketStatus `json:"sockets"`
}

// Names are what a NODE argument of ps, logs, restart or tap may be: each
// instance and each node (as written), once, in the order of Nodes.
func (st *StatusReply) Names() []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range st.Nodes {
		for _, k := range []string{n.Name, n.Node} {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// SocketStatus is one socket of an instance: its counters, and its type
// and endpoints as resolved.
type SocketStatus struct {
	Name       string   `json:"name"`
	Type       string   `json:"type,omitempty"`
	Bind       []string `json:"bind,omitempty"`    // resolved endpoints
	Connect    []string `json:"connect,omitempty"` // resolved endpoints
	MsgsIn     uint64   `json:"msgs_in"`
	MsgsOut    uint64   `json:"msgs_out"`
	BytesIn    uint64   `json:"bytes_in"`
	BytesOut   uint64   `json:"bytes_out"`
	SendErrors uint64   `json:"send_errors"`
	RateIn     float64  `json:"rate_in"`  // messages per second over the server's rate window
	RateOut    float64  `json:"rate_out"` // messages per second over the server's rate window
	// DropsUnseen says why messages this socket drops cannot be counted
	// (PUB beyond the high-water mark, ROUTER to an unknown peer); "" when
	// a drop is a send error, counted in SendErrors.
	DropsUnseen string `json:"drops_unseen,omitempty"`
	// Curve is "server" or "client" on a socket with CURVE; AuthFailures
	// are the handshakes refused on a CURVE server socket.
	Curve        string `json:"curve,omitempty"`
	AuthFailures uint64 `json:"auth_failures,omitempty"`
}

// The results of a reload (ReloadReply.Result).
const (
	ReloadApplied   = "applied"
	ReloadUnchanged = "unchanged"
	ReloadRejected  = "rejected" // the file is invalid, or the topology is stopping
	ReloadFailed    = "failed"   // applying failed and was rolled back
)

// ReloadReply is the answer to VerbReload: what the reload did.
type ReloadReply struct {
	Result      string   `json:"result"` // ReloadApplied, ReloadUnchanged, ReloadRejected or ReloadFailed
	File        string   `json:"file"`
	Plan        *Plan    `json:"plan,omitempty"` // nil when nothing was planned (rejected)
	Diagnostics []string `json:"diagnostics,omitempty"`
	DurationMS  float64  `json:"duration_ms"`
}

// Plan is a reload's plan as `ztopo plan --json` prints it; every list is
// present, empty or not, so that scripts need no null checks.
type Plan struct {
	Start   []string   `json:"start"`
	Stop    []string   `json:"stop"`
	Restart []string   `json:"restart"`
	Swap    []PlanSwap `json:"swap"`
	// Allow: CURVE servers whose allow lists only let more clients in,
	// updated in place.
	Allow     []string `json:"allow"`
	Unchanged []string `json:"unchanged"`
	// Changes are the field-level changes of each restarted, swapped or
	// allow-updated instance, by name.
	Changes map[string]PlanChange `json:"changes"`
}

// PlanSwap is a handler swapped in place.
type PlanSwap struct {
	Node string `json:"node"`
	From string `json:"from"`
	To   string `json:"to"`
}

// PlanChange is what changed in one restarted or swapped instance, and
// for a restart, why it is not a handler swap.
type PlanChange struct {
	Reason string   `json:"reason,omitempty"`
	Fields []string `json:"fields"`
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool {
	return len(p.Start)+len(p.Stop)+len(p.Restart)+len(p.Swap)+len(p.Allow) == 0
}

// PingReply is the answer to VerbPing, given by Serve itself.
type PingReply struct {
	Pid  int    `json:"pid"`
	Name string `json:"name,omitempty"`
}

// Status asks the topology at endpoint for its status.
func Status(ctx context.Context, endpoint string) (StatusReply, error) {
	var rep StatusReply
	err := Call(ctx, endpoint, VerbStatus, &rep)
	return rep, err
}

// Reload asks the topology at endpoint to reload its file and waits for
// the result. A reload that was rejected or failed returns its reply (nil
// when none came) and the reply's error.
func Reload(ctx context.Context, endpoint string) (*ReloadReply, error) {
	var rep ReloadReply
	err := Call(ctx, endpoint, VerbReload, &rep)
	if rep.Result == "" {
		return nil, err
	}
	return &rep, err
}

// Ping asks the topology at endpoint who serves it.
func Ping(ctx context.Context, endpoint string) (PingReply, error) {
	var rep PingReply
	err := Call(ctx, endpoint, VerbPing, &rep)
	return rep, err
}
