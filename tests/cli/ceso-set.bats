#!/usr/bin/env bats
# ceso-set against the simulator (ESX model).

load helpers/common
load helpers/secrets

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"off1","power":"off","tags":["web","old"],"cpus":1,"memory_mib":1024,"disks_mib":[4]},
 {"name":"on1","power":"on","tags":["web"]},
 {"name":"odd & <\"q\"> é","power":"off"}]
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

@test "CPU or memory change of a running VM fails with a clear message" {
  run ceso-set on1 --cpus 4
  assert_status 1
  assert_contains "$output" "needs it powered off"
  run ceso-set on1 --tag +ok
  assert_status 0
}

@test "--disk-grow grows the first disk and refuses to shrink" {
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

@test "vm records on stdin with -j; guestinfo records set guestinfo" {
  run bash -c 'ceso-ls --tag web | ceso-set -j 2 --tag +piped'
  assert_status 0
  [ "$(echo "$output" | jq -r 'select(.tags|index("piped")) | .name' | sort | tr '\n' ,)" = "off1,on1," ]
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

@test "restricted mode: exit 5" {
  CESO_MODE=restricted run ceso-set off1 --cpus 1
  assert_status 5
}

@test "free license: one clear line, exit 1" {
  local st="$BATS_TEST_TMPDIR/free"
  mkdir -p "$st"
  eval "$(CESO_SIM_STATE=$st "$SIMCTL" start -vms 0 -free -vm-spec "$BATS_FILE_TMPDIR/free.json")"
  run ceso-set free1 --cpus 2
  run2_status=$status
  run2_output=$output
  run ceso-mkvm --from free1 free2
  CESO_SIM_STATE=$st "$SIMCTL" stop
  [ "$run2_status" -eq 1 ]
  assert_contains "$run2_output" "read-only"
  [ "$(echo "$run2_output" | wc -l)" -eq 1 ]
  assert_status 1
  assert_contains "$output" "read-only"
  [ "$(echo "$output" | wc -l)" -eq 1 ]
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
