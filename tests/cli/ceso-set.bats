#!/usr/bin/env bats
# ceso-set against the simulator (ESX model).

bats_require_minimum_version 1.5.0
load helpers/common
load helpers/identity
load helpers/secrets

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"off1","power":"off","tags":["web","old"],"cpus":1,"memory_mib":1024,"disks_mib":[4]},
 {"name":"on1","power":"on","tags":["web"]},
 {"name":"odd & <\"q\"> é","power":"off"},
 {"name":"tagged","power":"off","extra_config":{"ceso.tags":"Blue, PROTECTED"}},
 {"name":"sgold","power":"off"},{"name":"stook","power":"off"},{"name":"sren","power":"off"},
 {"name":"srereg","power":"off"},{"name":"setpass","power":"off","tags":["a"]}]
JSON
  echo '[{"name":"free1","power":"off"}]' >"$BATS_FILE_TMPDIR/free.json"
  sim_start -vms 0 -vm-spec "$spec"
}

teardown_file() { sim_stop; }

@test "changes CPUs, memory, tags, annotation, guestinfo in one ReconfigVM_Task" {
  sim_reset
  run ceso-set off1 --cpus 2 --memory 2G --tag +db --tag -old --annotation 'a & <b>' --guestinfo foo=bar
  assert_status 0
  echo "$output" | jq -e '.changed == true and .cpus == 2 and .memory_mib == 2048 and .tags == ["web","db"]'
  assert_eq "$(sim_count ReconfigVM_Task)" 1
  ceso-info off1 | jq -e '.annotation == "a & <b>" and .guestinfo["guestinfo.foo"] == "bar"'
}

@test "asking for what is already there changes nothing and sends nothing" {
  sim_reset
  run ceso-set off1 --cpus 2 --tag web
  assert_status 0
  echo "$output" | jq -e '.changed == false'
  assert_eq "$(sim_count ReconfigVM_Task)" 0
}

@test "--tag compares case-insensitively and writes lower case; hand-set tags are matched" {
  sim_reset
  run ceso-set tagged --tag +BLUE --tag protected
  assert_status 0
  echo "$output" | jq -e '.changed == false'
  assert_eq "$(sim_count ReconfigVM_Task)" 0
  run ceso-set tagged --tag -Protected --tag ' +Db '
  assert_status 0
  echo "$output" | jq -e '.changed == true and .tags == ["blue","db"]'
  assert_eq "$(ceso-ls --name tagged | jq -c .tags)" '["blue","db"]'
  run ceso-set tagged --tag -DB --tag -db
  echo "$output" | jq -e '.tags == ["blue"]'
  for bad in '' '+' '-' ' - ' 'a,b'; do
    run ceso-set tagged --tag "$bad"
    assert_status 2
  done
}

@test "CPU or memory change of a running VM fails with a clear message" {
  sim_reset
  run ceso-set on1 --cpus 4
  assert_status 1
  assert_contains "$output" "needs it powered off"
  run ceso-set on1 --tag +ok
  if is_free_model; then
    # Over SSH everything is a .vmx edit, which needs the VM off.
    assert_status 1
    assert_contains "$output" "only while it is off"
    assert_eq "$(sim_count ReconfigVM_Task)" 0
  else
    assert_status 0
  fi
}

@test "--disk-grow grows the first disk and refuses to shrink" {
  if is_free_model; then
    # Not a .vmx setting: refused before anything is sent.
    sim_reset
    run ceso-set off1 --disk-grow +1G
    assert_status 1
    assert_contains "$output" "it cannot change devices (disks, NICs)"
    assert_eq "$(sim_count ReconfigVM_Task)" 0
    return
  fi
  run ceso-set off1 --disk-grow +1G
  assert_status 0
  ceso-info off1 | jq -e '.disks[0].capacity_bytes == 1077936128'
  run ceso-set off1 --disk-grow 1G
  assert_status 1
  assert_contains "$output" "not shrink"
}

@test "--network moves the NICs" {
  run ceso-set off1 --network 'VM Network'
  assert_status 0
  echo "$output" | jq -e '.changed == false'
}

@test "--network with an unknown port group: set, mkvm and clone fail before any change" {
  sim_reset
  run ceso-set off1 --network 'No Such Net'
  assert_status 1
  assert_contains "$output" "no portgroup named 'No Such Net' on the host of 'off1'"
  run ceso-mkvm --from off1 --hostname m1 --network 'No Such Net' --no-power-on m1
  assert_status 1
  assert_contains "$output" "no portgroup named 'No Such Net'"
  run ceso-clone --no-power-on --network 'No Such Net' off1 c1
  assert_status 1
  assert_contains "$output" "no portgroup named 'No Such Net'"
  # Nothing was made, so nothing had to be rolled back.
  for m in ReconfigVM_Task MakeDirectory CopyVirtualDisk_Task CreateVM_Task DeleteDatastoreFile_Task; do
    assert_eq "$m=$(sim_count $m)" "$m=0"
  done
}

@test "vm records on stdin with -j; guestinfo records set guestinfo" {
  run bash -c 'ceso-ls --tag web | ceso-set -j 2 --tag +piped'
  if is_free_model; then
    assert_status 4 # on1 is on: a .vmx edit needs it off
    [ "$(echo "$output" | jq -Rr 'fromjson? | select(.tags|index("piped")) | .name' | sort | tr '\n' ,)" = "off1," ]
  else
    assert_status 0
    [ "$(echo "$output" | jq -r 'select(.tags|index("piped")) | .name' | sort | tr '\n' ,)" = "off1,on1," ]
  fi
  run bash -c 'ceso-cloudinit --hostname x1 --name off1 | ceso-set'
  assert_status 0
  ceso-info off1 | jq -e '.guestinfo | has("guestinfo.metadata")'
}

@test "hostile names; --dry-run makes no write call" {
  run ceso-set 'odd & <"q"> é' --annotation 'x'
  assert_status 0
  sim_reset
  run ceso-set --dry-run 'odd & <"q"> é' --cpus 3
  assert_status 0
  echo "$output" | jq -e '.type == "plan" and .operation == "ReconfigVM_Task" and .params.cpus == 3'
  assert_eq "$(sim_count ReconfigVM_Task)" 0
}

@test "an annotation or guestinfo value XML cannot carry: exit 2 naming the option, nothing sent" {
  local before
  before=$(ceso-info off1 | jq -c '[.hardware.cpus, .annotation]')
  sim_reset
  for bad in $'bad\xffutf8' $'ctl\x01' $'\xed\xa0\x80surrogate' $'\xef\xbf\xbe'; do
    run --separate-stderr ceso-set off1 --cpus 3 --annotation "$bad"
    assert_status 2
    assert_contains "$stderr" "--annotation: text"
    run --separate-stderr ceso-set off1 --guestinfo "k=$bad"
    assert_status 2
    assert_contains "$stderr" "--guestinfo: text"
  done
  run --separate-stderr ceso-set off1 --annotation $'x\xff'
  assert_contains "$stderr" "not valid UTF-8 (byte 0xff at byte 2)"
  assert_eq "$(sim_count ReconfigVM_Task)" 0
  assert_eq "$(ceso-info off1 | jq -c '[.hardware.cpus, .annotation]')" "$before"
}

@test "restricted mode: exit 5" {
  CESO_MODE=restricted run ceso-set off1 --cpus 1
  assert_status 5
}

@test "free license: one clear line, exit 1" {
  local st="$BATS_TEST_TMPDIR/free"
  mkdir -p "$st"
  eval "$(CESO_SIM_STATE=$st "$SIMCTL" start -vms 0 -free -vm-spec "$BATS_FILE_TMPDIR/free.json")"
  CESO_SSH='' run ceso-set free1 --cpus 2 # no SSH access for that host
  run2_status=$status
  run2_output=$output
  CESO_SSH='' run ceso-mkvm --from free1 free2
  CESO_SIM_STATE=$st "$SIMCTL" stop
  [ "$run2_status" -eq 1 ]
  assert_contains "$run2_output" "read-only"
  [ "$(echo "$run2_output" | wc -l)" -eq 1 ]
  assert_status 1
  assert_contains "$output" "read-only"
  [ "$(echo "$output" | wc -l)" -eq 1 ]
}

# ---- identity, not names (ceso(7) RECORDS) ----

@test "a saved record whose VM was replaced by a newer one of the same name: exit 3, nothing sent" {
  saved=$(saved_record stook)
  ceso-rm --yes stook >/dev/null
  needs_copy_tools
  ceso-mkvm --from sgold stook --no-power-on >/dev/null
  sim_reset
  run --separate-stderr ceso-set --tag +hit --cpus 3 <<<"$saved"
  assert_status 3
  assert_eq "$output" ""
  assert_contains "$stderr" "error (at <stdin>:1)"
  assert_contains "$stderr" "id $(jq -r .id <<<"$saved")"
  assert_eq "$(sim_count ReconfigVM_Task)" 0
  ceso-info stook | jq -e '.tags == [] and .cpus == 1'
}

@test "renamed or re-registered VM: reconfigured, the record has its current name and id" {
  saved=$(saved_record sren)
  rename_vm "$(jq -r .id <<<"$saved")" "sren & new"
  run --separate-stderr ceso-set --tag +kept <<<"$saved"
  assert_status 0
  echo "$output" | jq -e --argjson s "$saved" \
    '.name == "sren & new" and .id == $s.id and .tags == ["kept"] and .changed == true'
  saved=$(saved_record srereg)
  new=$(reregister_vm "$(jq -r .id <<<"$saved")")
  run --separate-stderr ceso-set --annotation moved <<<"$saved"
  assert_status 0
  echo "$output" | jq -e --arg id "$new" --argjson s "$saved" \
    '.id == $id and .uuid == $s.uuid and .name == "srereg" and .changed == true'
  ceso-info srereg | jq -e '.annotation == "moved"'
}

@test "guestinfo secrets reach the VM but never a plan, the audit log or stdout" {
  assert_secret_check_works
  export CESO_AUDIT_LOG="$BATS_TEST_TMPDIR/audit.log"
  local d=$BATS_TEST_TMPDIR m_file m_kv out=$BATS_TEST_TMPDIR/stdout enc dry
  m_file=$(new_marker) m_kv=$(new_marker)
  echo "secret: $m_file" >"$d/secret.yaml"
  for enc in gzip+base64 base64 none; do
    for dry in --dry-run ""; do
      # A guestinfo record from ceso-cloudinit, with the file in its user-data.
      ceso-cloudinit --hostname off1 --encoding "$enc" --write-file "/etc/s.yaml=$d/secret.yaml" \
        --runcmd "echo $enc$dry" | jq -c '.name = "off1"' >"$d/rec"
      run ceso-set $dry <"$d/rec"
      assert_status 0
      echo "$output" >>"$out"
      if [ -z "$dry" ]; then
        ceso-info --decode off1 | grep -qF "$m_file"
      else
        assert_contains "$output" '"operation":"ReconfigVM_Task"'
      fi
    done
  done
  # Keys given with --guestinfo: any guestinfo value is the user's data.
  for dry in --dry-run ""; do
    run ceso-set off1 --guestinfo "api_token=$m_kv$dry" \
      --guestinfo "guestinfo.userdata=$(printf '#cloud-config\n# %s\n' "$m_kv" | gzip | base64 -w0)" $dry
    assert_status 0
    echo "$output" >>"$out"
  done
  ceso-info off1 | jq -e --arg v "$m_kv" '.guestinfo["guestinfo.api_token"] == $v'
  grep -q 'guestinfo.api_token' "$CESO_AUDIT_LOG"
  for m in "$m_file" "$m_kv"; do
    assert_no_secret "$CESO_AUDIT_LOG" "$m"
    assert_no_secret "$out" "$m"
  done
}

# vCenter: a distributed portgroup needs a distributed-port backing (switch uuid +
# portgroup key); a standard backing naming it is not the same network. The class:
# ceso-set --network, and the NIC edits of a vCenter clone (ceso-clone, ceso-mkvm).
@test "vCenter: --network to a distributed portgroup and back; clone and mkvm onto it" {
  local st="$BATS_TEST_TMPDIR/vpx"
  mkdir -p "$st"
  echo '[{"name":"dv1","power":"off"},{"name":"dv2","power":"off"}]' >"$BATS_TEST_TMPDIR/vpx.json"
  eval "$(CESO_SIM_STATE=$st "$SIMCTL" start -model vpx -vms 0 -vm-spec "$BATS_TEST_TMPDIR/vpx.json")"
  # The portgroup's key, as the simulator's generated inventory has it.
  ceso-info dv1 | jq -e '.nics[0].network == "VM Network"'
  run ceso-set dv1 --network DC0_DVPG0
  set_status=$status set_output=$output
  run ceso-info dv1
  info=$output
  run ceso-set dv1 --network DC0_DVPG0
  again=$output
  run ceso-set dv1 --network 'VM Network'
  back_status=$status
  back=$(ceso-info dv1)
  run ceso-clone --no-power-on --network DC0_DVPG0 dv2 dv2-clone
  clone_status=$status clone_output=$output
  clone=$(ceso-info dv2-clone 2>&1 || true)
  run ceso-mkvm --from dv2 --hostname dv3 --network DC0_DVPG0 --no-power-on dv3
  mkvm_status=$status mkvm_output=$output
  mkvm=$(ceso-info dv3 2>&1 || true)
  # A clone of a VM on the distributed portgroup, without --network, stays on it.
  run ceso-clone --no-power-on dv3 dv4
  keep_status=$status keep_output=$output
  keep=$(ceso-info dv4 2>&1 || true)
  run ceso-set dv1 --network NoSuchNet
  missing_status=$status missing=$output
  CESO_SIM_STATE=$st "$SIMCTL" stop
  [ "$set_status" -eq 0 ] || { echo "$set_output"; false; }
  echo "$set_output" | jq -e '.changed == true'
  # ceso-info names a distributed portgroup by its key.
  echo "$info" | jq -e '.nics | length == 1 and (.[0].network | startswith("dvportgroup-"))'
  echo "$again" | jq -e '.changed == false'
  [ "$back_status" -eq 0 ]
  echo "$back" | jq -e '.nics[0].network == "VM Network"'
  [ "$clone_status" -eq 0 ] || { echo "$clone_output"; false; }
  echo "$clone" | jq -e '.nics[0].network | startswith("dvportgroup-")'
  [ "$mkvm_status" -eq 0 ] || { echo "$mkvm_output"; false; }
  echo "$mkvm" | jq -e '.nics[0].network | startswith("dvportgroup-")'
  [ "$keep_status" -eq 0 ] || { echo "$keep_output"; false; }
  [ "$(echo "$keep" | jq -r '.nics[0].network')" = "$(echo "$mkvm" | jq -r '.nics[0].network')" ]
  [ "$missing_status" -eq 1 ]
  assert_contains "$missing" "no portgroup named 'NoSuchNet' on the host of 'dv1'"
}

# ---- pass-through: unknown upstream fields kept, our fields fresh (ceso(7) RECORDS) ----

@test "pass-through: unknown fields and other tools' results kept; stale vm fields and details not" {
  rec=$(ceso-info setpass | jq -c '.power = "poweredOn" | .ip = "192.0.2.9" | .template = true
    | .tags = "a" | .forced = "PowerOffVM_Task" | .note = {"keep": ["me", 1]}')
  run --separate-stderr ceso-set --tag +b <<<"$rec"
  assert_status 0
  echo "$output" | jq -e '.changed == true and .tags == ["a","b"] and .power == "off"
    and has("ip") and .ip == null and .note == {"keep": ["me", 1]} and .forced == "PowerOffVM_Task"
    and (has("template") or has("hardware") or has("annotation") or has("guestinfo") | not)'
  assert_eq "$(echo "$output" | jq -c keys_unsorted)" \
    "$(ceso-set setpass --tag b | jq -c 'keys_unsorted + ["forced", "note"]')"
}

@test "pass-through: a guestinfo record's own fields are consumed, its other fields kept" {
  rec=$(ceso-cloudinit --hostname setpass --name setpass --verbose |
    jq -c '.role = "web" | .power = "poweredOn"')
  run --separate-stderr ceso-set <<<"$rec"
  assert_status 0
  echo "$output" | jq -e --arg iid "$(jq -r .instance_id <<<"$rec")" \
    '.type == "vm" and .name == "setpass" and .changed == true and .power == "off"
     and .role == "web" and .instance_id == $iid and (has("guestinfo") or has("documents") | not)'
}
