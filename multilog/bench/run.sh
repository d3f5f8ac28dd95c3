#!/bin/sh
# Build multilog, tai64n and tai64nlocal in release mode and run the shared
# side-by-side benchmark against Debian's daemontools (with svlogd and s6-log
# as anchors). Results: multilog/BENCHMARKS.md records a run.
#   usage: multilog/bench/run.sh   (from the workspace root)
set -e
target=${CARGO_TARGET_DIR:-target}
cargo build --release -p multilog
exec /work/shared/bench/multilog.sh /usr/bin "$target/release"
