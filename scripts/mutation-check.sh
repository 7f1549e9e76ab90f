#!/usr/bin/env bash
# Mutation check of the verdict, kernel-log and expectations code with mutmut 2
# (docs/mutation-testing.md). Not part of .ci/run: it takes about half an hour.
# Run it from a clean checkout with mutmut on PATH; it mutates the source in
# place and restores it after each mutant.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
MODULES=harness/verdict/cell.py,harness/verdict/reports.py,harness/vm/kernellog.py,harness/verdict/expectations.py,harness/verdict/judge.py
# The runner: only the host tests that import these modules (test_live_vm.py
# among them: test --live reaches the verdict through harness/live/session.py),
# never the whole suite: one mutant costs a few seconds, not minutes.
TESTS=$(grep -lE 'harness(\.|/)(verdict|vm(\.|/)kernellog)' tests/test_*.py | tr '\n' ' ')
for module in ${MODULES//,/ }; do
    if ! git diff --quiet -- "$module"; then
        echo "mutation-check: $module has local changes; run from a clean checkout" >&2
        exit 2
    fi
done
# Python's bytecode cache checks a source's mtime (in whole seconds) and size:
# two mutants of the same size written within one second would run the first
# one's cached bytecode, and a mutant would "survive" untested. So the mutated
# modules' cached bytecode is removed before every mutant.
PYCS=""
for module in ${MODULES//,/ }; do
    PYCS+=" $(dirname "$module")/__pycache__/$(basename "$module" .py).*.pyc"
done
rm -f $PYCS
# mutmut 2 counts only exit status 1 as a killed mutant: pytest's 2 (a mutant
# that breaks an import, so collection fails) would count as a survivor. So
# pytest runs in the runner's own process and any failure exits 1; in-process
# (not behind a shell) so that mutmut's timeout kill ends it.
RUN_PYTEST='import sys, pytest; sys.exit(pytest.main(sys.argv[1:]) != 0)'
started=$(date +%s)
status=0
mutmut run --simple-output --no-progress --paths-to-mutate "$MODULES" --tests-dir tests \
    --pre-mutation "rm -f $PYCS" \
    --runner "$PYTHON -c '$RUN_PYTEST' -x -q -p no:cacheprovider -m 'not e2e' $TESTS" \
    || status=$?
echo "mutation-check: mutmut exited $status after $(($(date +%s) - started)) s"
mutmut results
# An interrupted mutmut leaves the mutant in place (and a .py.bak beside it).
git diff --quiet -- ${MODULES//,/ } || echo "mutation-check: a module is still mutated; git checkout it" >&2
