package plugins_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/ztopo/ztopo/plugins"
	"github.com/ztopo/ztopo/plugins/plugintest"
)

// A plugin's handler, tried out against the in-process test host the way
// ztopo would call it.
func ExampleHandlerFunc() {
	reverse := plugins.HandlerFunc(func(ctx context.Context, frames [][]byte) ([][]byte, error) {
		p := frames[len(frames)-1]
		for i, j := 0, len(p)-1; i < j; i, j = i+1, j-1 {
			p[i], p[j] = p[j], p[i]
		}
		return frames, nil
	})

	host, err := plugintest.New()
	if err != nil {
		panic(err)
	}
	defer host.Close()
	if err := host.RunInProcess(reverse, plugins.Options{}); err != nil {
		panic(err)
	}
	out, err := host.Call([]byte("topic"), []byte("stressed"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", bytes.Join(out, []byte(" | ")))
	// Output: topic | desserts
}
