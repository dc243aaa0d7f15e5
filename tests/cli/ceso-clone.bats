#!/usr/bin/env bats
# ceso-clone against the simulator: ESX model (disk copies), and one test in
# the VPX model (CloneVM_Task) for both ceso-clone and ceso-mkvm.

load helpers/common
load helpers/interrupt
load helpers/secrets

VALIDATE="/usr/bin/python3 $BATS_TEST_DIRNAME/helpers/validate_cloudinit.py"

setup_file() {
  cat >"$BATS_FILE_TMPDIR/vms.json" <<'JSON'
[{"name":"golden","power":"off","disks_mib":[3,2]},
 {"name":"busy","power":"on","tools":"running"}]
JSON
  sim_start -vms 0 -fill-mib 2 -vm-spec "$BATS_FILE_TMPDIR/vms.json"
  # A configured source: created with guestinfo carrying user-data and a static address.
  ceso-mkvm --from golden src01 --ip 10.0.0.10/24 --gateway 10.0.0.1 --package htop \
    --no-power-on --tag app >/dev/null
}

teardown_file() { sim_stop; }

validate() { ceso-info "$1" | jq -c '{type:"guestinfo",name,guestinfo}' | $VALIDATE; }

@test "cold clone: disks equal, new identity, re-IP with user-data kept" {
  sim_reset
  run ceso-clone src01 src02 --ip 10.0.0.11/24 --gateway 10.0.0.1 --no-power-on
  assert_status 0
  echo "$output" | jq -e '.name == "src02" and .changed == true and .source == "src01" and .tags == ["app"]'
  assert_eq "$(sim_count CopyVirtualDisk_Task)" 2
  for i in 0 1; do cmp "$(flat_of src01 $i)" "$(flat_of src02 $i)"; done
  run validate src02
  assert_status 0
  echo "$output" | jq -e '.local_hostname == "src02" and .addresses == ["10.0.0.11/24"]'
  echo "$output" | jq -e '.userdata.packages == ["htop"]'
  old=$(validate src01 | jq -r .instance_id)
  new=$(echo "$output" | jq -r .instance_id)
  [ "$old" != "$new" ]
  [ "$(ceso-info src01 | jq -r '.nics[0].mac')" != "$(ceso-info src02 | jq -r '.nics[0].mac')" ]
  [ "$(ceso-info src01 | jq -r .uuid)" != "$(ceso-info src02 | jq -r .uuid)" ]
}

@test "running source: refused, or stopped and started again with --stop-source" {
  run ceso-clone busy busy2
  assert_status 1
  assert_contains "$output" "powered off"
  run ceso-clone --stop-source busy busy2 --hostname busy2 --no-power-on
  assert_status 0
  assert_eq "$(ceso-ls --name busy -o power | jq -r .power)" on
  assert_eq "$(ceso-ls --name busy2 -o power | jq -r .power)" off
}

@test "--dry-run: zero write calls; rollback after an injected failure" {
  sim_reset
  run ceso-clone --dry-run src01 src03 --ip 10.0.0.12/24
  assert_status 0
  echo "$output" | jq -se 'map(.operation) | index("CreateVM_Task") != null'
  assert_eq "$(sim_stats | jq -c '.soap | keys - ["RetrievePropertiesEx","Login","RetrieveServiceContent","CreateContainerView"]')" '[]'
  sim_fail '{"method":"CreateVM_Task","fault":"InvalidArgument","task":true}'
  run ceso-clone src01 src04 --ip 10.0.0.12/24
  assert_status 1
  assert_contains "$output" "rolled back"
  [ -z "$(ceso-ls --name src04)" ]
  [ ! -e "$(sim_datastore_dir)/src04" ]
}

# Like ceso-mkvm: an interruption is never ignored, and rollback does not
# depend on --power-on (ceso-clone --no-power-on used to exit 0 and keep the VM).
@test "interrupted during CreateVM_Task with --no-power-on: rolled back, exit 130" {
  interrupt_during CreateVM_Task TERM ceso-clone src01 cint1 --no-power-on
  assert_eq "$rc" 130
  assert_contains "$err" "rolled back: VM 'cint1'"
  nothing_left cint1
}

@test "interrupted during CopyVirtualDisk_Task or MakeDirectory: nothing left, exit 130" {
  interrupt_during CopyVirtualDisk_Task INT ceso-clone src01 cint2 --no-power-on
  assert_eq "$rc" 130
  nothing_left cint2
  interrupt_during MakeDirectory INT ceso-clone src01 cint3
  assert_eq "$rc" 130
  nothing_left cint3
}

@test "interrupted during ReconfigVM_Task (--disk-grow) or PowerOnVM_Task: nothing left, exit 130" {
  interrupt_during ReconfigVM_Task TERM ceso-clone src01 cint4 --no-power-on --disk-grow +1G
  assert_eq "$rc" 130
  nothing_left cint4
  interrupt_during PowerOnVM_Task TERM ceso-clone src01 cint5
  assert_eq "$rc" 130
  assert_contains "$err" "rolled back: VM 'cint5'"
  nothing_left cint5
}

@test "SIGINT while finding the source and the host hangs: exit 130 at once, nothing made" {
  interrupt_read RetrievePropertiesEx ceso-clone src01 cint6 --no-power-on
  assert_eq "$rc" 130
  assert_eq "$(sim_count MakeDirectory)" 0
  sim_fail '{}'
  nothing_left cint6
}

@test "hostile clone name with --hostname; an existing name is an error" {
  run ceso-clone src01 'c & <"l"> ö' --hostname c1 --ip 10.0.0.13/24 --no-power-on
  assert_status 0
  echo "$output" | jq -e '.name == "c & <\"l\"> ö"'
  run ceso-clone src01 src02
  assert_status 1
  assert_contains "$output" "already exists"
}

@test "VPX model: mkvm and clone go through CloneVM_Task with the same results" {
  local st="$BATS_TEST_TMPDIR/vpx"
  mkdir -p "$st"
  eval "$(CESO_SIM_STATE=$st "$SIMCTL" start -model vpx -vms 0 -fill-mib 2 -vm-spec "$BATS_FILE_TMPDIR/vms.json")"
  export CESO_SIM_STATE=$st
  sim_reset
  run ceso-mkvm --from golden v1 --ip 10.0.0.5/24 --cpus 3 --memory 2G --no-power-on
  s1=$status o1=$output n1=$(sim_count CloneVM_Task) c1=$(sim_count CopyVirtualDisk_Task)
  d0=$(cmp "$(flat_of golden 0)" "$(flat_of v1 0)" && echo same)
  g1=$(validate v1)
  m0=$(ceso-info golden | jq -r '.nics[0].mac') m1=$(ceso-info v1 | jq -r '.nics[0].mac')
  run ceso-clone v1 v2 --ip 10.0.0.6/24 --no-power-on
  s2=$status
  g2=$(validate v2)
  "$SIMCTL" stop
  assert_eq "$s1" 0
  echo "$o1" | jq -e '.cpus == 3 and .memory_mib == 2048'
  assert_eq "$n1" 1
  assert_eq "$c1" 0
  assert_eq "$d0" same
  echo "$g1" | jq -e '.local_hostname == "v1" and .addresses == ["10.0.0.5/24"]'
  [ "$m0" != "$m1" ]
  assert_eq "$s2" 0
  echo "$g2" | jq -e '.local_hostname == "v2" and .addresses == ["10.0.0.6/24"]'
  [ "$(echo "$g1" | jq -r .instance_id)" != "$(echo "$g2" | jq -r .instance_id)" ]
}

@test "user-data secrets reach the clone but never a plan, the audit log or stdout" {
  assert_secret_check_works
  export CESO_AUDIT_LOG="$BATS_TEST_TMPDIR/audit.log"
  local d=$BATS_TEST_TMPDIR m_file m_ud hash out=$BATS_TEST_TMPDIR/stdout
  m_file=$(new_marker) m_ud=$(new_marker)
  hash=$(openssl passwd -6 -salt "$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')" "$m_file")
  echo "TOKEN=$m_file" >"$d/token"
  printf '#cloud-config\nruncmd:\n  - echo %s\n' "$m_ud" >"$d/user-data"
  local n=0 enc dry
  for enc in gzip+base64 base64 none; do
    for dry in --dry-run ""; do
      n=$((n + 1))
      run ceso-clone src01 "csec$n" --no-power-on --encoding "$enc" --password-hash "$hash" \
        --write-file "/etc/token=$d/token" --user-data "$d/user-data" $dry
      assert_status 0
      echo "$output" >>"$out"
      if [ -z "$dry" ]; then
        ceso-info --decode "csec$n" | grep -qF "$m_file"
        ceso-info --decode "csec$n" | grep -qF "$m_ud"
      else
        assert_contains "$output" '"type":"plan"'
      fi
    done
  done
  # A clone of a VM holding secrets carries them over without flags too.
  run ceso-clone csec2 csec7 --no-power-on --ip 10.0.0.17/24 --gateway 10.0.0.1
  assert_status 0
  ceso-info --decode csec7 | grep -qF "$m_file"
  echo "$output" >>"$out"
  grep -q 'guestinfo.userdata' "$CESO_AUDIT_LOG"
  for m in "$m_file" "$m_ud" "$hash"; do
    assert_no_secret "$CESO_AUDIT_LOG" "$m"
    assert_no_secret "$out" "$m"
  done
}
