#!/usr/bin/env bash
# Run the MQTT 3.1.1 cases of the Mosquitto broker test suite (Debian source
# package `mosquitto`, test/broker/) against a broker at HOST:PORT, and
# compare with the baseline of a plain Aedes broker.
#
#   test/interop/run-suite.sh HOST PORT
#
# Exit 0 when every case listed in the baseline (expected-pass.txt) passes;
# 1 otherwise; 2 on a usage/setup error. Prints one line per case:
#   PASS|FAIL|SKIP  <file>#<case>  <call>  [expected|known-fail|<skip reason>]
# and closes with "interop: N passed, N failed, N skipped", where "failed"
# counts only baseline cases that did not pass (cases that fail on plain
# Aedes too are reported as "known-fail" and counted as skipped).
#
# Environment:
#   INTEROP_SUITE_DIR     unpacked suite's test/ dir (default: fetch-suite.sh)
#   INTEROP_CACHE         where fetch-suite.sh unpacks (/var/cache/threadline-interop)
#   INTEROP_EXPECTED      baseline file (default: expected-pass.txt beside this script)
#   INTEROP_CASE_TIMEOUT  seconds per case (default 30)
#   INTEROP_ONLY          extended regex; run only cases whose id matches
#   INTEROP_FILES         glob of test scripts (default: '0[1-57]-*.py' =
#                         connect, subscribe/publish, retain, session, will)
#   INTEROP_BROKER_CMD    if set, a fresh broker is started with this command
#                         ("{port}" and "{host}" substituted) for every run, as
#                         the suite does with mosquitto; otherwise the broker
#                         already at HOST:PORT is used and cleared between runs
#   INTEROP_WRITE_EXPECTED=FILE  also write the ids of passing cases to FILE
#                         (how expected-pass.txt is made against plain Aedes)
#   INTEROP_TOLERATE      differences let through so the rest of a case is
#                         still checked (default "ids,order,dup,session"; ""
#                         = byte for byte, as the suite does). See mosq_shim.py.
#   INTEROP_PROTOCOLS     protocol levels to run (default 4 = MQTT 3.1.1)
#   INTEROP_MAX_WAIT      cap, in seconds, on the scripts' socket timeouts (default 5)
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/loopback-args.sh"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -n "${INTEROP_WRITE_EXPECTED:-}" ]]; then
  INTEROP_WRITE_EXPECTED=$(realpath -m "$INTEROP_WRITE_EXPECTED")
fi
SHIM=$HERE/mosq_shim.py
EXPECTED=${INTEROP_EXPECTED:-$HERE/expected-pass.txt}
CASE_TIMEOUT=${INTEROP_CASE_TIMEOUT:-30}
FILES=${INTEROP_FILES:-0[1-57]-*.py}
ONLY=${INTEROP_ONLY:-}
PY=$(command -v python3 || true)
# prefer Debian's interpreter over a pyenv shim when both exist
[[ -x /usr/bin/python3 ]] && PY=/usr/bin/python3

if [[ -z "${INTEROP_SUITE_DIR:-}" ]]; then
  INTEROP_SUITE_DIR=$("$HERE/fetch-suite.sh" | tail -n1) || { echo "run-suite: could not obtain the suite" >&2; exit 2; }
fi
SUITE=$INTEROP_SUITE_DIR
[[ -f "$SUITE/mosq_test.py" && -d "$SUITE/broker" ]] || { echo "run-suite: no suite at $SUITE" >&2; exit 2; }
[[ -n "$PY" ]] || { echo "run-suite: python3 missing (run fetch-suite.sh as root)" >&2; exit 2; }

declare -A expect=()
if [[ -f "$EXPECTED" ]]; then
  while read -r id _; do
    [[ -z "$id" || "$id" == \#* ]] && continue
    expect[$id]=1
  done < "$EXPECTED"
else
  echo "run-suite: no baseline at $EXPECTED: every case is informational" >&2
fi

if [[ -z "${INTEROP_BROKER_CMD:-}" ]]; then
  if ! (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
    echo "run-suite: nothing listens on $HOST:$PORT" >&2
    exit 2
  fi
fi

echo "# mosquitto suite: $SUITE ($(basename "$(dirname "$SUITE")")), target $HOST:$PORT, $(date -u +%FT%TZ)"
passed=0 failed=0 skipped=0 newly=0
declare -A seen=()
written=()
start=$SECONDS
cd "$SUITE/broker" || exit 2
for f in $FILES; do
  [[ -f "$f" && "$f" != *helper* ]] || continue
  while IFS=$'\t' read -r idx call; do
    id="$f#$idx"
    [[ -n "$ONLY" && ! "$id" =~ $ONLY ]] && continue
    seen[$id]=1
    t0=$SECONDS
    out=$(timeout -k 5 "$CASE_TIMEOUT" "$PY" "$SHIM" run "$SUITE" "$HOST" "$PORT" "$f" "$idx" 2>&1)
    rc=$?
    line=$(grep '^RESULT ' <<<"$out" | tail -n1)
    status=$(awk '{print $2}' <<<"$line")
    detail=$(cut -d' ' -f4- <<<"$line")
    if [[ $rc -eq 124 || $rc -eq 137 || -z "$status" ]]; then
      status=FAIL; detail="timeout after ${CASE_TIMEOUT}s"
    fi
    dt=$((SECONDS - t0))
    if [[ -n "${expect[$id]:-}" ]]; then
      tag=expected
      case $status in
        PASS) passed=$((passed + 1)) ;;
        *) failed=$((failed + 1)); tag="expected, REGRESSION" ;;
      esac
    else
      case $status in
        PASS) passed=$((passed + 1)); newly=$((newly + 1)); tag="not in baseline" ;;
        FAIL) skipped=$((skipped + 1)); tag="known-fail" ;;
        SKIP) skipped=$((skipped + 1)); tag="$detail" ;;
      esac
    fi
    [[ $status == PASS ]] && written+=("$id	$call")
    printf '%-4s  %-48s %-60s [%s] %ss\n' "$status" "$id" "$call" "$tag" "$dt"
    if [[ $status == FAIL && -n "${expect[$id]:-}" ]]; then
      grep -v -e '^RESULT ' -e '^$' <<<"$out" | sed 's/^/        | /' | head -n 12
    fi
  done < <("$PY" "$SHIM" list "$SUITE" "$f")
done

for id in "${!expect[@]}"; do
  [[ -n "$ONLY" && ! "$id" =~ $ONLY ]] && continue
  if [[ -z "${seen[$id]:-}" ]]; then
    echo "FAIL  $id  [expected, but the suite has no such case: regenerate $EXPECTED]"
    failed=$((failed + 1))
  fi
done

if [[ -n "${INTEROP_WRITE_EXPECTED:-}" ]]; then
  {
    echo "# Cases of the mosquitto broker suite ($(basename "$(dirname "$SUITE")")) that pass"
    echo "# against the broker this file was made with; written by run-suite.sh."
    printf '%s\n' "${written[@]}"
  } > "$INTEROP_WRITE_EXPECTED"
  echo "# wrote ${#written[@]} passing case ids to $INTEROP_WRITE_EXPECTED"
fi

echo "# $((SECONDS - start))s; $newly passing case(s) not in the baseline"
echo "interop: $passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
