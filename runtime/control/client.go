package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pebbe/zmq4"
)

// Call sends verb to the topology serving endpoint and decodes the reply
// into out (a pointer, or nil to ignore the reply's fields). It returns the
// reply's error when ok is false (out is decoded all the same),
// an error wrapping ErrNotRunning — "no topology running at ENDPOINT" —
// when nothing serves the endpoint, and a context error when the answer
// does not come in time. A ctx without a deadline gets DefaultTimeout.
//
// Call has its own ZeroMQ context, so it can be used from anywhere.
func Call(ctx context.Context, endpoint, verb string, out any) error {
	return CallArgs(ctx, endpoint, verb, nil, out)
}

// CallArgs is Call with arguments for the verb (JSON-encoded; nil for none).
func CallArgs(ctx context.Context, endpoint, verb string, args, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	if err := trusted(endpoint); err != nil {
		return err
	}
	if err := probe(ctx, endpoint); err != nil {
		return err
	}
	r := request{Verb: verb}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return err
		}
		r.Args = b
	}
	req, err := json.Marshal(r)
	if err != nil {
		return err
	}
	raw, err := roundTrip(ctx, endpoint, req)
	if err != nil {
		return err
	}
	var head struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return fmt.Errorf("bad reply from %s: %v", endpoint, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("bad reply from %s: %v", endpoint, err)
		}
	}
	if !head.OK {
		if head.Error == "" {
			head.Error = verb + " failed"
		}
		return errors.New(head.Error)
	}
	return nil
}

// probe tells at once, for an ipc endpoint, that nothing serves it: the
// file is missing, or connecting is refused (a stale file). ZeroMQ itself
// would just keep trying to connect until the timeout.
func probe(ctx context.Context, endpoint string) error {
	path := ipcPath(endpoint)
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w at %s", ErrNotRunning, endpoint)
		}
		return fmt.Errorf("control socket: %w", err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("%w at %s", ErrNotRunning, endpoint)
		}
		return fmt.Errorf("control socket: %w", err)
	}
	// Closing before the ZMTP greeting costs the server nothing: libzmq
	// drops a connection that ends during the handshake.
	conn.Close()
	return nil
}

// roundTrip sends one request on a REQ socket and waits for the reply.
func roundTrip(ctx context.Context, endpoint string, req []byte) ([]byte, error) {
	zctx, err := zmq4.NewContext()
	if err != nil {
		return nil, err
	}
	defer zctx.Term()
	sock, err := zctx.NewSocket(zmq4.REQ)
	if err != nil {
		return nil, err
	}
	defer sock.Close()
	// Linger 0: an unanswered request must not hold up Term.
	if err := sock.SetLinger(0); err != nil {
		return nil, err
	}
	if err := sock.SetMaxmsgsize(MaxReply); err != nil {
		return nil, err
	}
	if err := sock.Connect(endpoint); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", endpoint, err)
	}
	// A REQ with a connect pending queues the request rather than block.
	if _, err := sock.SendBytes(req, zmq4.DONTWAIT); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", endpoint, err)
	}
	poller := zmq4.NewPoller()
	poller.Add(sock, zmq4.POLLIN)
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("no answer from the topology at %s: %w", endpoint, err)
		}
		wait := pollInterval
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl); left < wait {
				wait = max(left, time.Millisecond)
			}
		}
		polled, err := poller.Poll(wait)
		if err != nil {
			return nil, fmt.Errorf("control socket %s: %w", endpoint, err)
		}
		if len(polled) > 0 {
			rep, err := sock.RecvBytes(zmq4.DONTWAIT)
			if err != nil {
				return nil, fmt.Errorf("control socket %s: %w", endpoint, err)
			}
			return rep, nil
		}
	}
}

// trusted checks the runtime directory of an ipc endpoint before anything
// is sent to it: a request to a socket in a directory another user could
// have swapped would go to that user. A missing directory is left to
// probe, which says the topology is not running.
func trusted(endpoint string) error {
	path := ipcPath(endpoint)
	if path == "" {
		return nil
	}
	dir := filepath.Dir(path)
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return CheckRuntimeDir(dir)
}
