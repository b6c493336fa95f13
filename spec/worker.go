package spec

import (
	"fmt"
	"strings"
	"time"
)

// WorkerProtocol is a reliable request-reply protocol a reactive handler
// speaks as a worker on a DEALER socket (SPEC §7).
type WorkerProtocol string

const (
	// ProtoPPP is the zguide's Paranoid Pirate Protocol: the worker sends
	// "\x01" when ready, heartbeats with "\x02", and gets requests as
	// [envelope..., "", body...], answered with the same envelope.
	ProtoPPP WorkerProtocol = "ppp"
	// ProtoMDP is the Majordomo Protocol 0.1 worker (MDPW01, RFC 7).
	ProtoMDP WorkerProtocol = "mdp"
)

// Worker is how a node's reactive handler serves through a broker: the
// protocol, the DEALER socket it speaks on and its timing. Resolved from
// the worker keys of the node's config (WorkerKeys), which the handler
// never sees, or from a DEALER that connects to a ppqueue's backend.
type Worker struct {
	Protocol WorkerProtocol
	Socket   string // the DEALER socket
	Service  string // MDP: the service the worker offers
	// Heartbeat is the interval of the worker's heartbeats, and of the
	// broker's it expects: after Liveness intervals without a word from
	// the broker it reconnects. Defaults: PPP 1s, MDP 2.5s (the zguide's).
	Heartbeat time.Duration
	Liveness  int // default 3
	// Reconnect is the first pause before a reconnect; it doubles per
	// failed attempt up to ReconnectMax. Defaults: 1s and 32s (the zguide's).
	Reconnect    time.Duration
	ReconnectMax time.Duration
}

// Worker defaults, the zguide's.
const (
	DefaultPPPHeartbeat    = time.Second
	DefaultMDPHeartbeat    = 2500 * time.Millisecond
	DefaultLiveness        = 3
	DefaultReconnect       = time.Second
	DefaultReconnectMax    = 32 * time.Second
	DefaultBrokerHeartbeat = time.Second
)

// WorkerKeys are the config keys of every reactive handler (the builtins
// that answer requests, exec and plugin handlers) that make its node a
// worker of a reliable broker. They are taken out of Node.Config into
// Node.Worker.
var WorkerKeys = []ConfigKey{
	{Name: "heartbeat", Kind: KindDuration, Doc: "worker: interval of heartbeats to and from the broker (PPP 1s, MDP 2.5s)"},
	{Name: "liveness", Kind: KindInt, Doc: "worker: heartbeats missed before the worker reconnects (3)"},
	{Name: "protocol", Kind: KindString, Doc: "worker: ppp or mdp on the node's DEALER socket (mdp with service; ppp when it connects to a ppqueue)"},
	{Name: "reconnect", Kind: KindDuration, Doc: "worker: first pause before a reconnect, doubling (1s)"},
	{Name: "reconnect_max", Kind: KindDuration, Doc: "worker: the longest pause between reconnects (32s)"},
	{Name: "service", Kind: KindString, Doc: "worker: the MDP service the node offers on its DEALER socket"},
}

func isWorkerKey(k string) bool {
	for _, w := range WorkerKeys {
		if w.Name == k {
			return true
		}
	}
	return false
}

// canWork reports whether a node's handler may speak a worker protocol.
func canWork(h HandlerRef) bool {
	switch h.Kind {
	case HandlerExec, HandlerPlugin:
		return true
	case HandlerBuiltin:
		b, _ := h.Builtin()
		return b.Reactive
	}
	return false
}

// iworker is what the first pass read of the worker keys.
type iworker struct {
	keys  map[string]Pos // key positions
	proto Pos            // position of protocol, or of service
	w     Worker
	set   bool // some worker key was given
	bad   bool // some worker key had a bad value, reported
}

// workerConfig takes the worker keys out of a config map (v), checking
// them, and returns the entries left for the handler.
func (r *resolver) workerConfig(sc scope, n *Node, v *Value) (*iworker, []Entry) {
	if !canWork(n.Handler) {
		// Its own schema judges them (the brokers have heartbeat, liveness).
		return nil, v.Entries
	}
	iw := &iworker{keys: map[string]Pos{}}
	var rest []Entry
	for _, e := range v.Entries {
		if !isWorkerKey(e.Key) {
			rest = append(rest, e)
			continue
		}
		iw.set = true
		iw.keys[e.Key] = e.KeyPos
		var kind ValueKind
		for _, k := range WorkerKeys {
			if k.Name == e.Key {
				kind = k.Kind
			}
		}
		val, ok := r.typed(sc, kind, e.Value, fmt.Sprintf("config %q", e.Key))
		if !ok {
			iw.bad = true
			continue
		}
		nd := len(r.diags)
		switch e.Key {
		case "heartbeat":
			iw.w.Heartbeat = val.(time.Duration)
			if iw.w.Heartbeat <= 0 {
				r.errorf(e.Value.Pos, "", "config \"heartbeat\" must be positive")
			}
		case "liveness":
			iw.w.Liveness = val.(int)
			if iw.w.Liveness < 1 {
				r.errorf(e.Value.Pos, "", "config \"liveness\" must be at least 1, got %d", iw.w.Liveness)
			}
		case "protocol":
			p := WorkerProtocol(strings.ToLower(val.(string)))
			if p != ProtoPPP && p != ProtoMDP {
				r.errorf(e.Value.Pos, didYouMean(string(p), []string{"mdp", "ppp"}), "unknown worker protocol %q: ppp (Paranoid Pirate) or mdp (Majordomo)", val)
				continue
			}
			iw.w.Protocol, iw.proto = p, e.KeyPos
		case "reconnect":
			iw.w.Reconnect = val.(time.Duration)
		case "reconnect_max":
			iw.w.ReconnectMax = val.(time.Duration)
		case "service":
			iw.w.Service = val.(string)
			if iw.w.Service == "" {
				r.errorf(e.Value.Pos, "", "config \"service\" needs a service name")
			}
		}
		if len(r.diags) > nd {
			iw.bad = true
		}
	}
	return iw, rest
}

// resolveWorker decides, once the wiring is known, whether the instance is
// a worker and on which socket, and fills in Node.Worker.
func (r *resolver) resolveWorker(in *inst) {
	n, iw := in.n, in.worker
	if !canWork(n.Handler) {
		return
	}
	if iw == nil {
		iw = &iworker{keys: map[string]Pos{}}
	}
	w := iw.w
	if w.Service != "" {
		if w.Protocol == ProtoPPP {
			r.errorf(iw.keys["service"], "", "config \"service\" is for MDP workers, but protocol is ppp")
			return
		}
		if w.Protocol == "" {
			w.Protocol, iw.proto = ProtoMDP, iw.keys["service"]
		}
	}
	var dealers []*isock
	for _, is := range in.socks {
		if is.s.Type == DEALER {
			dealers = append(dealers, is)
		}
	}
	// A DEALER connected to a ppqueue's backend or an mdbroker's frontend
	// tells what its node must speak (HandlerSchema.WorkerProtocol).
	for _, is := range dealers {
		for _, c := range is.conns {
			if !c.ref || !c.ok {
				continue
			}
			peers := r.byBase[c.node]
			if len(peers) == 0 || w.Protocol != "" {
				continue
			}
			b, _ := peers[0].n.Handler.Builtin()
			switch b.WorkerProtocol[c.socket] {
			case ProtoPPP:
				w.Protocol, iw.proto = ProtoPPP, c.pos
			case ProtoMDP: // MDP needs a service, which would have set w.Protocol
				r.errorf(c.pos, fmt.Sprintf("add config: {service: NAME} to node %q", n.Base), "a DEALER worker of %s %q needs the service it offers", b.Name, c.node)
				return
			}
		}
	}
	if w.Protocol == "" {
		if iw.bad {
			return // what is wrong was said
		}
		for _, k := range sortedKeys(iw.keys) {
			r.errorf(iw.keys[k], "add service: NAME (MDP) or protocol: ppp", "config %q applies to workers, but node %q speaks no worker protocol", k, n.Base)
		}
		return
	}
	switch len(dealers) {
	case 0:
		r.errorf(iw.proto, "", "node %q speaks %s as a worker, which needs a DEALER socket; it has none", n.Base, strings.ToUpper(string(w.Protocol)))
		return
	case 1:
	default:
		r.errorf(iw.proto, "", "node %q speaks %s as a worker on a DEALER socket, but has %d of them", n.Base, strings.ToUpper(string(w.Protocol)), len(dealers))
		return
	}
	w.Socket = dealers[0].s.Name
	if w.Heartbeat == 0 {
		w.Heartbeat = DefaultPPPHeartbeat
		if w.Protocol == ProtoMDP {
			w.Heartbeat = DefaultMDPHeartbeat
		}
	}
	if w.Liveness == 0 {
		w.Liveness = DefaultLiveness
	}
	if w.Reconnect == 0 {
		w.Reconnect = DefaultReconnect
	}
	if w.ReconnectMax == 0 {
		w.ReconnectMax = DefaultReconnectMax
	}
	if w.ReconnectMax < w.Reconnect {
		p := iw.keys["reconnect_max"]
		if p == (Pos{}) {
			p = iw.keys["reconnect"]
		}
		r.errorf(p, "", "reconnect_max %v is shorter than reconnect %v", w.ReconnectMax, w.Reconnect)
	}
	n.Worker = &w
}
