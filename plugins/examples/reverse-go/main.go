// Command reverse-go is a ztopo plugin that reverses the bytes of each
// message's last frame, and answers ERR for an empty one, to show both
// kinds of answer.
package main

import (
	"context"
	"errors"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/ztopo/ztopo/plugins"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.SetFlags(0)
	log.Printf("reverse-go serving node %s", os.Getenv(plugins.EnvNode))
	if err := plugins.Serve(ctx, plugins.HandlerFunc(reverse)); err != nil {
		log.Fatal(err)
	}
}

func reverse(_ context.Context, frames [][]byte) ([][]byte, error) {
	p := frames[len(frames)-1]
	if len(p) == 0 {
		return nil, errors.New("nothing to reverse")
	}
	for i, j := 0, len(p)-1; i < j; i, j = i+1, j-1 {
		p[i], p[j] = p[j], p[i]
	}
	return frames, nil
}
