package asynchost

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ztopo/ztopo/runtime/handler"
)

var errClosed = errors.New("test host closed")

func msg(s string) handler.Msg { return handler.Msg{Frames: [][]byte{[]byte(s)}} }

func TestBooksSubmitAnswer(t *testing.T) {
	var handed int
	b := New("test", 1, errClosed, nil, func(uint64, [][]byte, chan handler.Result) bool { handed++; return true })
	defer b.CloseResults()
	if err := b.Submit(context.Background(), msg("a"), 7); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if got := b.Pending(); got != 1 {
		t.Fatalf("Pending after Submit: got %d, want 1", got)
	}
	// The only slot is taken: a second Submit waits until its ctx is done.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := b.Submit(ctx, msg("b"), 8); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit with no slot: got %v, want context.DeadlineExceeded", err)
	}
	if got := b.Pending(); got != 1 || handed != 1 {
		t.Fatalf("after a refused Submit: Pending %d, handed %d, want 1, 1", got, handed)
	}
	b.Answer(7, nil, handler.Result{Frames: [][]byte{[]byte("A")}})
	select {
	case r := <-b.Results():
		if r.Tag != 7 || string(r.Frames[0]) != "A" {
			t.Fatalf("Result: got %+v, want tag 7, frame A", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no Result")
	}
	if got := b.Pending(); got != 0 {
		t.Fatalf("Pending after the Result: got %d, want 0", got)
	}
}

func TestBooksRejectAndClosed(t *testing.T) {
	errBad := errors.New("bad")
	reject := func(m handler.Msg) error {
		if string(m.Frames[0]) == "bad" {
			return errBad
		}
		return nil
	}
	b := New("test", 1, errClosed, reject, func(uint64, [][]byte, chan handler.Result) bool { return false })
	defer b.CloseResults()
	if _, err := b.Handle(context.Background(), msg("bad")); !errors.Is(err, errBad) {
		t.Fatalf("Handle of a rejected message: got %v, want %v", err, errBad)
	}
	// A host that no longer takes messages gives the slot and count back.
	if err := b.Submit(context.Background(), msg("y"), 1); !errors.Is(err, errClosed) {
		t.Fatalf("Submit to a closing host: got %v, want %v", err, errClosed)
	}
	if got := b.Pending(); got != 0 {
		t.Fatalf("Pending: got %d, want 0", got)
	}
	if err := b.Submit(context.Background(), handler.Msg{}, 2); err == nil || err.Error() != "test: empty message" {
		t.Fatalf("empty message: got %v", err)
	}
	b.Fail(errBad)
	b.Fail(errClosed)
	if err := b.Submit(context.Background(), msg("z"), 3); !errors.Is(err, errBad) {
		t.Fatalf("Submit after Fail: got %v, want the first error %v", err, errBad)
	}
	b.Finished()
	<-b.Done()
}

func TestWatchDiffers(t *testing.T) {
	var w Watch
	if w.Differs("", false) {
		t.Fatal("an idle watch differs from no watch")
	}
	if !w.Differs("/x", true) {
		t.Fatal("an idle watch does not differ from a watch of /x")
	}
	w.Stop() // nothing to stop
}
