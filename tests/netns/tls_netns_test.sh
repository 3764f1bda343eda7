#!/usr/bin/env bash
# A TLS grid across network namespaces, on real non-loopback addresses.
#
#   tests/netns/tls_netns_test.sh PEERGRID_BINARY
#
# Makes a hub namespace holding a bridge and one namespace per node, each
# joined to the bridge by a veth pair, on the private test subnet
# 10.213.77.0/24 that exists only between them. Starts a node in three of
# them with certificates from `peergrid ca`, and shows: the grid forms and
# runs a job; a node of another CA, and one without a certificate, never
# become members; a `submit` client runs jobs and a `read` client cannot;
# a revoked node is dropped once the CRL changes (no restart). Every
# process it starts is stopped by its PID, and its namespaces are removed,
# whatever happens. Needs root; exits 77 (skipped, for ctest) where
# namespaces cannot be made.
set -euo pipefail

bin=${1:?usage: $0 PEERGRID_BINARY}
skip() {
  echo "SKIPPED: $*" >&2
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root"
command -v ip >/dev/null || skip "no 'ip' command (iproute2)"

tag=pg$$
hub=${tag}hub
names=(a b c other plain)
subnet=10.213.77
work=$(mktemp -d /tmp/peergrid_netns.XXXXXX)
pids=()
made=()

cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  for namespace in "${made[@]}"; do ip netns del "$namespace" 2>/dev/null || true; done
  if ((status != 0 && status != 77)); then
    for log in "$work"/*.log; do
      [ -e "$log" ] && { echo "--- $log"; tail -20 "$log"; } >&2
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

fail() {
  echo "FAILED: $*" >&2
  exit 1
}
# Polls `$@` every 0.2 s until it succeeds or `limit` seconds pass.
wait_for() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || fail "$what (waited ${limit}s)"
    sleep 0.2
  done
}

# --- The network: a bridge in the hub, a veth pair per node namespace.
ip netns add "$hub" || skip "cannot create network namespaces here"
made+=("$hub")
ip -n "$hub" link add br0 type bridge
ip -n "$hub" link set br0 up
for i in "${!names[@]}"; do
  namespace=$tag${names[$i]}
  ip netns add "$namespace"
  made+=("$namespace")
  ip link add "${tag}v$i" netns "$namespace" type veth peer name "${tag}p$i" \
    netns "$hub"
  ip -n "$namespace" link set "${tag}v$i" name eth0
  ip -n "$namespace" addr add "$subnet.$((i + 1))/24" dev eth0
  ip -n "$namespace" link set eth0 up
  ip -n "$namespace" link set lo up
  ip -n "$hub" link set "${tag}p$i" master br0 up
done
address() { echo "$subnet.$(($1 + 1)):7420"; }
in_ns() { local i=$1; shift; ip netns exec "$tag${names[$i]}" "$@"; }

# --- The grid's CA and certificates (and a stranger's CA).
ca=$work/ca
"$bin" ca init --dir="$ca" >/dev/null
"$bin" ca init --dir="$work/other-ca" >/dev/null
for i in 0 1 2; do
  "$bin" ca issue --dir="$ca" --name="node-${names[$i]}" --role=node \
    --host="$subnet.$((i + 1))" --out="$work/node-${names[$i]}" >/dev/null
done
"$bin" ca issue --dir="$work/other-ca" --name=node-other --role=node \
  --host="$subnet.4" --out="$work/node-other" >/dev/null
"$bin" ca issue --dir="$ca" --name=alice --role=submit --out="$work/alice" >/dev/null
"$bin" ca issue --dir="$ca" --name=bob --role=read --out="$work/bob" >/dev/null

# start_node INDEX FLAGS...: a node in namespace INDEX on its address.
start_node() {
  local i=$1 name=${names[$1]}
  shift
  local join=()
  ((i > 0)) && join=(--join="$(address 0)")
  # `ip netns exec` execs the node: $! is the node's own PID.
  ip netns exec "$tag$name" "$bin" node --listen="$(address "$i")" \
    --metrics="$subnet.$((i + 1)):9420" --cores=1 "${join[@]}" "$@" \
    >"$work/$name.out" 2>"$work/$name.log" &
  pids+=($!)
  wait_for 20 "node $name prints its start line" \
    grep -q '^peergrid node ready' "$work/$name.out"
}
tls_of() {
  echo "--tls-cert=$work/$1.crt" "--tls-key=$work/$1.key" \
    "--tls-ca=$2/ca.crt" "--tls-crl=$2/crl"
}
# client HOLDER ARGS...: a peergrid client command as HOLDER, from node a's
# namespace.
client() {
  local holder=$1
  shift
  PEERGRID_TLS_CERT=$work/$holder.crt PEERGRID_TLS_KEY=$work/$holder.key \
    PEERGRID_TLS_CA=$ca/ca.crt PEERGRID_NODE=$(address 0) \
    in_ns 0 timeout 60 "$bin" "$@"
}
alive_seen_by() {
  PEERGRID_TLS_CERT=$work/alice.crt PEERGRID_TLS_KEY=$work/alice.key \
    PEERGRID_TLS_CA=$ca/ca.crt in_ns "$1" timeout 10 "$bin" status \
    --node="$(address "$1")" 2>/dev/null | awk '$3 == "alive" {print $1}' |
    sort | tr '\n' ' '
}
sees() { [ "$(alive_seen_by "$1")" = "$2" ]; }

# --- The grid forms on non-loopback addresses and runs a job.
for i in 0 1 2; do
  # shellcheck disable=SC2046
  start_node "$i" $(tls_of "node-${names[$i]}" "$ca")
done
for i in 0 1 2; do
  wait_for 30 "node ${names[$i]} sees all three alive" \
    sees "$i" "node-a node-b node-c "
done
echo "ok: 3 nodes on $subnet.1-3 formed a grid over mutual TLS"
expected=$(printf 'x%s\n' $(seq 1 12))
out=$(client alice run -k echo x{} ::: $(seq 1 12)) || fail "alice's job failed"
[ "$out" = "$expected" ] || fail "alice's job printed: $out"
echo "ok: a submit client ran a 12-task job"

# --- A read client may look, not submit.
client bob jobs >/dev/null || fail "bob (read) could not list jobs"
if err=$(client bob run echo ::: no 2>&1); then fail "bob (read) ran a job"; fi
grep -q "role 'read'" <<<"$err" || fail "bob's refusal does not name the role: $err"
echo "ok: a read client lists jobs and may not submit ($(grep -o "role 'read'.*" <<<"$err" | head -1))"

# --- Another CA's node, and a node without a certificate, stay out.
# shellcheck disable=SC2046
start_node 3 $(tls_of node-other "$work/other-ca")
start_node 4 --insecure --name=node-plain
wait_for 30 "the other CA's node gives up on its seed" \
  grep -q 'found no seed answering' "$work/other.log"
wait_for 30 "the plain node gives up on its seed" \
  grep -q 'found no seed answering' "$work/plain.log"
for i in 0 1 2; do
  sees "$i" "node-a node-b node-c " ||
    fail "node ${names[$i]} sees $(alive_seen_by "$i")"
done
refused=$(in_ns 0 curl -s "http://$subnet.1:9420/metrics" |
  awk -F' ' '/^peergrid_tls_handshake_failures_total\{reason="unknown_ca"\}/ {print $2}')
[ "${refused:-0}" != 0 ] || fail "no unknown_ca refusal counted on node a"
echo "ok: nodes of another CA and without TLS never became members (unknown_ca refusals: $refused)"

# --- Revoked: dropped once the CRL changes, without a restart.
"$bin" ca revoke --dir="$ca" node-c >/dev/null
kill -HUP "${pids[0]}"  # Node a reloads at once; node b within a second.
for i in 0 1; do
  wait_for 30 "node ${names[$i]} drops the revoked node-c" \
    sees "$i" "node-a node-b "
done
out=$(client alice run -k echo y{} ::: 1 2 3) || fail "a job after the revocation failed"
[ "$out" = "$(printf 'y%s\n' 1 2 3)" ] || fail "after the revocation: $out"
echo "ok: the revoked node-c was dropped by a and b; jobs still run"
echo "PASSED: TLS grid across network namespaces"
