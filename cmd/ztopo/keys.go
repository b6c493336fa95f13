package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ztopo/ztopo/internal/curvecert"
)

const keysUsage = `usage: ztopo keys gen NAME [--dir DIR]
       ztopo keys list [DIR]

CURVE key pairs for security.keys, in the CZMQ certificate format (what
pyzmq's zmq.auth.load_certificate reads and create_certificates writes).

  gen NAME   writes DIR/NAME.key (the public key, mode 0644: hand it to
             peers) and DIR/NAME.key_secret (the pair, mode 0600: keep it
             where only the node that uses it can read it). DIR (default:
             the current directory) is created with mode 0700 if missing.
             Existing files are never overwritten.
  list       prints each key of DIR (default: the current directory): its
             name, its public key (Z85) and whether its secret is there.
             Secret keys are never printed. Exit status 1 if a certificate
             cannot be read or a secret is readable by group or others.
`

func runKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return usageError(stderr, "keys", keysUsage, "missing subcommand gen or list")
	}
	switch args[0] {
	case "gen":
		return runKeysGen(args[1:], stdout, stderr)
	case "list":
		return runKeysList(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, keysUsage)
		return exitOK
	}
	return usageError(stderr, "keys", keysUsage, "unknown subcommand %q%s", args[0], didYouMean(args[0], []string{"gen", "list"}))
}

func runKeysGen(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("keys gen")
	dir := fs.String("dir", ".", "")
	rest, code, ok := parseArgs(fs, "keys", keysUsage, args, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case len(rest) == 0:
		return usageError(stderr, "keys", keysUsage, "gen needs a key NAME")
	case len(rest) > 1:
		return usageError(stderr, "keys", keysUsage, "unexpected argument %q", rest[1])
	case !curvecert.ValidName(rest[0]):
		return usageError(stderr, "keys", keysUsage, "bad key name %q: use letters, digits, '.', '-' and '_', starting with a letter or digit", rest[0])
	}
	c, err := curvecert.Generate()
	if err != nil {
		return fail(stderr, "keys gen", err)
	}
	pub, sec, err := curvecert.Write(*dir, rest[0], c, time.Now())
	if err != nil {
		return fail(stderr, "keys gen", err)
	}
	fmt.Fprintf(stdout, "wrote %s (public) and %s (secret, mode 0600)\npublic key: %s\n", pub, sec, c.Public)
	return exitOK
}

func runKeysList(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("keys list")
	rest, code, ok := parseArgs(fs, "keys", keysUsage, args, stdout, stderr)
	if !ok {
		return code
	}
	dir := "."
	switch len(rest) {
	case 0:
	case 1:
		dir = rest[0]
	default:
		return usageError(stderr, "keys", keysUsage, "unexpected argument %q", rest[1])
	}
	entries, err := curvecert.List(dir)
	if err != nil {
		return fail(stderr, "keys list", err)
	}
	if len(entries) == 0 {
		fmt.Fprintf(stderr, "ztopo keys list: no keys (NAME.key files) in %s\n", dir)
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPUBLIC KEY\tSECRET")
	code = exitOK
	for _, e := range entries {
		if e.Err != nil {
			fmt.Fprintf(stderr, "ztopo keys list: %s: %v\n", curvecert.PublicPath(dir, e.Name), e.Err)
			code = exitFailure
			continue
		}
		secret := "no"
		if e.HasSecret {
			secret = "yes"
			p := curvecert.SecretPath(dir, e.Name)
			if _, err := curvecert.ReadSecret(p); err != nil {
				secret = "unusable"
				fmt.Fprintf(stderr, "ztopo keys list: %s: %v\n", p, err)
				code = exitFailure
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Name, e.Public, secret)
	}
	tw.Flush()
	return code
}
