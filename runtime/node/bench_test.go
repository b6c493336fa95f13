package node

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/spec"
)

var benchSeq atomic.Int64

// benchForward measures one forwarding stage over inproc: a source
// goroutine pushes b.N 16-byte messages, the stage forwards them, the
// benchmark goroutine receives them. stage starts the forwarder between in
// and out and returns a stop function.
func benchForward(b *testing.B, stage func(zctx *zmq4.Context, in, out string) func()) {
	zctx, err := zsock.NewContext()
	if err != nil {
		b.Fatal(err)
	}
	k := benchSeq.Add(1)
	in, out := fmt.Sprintf("inproc://bench-in-%d", k), fmt.Sprintf("inproc://bench-out-%d", k)
	sink, err := zsock.Open(zctx, &spec.Socket{Name: "sink", Type: spec.PULL, Bind: []string{out}})
	if err != nil {
		b.Fatal(err)
	}
	stop := stage(zctx, in, out)
	src, err := zsock.Open(zctx, &spec.Socket{Name: "src", Type: spec.PUSH, Connect: []string{in}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan struct{})
	go func() {
		body := [][]byte{make([]byte, 16)}
		for i := 0; i < b.N; i++ {
			// A blocking call is interrupted by the signals of Go's own
			// runtime (preemption): EINTR is not a failure.
			err := src.Send(body, 0)
			for zsock.IsInterrupted(err) {
				err = src.Send(body, 0)
			}
			if err != nil {
				panic(err)
			}
		}
		<-done
		src.Close()
	}()
	for i := 0; i < b.N; i++ {
		_, err := sink.Recv(0)
		for zsock.IsInterrupted(err) {
			_, err = sink.Recv(0)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(done)
	stop()
	sink.Close()
	zctx.Term()
}

func BenchmarkForwardNode(b *testing.B) {
	benchForward(b, func(zctx *zmq4.Context, in, out string) func() {
		ctx, cancel := context.WithCancel(context.Background())
		n := New(Config{Spec: &spec.Node{Name: "fwd", Sockets: []*spec.Socket{
			{Name: "in", Type: spec.PULL, Role: spec.RoleIn, Bind: []string{in}},
			{Name: "out", Type: spec.PUSH, Role: spec.RoleOut, Connect: []string{out}},
		}}, Context: zctx, Handler: handler.HandlerFunc(func(_ context.Context, m handler.Msg) ([][]byte, error) { return m.Frames, nil })})
		done := make(chan struct{})
		go func() { n.Run(ctx); close(done) }()
		return func() { cancel(); <-done }
	})
}

// BenchmarkForwardHandWritten is the same stage as a plain goroutine with
// blocking calls, for comparison.
func BenchmarkForwardHandWritten(b *testing.B) {
	benchForward(b, func(zctx *zmq4.Context, in, out string) func() {
		ready := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			pull, _ := zctx.NewSocket(zmq4.PULL)
			push, _ := zctx.NewSocket(zmq4.PUSH)
			pull.SetLinger(0)
			push.SetLinger(0)
			pull.Bind(in)
			push.Connect(out)
			close(ready)
			for {
				m, err := pull.RecvMessageBytes(0)
				if err != nil {
					break // the context ends
				}
				if string(m[0]) == "stop" {
					break
				}
				push.SendMessage(m)
			}
			pull.Close()
			push.Close()
		}()
		<-ready
		return func() {
			s, _ := zctx.NewSocket(zmq4.PUSH)
			s.SetLinger(-1)
			s.Connect(in)
			s.Send("stop", 0)
			s.Close()
			<-done
		}
	})
}
