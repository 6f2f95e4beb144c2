#!/bin/bash
# What idempotent producers cost the broker: the produce-100b load from
# librdkafka with acks=-1 and 5 requests in flight per connection (the most
# an idempotent producer allows), plain and idempotent (producer ids,
# sequence checks, duplicate detection), alternated twice against one
# fresh broker.
# Prints each run's result line and the broker's CPU time per message
# (user+system of the broker process over the whole run, warm-up included,
# divided by msgs_s x (warm-up + DURATION)).
#
#   cargo build --release -p kelp-broker -p kelp-bench
#   bench-harness/idempotence-cost.sh
#
# DURATION: seconds measured per run (default 10). BROKER_CPUS,
# HARNESS_CPUS: taskset CPU lists to keep the two apart.
set -u
cd "$(dirname "$0")/.."
B=${BIN:-target/release}
OUT=${OUT:-target/idempotence-cost}
DURATION=${DURATION:-10}
WARMUP=2
mkdir -p "$OUT"
echo "date=$(date -u +%F) nproc=$(nproc) kernel=$(uname -r) commit=$(git rev-parse --short HEAD 2>/dev/null)"
broker_pin=() harness_pin=()
[[ -n ${BROKER_CPUS:-} ]] && broker_pin=(taskset -c "$BROKER_CPUS")
[[ -n ${HARNESS_CPUS:-} ]] && harness_pin=(taskset -c "$HARNESS_CPUS")
data=$(mktemp -d -p "$PWD/target")
"${broker_pin[@]}" $B/kelp start --listen 127.0.0.1:19092 --advertised 127.0.0.1:19092 \
    --data-dir "$data" > "$OUT/broker.log" 2>&1 &
broker=$!
trap 'kill -TERM $broker 2>/dev/null; wait $broker 2>/dev/null; rm -rf "$data"' EXIT
sleep 2
ticks=$(getconf CLK_TCK)
cpu_s() { awk -v t="$ticks" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$broker/stat"; }
for round in 1 2; do
  for client in rdkafka rdkafka-idempotent; do
    label="$client-$round"
    before=$(cpu_s)
    timeout 300 "${harness_pin[@]}" $B/kelp-bench --bootstrap 127.0.0.1:19092 \
        --scenario bench-harness/scenarios/produce-100b.toml --acks -1 --client "$client" --max-in-flight 5 \
        --topic "kelp-bench-idem-$label" --duration "$DURATION" --out "$OUT" > "$OUT/$label.txt" 2>&1
    after=$(cpu_s)
    line=$(tail -1 "$OUT/$label.txt")
    rate=$(sed -n 's/.*msgs_s=\([0-9]*\).*/\1/p' <<< "$line")
    per_msg=$(awk -v c="$(awk -v a="$after" -v b="$before" 'BEGIN { print a - b }')" -v r="${rate:-0}" \
        -v s="$((DURATION + WARMUP))" 'BEGIN { if (r > 0) printf "%.3f", c * 1e6 / (r * s); else print "n/a" }')
    echo "$label: $line broker_cpu_us_per_msg=$per_msg"
  done
done
