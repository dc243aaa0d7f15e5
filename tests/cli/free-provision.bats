#!/usr/bin/env bats
# ceso-mkvm and ceso-clone on a free-licensed ESXi host: reads over the API,
# writes over SSH (the simulator's real sshd + BusyBox ash; vim-cmd,
# vmkfstools as local clients). The API must see no write at all.

bats_require_minimum_version 1.5.0
load helpers/common
load helpers/interrupt

VALIDATE="/usr/bin/python3 $BATS_TEST_DIRNAME/helpers/validate_cloudinit.py"

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"golden","power":"off","disks_mib":[3,2],"nic":"vmxnet3","tags":["golden"]},
 {"name":"running","power":"on"}]
JSON
  sim_start -vms 0 -fill-mib 2 -vm-spec "$spec" -license free --ssh
  export CESO_SSH="root@127.0.0.1:$CESO_SIM_SSH_PORT" CESO_SSH_IDENTITY="$CESO_SIM_SSH_KEY"
  export CESO_SSH_HOST_KEY="$CESO_SIM_SSH_FINGERPRINT"
}

teardown_file() { sim_stop; }

setup() { "$SIMCTL" shim-fault >/dev/null; }

teardown() { other_stop "$BATS_TEST_TMPDIR/other"; }

# API writes seen by the simulator since the last reset (must stay 0 here).
api_writes() {
  "$SIMCTL" stats | jq '[.soap | to_entries[] | select(.key | test("Task$|MakeDirectory|Register|Unregister")) | .value] | add // 0'
}
local_count() { "$SIMCTL" stats | jq -r --arg m "$1" '.local_soap[$m] // 0'; }
sshd_logins() { grep -c 'Accepted publickey' "$CESO_SIM_STATE/ssh/sshd.log" || true; }

@test "free host: mkvm copies the disks over SSH, registers the .vmx, powers on; no API write" {
  sim_reset
  local logins
  logins=$(sshd_logins)
  run ceso-mkvm --from golden web01 --hostname web01 --ip 10.0.0.21/24 --gateway 10.0.0.1 \
    --cpus 2 --memory 2G --tag web --annotation 'made & "tested"'
  assert_status 0
  echo "$output" | jq -e '.type == "vm" and .name == "web01" and .changed == true and .power == "on"
    and .cpus == 2 and .memory_mib == 2048 and .tags == ["web"] and .source == "golden"
    and .guest_id == "ubuntu64Guest" and .vmx == "[LocalDS_0] web01/web01.vmx"'
  assert_eq "$(api_writes)" 0
  assert_eq "$(local_count CopyVirtualDisk_Task)" 2
  assert_eq "$(local_count RegisterVM_Task)" 1
  # one SSH login for the whole run
  assert_eq "$(($(sshd_logins) - logins))" 1
  for i in 0 1; do cmp "$(flat_of golden "$i")" "$(flat_of web01 "$i")"; done
  # the MAC the record names is the NIC's, and guestinfo is what cloud-init reads
  local mac
  mac=$(echo "$output" | jq -r '.macs[0]')
  ceso-info web01 | jq -e --arg m "$mac" '.nics[0].mac == $m and .annotation == "made & \"tested\""'
  ceso-info web01 | jq -c '{type:"guestinfo",name,guestinfo}' >"$BATS_TEST_TMPDIR/gi"
  run bash -c "$VALIDATE <'$BATS_TEST_TMPDIR/gi'"
  assert_status 0
  # the .vmx the host registered carries the same guestinfo
  grep -q '^guestinfo.metadata = "' "$(ds_file '[LocalDS_0] web01/web01.vmx')"
  # every change is audited and names the transport
  jq -e -s '[.[] | select(.tool == "ceso-mkvm" and .vm == "web01")] |
    (map(.operation) == ["MakeDirectory","CopyVirtualDisk_Task","CopyVirtualDisk_Task","CreateVM_Task","RegisterVM_Task","PowerOnVM_Task"])
    and all(.transport == "ssh") and all(.result == "ok")' "$XDG_STATE_HOME/ceso/audit.log"
}

@test "free host: --dry-run plans the SSH steps and changes nothing" {
  sim_reset
  run ceso-mkvm --from golden dry01 --dry-run
  assert_status 0
  echo "$output" | jq -e -s 'map(.operation) == ["MakeDirectory","CopyVirtualDisk_Task","CopyVirtualDisk_Task","CreateVM_Task","RegisterVM_Task","PowerOnVM_Task"]
    and all(.type == "plan")'
  echo "$output" | jq -e -s '.[1].params.command | test("^.vmkfstools. .-i. ./vmfs/volumes/LocalDS_0/golden/")'
  assert_eq "$(api_writes)" 0
  assert_eq "$(local_count CopyVirtualDisk_Task)" 0
  nothing_left dry01
}

@test "free host: a name that would leave the datastore folder is refused before any change" {
  sim_reset
  run ceso-mkvm --from golden --no-power-on ..
  assert_status 3
  assert_contains "$output" "'..' path components are not allowed"
  assert_eq "$(local_count CopyVirtualDisk_Task)" 0
  [ -d "$(sim_datastore_dir)/golden" ]
  run ceso-mkvm --from golden $'bad\nname'
  assert_status 2
  assert_eq "$(local_count Login)" 0
}

@test "free host: an existing folder is someone else's: refused, left as it is" {
  mkdir "$(sim_datastore_dir)/theirs"
  echo keep >"$(sim_datastore_dir)/theirs/file"
  run ceso-mkvm --from golden theirs --no-power-on
  assert_status 1
  assert_contains "$output" "exists already"
  assert_eq "$(cat "$(sim_datastore_dir)/theirs/file")" keep
  [ -z "$(ceso-ls --name theirs)" ]
  rm -rf "$(sim_datastore_dir)/theirs"
}

@test "free host: a failing vmkfstools rolls back: no folder, no VM" {
  "$SIMCTL" shim-fault 'vmkfstools -i FileLocked 1 Failed to lock the file (16392)'
  run ceso-mkvm --from golden fail01
  assert_status 1
  assert_contains "$output" "copying disk 1/2 failed"
  assert_contains "$output" "Failed to lock the file"
  assert_contains "$output" "rolled back"
  err=$output
  nothing_left fail01
}

@test "free host: a failing registervm rolls back: no folder, no VM" {
  "$SIMCTL" shim-fault 'vim-cmd solo/registervm SystemError 1'
  run ceso-mkvm --from golden fail02
  assert_status 1
  assert_contains "$output" "registering 'fail02' failed"
  err=$output
  nothing_left fail02
}

@test "free host: a failing power-on unregisters the new VM and removes its files" {
  "$SIMCTL" shim-fault 'vim-cmd vmsvc/power.on SystemError 1'
  run ceso-mkvm --from golden fail03
  assert_status 1
  assert_contains "$output" "powering on failed"
  assert_contains "$output" "rolled back: VM 'fail03', folder [LocalDS_0] fail03"
  err=$output
  nothing_left fail03
}

@test "free host: a transient ManagedObjectNotFound of vim-cmd is retried" {
  "$SIMCTL" shim-fault 'vim-cmd vmsvc/power.on ManagedObjectNotFound 1'
  run ceso-mkvm --from golden retry01
  assert_status 0
  ceso-info retry01 | jq -e '.power == "on"'
}

@test "free host: SIGINT while a disk is copied: the copy ends, then everything is rolled back" {
  # the local client's call (not the tool's): held, and waited for there
  sim_reset
  sim_fail '{"method":"CopyVirtualDisk_Task","stall_ms":3000}'
  ceso-mkvm --from golden int01 >/dev/null 2>"$BATS_TEST_TMPDIR/err" &
  pid=$!
  for _ in $(seq 400); do
    [ "$(local_count CopyVirtualDisk_Task)" -ge 1 ] && break
    sleep 0.05
  done
  kill -INT "$pid"
  rc=0
  wait "$pid" || rc=$?
  err=$(cat "$BATS_TEST_TMPDIR/err")
  sim_fail '{}'
  assert_eq "$rc" 130
  nothing_left int01
}

@test "free host: the host key is checked: a wrong pin and an unknown key are refused" {
  sim_reset
  run env CESO_SSH_HOST_KEY="SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" \
    ceso-mkvm --from golden key01
  assert_status 6
  assert_contains "$output" "$CESO_SIM_SSH_FINGERPRINT"
  run env -u CESO_SSH_HOST_KEY ceso-mkvm --from golden key01
  assert_status 6
  assert_contains "$output" "$CESO_SIM_SSH_FINGERPRINT"
  assert_eq "$(local_count Login)" 0
  err=$output
  nothing_left key01
}

@test "free host: without SSH access the API refuses the first write; nothing is left" {
  run env -u CESO_SSH ceso-mkvm --from golden nossh01
  assert_status 1
  assert_contains "$output" "RestrictedVersion"
  [ -z "$(ceso-ls --name nossh01)" ]
  run ceso-mkvm --transport ssh --from golden nossh01 --dry-run
  assert_status 0
  run env -u CESO_SSH ceso-mkvm --transport ssh --from golden nossh01
  assert_status 2
  assert_contains "$output" "CESO_SSH"
}

@test "free host: SSH access that leads to another host: mkvm and clone refused (exit 2), nothing on either host" {
  local other="$BATS_TEST_TMPDIR/other" log0
  other_start "$other" -vms 0 # a new host: no VM the old check could have compared
  sim_reset
  log0=$(ssh_commands_of "$other" | wc -l)
  env $(other_ssh "$other") ceso-mkvm --from golden wrong01 >"$BATS_TEST_TMPDIR/out" 2>&1 && rc=0 || rc=$?
  err=$(cat "$BATS_TEST_TMPDIR/out")
  assert_eq "$rc" 2
  assert_contains "$err" "does not lead to the host of"
  assert_contains "$err" "vim-cmd hostsvc/hostsummary over SSH"
  env $(other_ssh "$other") ceso-clone golden wrong02 --no-power-on >"$BATS_TEST_TMPDIR/out" 2>&1 && rc=0 || rc=$?
  err=$(cat "$BATS_TEST_TMPDIR/out")
  assert_eq "$rc" 2
  assert_contains "$err" "does not lead to the host of"
  assert_eq "$(api_writes)" 0
  assert_eq "$(local_count CopyVirtualDisk_Task)" 0
  for name in wrong01 wrong02; do
    nothing_left "$name"
    on_other "$other" nothing_left "$name"
  done
  assert_eq "$(ssh_commands_of "$other" "$log0")" "'vim-cmd' 'hostsvc/hostsummary'
'vim-cmd' 'hostsvc/hostsummary'"
  other_stop "$other"
}

@test "free host: clone with re-IP: new identity, new address, the source untouched" {
  run ceso-mkvm --from golden src01 --no-power-on --ip 10.0.0.30/24 --gateway 10.0.0.1 --encoding none
  assert_status 0
  local src_mac
  src_mac=$(echo "$output" | jq -r '.macs[0]')
  sim_reset
  run ceso-clone src01 copy01 --ip 10.0.0.31/24 --gateway 10.0.0.1 --no-power-on --encoding none
  assert_status 0
  echo "$output" | jq -e --arg m "$src_mac" '.name == "copy01" and .source == "src01" and .macs[0] != $m'
  assert_eq "$(api_writes)" 0
  for i in 0 1; do cmp "$(flat_of src01 "$i")" "$(flat_of copy01 "$i")"; done
  ceso-info copy01 | jq -c '{type:"guestinfo",name,guestinfo}' >"$BATS_TEST_TMPDIR/gi"
  run bash -c "$VALIDATE <'$BATS_TEST_TMPDIR/gi'"
  assert_status 0
  # re-IP: the clone's network config has its own address and MAC, not the source's
  ceso-info copy01 | jq -e --arg m "$src_mac" '.guestinfo | tostring | (contains("10.0.0.31")
    and (contains("10.0.0.30") | not) and (ascii_downcase | contains($m) | not))'
  ceso-info src01 | jq -e '.power == "off"'
}

@test "free host: clone refuses a running source (its disks are locked) and changes nothing" {
  run ceso-clone running copy02
  assert_status 1
  assert_contains "$output" "powered off"
  [ -z "$(ceso-ls --name copy02)" ]
}
