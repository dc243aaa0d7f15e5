#!/usr/bin/env bats
# ceso-restore onto a free-licensed ESXi host: the backup was made there
# (snapshot-free, cold), the restore reads over the API and writes over SSH:
# mkdir, each file streamed through the channel into a temporary name and
# renamed, the .vmx and vim-cmd solo/registervm. No API write and no /folder
# upload at all; failures and interruptions in the middle of a stream leave
# nothing behind.

bats_require_minimum_version 1.5.0
load helpers/common
load helpers/interrupt

VALIDATE="/usr/bin/python3 $BATS_TEST_DIRNAME/helpers/validate_cloudinit.py"

setup_file() {
  cat >"$BATS_FILE_TMPDIR/vms.json" <<'JSON'
[{"name":"golden","power":"off","disks_mib":[6,3],"nic":"vmxnet3"}]
JSON
  sim_start -vms 0 -fill-mib 6 -vm-spec "$BATS_FILE_TMPDIR/vms.json" -license free --ssh
  export CESO_SSH="root@127.0.0.1:$CESO_SIM_SSH_PORT" CESO_SSH_IDENTITY="$CESO_SIM_SSH_KEY"
  export CESO_SSH_HOST_KEY="$CESO_SIM_SSH_FINGERPRINT"
  export CESO_BACKUP_TARGET="file://$BATS_FILE_TMPDIR/target"
  mkdir -p "$BATS_FILE_TMPDIR/target"
  # made over SSH too: a cloud-init VM whose network matches its NIC by MAC
  ceso-mkvm --from golden app01 --ip 192.0.2.10/24 --gateway 192.0.2.1 --mac 00:50:56:01:02:03 \
    --package htop --tag app --no-power-on >/dev/null
  ceso-backup app01 | jq -r .backup.id >"$BATS_FILE_TMPDIR/id"
}

teardown_file() { sim_stop; }

setup() {
  sim_reset
  sim_fail '{}'
  "$SIMCTL" shim-fault >/dev/null
  rm -f "$CESO_SIM_STATE/ssh/fsize" "$CESO_SIM_STATE/ssh/hold"
}

teardown() {
  rm -f "$CESO_SIM_STATE/ssh/fsize" "$CESO_SIM_STATE/ssh/hold"
  other_stop "$BATS_TEST_TMPDIR/other"
}

backup_id() { cat "$BATS_FILE_TMPDIR/id"; }
api_writes() {
  "$SIMCTL" stats | jq '[.soap | to_entries[] | select(.key | test("Task$|MakeDirectory|Register|Unregister")) | .value] | add // 0'
}
http_count() { sim_stats | jq -r --arg k "$1" '.http[$k] // 0'; }
local_count() { "$SIMCTL" stats | jq -r --arg m "$1" '.local_soap[$m] // 0'; }
ssh_commands() { wc -l <"$CESO_SIM_STATE/ssh/commands.log"; }
validate() { ceso-info "$1" | jq -c '{type:"guestinfo",name,guestinfo}' | $VALIDATE; }
# Size of a file in the datastore folder DIR whose name ends in .ceso-tmp (0: none yet).
tmp_size() {
  local f
  for f in "$(sim_datastore_dir)/$1"/.*.ceso-tmp; do
    [ -f "$f" ] && { stat -c %s "$f"; return; }
  done
  echo 0
}
# Waits (20 s at most) until the run streams into DIR and has sent BYTES there.
wait_streaming() {
  for _ in $(seq 400); do
    [ "$(tmp_size "$1")" -ge "$2" ] && return 0
    sleep 0.05
  done
  echo "no stream into $1 reached $2 bytes" >&2
  return 1
}
# The processes that hold a temporary file of DIR open (the host's `cat`),
# found by their open files, never by name.
writers_of() {
  local fd
  for fd in /proc/[0-9]*/fd/*; do
    case "$(readlink "$fd" 2>/dev/null)" in */"$1"/.*.ceso-tmp) echo "${fd#/proc/}" | cut -d/ -f1 ;; esac
  done | sort -u
}

# Every process below PID (by parent ids).
descendants() {
  local s p pp kids
  kids=$(for s in /proc/[0-9]*/stat; do
    read -r p _ _ pp _ <"$s" 2>/dev/null && [ "$pp" = "$1" ] && echo "$p"
  done)
  for p in $kids; do
    echo "$p"
    descendants "$p"
  done
}

@test "free host: restore with a new identity and re-IP: disks byte-equal, no API write" {
  id=$(backup_id)
  run ceso-restore "$id" --as app02 --ip 192.0.2.20/24 --gateway 192.0.2.1
  assert_status 0
  echo "$output" | jq -e --arg id "$id" '.name == "app02" and .restored_from == $id
    and .changed == true and .tags == ["app"] and .power == "off" and .replaced == null'
  assert_eq "$(api_writes)" 0
  assert_eq "$(http_count 'PUT /folder')" 0
  assert_eq "$(local_count RegisterVM_Task)" 1
  # every disk, through zstd, the SSH stream and the descriptor rewrite; the
  # NVRAM after registering (the last upload)
  for i in 0 1; do cmp "$(flat_of app01 $i)" "$(flat_of app02 $i)"; done
  grep -q '^RW [0-9]* VMFS "app02-flat.vmdk"' "$(ds_file '[LocalDS_0] app02/app02.vmdk')"
  [ -z "$(ls -A "$(sim_datastore_dir)/app02" | grep ceso-tmp)" ]
  [ "$(ceso-info app01 | jq -r .uuid)" != "$(ceso-info app02 | jq -r .uuid)" ]
  old_mac=$(ceso-info app01 | jq -r '.nics[0].mac')
  new_mac=$(ceso-info app02 | jq -r '.nics[0].mac')
  [ "$old_mac" != "$new_mac" ]
  assert_eq "$(echo "$output" | jq -r '.macs[0]')" "$new_mac"
  run validate app02
  assert_status 0
  echo "$output" | jq -e '.local_hostname == "app02" and .addresses == ["192.0.2.20/24"]
    and .userdata.packages == ["htop"]'
  [ "$(echo "$output" | jq -r .instance_id)" != "$(validate app01 | jq -r .instance_id)" ]
  jq -e -s '[.[] | select(.tool == "ceso-restore" and .vm == "app02")] |
    (map(.operation) == ["MakeDirectory","UploadDatastoreFile","UploadDatastoreFile",
      "UploadDatastoreFile","UploadDatastoreFile","CreateVM_Task","RegisterVM_Task",
      "UploadDatastoreFile"])
    and all(.transport == "ssh") and all(.result == "ok")' "$XDG_STATE_HOME/ceso/audit.log"
}

@test "free host: restore under the old name with --power-on keeps the address on the new MAC" {
  ceso-rm --yes app01 >/dev/null
  run ceso-restore "$(backup_id)" --power-on
  assert_status 0
  echo "$output" | jq -e '.name == "app01" and .power == "on"'
  assert_eq "$(api_writes)" 0
  mac=$(ceso-info app01 | jq -r '.nics[0].mac')
  [ "$mac" != 00:50:56:01:02:03 ]
  run validate app01
  assert_status 0
  echo "$output" | jq -e --arg m "$mac" '.addresses == ["192.0.2.10/24"] and .network.ethernets.eth0.match.macaddress == $m'
}

@test "free host: --dry-run plans the SSH steps and connects to nothing" {
  before=$(ssh_commands)
  run ceso-restore "$(backup_id)" --as app03 --dry-run
  assert_status 0
  echo "$output" | jq -s -e '[.[].operation] == ["MakeDirectory", "UploadDatastoreFile",
    "UploadDatastoreFile", "UploadDatastoreFile", "UploadDatastoreFile", "CreateVM_Task",
    "RegisterVM_Task"] and all(.type == "plan")'
  echo "$output" | jq -s -e '.[1].params.command | test("^.sh. .-c. .set -C && cat >")'
  assert_eq "$(ssh_commands)" "$before"
  assert_eq "$(api_writes)" 0
  nothing_left app03
}

@test "free host: a name in use is refused, --replace too; nothing is made" {
  before=$(ssh_commands)
  run ceso-restore "$(backup_id)" --as app01
  assert_status 1
  assert_contains "$output" "already exists"
  run ceso-restore "$(backup_id)" --as app01 --replace
  assert_status 1
  assert_contains "$output" "--replace is not supported over SSH"
  assert_eq "$(ssh_commands)" "$before"
  assert_eq "$(ceso-ls --name app01 | wc -l)" 1
}

@test "free host: a full datastore in the middle of a disk rolls everything back" {
  echo $((1024 * 1024)) >"$CESO_SIM_STATE/ssh/fsize"
  run ceso-restore "$(backup_id)" --as app05
  assert_status 1
  assert_contains "$output" "File too large"
  assert_contains "$output" "rolled back"
  err=$output
  nothing_left app05
  assert_eq "$(api_writes)" 0
}

@test "free host: SIGINT in the middle of a stream: exit 130, nothing left" {
  echo $((1024 * 1024)) >"$CESO_SIM_STATE/ssh/hold"
  ceso-restore "$(backup_id)" --as app06 >/dev/null 2>"$BATS_TEST_TMPDIR/err" &
  pid=$!
  wait_streaming app06 $((1024 * 1024))
  kill -INT "$pid"
  rm -f "$CESO_SIM_STATE/ssh/hold"
  rc=0
  wait "$pid" || rc=$?
  err=$(cat "$BATS_TEST_TMPDIR/err")
  assert_eq "$rc" 130
  nothing_left app06
}

@test "free host: the host's side of a stream killed: the run fails, nothing left" {
  echo $((1024 * 1024)) >"$CESO_SIM_STATE/ssh/hold"
  ceso-restore "$(backup_id)" --as app07 >/dev/null 2>"$BATS_TEST_TMPDIR/err" &
  pid=$!
  wait_streaming app07 $((1024 * 1024))
  pids=$(writers_of app07)
  [ -n "$pids" ]
  kill -KILL $pids
  rm -f "$CESO_SIM_STATE/ssh/hold"
  rc=0
  wait "$pid" || rc=$?
  err=$(cat "$BATS_TEST_TMPDIR/err")
  assert_eq "$rc" 1
  assert_contains "$err" "rolled back"
  nothing_left app07
}

@test "free host: the SSH connection cut in the middle of a stream: rolled back over a new one" {
  before=$(ssh_commands)
  echo $((1024 * 1024)) >"$CESO_SIM_STATE/ssh/hold"
  ceso-restore "$(backup_id)" --as app09 >/dev/null 2>"$BATS_TEST_TMPDIR/err" &
  pid=$!
  wait_streaming app09 $((1024 * 1024))
  # the simulator's sshd serves each connection from processes below its
  # own (monitor, session): the only connection now is the restore's
  conns=$(descendants "$(cat "$CESO_SIM_STATE/ssh/pid")")
  [ -n "$conns" ]
  kill -KILL $conns
  rc=0
  wait "$pid" || rc=$?
  rm -f "$CESO_SIM_STATE/ssh/hold"
  err=$(cat "$BATS_TEST_TMPDIR/err")
  assert_eq "$rc" 1
  assert_contains "$err" "rolled back: folder [LocalDS_0] app09"
  nothing_left app09
  # the new connection proved again that it reaches this host before the rollback ran
  assert_eq "$(ssh_commands_of "$CESO_SIM_STATE" "$before" | grep -c "^'vim-cmd' 'hostsvc/hostsummary'")" 2
}

@test "free host: SSH access that leads to another host: restore refused (exit 2), nothing on either host" {
  local other="$BATS_TEST_TMPDIR/other" log0
  other_start "$other" -vms 0
  log0=$(ssh_commands_of "$other" | wc -l)
  before=$(ssh_commands)
  env $(other_ssh "$other") ceso-restore "$(backup_id)" --as app10 >"$BATS_TEST_TMPDIR/out" 2>&1 && rc=0 || rc=$?
  err=$(cat "$BATS_TEST_TMPDIR/out")
  assert_eq "$rc" 2
  assert_contains "$err" "does not lead to the host of"
  assert_contains "$err" "check \`ssh:\` (or CESO_SSH)"
  nothing_left app10
  on_other "$other" nothing_left app10
  assert_eq "$(api_writes)" 0
  assert_eq "$(http_count 'PUT /folder')" 0
  assert_eq "$(ssh_commands)" "$before"
  assert_eq "$(ssh_commands_of "$other" "$log0")" "'vim-cmd' 'hostsvc/hostsummary'"
  other_stop "$other"
}

@test "free host: a damaged disk in the backup fails its stream and rolls back" {
  id=$(backup_id)
  copy="$BATS_FILE_TMPDIR/target/damaged"
  rm -rf "$copy" && cp -r "$BATS_FILE_TMPDIR/target/$id" "$copy"
  jq '.id = "damaged"' "$copy/manifest.json" >"$copy/m" && mv "$copy/m" "$copy/manifest.json"
  f=$(jq -r '.files[] | select(.kind == "extent" and .disk == 0) | .name' "$copy/manifest.json")
  # a flipped byte of the same size: found while streaming it
  size=$(stat -c %s "$copy/$f")
  printf '\x5a' | dd of="$copy/$f" bs=1 seek=$((size / 2)) conv=notrunc status=none
  run ceso-restore damaged --as app08 --target "$CESO_BACKUP_TARGET"
  assert_status 1
  assert_contains "$output" "damaged"
  err=$output
  nothing_left app08
}
