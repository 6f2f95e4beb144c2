#!/bin/bash
# Runs every named scenario against one fresh local broker, then the
# librdkafka cross-check and the raw O_DIRECT bandwidth of the same disk,
# and prints each run's result line: the figures of docs/benchmarks.md.
#
#   cargo build --release -p kelp-broker -p kelp-bench
#   BROKER_CORES=1 HARNESS_CORES=2 bench-harness/run-scenarios.sh
#
# BROKER_CORES: the broker's --cores (default: its own choice). HARNESS_CORES:
# kelp-bench --harness-cores (default: its own). PARTITIONS: overrides each
# scenario's. DURATION: seconds measured per scenario (default 10).
# BROKER_CPUS, HARNESS_CPUS: taskset CPU lists to keep the two apart.
# SCENARIOS: which to run (default all five, then the cross-check and the
# raw disk figure). Results and logs in $OUT (default target/scenarios).
set -u
cd "$(dirname "$0")/.."
B=${BIN:-target/release}
OUT=${OUT:-target/scenarios}
DURATION=${DURATION:-10}
mkdir -p "$OUT"
echo "date=$(date -u +%F) nproc=$(nproc) kernel=$(uname -r) commit=$(git rev-parse --short HEAD 2>/dev/null)"
broker_flags=()
[[ -n ${BROKER_CORES:-} ]] && broker_flags+=(--cores "$BROKER_CORES")
bench_flags=(--duration "$DURATION" --out "$OUT")
[[ -n ${HARNESS_CORES:-} ]] && bench_flags+=(--harness-cores "$HARNESS_CORES")
[[ -n ${PARTITIONS:-} ]] && bench_flags+=(--partitions "$PARTITIONS")
broker_pin=() harness_pin=()
[[ -n ${BROKER_CPUS:-} ]] && broker_pin=(taskset -c "$BROKER_CPUS")
[[ -n ${HARNESS_CPUS:-} ]] && harness_pin=(taskset -c "$HARNESS_CPUS")
data=$(mktemp -d -p "$PWD/target")
"${broker_pin[@]}" $B/kelp start "${broker_flags[@]}" --listen 127.0.0.1:19092 --advertised 127.0.0.1:19092 \
    --data-dir "$data" > "$OUT/broker.log" 2>&1 &
broker=$!
trap 'kill -TERM $broker 2>/dev/null; wait $broker 2>/dev/null; rm -rf "$data"' EXIT
sleep 2
bench() { # LABEL SCENARIO [flags]
  local label=$1 scenario=$2
  shift 2
  timeout 300 "${harness_pin[@]}" $B/kelp-bench --bootstrap 127.0.0.1:19092 --scenario "bench-harness/scenarios/$scenario.toml" \
      "${bench_flags[@]}" "$@" > "$OUT/$label.txt" 2>&1
  echo "$label: $(tail -1 "$OUT/$label.txt")"
}
for s in ${SCENARIOS:-produce-100b produce-3x-100b produce-1k-acks-all consume-100b e2e-latency}; do
  bench "$s" "$s"
done
[[ -n ${SCENARIOS:-} ]] && exit 0
for s in produce-100b produce-1k-acks-all; do   # the cross-check: librdkafka's producer
  bench "$s-rdkafka" "$s" --client rdkafka --topic "kelp-bench-$s-rdkafka"
done
kill -TERM $broker; wait $broker
# The raw sequential O_DIRECT write bandwidth, right after, on the same disk.
KELP_BENCH_CASES=1048576:1,1048576:16 cargo bench -q -p kelp-storage --bench append 2>&1 | tail -4
