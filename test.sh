#!/usr/bin/env bash
# Builds Amber and runs every test suite (unit and integration, real processes, needs root).
# The last line is the total: "N passed, M failed".
set -uo pipefail
cd "$(dirname "$(readlink -f "$0")")"
results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT

# What the tests run besides amber (gcc, servers, file-system tools), installed if missing.
if ! test/install-deps; then
  echo "0 passed, 1 failed"
  exit 1
fi
# The tests drive ./amber, the CLI as shipped (Native AOT): built here once, before they start.
if ! dotnet build Amber.slnx -c Release --nologo -v quiet || ! ./amber --version >/dev/null; then
  echo "the build failed"
  echo "0 passed, 1 failed"
  exit 1
fi
dotnet test Amber.slnx -c Release --no-build --nologo \
  --logger "trx" --logger "console;verbosity=normal" --results-directory "$results"
rc=$?

passed=0
failed=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters="$(grep -o '<Counters [^>]*>' "$trx" | head -1)"
  p="$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")"
  f="$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")"
  e="$(sed -n 's/.* error="\([0-9]*\)".*/\1/p' <<<"$counters")"
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0} + ${e:-0}))
done
# CI shows only the end of this output: name each failed test there, with the start of its message.
if [ "$failed" -ne 0 ]; then
  python3 - "$results" <<'PY' || true
import glob, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
for trx in sorted(glob.glob(sys.argv[1] + "/*.trx")):
    for r in ET.parse(trx).getroot().iterfind(".//t:UnitTestResult", ns):
        if r.get("outcome") not in ("Failed", "Error"):
            continue
        print("FAILED " + r.get("testName", "?"))
        message = r.findtext("t:Output/t:ErrorInfo/t:Message", "", ns).strip().splitlines()
        trace = r.findtext("t:Output/t:ErrorInfo/t:StackTrace", "", ns).strip().splitlines()
        for line in message[:12] + trace[:4]:
            print("    " + line[:300])
PY
fi
# A suite that crashed leaves no counters: never report that as green.
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
