package engine

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// awaitSent waits, for a share of a topology spread over hosts, until what
// this process wrote to tcp peers has been taken by them: until the kernel
// send queues of its tcp sockets stay empty for a few samples in a row (a
// completed producer's last messages are then out of libzmq's pipes too,
// since libzmq writes whenever the socket can take more), or the deadline
// passes, or the engine is killed. The peers on other hosts are outside
// this engine: no counter of its own can tell that they have the messages.
// Sockets of process nodes live in their children and are not looked at.
func (e *Engine) awaitSent(deadline time.Time) {
	quiet := 0
	for {
		n, err := tcpUnsent()
		if err != nil {
			e.log.Debug("cannot read tcp send queues; not waiting for them", "error", err)
			return
		}
		if n == 0 {
			if quiet++; quiet >= quietSamples {
				return
			}
		} else {
			quiet = 0
		}
		wait := min(drainSample, time.Until(deadline))
		if wait <= 0 {
			e.log.Warn("drain grace expired with bytes not yet taken by peers on other hosts", "bytes", n)
			return
		}
		select {
		case <-e.kill:
			return
		case <-time.After(wait):
		}
	}
}

// tcpUnsent is the sum of the send queues (bytes written, not yet
// acknowledged by the peer) of this process's tcp sockets, from
// /proc/self/fd and /proc/net/tcp{,6} (Linux).
func tcpUnsent() (uint64, error) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var sum uint64
	for _, table := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			if os.IsNotExist(err) {
				continue // no IPv6
			}
			return 0, err
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || !inodes[fields[9]] {
				continue
			}
			tx, _, _ := strings.Cut(fields[4], ":")
			if n, err := strconv.ParseUint(tx, 16, 64); err == nil {
				sum += n
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return 0, err
		}
	}
	return sum, nil
}
