#!/usr/bin/env bats
# ceso-restore against the simulator (ESX model) with filled disks:
# round trip with byte-equal disks and a new identity, re-IP through
# cloud-init (validated by Debian's cloud-init), --replace, --dry-run, damaged
# backups and failed uploads rolled back; the VM-shape options it shares with
# ceso-mkvm; its own option table; the deprecated `ceso-backup restore` alias.

bats_require_minimum_version 1.5.0
load helpers/common
load helpers/secrets

VALIDATE="/usr/bin/python3 $BATS_TEST_DIRNAME/helpers/validate_cloudinit.py"

setup_file() {
  cat >"$BATS_FILE_TMPDIR/vms.json" <<'JSON'
[{"name":"golden","power":"off","disks_mib":[6,3]}]
JSON
  sim_start -vms 0 -fill-mib 6 -vm-spec "$BATS_FILE_TMPDIR/vms.json"
  export CESO_BACKUP_TARGET="file://$BATS_FILE_TMPDIR/target"
  mkdir -p "$BATS_FILE_TMPDIR/target"
  # A cloud-init configured VM whose network matches its NIC by MAC.
  ceso-mkvm --from golden app01 --ip 192.0.2.10/24 --gateway 192.0.2.1 --mac 00:50:56:01:02:03 \
    --package htop --tag app --no-power-on >/dev/null
  ceso-ls --name app01 | ceso-backup --cold | jq -r .backup.id >"$BATS_FILE_TMPDIR/id"
}

teardown_file() { sim_stop; }

setup() { sim_reset; sim_fail '{}'; }

backup_id() { cat "$BATS_FILE_TMPDIR/id"; }
target_dir() { echo "$BATS_FILE_TMPDIR/target"; }
validate() { ceso-info "$1" | jq -c '{type:"guestinfo",name,guestinfo}' | $VALIDATE; }
vm_count() { ceso-ls --name "$1" | wc -l; }
http_count() { sim_stats | jq -r --arg k "$1" '.http[$k] // 0'; }
guest() { curl -sf -X POST -d "$1" "${CESO_URL%/sdk}/_ceso/guest" >/dev/null; }

@test "restore --as with a new address: disks byte-equal, new uuid, MACs, instance-id" {
  id=$(backup_id)
  run ceso-restore "$id" --as app02 --ip 192.0.2.20/24 --gateway 192.0.2.1
  assert_status 0
  echo "$output" | jq -e --arg id "$id" '.name == "app02" and .restored_from == $id
    and .changed == true and .tags == ["app"] and .power == "off" and .replaced == null'
  # Every disk, through zstd, the upload and the descriptor rewrite, is the source's.
  for i in 0 1; do cmp "$(flat_of app01 $i)" "$(flat_of app02 $i)"; done
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
  # The uploads were PUTs through /folder; the VM was created, not cloned.
  [ "$(http_count 'PUT /folder')" -ge 4 ]
  assert_eq "$(sim_count CreateVM_Task)" 1
}

@test "restore under the old name keeps the address, with the network moved to the new MAC" {
  ceso-rm --yes app01 >/dev/null
  [ "$(vm_count app01)" -eq 0 ]
  run ceso-restore "$(backup_id)" --power-on
  assert_status 0
  echo "$output" | jq -e '.name == "app01" and .power == "on"'
  mac=$(ceso-info app01 | jq -r '.nics[0].mac')
  [ "$mac" != 00:50:56:01:02:03 ]
  run validate app01
  assert_status 0
  echo "$output" | jq -e --arg mac "$mac" '.local_hostname == "app01"
    and .addresses == ["192.0.2.10/24"]
    and ([.network.ethernets[].match.macaddress] == [$mac])'
}

@test "a name in use is refused; --replace needs it powered off, then replaces it" {
  id=$(backup_id)
  run ceso-restore "$id"
  assert_status 1
  assert_contains "$output" "already exists"
  assert_contains "$output" "--replace"
  ceso-power on app01 >/dev/null 2>&1 || true
  run ceso-restore "$id" --replace
  assert_status 1
  assert_contains "$output" "not powered off"
  assert_eq "$(sim_count CreateVM_Task)" 0
  ceso-power off app01 >/dev/null
  old=$(ceso-ls --name app01 | jq -r .id)
  # This app01 is the restored copy (a new uuid), not the VM backed up: by
  # name it has no backup of its own, and --replace by name is refused.
  run ceso-restore app01 --replace -q
  assert_status 3
  assert_contains "$output" "has no backup"
  assert_eq "$(sim_count CreateVM_Task)" 0
  # Named by its id, the backup replaces it, with a warning naming both VMs.
  run ceso-restore "$id" --replace -q
  assert_status 0
  assert_contains "$output" "is not the VM backup '$id' was made of"
  echo "$output" | grep '^{' | jq -e --arg old "$old" --arg id "$id" '.name == "app01"
    and .replaced == $old and .id != $old and .restored_from == $id'
  [ "$(vm_count app01)" -eq 1 ]
  [ "$(ceso-ls | jq -r .name | grep -c 'before restore')" -eq 0 ]
}

@test "--dry-run plans every step and makes no change" {
  run ceso-restore "$(backup_id)" --as app03 --dry-run
  assert_status 0
  echo "$output" | jq -s -e '[.[].operation] == ["MakeDirectory", "UploadDatastoreFile",
    "UploadDatastoreFile", "UploadDatastoreFile", "UploadDatastoreFile", "CreateVM_Task"]'
  for m in MakeDirectory CreateVM_Task; do assert_eq "$(sim_count $m)" 0; done
  assert_eq "$(http_count 'PUT /folder')" 0
  [ "$(vm_count app03)" -eq 0 ]
}

@test "a damaged backup is refused before anything is made; a flipped byte rolls back" {
  id=$(backup_id)
  copy="$(target_dir)/damaged"
  rm -rf "$copy" && cp -r "$(target_dir)/$id" "$copy"
  jq '.id = "damaged"' "$copy/manifest.json" >"$copy/m" && mv "$copy/m" "$copy/manifest.json"
  name=$(jq -r '.files[] | select(.kind == "extent" and .disk == 0) | .name' "$copy/manifest.json")
  # Truncated: found by size before any change.
  truncate -s -100 "$copy/$name"
  run ceso-restore damaged --as app04 --target "$CESO_BACKUP_TARGET"
  assert_status 1
  assert_contains "$output" "damaged"
  assert_eq "$(sim_count MakeDirectory)" 0
  # A flipped byte of the same size: found while uploading, everything rolled back.
  cp "$(target_dir)/$id/$name" "$copy/$name"
  size=$(stat -c %s "$copy/$name")
  printf '\x5a' | dd of="$copy/$name" bs=1 seek=$((size / 2)) conv=notrunc status=none
  run ceso-restore damaged --as app04 --target "$CESO_BACKUP_TARGET"
  assert_status 1
  assert_contains "$output" "damaged"
  assert_contains "$output" "rolled back"
  [ "$(vm_count app04)" -eq 0 ]
  [ ! -e "$(sim_datastore_dir)/app04" ]
  assert_eq "$(sim_count CreateVM_Task)" 0
  rm -rf "$copy"
}

@test "an upload that keeps failing rolls back; a passing failure is retried" {
  sim_fail '{"http":"PUT /folder","status":503,"count":100}'
  run ceso-restore "$(backup_id)" --as app05 --retries 1
  assert_status 1
  assert_contains "$output" "HTTP 503"
  assert_contains "$output" "rolled back: folder"
  [ ! -e "$(sim_datastore_dir)/app05" ]
  [ "$(vm_count app05)" -eq 0 ]
  sim_fail '{}'  # rules add up: clear the one above first
  sim_fail '{"http":"PUT /folder","status":503,"count":1}'
  run ceso-restore "$(backup_id)" --as app05
  assert_status 0
  for i in 0 1; do cmp "$(flat_of app01 $i)" "$(flat_of app05 $i)"; done
}

@test "an upload cut mid-way is started again; SIGTERM during an upload rolls back (exit 130)" {
  sim_fail '{"http":"PUT /folder","path":"-flat","after_bytes":1048576,"count":1}'
  run ceso-restore "$(backup_id)" --as app09
  assert_status 0
  for i in 0 1; do cmp "$(flat_of app01 $i)" "$(flat_of app09 $i)"; done
  [ "$(http_count 'PUT /folder')" -ge 6 ]  # 4 files, nvram, and the flat file again
  sim_reset
  sim_fail '{}'
  sim_fail '{"http":"PUT /folder","path":"-flat","after_bytes":1048576,"stall_ms":30000}'
  ceso-restore "$(backup_id)" --as app10 2>"$BATS_TEST_TMPDIR/err" &
  pid=$!
  # Wait until the first disk's upload has stalled, then stop the run.
  for _ in $(seq 100); do
    [ "$(http_count 'PUT /folder')" -ge 1 ] && break
    sleep 0.1
  done
  sleep 0.5
  kill -TERM "$pid"
  rc=0
  wait "$pid" || rc=$?
  cat "$BATS_TEST_TMPDIR/err"
  assert_eq "$rc" 130
  assert_contains "$(cat "$BATS_TEST_TMPDIR/err")" "rolled back: folder"
  [ ! -e "$(sim_datastore_dir)/app10" ]
  [ "$(vm_count app10)" -eq 0 ]
  assert_eq "$(sim_count CreateVM_Task)" 0
}

@test "restricted mode refuses with exit 5 and makes nothing" {
  CESO_MODE=restricted run ceso-restore "$(backup_id)" --as app06
  assert_status 5
  assert_eq "$(sim_count MakeDirectory)" 0
  [ "$(vm_count app06)" -eq 0 ]
}

@test "a new machine restores from the target alone (empty catalog, then reindex)" {
  rm -f "$XDG_STATE_HOME"/ceso/backups.db*
  [ -z "$(ceso-backup ls)" ]
  run ceso-restore "$(backup_id)" --as app07 --hostname app07 --target "$CESO_BACKUP_TARGET"
  assert_status 0
  ceso-backup reindex --target "$CESO_BACKUP_TARGET" 2>/dev/null
  run ceso-backup ls app01
  assert_contains "$output" "$(backup_id)"
}

@test "bad input: no ID, unknown ID, unknown datastore, bad host name" {
  run ceso-restore
  assert_status 2
  run ceso-restore no-such-backup
  assert_status 3
  assert_contains "$output" "no-such-backup"
  run ceso-restore "$(backup_id)" --as app08 --datastore nope
  assert_status 1
  assert_contains "$output" "no datastore named 'nope'"
  run ceso-restore "$(backup_id)" --as "app 08"
  assert_status 2
  assert_contains "$output" "--hostname"
  [ "$(vm_count 'app 08')" -eq 0 ]
}

@test "a backup whose VM name is not fit for a new VM is refused before anything is made, unless --as" {
  id=$(backup_id)
  copy="$(target_dir)/hostile"
  rm -rf "$copy" && cp -r "$(target_dir)/$id" "$copy"
  for bad in '"app\nevil"' '"app/evil"' '"app\u009b31m"' '""'; do
    jq ".id = \"hostile\" | .vm.name = $bad" "$(target_dir)/$id/manifest.json" >"$copy/manifest.json"
    run ceso-restore hostile --target "$CESO_BACKUP_TARGET"
    assert_status 3
    assert_contains "$output" "backup 'hostile': vm.name: VM name"
  done
  assert_eq "$(sim_count MakeDirectory)" 0
  run ceso-restore hostile --as app11 --target "$CESO_BACKUP_TARGET"
  assert_status 0
  rm -rf "$copy"
}

@test "user-data secrets of a restored VM never reach a plan, the audit log or stdout" {
  assert_secret_check_works
  export CESO_AUDIT_LOG="$BATS_TEST_TMPDIR/audit.log"
  local d=$BATS_TEST_TMPDIR m_old m_new out=$BATS_TEST_TMPDIR/stdout id dry
  m_old=$(new_marker) m_new=$(new_marker)
  echo "KEY=$m_old" >"$d/old.env"
  echo "KEY=$m_new" >"$d/new.env"
  ceso-mkvm --from golden sec01 --write-file "/etc/app.env=$d/old.env" --no-power-on >>"$out"
  id=$(ceso-ls --name sec01 | ceso-backup --cold | tee -a "$out" | jq -r .backup.id)
  for dry in --dry-run ""; do
    # The backed-up user-data comes back as it was ...
    run ceso-restore "$id" --as "sec02$dry" --hostname sec02 $dry
    assert_status 0
    echo "$output" >>"$out"
    # ... or new user-data with a new secret replaces it.
    run ceso-restore "$id" --as "sec03$dry" --write-file "/etc/app.env=$d/new.env" \
      --encoding base64 $dry
    assert_status 0
    echo "$output" >>"$out"
  done
  ceso-info --decode sec02 | grep -qF "$m_old"
  ceso-info --decode sec03 | grep -qF "$m_new"
  grep -q '"operation":"CreateVM_Task"' "$CESO_AUDIT_LOG"
  grep -q '"type":"plan"' "$out"
  for m in "$m_old" "$m_new"; do
    assert_no_secret "$CESO_AUDIT_LOG" "$m"
    assert_no_secret "$out" "$m"
  done
  ceso-rm --yes sec01 sec02 sec03 >/dev/null
}

@test "ceso-backup restore, the deprecated alias, warns once and runs the same restore" {
  id=$(backup_id)
  run --separate-stderr ceso-backup restore "$id" --as app12 --tag alias --cpus 2
  assert_status 0
  assert_eq "$(grep -c 'deprecated' <<<"$stderr")" 1
  assert_contains "$stderr" "ceso-backup: ceso-backup restore is deprecated; use ceso-restore"
  echo "$output" | jq -e --arg id "$id" '.name == "app12" and .restored_from == $id
    and .changed == true and .tags == ["alias"] and .cpus == 2 and .power == "off"'
  for i in 0 1; do cmp "$(flat_of app01 $i)" "$(flat_of app12 $i)"; done
  # The same exit codes and dry-run: bad input is 3, a plan changes nothing.
  run --separate-stderr ceso-backup restore no-such-backup
  assert_status 3
  assert_contains "$stderr" "is deprecated; use ceso-restore"
  assert_contains "$stderr" "no-such-backup"
  run --separate-stderr ceso-backup restore "$id" --as app12b --dry-run
  assert_status 0
  echo "$output" | jq -s -e '.[-1].operation == "CreateVM_Task"'
  [ "$(vm_count app12b)" -eq 0 ]
  # Its table is ceso-restore's: the VM-shape group, not ceso-mkvm's --no-power-on.
  run ceso-backup restore "$id" --no-power-on
  assert_status 2
  assert_contains "$output" "'--no-power-on'"
  ceso-rm --yes app12 >/dev/null
}

@test "ceso-restore --help lists only its own options" {
  run ceso-restore --help
  assert_status 0
  assert_contains "$output" "Usage: ceso-restore [OPTION]... ID|VM"
  for o in "--target URL" --accept-new-host-key "--as NAME" --replace "--retries N" \
    "--datastore NAME" "--cpus N" "--memory SIZE" "--disk-grow SIZE" "--network PORTGROUP" \
    "--tag TAG" "--annotation TEXT" --power-on "--wait WHAT" "--timeout SECONDS" \
    --keep-on-failure "--fqdn FQDN" "--ip CIDR" "--encoding ENC" --dry-run "--url URL"; do
    assert_contains "$output" "$o"
  done
  for o in --keep-daily --keep-last --cold --hot --level --limit-rate --jobs --no-power-on \
    --thick --exist-ok --from --stop-source Commands:; do
    [[ "$output" != *"$o"* ]] || { echo "unexpected $o" >&2; return 1; }
  done
  # One help text per row across the tools that make a VM.
  for row in "--timeout SECONDS" "--annotation TEXT" "--datastore NAME" "--keep-on-failure"; do
    line=$(ceso-restore --help | grep -F -- "$row")
    assert_eq "$(ceso-mkvm --help | grep -F -- "$row")" "$line"
    assert_eq "$(ceso-clone --help | grep -F -- "$row")" "$line"
  done
}

@test "an option of another tool or verb is a usage error (exit 2) before anything is touched" {
  id=$(backup_id)
  for opt in "--keep-daily 3" --cold "--level 3" --no-power-on --thick --exist-ok \
    "--from golden" --stop-source; do
    run ceso-restore "$id" --as app14 $opt
    assert_status 2
    assert_contains "$output" "unrecognized option '${opt%% *}'"
  done
  run ceso-restore "$id" --as app14 -j 2
  assert_status 2
  assert_contains "$output" "invalid option -- 'j'"
  # Usage errors of its own table: no operand, two, --wait without --power-on, bad values.
  run ceso-restore
  assert_status 2
  run ceso-restore "$id" other
  assert_status 2
  run ceso-restore "$id" --as app14 --wait ip
  assert_status 2
  assert_contains "$output" "--wait ip needs the new VM powered on (give --power-on)"
  run ceso-restore "$id" --as app14 --memory 3
  assert_status 2
  run ceso-restore "$id" --as app14 --cpus 0
  assert_status 2
  assert_contains "$output" "--cpus"
  run ceso-restore "$id" --as app14 --wait mac --power-on
  assert_status 2
  assert_eq "$(sim_count MakeDirectory)" 0
  [ "$(vm_count app14)" -eq 0 ]
}

@test "the VM-shape options shape the restored VM as they shape a new one" {
  id=$(backup_id)
  run ceso-restore "$id" --as app15 --cpus 2 --memory 512M --disk-grow 1G \
    --annotation 'restored & <tested>' --tag web --tag prod
  assert_status 0
  echo "$output" | jq -e '.name == "app15" and .cpus == 2 and .memory_mib == 512
    and .tags == ["web","prod"] and .power == "off"'
  ceso-info app15 | jq -e '.annotation == "restored & <tested>"
    and ([.disks[].capacity_bytes] | max == 1073741824)'
  # Without them: the backed-up VM's values.
  run ceso-restore "$id" --as app16
  assert_status 0
  echo "$output" | jq -e --argjson cpus "$(ceso-info app01 | jq .cpus)" \
    --argjson mem "$(ceso-info app01 | jq .memory_mib)" \
    '.cpus == $cpus and .memory_mib == $mem and .tags == ["app"]'
  ceso-rm --yes app15 app16 >/dev/null
}

@test "--power-on --wait ip waits for the guest's address and puts it in the record" {
  # The guest reports its address once the VM runs (vcsim plays no Tools).
  ( for _ in $(seq 300); do
      [ "$(ceso-ls --name app17 2>/dev/null | jq -r .power)" = on ] &&
        guest '{"name":"app17","ip":"192.0.2.17","tools":"running"}' && exit 0
      sleep 0.2
    done ) &
  run ceso-restore "$(backup_id)" --as app17 --power-on --wait ip --timeout 60
  wait
  assert_status 0
  echo "$output" | jq -e '.name == "app17" and .power == "on" and .ip == "192.0.2.17"'
  ceso-rm --yes --force app17 >/dev/null
}

@test "a failed power-on or --wait rolls everything back: no VM, no folder" {
  sim_fail '{"method":"PowerOnVM_Task","fault":"InsufficientResourcesFault","task":true}'
  run ceso-restore "$(backup_id)" --as app18 --power-on
  assert_status 1
  assert_contains "$output" "powering on failed"
  assert_contains "$output" "rolled back"
  [ "$(vm_count app18)" -eq 0 ]
  [ ! -e "$(sim_datastore_dir)/app18" ]
  sim_fail '{}'
  # No guest ever reports an address: the wait times out, and rolls back too.
  run ceso-restore "$(backup_id)" --as app19 --power-on --wait ip --timeout 2
  assert_status 1
  assert_contains "$output" "rolled back"
  [ "$(vm_count app19)" -eq 0 ]
  [ ! -e "$(sim_datastore_dir)/app19" ]
  # --keep-on-failure keeps what was made.
  sim_fail '{"method":"PowerOnVM_Task","fault":"InsufficientResourcesFault","task":true}'
  run ceso-restore "$(backup_id)" --as app20 --power-on --keep-on-failure
  assert_status 1
  [ "$(vm_count app20)" -eq 1 ]
  ceso-rm --yes app20 >/dev/null
}

@test "every change is in the audit log" {
  export CESO_AUDIT_LOG="$BATS_TEST_TMPDIR/audit.log"
  run ceso-restore "$(backup_id)" --as app21 --power-on
  assert_status 0
  for op in MakeDirectory UploadDatastoreFile CreateVM_Task PowerOnVM_Task; do
    grep -q "\"operation\":\"$op\"" "$CESO_AUDIT_LOG" || { echo "no $op in the audit log" >&2; return 1; }
  done
  grep -q '"tool":"ceso-restore"' "$CESO_AUDIT_LOG"
  ceso-power off app21 >/dev/null
  ceso-rm --yes app21 >/dev/null
}
