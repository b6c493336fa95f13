package zsock

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/zbatch"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

// TestRecvFrames: frames of every size class (empty, small, the scratch
// size, larger) and multipart messages arrive intact, in order, counted.
func TestRecvFrames(t *testing.T) {
	ctx := newCtx(t)
	ep := "inproc://recv-frames"
	in := open(t, ctx, &spec.Socket{Name: "in", Type: spec.PULL, Bind: []string{ep}})
	out := open(t, ctx, &spec.Socket{Name: "out", Type: spec.PUSH, Connect: []string{ep}})

	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<14) // 256 KiB
	msgs := [][][]byte{
		{{}},
		zsocktest.Frames("a"),
		{bytes.Repeat([]byte{'s'}, zbatch.FrameScratch)},
		{bytes.Repeat([]byte{'t'}, zbatch.FrameScratch+1)},
		{big},
		{[]byte("head"), {}, big, []byte("tail")},
	}
	var wantBytes uint64
	for _, m := range msgs {
		if err := out.Send(m, 0); err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			wantBytes += uint64(len(f))
		}
	}
	var reuse [][]byte
	for i, want := range msgs {
		got, err := in.RecvInto(reuse, 0)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if len(got) != len(want) {
			t.Fatalf("message %d: got %d frames, want %d", i, len(got), len(want))
		}
		for j := range want {
			if !bytes.Equal(got[j], want[j]) {
				t.Fatalf("message %d frame %d: got %d bytes %.20q, want %d bytes %.20q", i, j, len(got[j]), got[j], len(want[j]), want[j])
			}
		}
		reuse = got
	}
	if st := in.Stats.Snapshot(); st.MsgsIn != uint64(len(msgs)) || st.BytesIn != wantBytes {
		t.Errorf("stats: got %d msgs %d bytes, want %d msgs %d bytes", st.MsgsIn, st.BytesIn, len(msgs), wantBytes)
	}
	if _, err := in.Recv(zmq4.DONTWAIT); !IsAgain(err) {
		t.Errorf("empty queue: got %v, want EAGAIN", err)
	}
}

// TestRecvFramesAreFresh: a received frame is the caller's; the next
// receive does not overwrite it.
func TestRecvFramesAreFresh(t *testing.T) {
	ctx := newCtx(t)
	ep := "inproc://recv-fresh"
	in := open(t, ctx, &spec.Socket{Name: "in", Type: spec.PULL, Bind: []string{ep}})
	out := open(t, ctx, &spec.Socket{Name: "out", Type: spec.PUSH, Connect: []string{ep}})
	for _, s := range []string{"first", "second"} {
		if err := out.Send(zsocktest.Frames(s), 0); err != nil {
			t.Fatal(err)
		}
	}
	a, err := in.Recv(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Recv(0); err != nil {
		t.Fatal(err)
	}
	if got := string(a[0]); got != "first" {
		t.Errorf("first frame after a second receive: got %q, want %q", got, "first")
	}
}

func TestRecvOnClosedContextIsTerm(t *testing.T) {
	ctx, err := NewContext()
	if err != nil {
		t.Fatal(err)
	}
	in, err := Open(ctx, &spec.Socket{Name: "in", Type: spec.PULL, Bind: []string{"inproc://recv-term"}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ctx.Term() }()
	_, err = in.Recv(0)
	if !IsTerm(err) {
		t.Errorf("got %v, want ETERM", err)
	}
	if !strings.Contains(err.Error(), "terminated") {
		t.Errorf("error text: got %q, want it to say terminated", err.Error())
	}
	in.Close()
	if err := <-done; err != nil {
		t.Errorf("term: %v", err)
	}
}

// TestDiscard: whole messages, multipart ones included, are taken up to the
// limit and counted with their bytes; what is over the limit stays queued.
func TestDiscard(t *testing.T) {
	ctx := newCtx(t)
	ep := "inproc://discard"
	in := open(t, ctx, &spec.Socket{Name: "in", Type: spec.PULL, Bind: []string{ep}})
	out := open(t, ctx, &spec.Socket{Name: "out", Type: spec.PUSH, Connect: []string{ep}})
	msgs := [][][]byte{zsocktest.Frames("a"), {[]byte("head"), {}, []byte("tail")}, zsocktest.Frames("bc"), zsocktest.Frames("last")}
	for _, m := range msgs {
		if err := out.Send(m, 0); err != nil {
			t.Fatal(err)
		}
	}
	n, err := in.Discard(3)
	if n != 3 || err != nil {
		t.Fatalf("Discard(3): got %d, %v, want 3, nil", n, err)
	}
	if st := in.Stats.Snapshot(); st.MsgsIn != 3 || st.BytesIn != 1+8+2 {
		t.Errorf("stats: got %d msgs %d bytes, want 3 msgs 11 bytes", st.MsgsIn, st.BytesIn)
	}
	got, err := in.Recv(zmq4.DONTWAIT)
	if err != nil || len(got) != 1 || string(got[0]) != "last" {
		t.Fatalf("after Discard(3): got %q, %v, want [last]", got, err)
	}
	if n, err := in.Discard(10); n != 0 || !IsAgain(err) {
		t.Errorf("Discard on an empty queue: got %d, %v, want 0, EAGAIN", n, err)
	}
}

// TestSendRepeat: n copies of a multipart message arrive whole, counted.
func TestSendRepeat(t *testing.T) {
	ctx := newCtx(t)
	ep := "inproc://send-repeat"
	in := open(t, ctx, &spec.Socket{Name: "in", Type: spec.PULL, Bind: []string{ep}})
	out := open(t, ctx, &spec.Socket{Name: "out", Type: spec.PUSH, Connect: []string{ep}})
	msg := [][]byte{[]byte("topic"), {}, []byte("body")}
	if n, err := out.SendRepeat(msg, 5); n != 5 || err != nil {
		t.Fatalf("SendRepeat: got %d, %v, want 5, nil", n, err)
	}
	if st := out.Stats.Snapshot(); st.MsgsOut != 5 || st.BytesOut != 5*9 {
		t.Errorf("stats: got %d msgs %d bytes, want 5 msgs 45 bytes", st.MsgsOut, st.BytesOut)
	}
	for i := 0; i < 5; i++ {
		got, err := in.Recv(zmq4.DONTWAIT)
		if err != nil || len(got) != 3 || string(got[0]) != "topic" || len(got[1]) != 0 || string(got[2]) != "body" {
			t.Fatalf("message %d: got %q, %v", i, got, err)
		}
	}
	if _, err := in.Recv(zmq4.DONTWAIT); !IsAgain(err) {
		t.Errorf("after 5: got %v, want EAGAIN", err)
	}
}

// TestSendRepeatFull: against a full peer SendRepeat stops with EAGAIN and
// says how many went out.
func TestSendRepeatFull(t *testing.T) {
	ctx := newCtx(t)
	ep := "inproc://send-repeat-full"
	open(t, ctx, &spec.Socket{Name: "in", Type: spec.PULL, Bind: []string{ep}, Options: []spec.Option{{Name: "rcvhwm", Value: 10}}})
	out := open(t, ctx, &spec.Socket{Name: "out", Type: spec.PUSH, Connect: []string{ep}, Options: []spec.Option{{Name: "sndhwm", Value: 10}}})
	n, err := out.SendRepeat(zsocktest.Frames("x"), 1000)
	if !IsAgain(err) || n <= 0 || n >= 1000 {
		t.Fatalf("got %d, %v, want between 1 and 999, EAGAIN", n, err)
	}
	if st := out.Stats.Snapshot(); st.MsgsOut != uint64(n) || st.SendErrors != 0 {
		t.Errorf("stats: got %d out, %d errors, want %d, 0", st.MsgsOut, st.SendErrors, n)
	}
}
