package builtin

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/tap"
	"github.com/ztopo/ztopo/spec"
)

// Replay sends the messages of a capture file (ztopo tap --record) from
// its out sockets, at the recorded pace scaled by Speed or as fast as the
// peers take them (Max), once or in a loop, then completes.
type Replay struct {
	File   string
	Speed  float64 // > 0; 2: twice as fast as recorded
	Max    bool    // no pacing
	Loop   bool
	Dir    string // tap.In, tap.Out, or "" for both
	Logger hclog.Logger

	msgs  [][][]byte      // the bodies to send, in order
	at    []time.Duration // each one's offset from the first
	sent  int
	loops int
}

var (
	_ handler.Runner    = (*Replay)(nil)
	_ handler.Completer = (*Replay)(nil)
	_ handler.Producer  = (*Replay)(nil)
)

// Completes: a replay that loops runs until stopped.
func (p *Replay) Completes() bool { return !p.Loop }

// Produces says that replay originates its messages (handler.Producer).
func (p *Replay) Produces() bool { return true }

// Sent is how many messages were sent to each out socket.
func (p *Replay) Sent() int { return p.sent }

// Len is how many messages of the file one pass sends.
func (p *Replay) Len() int { return len(p.msgs) }

func (p *Replay) Run(ctx context.Context, s handler.Sockets) error {
	var outs []string
	for _, name := range s.Names() {
		if s.Spec(name).EffectiveRole() == spec.RoleOut {
			outs = append(outs, name)
		}
	}
	if len(outs) == 0 {
		return fmt.Errorf("replay: no out socket to send on: %w", handler.ErrFatal)
	}
	start := time.Now()
	for {
		pass := time.Now()
		for i, m := range p.msgs {
			if !p.Max {
				due := pass.Add(time.Duration(float64(p.at[i]) / p.Speed))
				if err := sleep(ctx, time.Until(due)); err != nil {
					return err
				}
			} else if err := stopped(ctx, i); err != nil {
				return err
			}
			for _, name := range outs {
				if err := s.Send(name, m); err != nil {
					return err
				}
			}
			p.sent++
		}
		p.loops++
		if !p.Loop || len(p.msgs) == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	p.Logger.Info("replayed messages", "count", p.sent, "file", p.File, "elapsed", time.Since(start))
	return nil
}

// ParseSpeed reads replay's speed: "max", or a number greater than 0.
func ParseSpeed(s string) (speed float64, max bool, err error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0, true, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0) || f > 1e9 {
		return 0, false, fmt.Errorf(`speed must be "max" or a number greater than 0 (1 is the recorded pace), got %q`, s)
	}
	return f, false, nil
}

func init() {
	register(spec.HandlerSchema{
		Name: "replay",
		Doc:  "sends the messages of a capture file (ztopo tap --record) from its out sockets at the recorded pace or max, optionally looping, then completes",
		Keys: []spec.ConfigKey{
			{Name: "direction", Kind: spec.KindString, Doc: "which messages of the capture: in (the tapped socket received them), out (it sent them) or any (the default)"},
			{Name: "file", Kind: spec.KindString, Doc: "the capture file (required), relative to the topology file"},
			{Name: "loop", Kind: spec.KindBool, Doc: "start again from the first message after the last, until stopped"},
			{Name: "speed", Kind: spec.KindString, Doc: "1 (the default) is the recorded pace, 2 twice as fast; max: as fast as the peers take them"},
		},
		Check: checkReplay,
	}, newReplay)
}

// checkReplay checks, at load time, what the keys' kinds cannot: the
// capture file is given (its path made relative to the topology file's
// directory, and read when the loader checks files), speed is max or a
// number above 0, direction one of three words.
func checkReplay(c *spec.ConfigCheck) {
	const needFile = "replay needs file: the capture to send (written by ztopo tap --record)"
	v, out := c.Written, c.Values
	if f := v.Get("file"); f == nil {
		c.Errorf(v.Pos, "", needFile)
	} else if p, ok := out["file"].(string); ok {
		if p == "" {
			c.Errorf(f.Pos, "", needFile)
		} else {
			out["file"] = c.File(p, f.Pos, "capture file")
		}
	}
	if sp := v.Get("speed"); sp != nil {
		if s, ok := out["speed"].(string); ok {
			if _, _, err := ParseSpeed(s); err != nil {
				c.Errorf(sp.Pos, "", "speed must be max or a number greater than 0 (1 is the recorded pace), got %q", strings.TrimSpace(s))
			}
		}
	}
	if d := v.Get("direction"); d != nil {
		words := []string{"in", "out", "any"}
		if s, ok := out["direction"].(string); ok && !slices.Contains(words, s) {
			c.Errorf(d.Pos, c.DidYouMean(s, words), "direction must be in, out or any, got %q", s)
		}
	}
}

func newReplay(cfg map[string]any, env handler.Env) (any, error) {
	c := newConfig("replay", cfg)
	p := &Replay{Logger: logger(env), Speed: 1}
	p.File = c.string("file", "")
	if c.has("speed") {
		v, _ := c.get("speed")
		var sp string
		switch x := v.(type) {
		case string:
			sp = x
		case float64:
			sp = strconv.FormatFloat(x, 'g', -1, 64)
		case int:
			sp = strconv.Itoa(x)
		default:
			c.bad("speed", `"max" or a number`, v)
		}
		if sp != "" {
			speed, max, err := ParseSpeed(sp)
			if err != nil {
				c.errs = append(c.errs, err.Error())
			}
			p.Speed, p.Max = speed, max
		}
	}
	p.Loop = c.bool("loop")
	switch d := c.string("direction", "any"); d {
	case "any":
	case tap.In, tap.Out:
		p.Dir = d
	default:
		c.errs = append(c.errs, fmt.Sprintf(`direction must be in, out or any, got %q`, d))
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	if p.File == "" {
		return nil, fmt.Errorf("replay: config file (the capture to send) is missing")
	}
	f, err := os.Open(p.File)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	recs, err := tap.ReadCapture(f)
	if err != nil {
		return nil, fmt.Errorf("replay: %s: %w", p.File, err)
	}
	var first time.Time
	for _, r := range recs {
		if p.Dir != "" && r.Dir != p.Dir {
			continue
		}
		if len(p.msgs) == 0 {
			first = r.Time
		}
		off := r.Time.Sub(first)
		if n := len(p.at); n > 0 && off < p.at[n-1] {
			off = p.at[n-1] // out of order (instances tapped together): no wait
		}
		if off < 0 {
			off = 0
		}
		p.msgs = append(p.msgs, r.Frames)
		p.at = append(p.at, off)
	}
	if len(p.msgs) == 0 {
		p.Logger.Warn("the capture file has no message to replay", "file", p.File, "direction", c.string("direction", "any"))
	}
	return p, nil
}
