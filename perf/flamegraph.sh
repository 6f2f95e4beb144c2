#!/usr/bin/env bash
# Records a running Kelp broker with `perf record -g` while a kelp-bench
# scenario runs against it, and turns the samples into a flame graph SVG.
#
#   perf/flamegraph.sh SCENARIO [OUT_DIR] [-- extra kelp-bench flags]
#
# SCENARIO is a name from bench-harness/scenarios (produce-100b, ...).
# It builds kelp and kelp-bench in release mode (with debug symbols), starts
# a broker on 127.0.0.1:19092 with a fresh data directory, runs the
# scenario, and writes OUT_DIR/<scenario>.perf.data, <scenario>.folded and
# <scenario>-flamegraph.svg (default OUT_DIR: target/perf).
# Needs perf (Debian: linux-perf) and inferno (installed with cargo if missing).
source "$(dirname "$0")/broker.sh" "$@"
if ! command -v inferno-flamegraph >/dev/null; then
    cargo install --locked inferno
fi

# The whole run is recorded, warm-up included.
perf record -F 999 -g --call-graph dwarf,16384 -p $broker -o "$out/$scenario.perf.data" &
recorder=$!
run_scenario
kill -INT $recorder
wait $recorder || true

perf script -i "$out/$scenario.perf.data" 2>/dev/null | inferno-collapse-perf > "$out/$scenario.folded"
inferno-flamegraph --title "kelp broker: $scenario" < "$out/$scenario.folded" > "$out/$scenario-flamegraph.svg"
echo "flame graph: $out/$scenario-flamegraph.svg"
