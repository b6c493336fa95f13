// Command upper-go is a ztopo plugin that upper-cases the ASCII letters of
// each message's last frame; other frames (a topic, say) pass unchanged.
//
//	nodes:
//	  shout:
//	    handler: {plugin: ../bin/upper-go}
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/ztopo/ztopo/plugins"
)

func main() {
	// ztopo stops a plugin with STOP; a signal (ztopo itself killed,
	// a user's Ctrl-C) ends it just as cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := plugins.Serve(ctx, plugins.HandlerFunc(upper)); err != nil {
		log.Fatal(err)
	}
}

// upper changes ASCII letters only: payloads are bytes, not text, and
// bytes.ToUpper would rewrite invalid UTF-8.
func upper(_ context.Context, frames [][]byte) ([][]byte, error) {
	p := frames[len(frames)-1]
	for i, c := range p {
		if 'a' <= c && c <= 'z' {
			p[i] = c - ('a' - 'A')
		}
	}
	return frames, nil
}
