#!/bin/sh
# Fake merge_config.sh -m -O DIR BASE FRAGMENT...: appends the fragments to BASE.
shift 3
base=$1
shift
cat "$@" >> "$base"
