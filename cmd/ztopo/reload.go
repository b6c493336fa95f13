package main

import "io"

const reloadUsage = `usage: ztopo reload FILE|NAME

Makes a running topology re-read its file now, as an edit or SIGHUP would:
an invalid file is rejected and the topology keeps running unchanged.
`

func runReload(args []string, stdout, stderr io.Writer) int {
	// TODO(issue 4): send reload on the control socket.
	return notImplemented("reload", reloadUsage, args, stdout, stderr)
}
