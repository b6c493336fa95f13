package spec

import (
	"sort"
	"strings"
	"time"
)

// Delivery modes of a sending socket.
const (
	AtMostOnce  = "at-most-once"
	AtLeastOnce = "at-least-once"
)

// DefaultAckTimeout is how long an at-least-once sender waits for an
// acknowledgement before it sends a message again.
const DefaultAckTimeout = 5 * time.Second

// idelivery is what the first pass read of a socket's delivery keys.
type idelivery struct {
	pos     Pos // of delivery
	timeout time.Duration
	toPos   Pos // of ack_timeout
}

// delivery reads a socket's delivery and ack_timeout.
func (r *resolver) delivery(sc scope, is *isock, full string) {
	fs := is.fs
	var reliable bool
	if fs.Delivery != nil {
		if d, ok := r.str(sc, fs.Delivery, "delivery"); ok {
			switch d {
			case AtLeastOnce:
				reliable = true
				if is.s.Type != "" && is.s.Type != PUSH && is.s.Type != DEALER {
					r.errorf(fs.Delivery.Pos, "", "delivery: at-least-once is for PUSH and DEALER sockets feeding workers, not %s socket %q", is.s.Type, full)
					reliable = false
				}
			case AtMostOnce:
			default:
				r.errorf(fs.Delivery.Pos, didYouMean(d, []string{AtLeastOnce, AtMostOnce}), "unknown delivery %q: at-least-once or at-most-once", d)
			}
		}
	}
	if fs.AckTimeout != nil {
		d, ok := r.duration(sc, fs.AckTimeout, "ack_timeout")
		switch {
		case !ok:
		case fs.Delivery == nil || !reliable:
			if fs.Delivery == nil {
				r.errorf(fs.AckTimeout.Pos, "add delivery: at-least-once", "ack_timeout of socket %q applies to at-least-once delivery only", full)
			}
		case d <= 0:
			r.errorf(fs.AckTimeout.Pos, "", "ack_timeout must be positive, got %v", d)
		default:
			if is.dlv == nil {
				is.dlv = &idelivery{}
			}
			is.dlv.timeout, is.dlv.toPos = d, fs.AckTimeout.Pos
		}
	}
	if reliable {
		if is.dlv == nil {
			is.dlv = &idelivery{}
		}
		is.dlv.pos = fs.Delivery.Pos
		if is.dlv.timeout == 0 {
			is.dlv.timeout = DefaultAckTimeout
		}
		is.s.Reliable = &Reliable{AckTimeout: is.dlv.timeout}
	} else {
		is.dlv = nil
	}
}

// resolveDelivery gives each at-least-once sender its acknowledgement
// endpoint and each node socket linked to it the way back there.
func (r *resolver) resolveDelivery(links []link) {
	type end struct {
		in *inst
		is *isock
	}
	peers := map[*isock][]end{}
	for _, l := range links {
		if l.ts == nil || l.fs == nil {
			continue
		}
		if l.fs.dlv != nil {
			peers[l.fs] = append(peers[l.fs], end{l.to, l.ts})
		}
		if l.ts.dlv != nil {
			peers[l.ts] = append(peers[l.ts], end{l.from, l.fs})
		}
	}
	for _, in := range r.insts {
		for _, is := range in.socks {
			if is.dlv == nil || is.s.Reliable == nil {
				continue
			}
			ps := peers[is]
			full := qual(in, is.s.Name)
			if len(ps) == 0 {
				r.errorf(is.dlv.pos, "connect it to a node of this topology, or bind and let nodes connect to it", "socket %q delivers at least once, but no node of the topology receives from it to acknowledge", full)
				continue
			}
			var insts []*inst
			ok := true
			for _, p := range ps {
				if p.in.n.Handler.Kind == HandlerCommand {
					r.errorf(is.dlv.pos, "", "socket %q delivers at least once to command node %q, which cannot acknowledge: only nodes ztopo runs can", full, p.in.n.Base)
					ok = false
				}
				insts = append(insts, p.in)
			}
			if !ok {
				continue
			}
			sort.Slice(insts, func(i, j int) bool { return insts[i].n.Name < insts[j].n.Name })
			ep := r.autoEndpoint(in, is.s.Name+"-ack", false, insts, is.dlv.pos)
			if strings.HasPrefix(ep, "tcp://") {
				r.errorf(is.dlv.pos, "", "socket %q delivers at least once to another host: at-least-once edges stay within one host", full)
				continue
			}
			is.s.Reliable.AckBind = ep
			for _, p := range ps {
				p.is.s.Acks = true
			}
		}
	}
}
