package zsock

import (
	"slices"
	"sync"
)

// Tapper gets a copy of each message that passes a socket while it is
// attached to the socket's Stats (ztopo tap). Tap is called on the
// socket owner's goroutine right after a message was received (out false)
// or sent (out true); it must not block, and must copy what it keeps: the
// slices are the caller's.
type Tapper interface {
	Tap(out bool, env, body [][]byte)
}

// tapSet is the taps attached to one socket; replaced whole (copy on
// write), so that the data path reads it with one atomic load.
type tapSet struct{ list []Tapper }

// tapMu serializes AttachTap and DetachTap (rare; never on the data path).
var tapMu sync.Mutex

// AttachTap makes t see every message the socket counted by st receives
// and sends from now on, across restarts of its node (Stats outlive them).
// While no tap is attached the data path pays one atomic load per message
// and copies nothing. Safe from any goroutine.
func (st *Stats) AttachTap(t Tapper) {
	tapMu.Lock()
	defer tapMu.Unlock()
	var list []Tapper
	if cur := st.taps.Load(); cur != nil {
		list = slices.Clone(cur.list)
	}
	st.taps.Store(&tapSet{list: append(list, t)})
}

// DetachTap undoes AttachTap; a message being copied to t at that moment
// may still reach it. Safe from any goroutine.
func (st *Stats) DetachTap(t Tapper) {
	tapMu.Lock()
	defer tapMu.Unlock()
	cur := st.taps.Load()
	if cur == nil {
		return
	}
	list := slices.DeleteFunc(slices.Clone(cur.list), func(x Tapper) bool { return x == t })
	if len(list) == 0 {
		st.taps.Store(nil)
		return
	}
	st.taps.Store(&tapSet{list: list})
}

// Tapped reports whether a tap is attached: the node then keeps the
// socket's messages off the paths that never bring them into Go (the
// proxy in C, batched discards and repeated sends).
func (st *Stats) Tapped() bool { return st.taps.Load() != nil }

func (ts *tapSet) copy(out bool, env, body [][]byte) {
	for _, t := range ts.list {
		t.Tap(out, env, body)
	}
}
