#!/bin/bash
# A first job: prints where it ran and exits 3, so you can see an exit code travel back.
echo "hello from $(hostname), job directory $PWD"
echo "this line goes to stderr" >&2
exit 3
