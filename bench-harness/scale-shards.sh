#!/bin/bash
# Shard scaling: a fixed load generator ($PRODUCERS producers, default 8,
# one per harness core; 16 partitions; 100-byte records; acks=1) against
# Kelp with 1, 2, 4 and 8 shards, one fresh broker each. Extra kelp-bench
# flags in $EXTRA (e.g. EXTRA="--batch-size 4096"). Results in $OUT
# (default target/scale). Needs a machine with 16 or more cores.
#
#   cargo build --release -p kelp-broker -p kelp-bench
#   PRODUCERS=12 EXTRA="--batch-size 4096" bench-harness/scale-shards.sh
set -u
cd "$(dirname "$0")/.."
B=${BIN:-target/release}
OUT=${OUT:-target/scale}
mkdir -p "$OUT"
echo "nproc=$(nproc) memlock=$(ulimit -l) kernel=$(uname -r)"
for n in 1 2 4 8; do
  data=$(mktemp -d -p "$PWD/target")
  $B/kelp start --cores $n --listen 127.0.0.1:19092 --advertised 127.0.0.1:19092 --data-dir "$data" > "$OUT/broker-$n.log" 2>&1 &
  pid=$!
  sleep 2
  timeout 60 $B/kelp-bench --bootstrap 127.0.0.1:19092 --scenario bench-harness/scenarios/produce-100b.toml \
     --topic scale-$n --partitions 16 --producers ${PRODUCERS:-8} --harness-cores ${PRODUCERS:-8} \
     --duration 15 --warmup 3 ${EXTRA:-} --out "$OUT/n$n" > "$OUT/bench-$n.txt" 2>&1
  echo "shards=$n $(tail -1 "$OUT/bench-$n.txt")"
  kill -TERM $pid; wait $pid
  rm -rf "$data"
done
