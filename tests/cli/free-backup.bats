#!/usr/bin/env bats
# ceso-backup (hot and cold) on a free-licensed ESXi host: the snapshot and
# power changes over SSH (vim-cmd), the disks read over the API session's
# /folder GET (allowed on a free licence); no API write at all.

load helpers/common

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"web01","power":"on","tools":"running"},
 {"name":"app01","power":"on","tools":"running"},
 {"name":"snap01","power":"on","tools":"running"},
 {"name":"db01","power":"off"}]
JSON
  sim_start -vms 0 -fill-mib 8 -vm-spec "$spec" -license free --ssh
  export CESO_SSH="root@127.0.0.1:$CESO_SIM_SSH_PORT" CESO_SSH_IDENTITY="$CESO_SIM_SSH_KEY"
  export CESO_SSH_HOST_KEY="$CESO_SIM_SSH_FINGERPRINT"
  export CESO_BACKUP_TARGET="file://$BATS_FILE_TMPDIR/target"
  mkdir -p "$BATS_FILE_TMPDIR/target"
}

teardown_file() { sim_stop; }

setup() {
  sim_reset
  sim_fail '{}'
  "$SIMCTL" shim-fault >/dev/null
}

target_dir() { echo "$BATS_FILE_TMPDIR/target"; }
snapshots_of() { ceso-info "$1" | jq -c '[.snapshots[].name]'; }
api_writes() {
  "$SIMCTL" stats | jq '[.soap | to_entries[] | select(.key | test("Task$|ShutdownGuest|RebootGuest")) | .value] | add // 0'
}
local_count() { "$SIMCTL" stats | jq -r --arg m "$1" '.local_soap[$m] // 0'; }

@test "free host: hot backup: snapshot over SSH, disks over /folder, snapshot removed; verify ok" {
  run ceso-backup --hot web01
  assert_status 0
  echo "$output" | jq -e '.backup.mode == "hot" and .name == "web01"'
  assert_eq "$(api_writes)" 0
  assert_eq "$(local_count CreateSnapshot_Task)" 1
  assert_eq "$(local_count RemoveSnapshot_Task)" 1
  assert_eq "$(snapshots_of web01)" '[]'
  local id
  id=$(echo "$output" | jq -r .backup.id)
  run ceso-backup verify "$id"
  assert_status 0
  jq -e -s --arg i "$id" '[.[] | select(.tool == "ceso-backup" and .vm == "web01")] | map(.operation) ==
    ["CreateSnapshot_Task","RemoveSnapshot_Task"] and all(.transport == "ssh")' \
    "$XDG_STATE_HOME/ceso/audit.log"
}

@test "free host: --cold shuts down through Tools over SSH and powers back on" {
  run ceso-backup --cold app01
  assert_status 0
  echo "$output" | jq -e '.backup.mode == "cold"'
  assert_eq "$(api_writes)" 0
  assert_eq "$(local_count ShutdownGuest)" 1
  assert_eq "$(local_count PowerOnVM_Task)" 1
  assert_eq "$(ceso-ls --name app01 | jq -r .power)" on
}

@test "free host: a powered-off VM is copied without snapshot or power change" {
  run ceso-backup db01
  assert_status 0
  assert_eq "$(local_count CreateSnapshot_Task)" 0
  assert_eq "$(local_count PowerOnVM_Task)" 0
}

@test "free host: --dry-run plans the same steps and changes nothing" {
  run ceso-backup --hot --dry-run web01
  assert_status 0
  echo "$output" | jq -e -s 'map(.operation) == ["CreateSnapshot_Task","Backup","RemoveSnapshot_Task"]'
  assert_eq "$(local_count CreateSnapshot_Task)" 0
}

@test "free host: a refused snapshot.create fails the run; nothing is listed complete" {
  local before
  before=$(ls "$(target_dir)" | wc -l)
  "$SIMCTL" shim-fault 'vim-cmd vmsvc/snapshot.create SystemError 1'
  run ceso-backup --hot web01
  assert_status 1
  assert_contains "$output" "SystemError"
  assert_eq "$(ls "$(target_dir)" | wc -l)" "$before"
  ceso-backup ls web01 | jq -e -s 'last | .status == "failed"'
  assert_eq "$(snapshots_of web01)" '[]'
}

@test "free host: a copy that keeps failing removes our snapshot and leaves nothing complete" {
  sim_fail '{"http":"GET /folder","path":"flat","status":503,"count":-1}'
  run ceso-backup --hot --retries 1 web01
  assert_status 1
  assert_contains "$output" "503"
  assert_eq "$(local_count CreateSnapshot_Task)" 1
  assert_eq "$(local_count RemoveSnapshot_Task)" 1
  assert_eq "$(snapshots_of web01)" '[]'
  for d in "$(target_dir)"/*/; do [ -f "$d/manifest.json" ]; done
  ceso-backup ls web01 | jq -e -s 'last | .status == "failed"'
}

@test "free host: the user's snapshot is never removed" {
  ssh -i "$CESO_SIM_SSH_KEY" -o UserKnownHostsFile="$CESO_SIM_SSH_KNOWN_HOSTS" \
    -p "$CESO_SIM_SSH_PORT" root@127.0.0.1 \
    "vim-cmd vmsvc/snapshot.create $(ceso-ls --name snap01 | jq -r .id) 'user snap' mine 0 0" >/dev/null
  assert_eq "$(snapshots_of snap01)" '["user snap"]'
  run ceso-backup --hot snap01
  assert_status 0
  assert_eq "$(local_count RemoveSnapshot_Task)" 1
  assert_eq "$(snapshots_of snap01)" '["user snap"]'
}

@test "free host: a wrong host key pin stops the run before any change" {
  run env CESO_SSH_HOST_KEY="SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" ceso-backup --hot web01
  assert_status 6
  assert_contains "$output" "$CESO_SIM_SSH_FINGERPRINT"
  assert_eq "$(local_count CreateSnapshot_Task)" 0
}

@test "free host: --cbt is refused before any change (change tracking needs API writes)" {
  before=$(ls "$(target_dir)" | wc -l)
  run ceso-backup --format 2 --cbt db01
  assert_status 1
  assert_contains "$output" "--cbt: this host's licence refuses API writes"
  assert_eq "$(api_writes)" 0
  assert_eq "$(local_count CreateSnapshot_Task)" 0
  [ "$(ls "$(target_dir)" | wc -l)" -eq "$before" ]
}
