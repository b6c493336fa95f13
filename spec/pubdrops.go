package spec

import (
	"fmt"
	"time"
)

// defaultSndHWM is libzmq's default send high-water mark (ZMQ_SNDHWM).
const defaultSndHWM = 1000

// checkPubOverrun warns about a source (HandlerSchema.Source, generate)
// that sends more messages on a PUB socket than its send high-water mark,
// as fast as it can: a subscriber
// that is slower than the publisher loses what is beyond the mark, and
// libzmq drops those silently, with no error and no counter (issue 12
// item 9: 1000 of 5000 delivered, SEND ERRORS 0).
func (r *resolver) checkPubOverrun(in *inst, is *isock) {
	n, s := in.n, is.s
	b, _ := n.Handler.Builtin()
	if s.Type != PUB && s.Type != XPUB || !b.Source {
		return
	}
	count, ok := n.Config[b.ExpectOut].(int)
	if !ok {
		return // forever: a stream, whose subscribers are expected to keep up or lose
	}
	if iv, ok := n.Config[b.Pace].(time.Duration); ok && iv > 0 {
		return
	}
	hwm := defaultSndHWM
	for _, o := range s.Options {
		if o.Name == "sndhwm" {
			if v, ok := o.Value.(int); ok {
				hwm = v
			}
		}
		if o.Name == "xpub_nodrop" {
			if v, ok := o.Value.(int); ok && v != 0 {
				return // blocks instead of dropping
			}
		}
	}
	if hwm == 0 || count <= hwm {
		return // 0: no limit
	}
	r.warnf(is.fs.Pos, fmt.Sprintf("give %s an interval, raise sndhwm above count, or use PUSH/PULL where every message must arrive", b.Name),
		"%s sends %d messages on %s socket %q without interval, more than its send high-water mark (sndhwm %d): a subscriber slower than the publisher loses the rest, and libzmq drops them without a trace (no error, no counter)",
		b.Name, count, s.Type, qual(in, s.Name), hwm)
}
