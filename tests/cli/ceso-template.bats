#!/usr/bin/env bats
# ceso-template check against the simulator (ESX model).

bats_require_minimum_version 1.5.0
load helpers/common

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"gold & <x> \"q\" é","power":"off","tools":"notRunning","guest_id":"ubuntu64Guest"},
 {"name":"bad","power":"on","guest_id":"debian11_64Guest","nic":"e1000",
  "extra_config":{"guestinfo.metadata":"e30=","guestinfo.userdata":"I2Nsb3VkLWNvbmZpZw=="}}]
JSON
  sim_start -vms 1 -vm-spec "$spec"
}

teardown_file() { sim_stop; }

@test "a good golden image passes every check: 8 ok check records, exit 0" {
  run ceso-template check 'gold & <x> "q" é'
  assert_status 0
  [ "$(echo "$output" | wc -l)" -eq 8 ]
  echo "$output" | jq -se 'all(.type == "check" and .vm == "gold & <x> \"q\" é" and .ok == true and (.id|startswith("vm-")) and (.detail|length) > 0)'
  assert_eq "$(echo "$output" | jq -r .check | tr '\n' ,)" \
    "powered-off,ubuntu-64,tools-installed,has-disk,vmxnet3-nic,no-snapshots,no-iso,no-guestinfo,"
}

@test "a bad one: the failing checks say why, exit 4; reads only" {
  ceso-snap create --name s bad >/dev/null
  ceso-snap create --name s2 bad >/dev/null
  sim_reset
  run ceso-template check bad
  assert_status 4
  failed=$(echo "$output" | jq -r 'select(.ok == false) | .check' | tr '\n' ,)
  assert_eq "$failed" "powered-off,ubuntu-64,tools-installed,vmxnet3-nic,no-snapshots,no-guestinfo,"
  echo "$output" | jq -se 'map(select(.check == "no-guestinfo"))[0].detail | test("guestinfo.metadata") and test("guestinfo.userdata")'
  echo "$output" | jq -se 'map(select(.check == "vmxnet3-nic"))[0].detail | test("e1000")'
  echo "$output" | jq -se 'map(select(.check == "has-disk"))[0].ok'
  echo "$output" | jq -se 'map(select(.check == "no-snapshots"))[0].detail == "2 snapshot(s)"'
  [ "$(sim_stats | jq '[.soap | keys[] | select(test("Task|Guest"))] | length')" -eq 0 ]
}

@test "VM records from ceso-ls on stdin" {
  run bash -c 'ceso-ls --name "gold*" | ceso-template check'
  assert_status 0
  [ "$(echo "$output" | wc -l)" -eq 8 ]
}

@test "usage and input errors" {
  run ceso-template bad
  assert_status 2
  run ceso-template
  assert_status 2
  run ceso-template check nosuch
  assert_status 1
  run bash -c 'echo "{\"type\":\"vm\",\"name\":3}" | ceso-template check'
  assert_status 3
}
