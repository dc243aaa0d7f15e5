#!/usr/bin/env bats
# ceso-wait against the simulator; the guest's IP and Tools are played with
# POST /_ceso/guest.

bats_require_minimum_version 1.5.0
load helpers/common

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"w 01 & <x> \"q\" é","power":"on","tools":"running","ip":"10.0.0.21"},
 {"name":"later","power":"on"},
 {"name":"never","power":"on"},
 {"name":"offvm","power":"off"}]
JSON
  sim_start -vms 0 -vm-spec "$spec"
}

teardown_file() { sim_stop; }

guest() { curl -sf -X POST -d "$1" "${CESO_URL%/sdk}/_ceso/guest" >/dev/null; }

@test "returns at once when the condition already holds; hostile name" {
  run ceso-wait --for ip 'w 01 & <x> "q" é'
  assert_status 0
  echo "$output" | jq -e '.ip == "10.0.0.21" and .waited == {"for":"ip","value":"10.0.0.21"} and .changed == false'
  run ceso-wait --for tools 'w 01 & <x> "q" é'
  assert_status 0
  run ceso-wait --for off offvm
  assert_status 0
  echo "$output" | jq -e '.power == "off"'
}

@test "waits until the guest reports an IP" {
  (sleep 1; guest '{"name":"later","ip":"10.0.0.22","tools":"running"}') &
  run ceso-wait --for ip --timeout 60 later
  wait
  assert_status 0
  echo "$output" | jq -e '.ip == "10.0.0.22"'
}

@test "timeout: exit 1 naming what it waited for; record not printed" {
  run --separate-stderr ceso-wait --for tools --timeout 1 never
  assert_status 1
  assert_eq "$output" ""
  assert_contains "$stderr" "timed out after 1 s waiting for VMware Tools to run"
}

@test "pipeline: records in, records out, -j 2; partial → exit 4" {
  run bash -c 'ceso-ls --name "w 01*" | ceso-wait -j 2 --for on'
  assert_status 0
  echo "$output" | jq -e '.power == "on"'
  run bash -c 'ceso-wait -j 2 --for on --timeout 0 offvm "w 01 & <x> \"q\" é"'
  assert_status 4
}

@test "usage errors: missing or bad --for" {
  run ceso-wait never
  assert_status 2
  assert_contains "$output" "--for"
  run ceso-wait --for lunch never
  assert_status 2
}

# ---- pass-through: unknown upstream fields kept, our fields fresh (ceso(7) RECORDS) ----

@test "pass-through: unknown fields kept; a stale ip, template or detail is not" {
  rec=$(ceso-info offvm | jq -c '.power = "poweredOn" | .ip = "192.0.2.9" | .template = true
    | .waited = {"for": "ip", "value": "192.0.2.9"} | .note = {"keep": ["me", 1]}')
  sim_reset
  run --separate-stderr ceso-wait --for off <<<"$(jq -c '.cpus = 64' <<<"$rec")"
  assert_status 0
  # The vm fields come with the poll that saw the condition (issue 10: no
  # round trip of their own): the lookup and one poll.
  assert_eq "$(sim_count RetrievePropertiesEx)" 2
  echo "$output" | jq -e '.power == "off" and has("ip") and .ip == null and .cpus != 64
    and .waited == {"for": "off", "value": "off"} and .note == {"keep": ["me", 1]}
    and (has("template") or has("hardware") or has("tools") | not)'
}
