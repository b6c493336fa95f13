package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
)

// BenchmarkPipeline runs generate -> 4x forward -> count over tcp with
// 16-byte messages, b.N messages, as a ztopo topology and as the same
// pipeline hand-written with pebbe/zmq4, in the same run. Both are timed
// from the start of their pipeline to the sink's last message; the figures
// are messages per second, and their ratio.
//
//	go test -run '^$' -bench Pipeline -benchtime 1000000x ./runtime/engine
func BenchmarkPipeline(b *testing.B) {
	n := b.N
	if n < 1000 {
		n = 1000 // below that, start-up is all there is to measure
	}
	b.ResetTimer()
	zt := benchZtopo(b, n)
	hw := benchHandWritten(b, n)
	b.StopTimer()
	b.ReportMetric(float64(n)/zt.Seconds(), "ztopo-msg/s")
	b.ReportMetric(float64(n)/hw.Seconds(), "zmq4-msg/s")
	b.ReportMetric(hw.Seconds()/zt.Seconds(), "ratio")
}

// doneCount wraps the count builtin to tell when it completed.
type doneCount struct {
	handler.Handler
	handler.Completer
	done chan time.Time
}

func (d doneCount) Handle(ctx context.Context, m handler.Msg) ([][]byte, error) {
	out, err := d.Handler.Handle(ctx, m)
	if err == handler.ErrDone {
		d.done <- time.Now()
	}
	return out, err
}

func benchZtopo(b *testing.B, n int) time.Duration {
	reg := handler.Builtins.Clone()
	countF, _ := reg.Lookup("count")
	done := make(chan time.Time, 1)
	reg.Register("benchsink", func(cfg map[string]any, env handler.Env) (any, error) {
		h, err := countF(cfg, env)
		if err != nil {
			return nil, err
		}
		return doneCount{h.(handler.Handler), h.(handler.Completer), done}, nil
	})
	vent, sink := zsocktest.TCP(b), zsocktest.TCP(b)
	topo := pipeline(n, 4, vent, sink)
	for _, nd := range topo.Nodes {
		if nd.Name == "sink" {
			nd.Handler.Name = "benchsink"
		}
	}
	e, err := New(topo, Options{Registry: reg, Logger: hclog.NewNullLogger()})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	ran := make(chan error, 1)
	go func() { ran <- e.Run(context.Background()) }()
	var end time.Time
	select {
	case end = <-done:
	case err := <-ran:
		b.Fatalf("Run ended before the sink completed: %v", err)
	}
	if err := <-ran; err != nil {
		b.Fatal(err)
	}
	return end.Sub(start)
}

// benchHandWritten is the pipeline as one would write it by hand: a
// goroutine per node, blocking sends and receives, one shared context.
func benchHandWritten(b *testing.B, n int) time.Duration {
	zctx, err := zmq4.NewContext()
	if err != nil {
		b.Fatal(err)
	}
	vent, sinkEP := zsocktest.TCP(b), zsocktest.TCP(b)
	newSock := func(t zmq4.Type) *zmq4.Socket {
		s, err := zctx.NewSocket(t)
		if err != nil {
			panic(err)
		}
		s.SetLinger(0)
		return s
	}
	start := time.Now()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	sinkDone := make(chan time.Time, 1)

	// Binds first, so that no connect waits for a reconnect interval.
	sink := newSock(zmq4.PULL)
	if err := sink.Bind(sinkEP); err != nil {
		b.Fatal(err)
	}
	ventS := newSock(zmq4.PUSH)
	if err := ventS.Bind(vent); err != nil {
		b.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer sink.Close()
		for i := 0; i < n; i++ {
			if _, err := sink.RecvMessageBytes(0); err != nil {
				panic(err)
			}
		}
		sinkDone <- time.Now()
	}()
	for w := 0; w < 4; w++ {
		in, out := newSock(zmq4.PULL), newSock(zmq4.PUSH)
		in.SetRcvtimeo(50 * time.Millisecond) // so that it can notice stop
		in.Connect(vent)
		out.Connect(sinkEP)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer in.Close()
			defer out.Close()
			for {
				m, err := in.RecvMessageBytes(0)
				if err != nil {
					select {
					case <-stop:
						return
					default:
						continue
					}
				}
				if _, err := out.SendMessage(m); err != nil {
					panic(err)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		body := make([]byte, 16)
		for i := 0; i < n; i++ {
			if _, err := ventS.SendBytes(body, 0); err != nil {
				panic(err)
			}
		}
		// Closing now (linger 0) would drop what is still queued.
		<-stop
		ventS.Close()
	}()
	end := <-sinkDone
	close(stop)
	wg.Wait()
	if err := zctx.Term(); err != nil {
		b.Fatal(err)
	}
	return end.Sub(start)
}
