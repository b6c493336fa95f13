#!/usr/bin/python3
# An exec handler for the lines codec: one line in, one line out, flushed.
# EXIT_AFTER=n makes it exit (status 3) on line n+1, for crash tests.
import os
import sys

exit_after = int(os.environ.get("EXIT_AFTER", "-1"))
n = 0
for line in sys.stdin.buffer:
    if n == exit_after:
        sys.exit(3)
    n += 1
    sys.stdout.buffer.write(line.upper())
    sys.stdout.buffer.flush()
