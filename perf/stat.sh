#!/usr/bin/env bash
# Counts what a Kelp broker spends per message while a kelp-bench scenario
# runs: `perf stat` on the broker process, divided by the messages the
# harness reports.
#
#   perf/stat.sh SCENARIO [OUT_DIR] [-- extra kelp-bench flags]
#
# Hardware counters (cycles, instructions) are used where the machine has
# them; on virtual machines without a PMU, perf falls back to software
# counters (task-clock, context switches, page faults) and this prints
# those per message. For a stable instruction count per message use
# `valgrind --tool=callgrind` on a short run (see perf/README.md).
source "$(dirname "$0")/broker.sh" "$@"

events=task-clock,context-switches,cpu-migrations,page-faults,cycles,instructions,syscalls:sys_enter_io_uring_enter
perf stat -x, -e "$events" -p $broker -o "$out/$scenario.stat" 2>/dev/null &
stat=$!
run_scenario
kill -INT $stat
wait $stat || true

# perf counted the whole run, so divide by every message of it, warm-up
# included (the JSON's messages_whole_run).
messages=$(python3 -c "import json; print(json.load(open('$out/$scenario.json'))['messages_whole_run'])")
echo "per message ($messages messages, warm-up included):"
awk -F, -v n="$messages" '$1 ~ /^[0-9.]+$/ && $3 != "" { printf "  %-45s %14.6f %s\n", $3, $1 / n, $2 }' "$out/$scenario.stat"
