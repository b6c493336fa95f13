package control

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// instanceLock is the lock that keeps a second `ztopo up` of a topology
// from starting, in a place no one can delete: a Linux abstract unix
// socket, named after the runtime directory (so after the user and the
// topology). It is not a file: systemd-tmpfiles or an `rm -rf` of the
// runtime directory cannot remove it (the lock file in the directory can
// be, and a second `up` would then start next to the first: issue 11 item
// 11), and the kernel releases it when its holder dies, however it dies.
// Another user could bind the name first and keep us from starting (a
// denial of service, never a hijack: nothing is sent to it); the error
// says who holds it.
type instanceLock struct{ fd int }

func lockName(endpoint string) string {
	sum := sha256.Sum256([]byte(endpoint))
	return "ztopo/" + hex.EncodeToString(sum[:16])
}

// lockInstance takes the abstract lock of endpoint. On EADDRINUSE it
// returns a *RunningError with the holder's pid, read from the kernel
// (SO_PEERCRED of a connection to it).
func lockInstance(endpoint string, h Handler) (*instanceLock, error) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("instance lock: %w", err)
	}
	addr := &syscall.SockaddrUnix{Name: "@" + lockName(endpoint)}
	if err := syscall.Bind(fd, addr); err != nil {
		syscall.Close(fd)
		if errors.Is(err, syscall.EADDRINUSE) {
			pid, uid := holder(addr)
			re := &RunningError{Name: nameOf(h), Pid: pid, Endpoint: endpoint}
			if uid >= 0 && uid != os.Getuid() {
				return nil, fmt.Errorf("%w; the instance lock is held by uid %d, another user", re, uid)
			}
			return nil, re
		}
		return nil, fmt.Errorf("instance lock: %w", err)
	}
	if err := syscall.Listen(fd, 1); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("instance lock: %w", err)
	}
	return &instanceLock{fd: fd}, nil
}

// holder returns the pid and uid of the process listening at addr, or -1.
func holder(addr *syscall.SockaddrUnix) (pid, uid int) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1
	}
	defer syscall.Close(fd)
	if err := syscall.Connect(fd, addr); err != nil {
		return -1, -1
	}
	cred, err := syscall.GetsockoptUcred(fd, syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	if err != nil {
		return -1, -1
	}
	return int(cred.Pid), int(cred.Uid)
}

func (l *instanceLock) release() { syscall.Close(l.fd) }
