#!/usr/bin/env bats
# Prometheus metrics (docs/metrics.md): every tool run adds to
# $CESO_METRICS_DIR/ceso.prom; a real prometheus-node-exporter (textfile
# collector, 127.0.0.1) scrapes it after a backup pipeline against the
# simulator. The structure of histograms is checked by
# helpers/check_prom.py (node_exporter would silently repair it), the names
# by promtool.

load helpers/common

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  # A name with quotes for the label escaping (the simulator refuses '\\'
  # and '/' in names; the unit tests cover '\\').
  cat >"$spec" <<'JSON'
[{"name":"web \"01\" & é","power":"on","tags":["web"],"tools":"running"},
 {"name":"db01","power":"off","tags":["db"]}]
JSON
  sim_start -vms 0 -fill-mib 2 -vm-spec "$spec"
  export CESO_BACKUP_TARGET="file://$BATS_FILE_TMPDIR/target"
  mkdir -p "$BATS_FILE_TMPDIR/target"
  export METRICS="$BATS_FILE_TMPDIR/textfile"
  mkdir -p "$METRICS"
  NE_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export NE_PORT
  prometheus-node-exporter --web.listen-address="127.0.0.1:$NE_PORT" \
    --collector.disable-defaults --collector.textfile \
    --collector.textfile.directory="$METRICS" \
    >"$BATS_FILE_TMPDIR/node-exporter.log" 2>&1 3>&- &
  echo $! >"$BATS_FILE_TMPDIR/node-exporter.pid"
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$NE_PORT/metrics" >/dev/null && return 0
    sleep 0.1
  done
  cat "$BATS_FILE_TMPDIR/node-exporter.log" >&2
  return 1
}

teardown_file() {
  [ -f "$BATS_FILE_TMPDIR/node-exporter.pid" ] && kill "$(cat "$BATS_FILE_TMPDIR/node-exporter.pid")" 2>/dev/null
  sim_stop
}

setup() {
  sim_reset
  rm -f "$METRICS"/ceso.prom* "$XDG_CONFIG_HOME/ceso/config"
  export CESO_METRICS_DIR="$METRICS"
  unset CESO_METRICS_VM_LABELS CESO_MODE
}

CHECK="$BATS_TEST_DIRNAME/helpers/check_prom.py"

scrape() { curl -sf "http://127.0.0.1:$NE_PORT/metrics"; }

# The value of one sample line in $1 (exposition text): series as written by ceso.
# (node_exporter writes large numbers as 2.097152e+06: printed back as integers.)
# (The series through the environment: awk -v would eat the backslashes of \".)
sample() { printf '%s\n' "$1" | S="$2" awk 'index($0, ENVIRON["S"] " ") == 1 { printf "%.10g\n", $NF }'; }

@test "a backup pipeline's metrics, scraped through node_exporter" {
  before=$(date +%s)
  out=$(ceso-ls --tag web | ceso-backup --hot)
  after=$(date +%s)
  raw=$(echo "$out" | jq -r .backup.bytes_raw)
  stored=$(echo "$out" | jq -r .backup.bytes_stored)
  [ "$raw" -gt 0 ] && [ "$stored" -gt 0 ]
  id=$(echo "$out" | jq -r .backup.id)
  run ceso-backup verify "$id"
  assert_status 0
  # Every family in one file: ceso writes nothing else there.
  assert_eq "$(cd "$METRICS" && ls -- *.prom)" "ceso.prom"
  run scrape
  assert_status 0
  m=$output
  # node_exporter read the file without complaint.
  assert_eq "$(sample "$m" node_textfile_scrape_error)" 0
  run "$CHECK" --only-prefix ceso_ --no-label vm \
    --family ceso_runs_total:counter --family ceso_run_duration_seconds:histogram \
    --family ceso_operations_total:counter --family ceso_operation_duration_seconds:histogram \
    --family ceso_changes_total:counter --family ceso_soap_round_trips_total:counter \
    --family ceso_soap_bytes_total:counter --family ceso_backup_bytes_total:counter \
    --family ceso_backups_total:counter --family ceso_backup_verifications_total:counter \
    --family ceso_backup_last_success_timestamp_seconds:gauge - <<<"$m"
  [ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
  # The values are the run's, not just present. (node_exporter sorts the labels and
  # gives the series of a family one label set: no verb is verb="".)
  assert_eq "$(sample "$m" 'ceso_backup_bytes_total{kind="raw"}')" "$raw"
  assert_eq "$(sample "$m" 'ceso_backup_bytes_total{kind="stored"}')" "$stored"
  assert_eq "$(sample "$m" 'ceso_backups_total{result="ok"}')" 1
  assert_eq "$(sample "$m" 'ceso_backup_verifications_total{result="ok"}')" 1
  assert_eq "$(sample "$m" 'ceso_runs_total{result="ok",tool="ceso-ls",verb=""}')" 1
  assert_eq "$(sample "$m" 'ceso_runs_total{result="ok",tool="ceso-backup",verb="create"}')" 1
  assert_eq "$(sample "$m" 'ceso_runs_total{result="ok",tool="ceso-backup",verb="verify"}')" 1
  assert_eq "$(sample "$m" 'ceso_changes_total{actor="human",result="ok",tool="ceso-backup"}')" 2
  assert_eq "$(sample "$m" 'ceso_operation_duration_seconds_count{operation="backup",tool="ceso-backup"}')" 1
  assert_eq "$(sample "$m" 'ceso_operation_duration_seconds_count{operation="CreateSnapshot_Task",tool="ceso-backup"}')" 1
  # SOAP round trips: exactly the calls the simulator saw, method by method.
  for method in $(sim_stats | jq -r '.soap | keys[]'); do
    ceso=$(printf '%s\n' "$m" | awk -v s="method=\"$method\"" \
      '/^ceso_soap_round_trips_total\{/ && index($0, s) { n += $NF } END { print n + 0 }')
    assert_eq "$method $ceso" "$method $(sim_count "$method")"
  done
  # The last success lies within the run (bounds, not a clock reading).
  ts=$(sample "$m" ceso_backup_last_success_timestamp_seconds)
  [ -n "$ts" ] && [ "$ts" -ge "$before" ] && [ "$ts" -le "$after" ]
  # promtool lints the names of ceso's own file.
  run promtool check metrics <"$METRICS/ceso.prom"
  assert_status 0
}

@test "verify results: ok, failed (a changed byte), error (no such backup)" {
  id=$(ceso-ls --name db01 | ceso-backup --hot | jq -r .backup.id)
  run ceso-backup verify "$id"
  assert_status 0
  # One byte of the stored disk changed: a mismatch.
  f=$(ls "$BATS_FILE_TMPDIR/target/$id/"*.zst | head -1)
  printf 'X' | dd of="$f" bs=1 seek=100 conv=notrunc status=none
  run ceso-backup verify "$id"
  assert_status 4
  run ceso-backup verify no-such-backup-id
  [ "$status" -ne 0 ]
  f=$(cat "$METRICS/ceso.prom")
  assert_eq "$(sample "$f" 'ceso_backup_verifications_total{result="ok"}')" 1
  assert_eq "$(sample "$f" 'ceso_backup_verifications_total{result="failed"}')" 1
  assert_eq "$(sample "$f" 'ceso_backup_verifications_total{result="error"}')" 1
  assert_eq "$(sample "$f" 'ceso_runs_total{result="partial",tool="ceso-backup",verb="verify"}')" 1
  assert_eq "$(sample "$f" 'ceso_operation_duration_seconds_count{operation="verify",tool="ceso-backup"}')" 3
  assert_eq "$(sample "$f" 'ceso_operations_total{operation="verify",result="failed",tool="ceso-backup"}')" 1
}

@test "counters accumulate across runs and concurrent pipelines; never go down" {
  ceso-ls >/dev/null
  first=$(sample "$(cat "$METRICS/ceso.prom")" 'ceso_runs_total{result="ok",tool="ceso-ls"}')
  assert_eq "$first" 1
  pids=()
  for _ in 1 2 3 4; do
    (ceso-ls | ceso-info >/dev/null) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  f=$(cat "$METRICS/ceso.prom")
  assert_eq "$(sample "$f" 'ceso_runs_total{result="ok",tool="ceso-ls"}')" 5
  assert_eq "$(sample "$f" 'ceso_runs_total{result="ok",tool="ceso-info"}')" 4
  assert_eq "$(sample "$f" 'ceso_run_duration_seconds_count{tool="ceso-ls"}')" 5
  assert_eq "$(sample "$f" 'ceso_run_duration_seconds_bucket{le="+Inf",tool="ceso-ls"}')" 5
  "$CHECK" "$METRICS/ceso.prom"
  # Round trips over all five ceso-ls and four ceso-info runs: what the simulator counted.
  total=$(printf '%s\n' "$f" | awk '/^ceso_soap_round_trips_total\{/ { n += $NF } END { print n }')
  assert_eq "$total" "$(sim_stats | jq '[.soap[]] | add')"
  # No temporary file is left.
  assert_eq "$(ls -A "$METRICS" | sort | tr '\n' ' ')" ".ceso.prom.lock ceso.prom "
}

@test "VM names are labels only when the operator opts in (environment or config)" {
  ceso-ls --name db01 | ceso-backup --hot >/dev/null
  run grep -c 'vm=' "$METRICS/ceso.prom"
  assert_eq "$output" 0
  rm -f "$METRICS/ceso.prom"
  mkdir -p "$XDG_CONFIG_HOME/ceso"
  printf 'metrics:\n  dir: %s\n  vm_labels: true\n' "$METRICS" >"$XDG_CONFIG_HOME/ceso/config"
  unset CESO_METRICS_DIR
  before=$(date +%s)
  ceso-ls --tag web | ceso-backup --hot >/dev/null
  after=$(date +%s)
  run scrape
  m=$output
  assert_eq "$(sample "$m" node_textfile_scrape_error)" 0
  # A name with quotes comes through node_exporter intact.
  ts=$(sample "$m" 'ceso_backup_last_success_timestamp_seconds{vm="web \"01\" & é"}')
  [ -n "$ts" ]
  ts=$(printf '%.0f' "$ts")
  [ "$ts" -ge "$before" ] && [ "$ts" -le "$after" ]
  "$CHECK" --only-prefix ceso_ - <<<"$m"
}

@test "refusals by actor: restricted mode is the agent, allow_hosts refuses a human" {
  run env CESO_MODE=restricted ceso-power on db01
  assert_status 5
  f=$(cat "$METRICS/ceso.prom")
  assert_eq "$(sample "$f" 'ceso_policy_refusals_total{actor="agent",tool="ceso-power"}')" 1
  assert_eq "$(sample "$f" 'ceso_changes_total{actor="agent",result="refused",tool="ceso-power"}')" 1
  assert_eq "$(sample "$f" 'ceso_runs_total{result="policy",tool="ceso-power",verb="on"}')" 1
  mkdir -p "$XDG_CONFIG_HOME/ceso"
  printf 'allow_hosts: [esxi.invalid]\n' >"$XDG_CONFIG_HOME/ceso/config"
  run ceso-ls
  assert_status 5
  f=$(cat "$METRICS/ceso.prom")
  assert_eq "$(sample "$f" 'ceso_policy_refusals_total{actor="human",tool="ceso-ls"}')" 1
  assert_eq "$(sample "$f" 'ceso_policy_refusals_total{actor="agent",tool="ceso-power"}')" 1
}

@test "promotions used: changes restricted mode let through under a signed promotion" {
  mkdir -p "$XDG_CONFIG_HOME/ceso" "$BATS_TEST_TMPDIR/op"
  ceso-audit keygen --out "$BATS_TEST_TMPDIR/op/key" >/dev/null
  printf 'promotion:\n  key: %s\n' "$BATS_TEST_TMPDIR/op/key.pub" >"$XDG_CONFIG_HOME/ceso/config"
  ep=$(ceso-ls --name db01 | jq -r .endpoint)
  ceso-audit promote --key "$BATS_TEST_TMPDIR/op/key" --endpoint "$ep" --reason metrics \
    --for 10min --allow 'power:db*' --out "$BATS_TEST_TMPDIR/t" >/dev/null
  run env CESO_MODE=restricted ceso-power on db01 --promotion "$BATS_TEST_TMPDIR/t"
  assert_status 0
  # Not covered by the token: refused, and not a use.
  run env CESO_MODE=restricted ceso-power off "web \"01\" & é" --promotion "$BATS_TEST_TMPDIR/t"
  assert_status 5
  # Covered, a no-op (already on): no change, no use.
  run env CESO_MODE=restricted ceso-power on db01 --promotion "$BATS_TEST_TMPDIR/t"
  assert_status 0
  run env CESO_MODE=restricted ceso-power off db01 --promotion "$BATS_TEST_TMPDIR/t"
  assert_status 0
  f=$(cat "$METRICS/ceso.prom")
  assert_eq "$(sample "$f" 'ceso_promotions_used_total{tool="ceso-power"}')" 2
  assert_eq "$(sample "$f" 'ceso_changes_total{actor="agent",result="ok",tool="ceso-power"}')" 2
  assert_eq "$(sample "$f" 'ceso_policy_refusals_total{actor="agent",tool="ceso-power"}')" 1
  "$CHECK" "$METRICS/ceso.prom"
}

@test "a broken metrics file or directory is reported; the exit status stands" {
  printf 'ceso_runs_total{tool="x" 1\n' >"$METRICS/ceso.prom"
  run ceso-ls
  assert_status 0
  assert_contains "$output" "ceso.prom.corrupt"
  assert_eq "$(cat "$METRICS/ceso.prom.corrupt")" 'ceso_runs_total{tool="x" 1'
  "$CHECK" "$METRICS/ceso.prom"
  CESO_METRICS_DIR="$BATS_TEST_TMPDIR/missing" run ceso-ls
  assert_status 0
  assert_contains "$output" "metrics not written: metrics directory '$BATS_TEST_TMPDIR/missing'"
  CESO_METRICS_DIR=relative/dir run ceso-ls
  assert_status 0
  assert_contains "$output" "CESO_METRICS_DIR: 'relative/dir' is not an absolute path"
}

@test "the checker refuses malformed histograms that node_exporter would repair" {
  good='# TYPE h_seconds histogram
h_seconds_bucket{le="1"} 1
h_seconds_bucket{le="+Inf"} 2
h_seconds_sum 3
h_seconds_count 2'
  "$CHECK" - <<<"$good"
  run "$CHECK" - <<<"$(sed 's/le="1"} 1/le="1"} 5/' <<<"$good")"
  assert_status 1
  assert_contains "$output" "not cumulative"
  run "$CHECK" - <<<"$(sed 's/_count 2/_count 3/' <<<"$good")"
  assert_status 1
  assert_contains "$output" "_count"
  run "$CHECK" - <<<"$(grep -v Inf <<<"$good")"
  assert_status 1
  assert_contains "$output" "+Inf"
  run "$CHECK" - <<<"$(grep -v _sum <<<"$good")"
  assert_status 1
  assert_contains "$output" "no _sum"
  run "$CHECK" - <<<"$good 1700000000"
  assert_status 1
  assert_contains "$output" "timestamp"
}
