package zsock

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pebbe/zmq4"
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
		frames("a"),
		{bytes.Repeat([]byte{'s'}, scratchSize)},
		{bytes.Repeat([]byte{'t'}, scratchSize+1)},
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
		if err := out.Send(frames(s), 0); err != nil {
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
