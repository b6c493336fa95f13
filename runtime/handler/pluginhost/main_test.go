package pluginhost_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/plugins"
)

// The test binary doubles as every misbehaving plugin the tests need: run
// with PLUGINHOST_TEST_PLUGIN set, it is that plugin instead of the tests.
const modeEnv = "PLUGINHOST_TEST_PLUGIN"

// pidFileEnv names a file every test plugin appends its pid to, so that a
// test can check that none outlives the host, even those it never saw.
const pidFileEnv = "PLUGINHOST_TEST_PIDFILE"

func notePid(path string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	fmt.Fprintln(f, os.Getpid())
	f.Close()
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(modeEnv); mode != "" {
		if f := os.Getenv(pidFileEnv); f != "" {
			notePid(f)
		}
		os.Exit(testPlugin(mode))
	}
	code := m.Run()
	if exampleDir != "" {
		os.RemoveAll(exampleDir)
	}
	os.Exit(code)
}

func upperASCII(p []byte) {
	for i, c := range p {
		if 'a' <= c && c <= 'z' {
			p[i] = c - ('a' - 'A')
		}
	}
}

func reverseBytes(p []byte) {
	for i, j := 0, len(p)-1; i < j; i, j = i+1, j-1 {
		p[i], p[j] = p[j], p[i]
	}
}

// testPlugin runs one plugin behaviour; the mode's argument (after '=')
// is a count of messages.
func testPlugin(mode string) int {
	name, arg, _ := bytes.Cut([]byte(mode), []byte("="))
	n, _ := strconv.Atoi(string(arg))
	ep := os.Getenv(plugins.EnvEndpoint)
	var handled atomic.Int64
	serve := func(h plugins.HandlerFunc, workers int) int {
		if err := plugins.ServeEndpoint(context.Background(), ep, h, plugins.Options{Workers: workers}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	upper := func(_ context.Context, f [][]byte) ([][]byte, error) {
		upperASCII(f[len(f)-1])
		return f, nil
	}
	switch string(name) {
	case "upper":
		return serve(upper, 0)
	case "upper1":
		return serve(upper, 1)
	case "reverse":
		return serve(func(_ context.Context, f [][]byte) ([][]byte, error) {
			reverseBytes(f[len(f)-1])
			return f, nil
		}, 0)
	case "drop-empty":
		return serve(func(_ context.Context, f [][]byte) ([][]byte, error) {
			if len(f[len(f)-1]) == 0 {
				return nil, nil
			}
			return f, nil
		}, 0)
	case "env":
		return serve(func(_ context.Context, f [][]byte) ([][]byte, error) {
			return [][]byte{[]byte(os.Getenv(plugins.EnvNode)), []byte(os.Getenv(plugins.EnvTopology)), []byte(os.Getenv("EXTRA"))}, nil
		}, 0)
	case "crash-after":
		// One worker: message n+1 ends the process before it is answered.
		return serve(func(ctx context.Context, f [][]byte) ([][]byte, error) {
			if handled.Add(1) > int64(n) {
				os.Exit(3)
			}
			return upper(ctx, f)
		}, 1)
	case "big":
		// Answers "big" with n bytes, everything else as it came.
		return serve(func(_ context.Context, f [][]byte) ([][]byte, error) {
			if string(f[len(f)-1]) == "big" {
				return [][]byte{bytes.Repeat([]byte{'b'}, n)}, nil
			}
			return f, nil
		}, 1)
	case "hang-after":
		return serve(func(ctx context.Context, f [][]byte) ([][]byte, error) {
			if handled.Add(1) > int64(n) {
				select {}
			}
			return upper(ctx, f)
		}, 1)
	case "slow":
		// Answers "slow" after a long wait, everything else at once.
		return serve(func(_ context.Context, f [][]byte) ([][]byte, error) {
			if string(f[len(f)-1]) == "slow" {
				time.Sleep(time.Duration(n) * time.Millisecond)
			}
			return f, nil
		}, 4)
	case "exit":
		fmt.Fprintln(os.Stderr, "test plugin giving up at once")
		return n
	case "no-ready", "wrong-protocol", "garbage", "ignore-stop":
		return rawPlugin(string(name))
	}
	fmt.Fprintln(os.Stderr, "unknown test plugin mode", mode)
	return 2
}

// rawPlugin speaks (or fails to speak) the protocol by hand.
func rawPlugin(mode string) int {
	zctx, _ := zmq4.NewContext()
	sock, _ := zctx.NewSocket(zmq4.DEALER)
	_ = sock.SetLinger(0)
	if err := sock.Connect(os.Getenv(plugins.EnvEndpoint)); err != nil {
		return 1
	}
	switch mode {
	case "no-ready":
		time.Sleep(time.Minute)
	case "wrong-protocol":
		_, _ = sock.SendMessage(plugins.Ready, "ztopo-plugin/2")
		time.Sleep(time.Minute)
	case "garbage":
		_, _ = sock.SendMessage("HELLO")
		time.Sleep(time.Minute)
	case "ignore-stop":
		_, _ = sock.SendMessage(plugins.Ready, plugins.Protocol)
		for {
			msg, err := sock.RecvMessageBytes(0)
			if err != nil {
				return 1
			}
			if string(msg[0]) == plugins.Req {
				_, _ = sock.SendMessage(plugins.Rep, msg[1], msg[2:])
			}
		}
	}
	return 0
}

var (
	selfOnce sync.Once
	selfPath string
)

// self is the absolute path of the test binary.
func self(t testing.TB) string {
	selfOnce.Do(func() {
		p, err := os.Executable()
		if err == nil {
			selfPath, _ = filepath.Abs(p)
		}
	})
	if selfPath == "" {
		t.Fatal("cannot find the test binary")
	}
	return selfPath
}

var (
	exampleOnce sync.Once
	exampleDir  string
	exampleErr  error
)

// buildExample builds a Go example plugin once per test run.
func buildExample(t testing.TB, name string) string {
	t.Helper()
	exampleOnce.Do(func() {
		exampleDir, exampleErr = os.MkdirTemp("", "ztopo-examples")
		if exampleErr != nil {
			return
		}
		for _, ex := range []string{"upper-go", "reverse-go"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(exampleDir, ex), "github.com/ztopo/ztopo/plugins/examples/"+ex)
			if out, err := cmd.CombinedOutput(); err != nil {
				exampleErr = fmt.Errorf("go build %s: %v\n%s", ex, err, out)
				return
			}
		}
	})
	if exampleErr != nil {
		t.Fatal(exampleErr)
	}
	return filepath.Join(exampleDir, name)
}
