#!/usr/bin/env bash
# Where an idle node's CPU goes, thread by thread.
#
#   bench/gossip/idle_threads.sh [N] [SECONDS] [NODE FLAG...]
#
# Starts N `peergrid node`s (default 16) on 127.0.0.2, 127.0.0.3, ..., all
# joined through the first, 0.1 s apart (64 start-ups at once saturate the
# 2 cores for seconds), lets them settle for 10 s, then watches an idle
# window of SECONDS (default 30). It prints, for the first node, each
# thread's CPU (from /proc/PID/task/TID/schedstat: the scheduler's own
# nanosecond accounting, finer than the utime/stime ticks of
# gossip_process_bench) and its wakeups (voluntary context switches), then
# the mean CPU and resident memory over all N nodes. Extra arguments go to
# every node, e.g. --gossip-probe-interval-ms=500.
#
# CPU of threads that exit inside the window is not counted. Every node runs
# under `timeout` and is stopped by its PID at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${1:-16}
SECONDS_IDLE=${2:-30}
shift $(( $# < 2 ? $# : 2 ))
BIN=${PEERGRID:-build/node/peergrid}
[[ -x $BIN ]] || { echo "no $BIN: build first (cmake --build build)" >&2; exit 2; }
(( N >= 1 && N <= 250 )) || { echo "N must be 1 to 250" >&2; exit 2; }
SETTLE=10
LOGS=$(mktemp -d)
WRAPPERS=()

stop() {
  (( ${#WRAPPERS[@]} )) && kill "${WRAPPERS[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$LOGS"
}
trap stop EXIT

for i in $(seq 1 "$N"); do
  join=()
  (( i > 1 )) && join=(--join=127.0.0.2:7700)
  timeout $(( SETTLE + SECONDS_IDLE + 30 )) "$BIN" node \
    --listen=127.0.0.$(( i + 1 )):7700 --metrics=127.0.0.$(( i + 1 )):0 --cores=1 \
    --name=idle-$i "${join[@]}" "$@" >"$LOGS/$i.out" 2>"$LOGS/$i.err" &
  WRAPPERS+=($!)
  sleep 0.1
done
sleep "$SETTLE"

# The node processes are the children of their `timeout` wrappers.
NODES=()
for w in "${WRAPPERS[@]}"; do
  child=$(cat "/proc/$w/task/$w/children" 2>/dev/null | tr -d ' ')
  [[ -n $child ]] || { echo "a node exited early: see its log" >&2; exit 1; }
  NODES+=("$child")
done
FIRST=${NODES[0]}

# "TID_NAME CPU_US WAKEUPS" for every thread of process $1.
threads() {
  for t in /proc/"$1"/task/*; do
    [[ -r $t/schedstat ]] || continue
    printf '%s_%s %s %s\n' "${t##*/}" "$(tr ' ' _ <"$t/comm")" \
      "$(awk '{print int($1 / 1000)}' "$t/schedstat")" \
      "$(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status")"
  done | sort
}
# CPU microseconds of all threads of all nodes.
total_cpu_us() {
  local sum=0
  for p in "${NODES[@]}"; do
    for t in /proc/"$p"/task/*; do
      sum=$(( sum + $(awk '{print int($1 / 1000)}' "$t/schedstat") ))
    done
  done
  echo "$sum"
}

before=$(threads "$FIRST"); cpu0=$(total_cpu_us)
sleep "$SECONDS_IDLE"
after=$(threads "$FIRST"); cpu1=$(total_cpu_us)

echo "node 1 of $N, over ${SECONDS_IDLE} s idle:"
join <(echo "$before") <(echo "$after") | awk -v s="$SECONDS_IDLE" '
  { cpu = ($4 - $2) / s / 1e4; wakes = ($5 - $3) / s;
    if (cpu > 0 || wakes > 0)
      printf "  %-28s %7.3f%% of a core  %5.1f wakeups/s\n", $1, cpu, wakes }'
awk -v a="$cpu0" -v b="$cpu1" -v s="$SECONDS_IDLE" -v n="$N" \
  'BEGIN { printf "mean over %d nodes: %.3f%% of a core\n", n, (b - a) / s / n / 1e4 }'
for p in "${NODES[@]}"; do
  awk '/^VmRSS/ {r = $2} /^RssAnon/ {a = $2} END {print r, a}' "/proc/$p/status"
done | awk '{r += $1; a += $2; n++}
  END {printf "mean VmRSS %.1f MB (anonymous %.1f MB)\n", r / n / 1024, a / n / 1024}'
