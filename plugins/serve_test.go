package plugins_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztopo/ztopo/plugins"
	"github.com/ztopo/ztopo/plugins/plugintest"
)

// upper upper-cases ASCII letters only: bytes.ToUpper would turn invalid
// UTF-8 into U+FFFD, and payloads are binary.
func upper(_ context.Context, frames [][]byte) ([][]byte, error) {
	p := frames[len(frames)-1]
	for i, c := range p {
		if 'a' <= c && c <= 'z' {
			p[i] = c - 'a' + 'A'
		}
	}
	return frames, nil
}

func newHost(t *testing.T, h plugins.Handler, opts plugins.Options) *plugintest.Host {
	t.Helper()
	host, err := plugintest.New()
	if err != nil {
		t.Fatal(err)
	}
	if opts.ErrorLog == nil {
		opts.ErrorLog = log.New(io.Discard, "", 0)
	}
	if err := host.RunInProcess(h, opts); err != nil {
		host.Close()
		t.Fatal(err)
	}
	return host
}

func TestServeAnswers(t *testing.T) {
	h := plugins.HandlerFunc(func(ctx context.Context, frames [][]byte) ([][]byte, error) {
		switch string(frames[len(frames)-1]) {
		case "drop":
			return nil, nil
		case "fail":
			return nil, errors.New("cannot do that")
		case "panic":
			panic("boom")
		}
		return upper(ctx, frames)
	})
	host := newHost(t, h, plugins.Options{})
	defer func() {
		if err := host.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	tests := []struct {
		name    string
		in      [][]byte
		want    string
		wantErr string
	}{
		{"one frame", [][]byte{[]byte("hello")}, `["HELLO"]`, ""},
		{"topic kept", [][]byte{[]byte("news"), []byte("abc")}, `["news" "ABC"]`, ""},
		{"empty payload", [][]byte{{}}, `[""]`, ""},
		{"binary", [][]byte{{0, 'a', 0xff}}, `["\x00A\xff"]`, ""},
		{"dropped", [][]byte{[]byte("drop")}, `[]`, ""},
		{"error", [][]byte{[]byte("fail")}, "", "plugin error: cannot do that"},
		{"panic", [][]byte{[]byte("panic")}, "", "plugin error: handler panic: boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := host.Call(tc.in...)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%q", out); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// Many requests in flight at once, answered concurrently: every id is
// answered exactly once with its own payload.
func TestServeManyInFlight(t *testing.T) {
	for _, workers := range []int{1, 8} {
		t.Run("workers="+strconv.Itoa(workers), func(t *testing.T) {
			host := newHost(t, plugins.HandlerFunc(upper), plugins.Options{Workers: workers})
			defer host.Close()
			const n = 1000
			want := map[string]string{}
			var order []string
			for i := range n {
				p := fmt.Sprintf("msg-%d", i)
				id, err := host.Send([]byte(p))
				if err != nil {
					t.Fatal(err)
				}
				want[id] = "MSG-" + strconv.Itoa(i)
				order = append(order, id)
			}
			var got []string
			for range n {
				r, err := host.Recv()
				if err != nil {
					t.Fatal(err)
				}
				w, ok := want[r.ID]
				if !ok {
					t.Fatalf("answer for unknown or repeated id %q", r.ID)
				}
				delete(want, r.ID)
				if len(r.Frames) != 1 || string(r.Frames[0]) != w {
					t.Fatalf("id %s: got %q, want %q", r.ID, r.Frames, w)
				}
				got = append(got, r.ID)
			}
			if workers == 1 && fmt.Sprint(got) != fmt.Sprint(order) {
				t.Fatalf("one worker answered out of order")
			}
		})
	}
}

// STOP lets the requests in hand finish: their answers arrive before Serve
// returns nil.
func TestServeStopFinishesInFlight(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Int32
	h := plugins.HandlerFunc(func(ctx context.Context, frames [][]byte) ([][]byte, error) {
		started.Add(1)
		<-release
		return frames, nil
	})
	host := newHost(t, h, plugins.Options{Workers: 4})
	for i := range 3 {
		if _, err := host.Send([]byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for started.Load() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("handlers started: %d, want 3", started.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	// Close sends STOP and waits for Serve's return value.
	if err := host.Close(); err != nil {
		t.Fatalf("Serve returned %v, want nil", err)
	}
}

// A request that comes after STOP, while the plugin still finishes what it
// holds, is answered with ERR rather than left without a word.
func TestServeAnswersErrAfterStop(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	h := plugins.HandlerFunc(func(ctx context.Context, frames [][]byte) ([][]byte, error) {
		started <- struct{}{}
		<-release
		return upper(ctx, frames)
	})
	host := newHost(t, h, plugins.Options{Workers: 2})
	first, err := host.Send([]byte("first"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the handler did not start")
	}
	if err := host.Stop(); err != nil {
		t.Fatal(err)
	}
	// Not an assertion on time: a pause so that the plugin most often reads
	// STOP on its own and the late request after it, not in the same batch.
	time.Sleep(50 * time.Millisecond)
	late, err := host.Send([]byte("late"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := host.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != late || !r.IsErr || r.Err != "plugin is stopping" {
		t.Fatalf("got %+v, want ERR %s \"plugin is stopping\"", r, late)
	}
	close(release)
	if r, err = host.Recv(); err != nil {
		t.Fatal(err)
	}
	if r.ID != first || r.IsErr || fmt.Sprintf("%q", r.Frames) != `["FIRST"]` {
		t.Fatalf("got %+v, want REP %s FIRST", r, first)
	}
	if err := host.Close(); err != nil {
		t.Fatalf("Serve returned %v, want nil", err)
	}
}

func TestServeStopsOnContext(t *testing.T) {
	host, err := plugintest.New()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- plugins.ServeEndpoint(ctx, host.Endpoint, plugins.HandlerFunc(upper), plugins.Options{})
	}()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("got %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ServeEndpoint did not return after cancel")
	}
}

func TestServeWithoutEndpoint(t *testing.T) {
	t.Setenv(plugins.EnvEndpoint, "")
	err := plugins.Serve(context.Background(), plugins.HandlerFunc(upper))
	if !errors.Is(err, plugins.ErrNoEndpoint) {
		t.Fatalf("got %v, want ErrNoEndpoint", err)
	}
}

func BenchmarkServeInProcess(b *testing.B) {
	host, err := plugintest.New()
	if err != nil {
		b.Fatal(err)
	}
	if err := host.RunInProcess(plugins.HandlerFunc(upper), plugins.Options{}); err != nil {
		b.Fatal(err)
	}
	defer host.Close()
	payload := []byte("0123456789abcdef")
	const window = 512
	b.ResetTimer()
	sent, recvd := 0, 0
	for recvd < b.N {
		for sent < b.N && sent-recvd < window {
			if _, err := host.Send(payload); err != nil {
				b.Fatal(err)
			}
			sent++
		}
		if _, err := host.Recv(); err != nil {
			b.Fatal(err)
		}
		recvd++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}
