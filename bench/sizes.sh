#!/usr/bin/env bash
# Builds the smallest real SQLite-only and PostgreSQL-only fiberauth apps
# (internal/sizeapp) and prints their binary sizes, and whether each links
# the other's driver.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for app in sqlite postgres; do
  go build -o "$out/$app" "./internal/sizeapp/$app"
  size=$(stat -c %s "$out/$app")
  drivers=$(go version -m "$out/$app" | awk '$1 == "dep" && ($2 ~ /pgx/ || $2 ~ /modernc.org\/sqlite/) {print $2}' | paste -sd, -)
  printf "%-9s %10d bytes (%s MB)  drivers: %s\n" "$app" "$size" "$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }')" "$drivers"
done
