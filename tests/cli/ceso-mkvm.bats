#!/usr/bin/env bats
# ceso-mkvm against the simulator: ESX model (CloneVM refused: disk copies +
# CreateVM_Task), with filled disks so copies can be compared byte for byte.

bats_require_minimum_version 1.5.0
load helpers/common
load helpers/interrupt
load helpers/secrets

VALIDATE="/usr/bin/python3 $BATS_TEST_DIRNAME/helpers/validate_cloudinit.py"

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"golden","power":"off","disks_mib":[3,2],"tags":["golden"],"cpus":1,"memory_mib":1024},
 {"name":"gold & <\"x\"> é","power":"off","disks_mib":[2]},
 {"name":"running","power":"on"}]
JSON
  sim_start -vms 0 -fill-mib 2 -vm-spec "$spec"
}

teardown_file() { sim_stop; }

ds_dir() { sim_datastore_dir; }
guestinfo_record() { ceso-info "$1" | jq -c '{type:"guestinfo",name,guestinfo}'; }

@test "ESX: creates the VM by copying disks; disks equal the source's byte for byte" {
  sim_reset
  run ceso-mkvm --from golden web01 --hostname web01 --ip 10.0.0.21/24 --gateway 10.0.0.1 \
    --cpus 2 --memory 2G --tag web --tag prod --annotation 'made & <tested>'
  assert_status 0
  echo "$output" | jq -e '.type == "vm" and .name == "web01" and .changed == true and .power == "on"
    and .cpus == 2 and .memory_mib == 2048 and .tags == ["web","prod"] and .source == "golden"'
  assert_eq "$(sim_count CloneVM_Task)" 0
  assert_eq "$(sim_count CopyVirtualDisk_Task)" 2
  assert_eq "$(sim_count CreateVM_Task)" 1
  for i in 0 1; do
    cmp "$(flat_of golden $i)" "$(flat_of web01 $i)"
  done
  # thin copies, on the source's controller type
  ceso-info web01 | jq -e '[.disks[].provisioning] == ["thin","thin"]'
  ceso-info web01 | jq -e '.annotation == "made & <tested>"'
}

@test "ESX: the new VM's MACs and uuids differ from the source's" {
  src=$(ceso-info golden)
  new=$(ceso-info web01)
  [ "$(echo "$src" | jq -r .uuid)" != "$(echo "$new" | jq -r .uuid)" ]
  [ "$(echo "$src" | jq -r .instance_uuid)" != "$(echo "$new" | jq -r .instance_uuid)" ]
  [ "$(echo "$src" | jq -r '.nics[0].mac')" != "$(echo "$new" | jq -r '.nics[0].mac')" ]
  echo "$new" | jq -e '.nics[0].mac | startswith("00:50:56:")'
}

@test "ESX: guestinfo passes cloud-init's own validation with hostname and address" {
  run bash -c "$(declare -f guestinfo_record); guestinfo_record web01 | $VALIDATE"
  assert_status 0
  echo "$output" | jq -e '.local_hostname == "web01" and .addresses == ["10.0.0.21/24"]'
  echo "$output" | jq -e '.instance_id | startswith("web01-")'
}

@test "guestinfo records on stdin name the VMs (ceso-cloudinit | ceso-mkvm)" {
  run bash -c 'ceso-cloudinit --hostname web02 --ip 10.0.0.22/24 | ceso-mkvm --from golden --no-power-on'
  assert_status 0
  echo "$output" | jq -e '.name == "web02" and .power == "off" and .changed == true'
  run bash -c "$(declare -f guestinfo_record); guestinfo_record web02 | $VALIDATE"
  assert_status 0
  echo "$output" | jq -e '.local_hostname == "web02" and .addresses == ["10.0.0.22/24"]'
}

@test "pass-through: a guestinfo record's other fields kept, its guestinfo and documents and stale fields not" {
  rec=$(ceso-cloudinit --hostname mkpass --verbose |
    jq -c '.role = {"tier": ["web", 1]} | .power = "poweredOn" | .ip = "192.0.2.9" | .template = true
      | .source = "stale" | .macs = "stale"')
  run --separate-stderr ceso-mkvm --from golden --no-power-on <<<"$rec"
  assert_status 0
  echo "$output" | jq -e --arg iid "$(jq -r .instance_id <<<"$rec")" \
    '.type == "vm" and .name == "mkpass" and .changed == true and .power == "off" and .ip == null
     and .source == "golden" and (.macs | type) == "array" and .instance_id == $iid
     and .role == {"tier": ["web", 1]} and (has("guestinfo") or has("documents") or has("template") | not)'
  # --exist-ok prints the VM that is there: the same rule, no instance_id it was not given
  run --separate-stderr ceso-mkvm --from golden --exist-ok <<<"$rec"
  assert_status 0
  echo "$output" | jq -e '.name == "mkpass" and .changed == false and .power == "off" and .ip == null
     and .role == {"tier": ["web", 1]}
     and (has("guestinfo") or has("documents") or has("template") or has("instance_id") | not)'
}

@test "an existing name is an error; --exist-ok reports changed: false" {
  sim_reset
  run ceso-mkvm --from golden web01
  assert_status 1
  assert_contains "$output" "already exists"
  run ceso-mkvm --from golden web01 --exist-ok
  assert_status 0
  echo "$output" | jq -e '.changed == false and .name == "web01"'
  assert_eq "$(sim_count CreateVM_Task)" 0
}

@test "round trips of one ceso-mkvm with a warm session (issue 15): no power read, no datacenter lookup" {
  ceso-ls >/dev/null
  sim_reset
  run --separate-stderr ceso-mkvm --from golden rt15 --ip 10.0.0.15/24 --gateway 10.0.0.1
  assert_status 0
  # two fewer than before (bench/mkvm, one disk: 12 → 10): the power state of
  # the VM just made is not read before powering it on, and the datacenter
  # comes with the read of the source VM
  assert_eq "$(sim_count PowerOnVM_Task)" 1
  assert_eq "$(sim_count RetrievePropertiesEx)" 7
  assert_eq "$(sim_stats | jq .soap_total)" 12
  ceso-rm --yes --force rt15 >/dev/null
}

@test "--dry-run prints the plan and makes zero write calls" {
  sim_reset
  run ceso-mkvm --dry-run --from golden web09 --ip 10.0.0.9/24 --disk-grow +1G
  assert_status 0
  echo "$output" | jq -se '[.[].operation] == ["MakeDirectory","CopyVirtualDisk_Task","CopyVirtualDisk_Task","CreateVM_Task","ReconfigVM_Task","PowerOnVM_Task"]'
  echo "$output" | jq -se '.[1].params.disk_type == "thin" and .[1].params.adapter_type == "lsiLogic"'
  stats=$(sim_stats | jq -c '.soap | keys - ["RetrievePropertiesEx","Login","RetrieveServiceContent","CreateContainerView"]')
  assert_eq "$stats" '[]'
  run ceso-ls --name web09
  assert_eq "$output" ""
}

@test "an injected failure rolls back the VM, disks and folder" {
  sim_fail '{"method":"PowerOnVM_Task","fault":"InsufficientResourcesFault","task":true}'
  run ceso-mkvm --from golden web10
  assert_status 1
  assert_contains "$output" "powering on failed"
  assert_contains "$output" "rolled back"
  run ceso-ls --name web10
  assert_eq "$output" ""
  [ ! -e "$(sim_datastore_dir)/web10" ]
  sim_fail '{"method":"CopyVirtualDisk_Task","fault":"FileFault","task":true,"count":1}'
  run ceso-mkvm --from golden web11
  assert_status 1
  assert_contains "$output" "copying disk 1/2 failed"
  [ ! -e "$(sim_datastore_dir)/web11" ]
}

@test "SIGTERM mid-run: the call in flight completes, then everything is rolled back (exit 130)" {
  sim_reset
  sim_fail '{"method":"CreateVM_Task","stall_ms":2000}'
  ceso-mkvm --from golden int01 >/dev/null 2>"$BATS_TEST_TMPDIR/err" &
  pid=$!
  for _ in $(seq 100); do
    [ "$(sim_count CreateVM_Task)" -ge 1 ] && break
    sleep 0.1
  done
  kill -TERM "$pid"
  rc=0
  wait "$pid" || rc=$?
  cat "$BATS_TEST_TMPDIR/err"
  assert_eq "$rc" 130
  assert_contains "$(cat "$BATS_TEST_TMPDIR/err")" "rolled back: VM 'int01'"
  [ -z "$(ceso-ls --name int01)" ]
  [ ! -e "$(ds_dir)/int01" ]
  assert_eq "$(sim_count PowerOnVM_Task)" 0
}

# Rollback after SIGINT/SIGTERM does not depend on --power-on: whichever call
# is in flight, the run exits 130 and leaves no VM, disk or folder.
@test "interrupted during CreateVM_Task with --no-power-on: rolled back, exit 130" {
  interrupt_during CreateVM_Task TERM ceso-mkvm --from golden int02 --no-power-on
  assert_eq "$rc" 130
  assert_contains "$err" "rolled back: VM 'int02'"
  nothing_left int02
}

@test "interrupted during CopyVirtualDisk_Task (SIGINT), with and without --power-on" {
  interrupt_during CopyVirtualDisk_Task INT ceso-mkvm --from golden int03 --no-power-on
  assert_eq "$rc" 130
  nothing_left int03
  assert_eq "$(sim_count CreateVM_Task)" 0
  interrupt_during CopyVirtualDisk_Task INT ceso-mkvm --from golden int04
  assert_eq "$rc" 130
  nothing_left int04
}

@test "interrupted during MakeDirectory: the folder made by the call in flight is removed" {
  interrupt_during MakeDirectory TERM ceso-mkvm --from golden int05 --no-power-on
  assert_eq "$rc" 130
  assert_contains "$err" "rolled back: folder [LocalDS_0] int05"
  nothing_left int05
  assert_eq "$(sim_count CopyVirtualDisk_Task)" 0
}

@test "interrupted during the last step (ReconfigVM_Task of --disk-grow, --no-power-on)" {
  interrupt_during ReconfigVM_Task TERM ceso-mkvm --from golden int06 --no-power-on --disk-grow +1G
  assert_eq "$rc" 130
  assert_contains "$err" "rolled back: VM 'int06'"
  nothing_left int06
}

@test "interrupted during PowerOnVM_Task: the VM is powered off and removed" {
  interrupt_during PowerOnVM_Task INT ceso-mkvm --from golden int07
  assert_eq "$rc" 130
  assert_contains "$err" "rolled back: VM 'int07'"
  nothing_left int07
}

@test "SIGINT while finding the source and the host hangs: exit 130 at once, nothing made" {
  interrupt_read RetrievePropertiesEx ceso-mkvm --from golden int08 --no-power-on
  assert_eq "$rc" 130
  assert_eq "$(sim_count MakeDirectory)" 0
  sim_fail '{}'
  nothing_left int08
}

@test "--keep-on-failure keeps what was created" {
  sim_fail '{"method":"CreateVM_Task","fault":"InvalidArgument","task":true}'
  run ceso-mkvm --from golden web12 --keep-on-failure
  assert_status 1
  assert_contains "$output" "kept"
  [ -e "$(sim_datastore_dir)/web12/web12-flat.vmdk" ]
}

@test "hostile names work for source and new VM" {
  run ceso-mkvm --from 'gold & <"x"> é' 'new & <"y"> ü' --hostname hostile --no-power-on
  assert_status 0
  echo "$output" | jq -e '.name == "new & <\"y\"> ü"'
  cmp "$(flat_of 'gold & <"x"> é' 0)" "$(flat_of 'new & <"y"> ü' 0)"
}

@test "a running source is refused" {
  run ceso-mkvm --from running web13
  assert_status 1
  assert_contains "$output" "powered off"
}

@test "--disk-grow grows the first disk; --memory takes units" {
  run ceso-mkvm --from golden web14 --disk-grow 1G --memory 512M --no-power-on
  assert_status 0
  ceso-info web14 | jq -e '[.disks[].capacity_bytes] | max == 1073741824'
  ceso-info web14 | jq -e '.memory_mib == 512'
  run ceso-mkvm --from golden web15 --memory 3
  assert_status 2
}

@test "-j 4 creates several VMs from records" {
  run bash -c 'for n in p1 p2 p3 p4 p5; do ceso-cloudinit --hostname $n; done | ceso-mkvm -j 4 --from golden --no-power-on'
  assert_status 0
  [ "$(echo "$output" | jq -r .name | sort | tr '\n' ,)" = "p1,p2,p3,p4,p5," ]
}

@test "restricted mode refuses with exit 5 and changes nothing" {
  sim_reset
  CESO_MODE=restricted run ceso-mkvm --from golden web16
  assert_status 5
  assert_eq "$(sim_count MakeDirectory)" 0
}

@test "vm records carry what the next tool needs" {
  run ceso-mkvm --from golden web17 --no-power-on --json
  echo "$output" | jq -e '(.id|startswith("vm-")) and (.endpoint|length) > 0 and (.macs|length) == 1 and (.instance_id|startswith("web17-"))'
}

# ---- names of new VMs (ceso(7) RECORDS, names.hpp) ----

@test "an annotation XML cannot carry: exit 2 naming --annotation, nothing made" {
  sim_reset
  for bad in $'bad\xffutf8' $'ctl\x1b[31m' $'\xc3'; do
    run --separate-stderr ceso-mkvm --from golden ann1 --annotation "$bad" --no-power-on
    assert_status 2
    assert_contains "$stderr" "--annotation: text"
  done
  assert_eq "$(sim_count MakeDirectory)" 0
  assert_eq "$(sim_count CreateVM_Task)" 0
  [ -z "$(ceso-ls --name ann1)" ]
}

@test "a new VM name with control characters, invalid UTF-8, '/' or over 80 characters: exit 2, nothing made" {
  sim_reset
  local long
  long=$(printf 'x%.0s' $(seq 81))
  for bad in $'a\nb' $'tab\there' $'del\x7f' $'c1\xc2\x9b31m' $'bad\xffutf8' $'rlo\xe2\x80\xaeevil' \
    'a/b' 'a\b' '50%' '' "$long"; do
    run --separate-stderr ceso-mkvm --from golden ok1 "$bad" --no-power-on
    assert_status 2
    assert_contains "$stderr" "argument 2: VM name"
  done
  run --separate-stderr ceso-mkvm --from golden $'nl\nx' --no-power-on
  assert_contains "$stderr" "U+000A at character 3"
  # the escape does not reach the terminal raw
  run --separate-stderr ceso-mkvm --from golden $'c1\xc2\x9b31m' --no-power-on
  assert_contains "$stderr" '\u{009B}'
  [[ "$stderr" != *$'\xc2\x9b'* ]]
  run --separate-stderr ceso-mkvm --from golden "$long" --no-power-on
  assert_contains "$stderr" "81 characters"
  assert_eq "$(sim_count MakeDirectory)" 0
  assert_eq "$(sim_count CreateVM_Task)" 0
  [ -z "$(ceso-ls --name ok1)" ]
  # 80 characters is fine
  run ceso-mkvm --from golden "${long:1}" --no-power-on
  assert_status 0
  echo "$output" | jq -e --arg n "${long:1}" '.name == $n'
}

@test "a guestinfo record with a bad name: exit 3 naming its line; the other records are made" {
  good=$(ceso-cloudinit --hostname gi-ok)
  bad1=$(jq -c '.name = "gi\nbad"' <<<"$good")
  bad2=$(jq -c '.name = "gi/bad"' <<<"$good")
  sim_reset
  run --separate-stderr ceso-mkvm --from golden --no-power-on <<<"$bad1
$good
$bad2"
  assert_status 4
  assert_contains "$stderr" 'error (at <stdin>:1): field "name": VM name'
  assert_contains "$stderr" 'error (at <stdin>:3): field "name": VM name'
  echo "$output" | jq -se 'length == 1 and .[0].name == "gi-ok"'
  assert_eq "$(sim_count CreateVM_Task)" 1
  run --separate-stderr ceso-mkvm --from golden --no-power-on <<<"$bad1"
  assert_status 3
}

@test "vSphere's escapes: 'a%2fb' is made as given and found as 'a/b'; 'a%2Fb' is then taken" {
  run ceso-mkvm --from golden 'esc%2fone' --hostname esc1 --no-power-on
  assert_status 0
  echo "$output" | jq -e '.name == "esc%2fone"'
  ceso-info 'esc/one' | jq -e '.name == "esc%2fone"'
  run ceso-mkvm --from golden 'esc%2Fone' --hostname esc1 --no-power-on
  assert_status 1
  assert_contains "$output" "already exists"
  # the source may be named in either form too
  run ceso-mkvm --from 'esc/one' esc2 --no-power-on
  assert_status 0
  echo "$output" | jq -e '.source == "esc%2fone"'
}

@test "the guest's host name must be an RFC 1123 label; every tool that names a new VM checks the name" {
  # (bad cloud-init flag values are bad input, exit 3, as in ceso-cloudinit)
  for bad in $'bad\nhost' $'tab\thost' 'bad_host' 'a/b' ''; do
    run --separate-stderr ceso-mkvm --from golden hn1 --hostname "$bad" --no-power-on
    assert_status 3
    assert_contains "$stderr" "--hostname: "
  done
  [[ "$stderr" != *$'\n'*$'\n'* ]]
  [ -z "$(ceso-ls --name hn1)" ]
  # ceso-clone NEWNAME and ceso-restore --as: usage errors before anything is read
  sim_reset
  run --separate-stderr ceso-clone golden $'cl\tone'
  assert_status 2
  assert_contains "$stderr" "NEWNAME: VM name"
  assert_contains "$stderr" "U+0009 at character 3"
  run --separate-stderr ceso-clone golden 'cl/one'
  assert_status 2
  assert_eq "$(sim_stats | jq .soap_total)" 0
  run --separate-stderr ceso-restore some-backup --as $'r\x7fone'
  assert_status 2
  assert_contains "$stderr" "--as: VM name"
  assert_contains "$stderr" "U+007F at character 2"
  run --separate-stderr ceso-restore some-backup --as ''
  assert_status 2
  assert_contains "$stderr" "--as: VM name is empty"
}

# Secrets in user-data (a password hash, --write-file contents, a user-data
# file) go to the VM but never into a plan, the audit log or stdout, in clear
# or in any of the encodings guestinfo uses.
@test "user-data secrets reach the VM but never a plan, the audit log or stdout" {
  assert_secret_check_works
  export CESO_AUDIT_LOG="$BATS_TEST_TMPDIR/audit.log"
  local d=$BATS_TEST_TMPDIR m_file m_ud hash out=$BATS_TEST_TMPDIR/stdout
  m_file=$(new_marker) m_ud=$(new_marker)
  hash=$(openssl passwd -6 -salt "$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')" "$m_file")
  echo "DB_PASSWORD=$m_file" >"$d/app.env"
  printf '#cloud-config\nbootcmd:\n  - echo %s\n' "$m_ud" >"$d/user-data"
  local n=0 enc dry
  for enc in gzip+base64 base64 none; do
    for dry in --dry-run ""; do
      n=$((n + 1))
      run ceso-mkvm --from golden "sec$n" --no-power-on --encoding "$enc" --password-hash "$hash" \
        --write-file "/etc/app.env=$d/app.env" --user-data "$d/user-data" $dry
      assert_status 0
      echo "$output" >>"$out"
      if [ -z "$dry" ]; then
        # The real run did send them: the check below is not vacuous.
        ceso-info --decode "sec$n" | grep -qF "$m_file"
        ceso-info --decode "sec$n" | grep -qF "$m_ud"
      else
        assert_contains "$output" '"type":"plan"'
        assert_contains "$output" "guestinfo.userdata"
      fi
    done
  done
  grep -q '"operation":"CreateVM_Task"' "$CESO_AUDIT_LOG"
  grep -q 'guestinfo.userdata' "$CESO_AUDIT_LOG"
  for m in "$m_file" "$m_ud" "$hash"; do
    assert_no_secret "$CESO_AUDIT_LOG" "$m"
    assert_no_secret "$out" "$m"
  done
  # A guestinfo record on stdin (ceso-cloudinit) takes the same path.
  ceso-cloudinit --hostname sec9 --write-file "/etc/app.env=$d/app.env" |
    ceso-mkvm --from golden sec9 --no-power-on --dry-run >"$out.rec"
  grep -q '"type":"plan"' "$out.rec"
  assert_no_secret "$out.rec" "$m_file"
}
