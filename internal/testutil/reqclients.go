package testutil

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// ReqClients are pyzmq REQ clients (py/reqclients.py) sending requests as
// fast as replies come, for the tests that change a handler under load:
// start them, wait until they are warm, make the change, then Finish.
type ReqClients struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr *strings.Builder
}

// ReqRow is one request of one client: its text, the reply's frames (nil
// when none came within 20 s: lost), and whether it was sent after Finish
// was called.
type ReqRow struct {
	Req   string
	Reply []string
	After bool
}

// UnmarshalJSON reads the script's [request, reply frames or null, after].
func (r *ReqRow) UnmarshalJSON(b []byte) error {
	var row []json.RawMessage
	if err := json.Unmarshal(b, &row); err != nil {
		return err
	}
	if len(row) != 3 {
		return fmt.Errorf("reqclients row: %d fields, want 3", len(row))
	}
	if err := json.Unmarshal(row[0], &r.Req); err != nil {
		return err
	}
	if err := json.Unmarshal(row[1], &r.Reply); err != nil {
		return err
	}
	return json.Unmarshal(row[2], &r.After)
}

// StartReqClients starts clients REQ clients on endpoint sending
// "c<k>-<i> BODY" and returns once each had warm replies; after Finish each
// sends after more. ctx bounds the script's life.
func StartReqClients(t testing.TB, ctx context.Context, endpoint string, clients, warm, after int, body string) *ReqClients {
	t.Helper()
	NeedPyzmq(t)
	script := RepoPath(t, "internal/testutil/py/reqclients.py")
	cmd := exec.CommandContext(ctx, Python, script, endpoint, fmt.Sprint(clients), fmt.Sprint(warm), fmt.Sprint(after), body)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	rc := &ReqClients{cmd: cmd, stdin: stdin, stderr: &strings.Builder{}}
	cmd.Stderr = rc.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	rc.lines = bufio.NewScanner(stdout)
	rc.lines.Buffer(nil, 64<<20)
	if !rc.lines.Scan() || rc.lines.Text() != "ready" {
		t.Fatalf("req clients: got %q, want ready; stderr:\n%s", rc.lines.Text(), rc.stderr)
	}
	return rc
}

// Finish tells the clients to send their last requests and returns every
// client's rows.
func (rc *ReqClients) Finish(t testing.TB) [][]ReqRow {
	t.Helper()
	if _, err := io.WriteString(rc.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	if !rc.lines.Scan() {
		t.Fatalf("req clients: no result: %v; stderr:\n%s", rc.lines.Err(), rc.stderr)
	}
	var results [][]ReqRow
	if err := json.Unmarshal(rc.lines.Bytes(), &results); err != nil {
		t.Fatalf("req clients: %v", err)
	}
	if err := rc.cmd.Wait(); err != nil {
		t.Fatalf("req clients: %v; stderr:\n%s", err, rc.stderr)
	}
	return results
}
