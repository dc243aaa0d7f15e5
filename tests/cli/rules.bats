#!/usr/bin/env bats
# Rules every tool shares (ceso(7)), checked in several tools at once:
# an unrecorded change is exit 1; read-only tools stop at once on SIGINT;
# number options refuse what no host takes, before any call.

bats_require_minimum_version 1.5.0
load helpers/common
load helpers/interrupt

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"golden","power":"off","disks_mib":[1]},
 {"name":"a1","power":"off"},{"name":"a2","power":"off"},{"name":"a3","power":"off"},
 {"name":"a4","power":"off"},{"name":"a5","power":"off"},{"name":"a6","power":"off"},
 {"name":"bk1","power":"on"},
 {"name":"r1","power":"off","tools":"running","ip":"192.0.2.7"}]
JSON
  sim_start -vms 0 -vm-spec "$spec"
  export CESO_BACKUP_TARGET="file://$BATS_FILE_TMPDIR/target"
  mkdir -p "$BATS_FILE_TMPDIR/target"
}

teardown_file() { sim_stop; }

setup() { sim_fail '{}'; }

# ------------------------------------------------------------------ audit rule

# Runs a tool whose audit log opens but cannot grow: the file size limit is
# the log's size and SIGXFSZ is ignored, so the gate's up-front check passes
# and each append fails (EFBIG) after its change was made.
run_unaudited() {
  export CESO_AUDIT_LOG="$BATS_TEST_TMPDIR/audit.log"
  { head -c $(((4 << 20) - 1)) /dev/zero | tr '\0' ' '; echo; } >"$CESO_AUDIT_LOG"
  run --separate-stderr bash -c 'trap "" XFSZ; ulimit -f 4096; exec "$@"' _ "$@"
  [ "$(stat -c %s "$CESO_AUDIT_LOG")" -eq $((4 << 20)) ]
}

assert_unrecorded() {  # N: the message of the rule, once, naming N changes
  assert_status 1
  assert_contains "$stderr" "the audit log misses"
  assert_contains "$stderr" "$1 made but not recorded in the audit log"
}

power_of() { ceso-ls --name "$1" | jq -r .power; }

@test "audit rule: ceso-power, ceso-set, ceso-snap, ceso-rm exit 1 after an unrecorded change" {
  run_unaudited ceso-power on a1
  assert_unrecorded "1 change was"
  assert_eq "$(power_of a1)" on
  run_unaudited ceso-set a2 --cpus 2
  assert_unrecorded "1 change was"
  assert_eq "$(ceso-ls --name a2 | jq .cpus)" 2
  run_unaudited ceso-snap create --name s1 a3
  assert_unrecorded "1 change was"
  assert_eq "$(ceso-info a3 | jq -c '[.snapshots[].name]')" '["s1"]'
  run_unaudited ceso-rm --yes a4
  assert_unrecorded "1 change was"
  assert_eq "$(ceso-ls --name a4)" ""
}

@test "audit rule: ceso-mkvm and ceso-backup exit 1 after unrecorded changes" {
  run_unaudited ceso-mkvm --from golden m1 --no-power-on
  assert_unrecorded "changes were"
  assert_eq "$(ceso-ls --name m1 | jq -r .name)" m1
  run_unaudited ceso-backup --hot bk1
  assert_unrecorded "changes were"
  assert_eq "$(ceso-backup ls -o vm | jq -r .vm)" bk1
}

@test "audit rule: ceso-restore exits 1 after unrecorded changes (the frame's rule)" {
  CESO_AUDIT_LOG="$BATS_TEST_TMPDIR/ok.log" ceso-backup --hot bk1 >/dev/null
  id=$(ceso-backup ls -o id,vm | jq -r 'select(.vm == "bk1") | .id' | tail -1)
  run_unaudited ceso-restore "$id" --as bk1-restored
  assert_unrecorded "changes were"
  assert_eq "$(ceso-ls --name bk1-restored | jq -r .name)" bk1-restored
}

@test "audit rule: a partial run (exit 4) with an unrecorded change is exit 1 too" {
  run_unaudited ceso-power on a5 nosuchvm
  assert_unrecorded "1 change was"
  assert_contains "$stderr" "no VM named 'nosuchvm'"
  assert_eq "$(power_of a5)" on
}

@test "audit rule: a log that cannot be opened stops the tool before any change" {
  mkdir -p "$BATS_TEST_TMPDIR/log-dir"
  sim_reset
  CESO_AUDIT_LOG="$BATS_TEST_TMPDIR/log-dir" run --separate-stderr ceso-power on a6
  assert_status 1
  assert_contains "$stderr" "cannot open audit log"
  assert_eq "$(sim_count PowerOnVM_Task)" 0
  assert_eq "$(power_of a6)" off
}

# ------------------------------------------------------- read-only tools and SIGINT

@test "SIGINT: ceso-ls, ceso-info, ceso-wait, ceso-template check, ceso-snap ls stop at once while the host hangs" {
  interrupt_read RetrievePropertiesEx ceso-ls
  assert_eq "$rc" 130
  assert_contains "$err" "interrupted"
  interrupt_read RetrievePropertiesEx ceso-info r1
  assert_eq "$rc" 130
  interrupt_read RetrievePropertiesEx ceso-wait --for on r1
  assert_eq "$rc" 130
  interrupt_read RetrievePropertiesEx ceso-template check r1
  assert_eq "$rc" 130
  interrupt_read RetrievePropertiesEx ceso-snap ls r1
  assert_eq "$rc" 130
}

@test "SIGINT: records from stdin, a read-only tool still exits 130 (not 4) after some were done" {
  ceso-ls >/dev/null
  run bash -c 'printf "%s\n" "{\"type\":\"vm\",\"name\":\"r1\"}" "{\"type\":\"vm\",\"name\":\"r1\"}" |
    ceso-info >/dev/null'
  assert_status 0
  interrupt_read RetrievePropertiesEx ceso-info r1 r1
  assert_eq "$rc" 130
}

@test "SIGINT: a change in flight is still answered first (ceso-power), then exit 130" {
  export CESO_AUDIT_LOG="$BATS_TEST_TMPDIR/audit.log"
  sim_reset
  sim_fail '{"method":"PowerOnVM_Task","stall_ms":2000}'
  ceso-power on golden >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
  pid=$!
  for _ in $(seq 200); do
    [ "$(sim_count PowerOnVM_Task)" -ge 1 ] && break
    sleep 0.05
  done
  kill -INT "$pid"
  rc=0
  wait "$pid" || rc=$?
  assert_eq "$rc" 130
  # The call was not cut: its result is known, printed and audited as done.
  jq -e '.name == "golden" and .changed == true' "$BATS_TEST_TMPDIR/out"
  jq -e '.operation == "PowerOnVM_Task" and .result == "ok"' "$CESO_AUDIT_LOG"
  ceso-power off golden >/dev/null
}

# ------------------------------------------------------------------ numbers

# TOOL ARGS… must be refused with exit 2, naming the option and the value,
# before any call to the host.
refused_number() {
  local option=$1 value=$2
  shift 2
  sim_reset
  run --separate-stderr "$@"
  assert_status 2
  assert_contains "$stderr" "$option: '$value'"
  assert_eq "$(sim_stats | jq .soap_total)" 0
}

@test "sizes: --memory and --disk-grow refuse overflow, signs, hex, exponents, blanks, empty" {
  for v in 99999999999999G 25T 24577G -4G +4G -0 0 1e3 0x100 ' 4G' '4G ' '' 4.5G 3 nan inf; do
    refused_number --memory "$v" ceso-set a1 --memory "$v"
    refused_number --memory "$v" ceso-mkvm --from golden n1 --memory "$v"
  done
  for v in 99999999999999999999G 63T +63T 64512G ++1G +-1G -1G 0 +0 1e3 0x10 ' 1G' '' nan; do
    refused_number --disk-grow "$v" ceso-set a1 --disk-grow "$v"
    refused_number --disk-grow "$v" ceso-clone golden n1 --disk-grow "$v"
  done
}

@test "counts: --cpus, --jobs, --timeout refuse 0/769 CPUs, signs, hex, exponents, blanks" {
  for v in 0 769 -1 -0 +2 0x2 2e0 ' 2' '2 ' '' 99999999999999999999; do
    refused_number --cpus "$v" ceso-set a1 --cpus "$v"
    refused_number --cpus "$v" ceso-mkvm --from golden n1 --cpus "$v"
  done
  for v in 0 -1 +4 0x4 '' 65; do refused_number --jobs "$v" ceso-power on -j "$v" a1; done
  for v in -1 +5 5s 1e2 ''; do refused_number --timeout "$v" ceso-wait --for on --timeout "$v" a1; done
}

@test "rates: ceso-backup --limit-rate refuses nan, inf, negative, zero, fractions, overflow" {
  for v in nan inf -inf -1M 0 0K 1.5M 1e6 0x100 ' 1M' '' 99999999999999999999G 2T; do
    refused_number --limit-rate "$v" ceso-backup --hot --limit-rate "$v" bk1
  done
}
