#!/usr/bin/env bats
# ceso-info against the simulator (ESX model), and record pipelines.

load helpers/common

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  local meta gz
  meta=$'instance-id: i-web01\nlocal-hostname: web01\n'
  gz=$(printf '%s' "$meta" | gzip -9n | base64 -w0)
  jq -n --arg gz "$gz" '[
    {name:"web01", power:"on", tags:["web"], guest_id:"ubuntu64Guest",
     extra_config:{"guestinfo.metadata":$gz, "guestinfo.metadata.encoding":"gzip+base64"}},
    {name:"o'\''brien & <co> é", power:"off", tags:["web"], guest_id:"ubuntu64Guest"}]' >"$spec"
  sim_start -vms 1 -vm-spec "$spec" -fill-mib 1
}

teardown_file() { sim_stop; }

@test "detailed record by name: hardware, disks, nics, tools, guestinfo" {
  run ceso-info web01
  assert_status 0
  echo "$output" | jq -e '.type == "vm" and .name == "web01" and .power == "on"
    and (.hardware.cpus >= 1) and (.disks | length) >= 1 and (.disks[0].file | startswith("[LocalDS_0] web01/"))
    and (.disks[0].capacity_bytes > 0) and (.disks[0].provisioning | IN("thin","thick","eagerzeroedthick"))
    and (.nics | length) >= 1 and (.nics[0].mac | test("^([0-9a-f]{2}:){5}[0-9a-f]{2}$"))
    and (.nics[0].type == "vmxnet3") and (.nics[0].network == "VM Network")
    and .snapshots == [] and (.tools | has("status")) and .guestinfo["guestinfo.metadata.encoding"] == "gzip+base64"'
}

@test "--decode shows the metadata cloud-init will read" {
  run ceso-info --decode web01
  assert_status 0
  assert_eq "$(echo "$output" | jq -r '.guestinfo["guestinfo.metadata"]')" $'instance-id: i-web01\nlocal-hostname: web01'
}

@test "records from ceso-ls: unknown fields pass through, hostile names work" {
  run bash -c "ceso-ls --tag web | jq -c '. + {note: \"keep me\"}' | ceso-info -o name,note,power"
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .note | sort -u)" "keep me"
  assert_contains "$output" "o'brien & <co> é"
}

@test "pass-through: unknown fields and earlier results kept; stale vm fields replaced or dropped" {
  rec=$(ceso-ls --name web01 | jq -c '.power = "poweredOff" | .ip = "192.0.2.9" | .template = true
    | .hardware = "x" | .tools = null | .changed = true | .note = {"keep": ["me", 1]}')
  out=$(ceso-info <<<"$rec")
  echo "$out" | jq -e '.power == "on" and has("ip") and .ip == null and (has("template") | not)
    and (.hardware | type) == "object" and (.tools | type) == "object"
    and .changed == true and .note == {"keep": ["me", 1]}'
  assert_eq "$(echo "$out" | jq -c keys_unsorted)" \
    "$(ceso-info web01 | jq -c 'keys_unsorted + ["changed", "note"]')"
}

@test "a 3-tool pipe logs in once" {
  fresh_cache
  sim_reset
  run bash -c 'set -o pipefail; ceso-ls --tag web | ceso-info | ceso-info -o name'
  assert_status 0
  [ "$(echo "$output" | wc -l)" -eq 2 ]
  assert_eq "$(sim_count Login)" 1
}

@test "unknown VM: exit 1 and the name on stderr; with a known one: exit 4" {
  run ceso-info nosuchvm
  assert_status 1
  assert_contains "$output" "'nosuchvm'"
  assert_contains "$output" "no VM named"
  run ceso-info web01 nosuchvm
  assert_status 4
}

@test "malformed NDJSON: exit 3 naming the line; the other records still done" {
  run bash -c 'printf "%s\n" "{\"type\":\"vm\",\"name\":\"web01\"}" "{broken" "{\"type\":\"vm\",\"name\":\"web01\"}" | ceso-info -o name'
  assert_status 4
  assert_contains "$output" "<stdin>:2"
  [ "$(echo "$output" | grep -c '"web01"')" -eq 2 ]
  run bash -c 'echo "{broken" | ceso-info'
  assert_status 3
  assert_contains "$output" "<stdin>:1"
  run bash -c 'echo "{\"type\":\"snapshot\",\"name\":\"x\"}" | ceso-info'
  assert_status 3
  assert_contains "$output" "type 'snapshot'"
}

@test "a record's stale id: found by its name only when its uuid matches, else exit 3" {
  ep=${CESO_URL#http://}
  ep=${ep%/sdk}
  uuid=$(ceso-info web01 | jq -r .uuid)
  run ceso-info -o id,name <<<"{\"type\":\"vm\",\"name\":\"web01\",\"id\":\"vm-999999\",\"uuid\":\"$uuid\",\"endpoint\":\"$ep\"}"
  assert_status 0
  assert_contains "$output" '"name":"web01"'
  [[ "$output" != *vm-999999* ]]
  run ceso-info -o id,name <<<"{\"type\":\"vm\",\"name\":\"web01\",\"id\":\"vm-999999\",\"endpoint\":\"$ep\"}"
  assert_status 3
  assert_contains "$output" "no VM has id vm-999999 now"
}

@test "a record from an unconfigured host is refused, not sent credentials" {
  run bash -c 'echo "{\"type\":\"vm\",\"name\":\"web01\",\"id\":\"vm-1\",\"endpoint\":\"elsewhere.example:443\"}" | ceso-info'
  assert_status 1
  assert_contains "$output" "elsewhere.example:443"
}

@test "sessions expired on the host are renewed" {
  ceso-info -o name web01 >/dev/null
  curl -s -X POST "${CESO_URL%/sdk}/_ceso/expire-sessions" >/dev/null
  sim_reset
  run ceso-info -o name web01
  assert_status 0
  assert_eq "$(sim_count Login)" 1
}

@test "no names and a terminal on stdin is a usage error" {
  run script -qec "ceso-info" /dev/null
  assert_contains "$output" "no VM named"
}
