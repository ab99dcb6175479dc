#!/usr/bin/env bash
# Installs the peers bench/broker_compare.py measures the Manager broker against:
# Redis (redis-server, and redis-benchmark from redis-tools). Only the benchmark uses
# them; the build and the tests never do. Non-interactive and idempotent.
set -euo pipefail
exec "$(dirname "$0")/setup-debian.sh" --only redis-server redis-tools
