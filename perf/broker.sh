# Sourced by the perf scripts: parses SCENARIO [OUT_DIR] [-- kelp-bench
# flags], builds kelp and kelp-bench in release mode (with debug symbols),
# and starts a broker on 127.0.0.1:19092 with a fresh data directory,
# stopped and removed when the script exits. Sets scenario, out, broker,
# port and bench_flags.
set -euo pipefail

scenario=${1:?usage: $0 SCENARIO [OUT_DIR] [-- kelp-bench flags]}
shift
out=${1:-target/perf}
[[ $# -gt 0 && $1 != "--" ]] && shift
[[ ${1:-} == "--" ]] && shift
bench_flags=("$@")
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p "$out"
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }

cargo build --release -p kelp-broker -p kelp-bench
data=$(mktemp -d -p "$PWD/target")
port=19092
./target/release/kelp start --listen 127.0.0.1:$port --advertised 127.0.0.1:$port \
    --data-dir "$data" > "$out/$scenario-broker.log" 2>&1 &
broker=$!
trap 'kill -TERM $broker 2>/dev/null; wait $broker 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.1
done

# Runs the scenario against the broker, output to the terminal and a file.
run_scenario() {
    ./target/release/kelp-bench --bootstrap 127.0.0.1:$port \
        --scenario "bench-harness/scenarios/$scenario.toml" --out "$out" \
        "${bench_flags[@]}" | tee "$out/$scenario.txt"
}
