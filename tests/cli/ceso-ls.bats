#!/usr/bin/env bats
# ceso-ls against the simulator (ESX model).

load helpers/common

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"web 01 & <x> \"q\" é","power":"on","tags":["web","prod"],"guest_id":"ubuntu64Guest"},
 {"name":"web02","power":"off","tags":["web"],"guest_id":"ubuntu64Guest"},
 {"name":"db01","power":"suspended","tags":["db","prod"],"guest_id":"debian11_64Guest"},
 {"name":"t1","power":"off","extra_config":{"ceso.tags":" Blue, GREEN ,blue,,"}},
 {"name":"t2","power":"off","extra_config":{"ceso.tags":"green"}},
 {"name":"esc%2fone","power":"off"},
 {"name":"pct%25two","power":"off"}]
JSON
  sim_start -vms 2 -vm-spec "$spec"
}

teardown_file() { sim_stop; }

@test "lists every VM of the simulator's inventory with ids, names and power" {
  run ceso-ls
  assert_status 0
  [ "$(echo "$output" | wc -l)" -eq 9 ]
  # Compare with the inventory as the simulator itself reports it.
  expected=$(curl -s "${CESO_URL%/sdk}/_ceso/inventory" | jq -c '[.vms[] | {id, name, power}] | sort_by(.name)')
  got=$(echo "$output" | jq -sc '[.[] | {id, name, power}] | sort_by(.name)')
  assert_eq "$got" "$expected"
}

@test "records carry the documented fields" {
  run ceso-ls --name web02
  assert_status 0
  echo "$output" | jq -e '.type == "vm" and .endpoint == env.CESO_URL[7:-4] and (.id|startswith("vm-"))
    and .power == "off" and .tags == ["web"] and .guest_id == "ubuntu64Guest"
    and (.cpus|type) == "number" and (.memory_mib|type) == "number" and (.disks_gib|type) == "array"
    and (.vmx|startswith("[")) and (.datastore|length) > 0 and (.uuid|length) > 0'
}

@test "hostile names are listed exactly" {
  run ceso-ls --tag prod --power on
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .name)" 'web 01 & <x> "q" é'
}

@test "filters: --tag is AND, --power, --name glob, --guest glob" {
  run ceso-ls --tag web
  assert_eq "$(echo "$output" | jq -r .name | sort | tr '\n' ,)" 'web 01 & <x> "q" é,web02,'
  run ceso-ls --tag web --tag prod
  assert_eq "$(echo "$output" | jq -r .name)" 'web 01 & <x> "q" é'
  run ceso-ls --power suspended
  assert_eq "$(echo "$output" | jq -r .name)" 'db01'
  run ceso-ls --name 'web*'
  [ "$(echo "$output" | wc -l)" -eq 2 ]
  run ceso-ls --guest 'debian*'
  assert_eq "$(echo "$output" | jq -r .name)" 'db01'
  run ceso-ls --tag nosuchtag
  assert_status 0
  assert_eq "$output" ""
}

@test "--name matches vSphere's escaped names in either form ('a/b' finds 'a%2fb')" {
  for pattern in 'esc/one' 'esc%2fone' 'esc%2Fone' 'esc/*' 'esc?one' '*/one'; do
    run ceso-ls --name "$pattern"
    assert_status 0
    assert_eq "$(echo "$output" | jq -r .name)" 'esc%2fone'
  done
  for pattern in 'pct%two' 'pct%25two' 'pct%*'; do
    run ceso-ls --name "$pattern"
    assert_eq "$(echo "$output" | jq -r .name)" 'pct%25two'
  done
  # A glob still means a glob, and no other VM is taken for an escaped one.
  run ceso-ls --name 'esc/two'
  assert_status 0
  assert_eq "$output" ""
  run ceso-ls --name 'esc\one'
  assert_eq "$output" ""
}

@test "tags: set by hand in any case and with blanks, listed lower case, filtered case-insensitively" {
  run ceso-ls --name t1
  assert_eq "$(echo "$output" | jq -c .tags)" '["blue","green"]'
  for t in blue BLUE Blue ' blue '; do
    run ceso-ls --tag "$t"
    assert_status 0
    assert_eq "$(echo "$output" | jq -r .name)" t1
  done
  run ceso-ls --tag Green
  assert_eq "$(echo "$output" | jq -r .name | tr '\n' ,)" t1,t2,
  run ceso-ls --tag green --tag BLUE
  assert_eq "$(echo "$output" | jq -r .name)" t1
  for bad in '' ' ' 'a,b'; do
    run ceso-ls --tag "$bad"
    assert_status 2
    assert_contains "$output" "--tag: '$bad' is not a tag"
  done
}

@test "-o picks fields in records" {
  run ceso-ls --name db01 -o name,power
  assert_eq "$output" '{"name":"db01","power":"suspended"}'
}

@test "a terminal gets an aligned table; --json forces records" {
  run script -qec "ceso-ls --name 'web*'" /dev/null
  assert_status 0
  assert_contains "$output" "NAME"
  assert_contains "$output" "POWER"
  assert_contains "$output" "web02"
  run script -qec "ceso-ls --json --name web02" /dev/null
  echo "$output" | tr -d '\r' | jq -e '.name == "web02"'
}

@test "one property round trip per listing once the session is cached" {
  ceso-ls >/dev/null
  sim_reset
  ceso-ls >/dev/null
  assert_eq "$(sim_count RetrievePropertiesEx)" 1
  assert_eq "$(sim_stats | jq .soap_total)" 1
}

@test "--no-sort: the same records in the host's order, filters applied, one round trip" {
  ceso-ls >/dev/null
  sim_reset
  run ceso-ls --no-sort
  assert_status 0
  assert_eq "$(sim_stats | jq .soap_total)" 1
  unsorted=$output
  run ceso-ls
  assert_eq "$(echo "$unsorted" | jq -sc 'sort_by(.name, .id)')" "$(echo "$output" | jq -sc .)"
  # The host's order: the simulator's container view lists VMs by creation.
  expected=$(curl -s "${CESO_URL%/sdk}/_ceso/inventory" | jq -r '.vms[].id' | tr '\n' ,)
  assert_eq "$(echo "$unsorted" | jq -r .id | tr '\n' ,)" "$expected"
  [ "$(echo "$unsorted" | jq -r .name | tr '\n' ,)" != "$(echo "$output" | jq -r .name | tr '\n' ,)" ]
  run ceso-ls --no-sort --tag web -o name
  assert_eq "$(echo "$output" | jq -r .name | sort | tr '\n' ,)" 'web 01 & <x> "q" é,web02,'
}

@test "a closed pipe ends ceso-ls quietly" {
  run bash -c 'set -o pipefail; ceso-ls | head -1 >/dev/null'
  assert_status 0
  assert_eq "$output" ""
}

@test "wrong password: exit 6 and a clear message" {
  fresh_cache
  CESO_PASSWORD=wrong run ceso-ls
  assert_status 6
  assert_contains "$output" "incorrect user name or password"
  [[ "$output" != *wrong* ]]
}

@test "unreachable host: exit 6" {
  CESO_URL=http://127.0.0.1:1/sdk run ceso-ls
  assert_status 6
  assert_contains "$output" "cannot reach"
}

@test "unexpected argument and bad option are usage errors" {
  run ceso-ls web01
  assert_status 2
  assert_contains "$output" "--name"
  run ceso-ls --power sideways
  assert_status 2
  assert_contains "$output" "on|off|suspended"
  assert_contains "$output" "Try 'ceso-ls --help'"
}

@test "an expired session is renewed transparently" {
  ceso-ls >/dev/null
  # Corrupt the cached cookie: the host answers NotAuthenticated.
  f=$(ls "$XDG_CACHE_HOME"/ceso/sessions/*.json)
  jq -c '.cookie = "vmware_soap_session=\"00000000-dead\""' "$f" >"$f.new" && mv "$f.new" "$f" && chmod 600 "$f"
  sim_reset
  run ceso-ls
  assert_status 0
  [ "$(echo "$output" | wc -l)" -eq 9 ]
  assert_eq "$(sim_count Login)" 1
}

@test "the umbrella runs the tool" {
  run ceso ls --name db01 -o name
  assert_eq "$output" '{"name":"db01"}'
  run ceso help
  assert_status 0
  assert_contains "$output" "ls"
  assert_contains "$output" "List VMs"
  run ceso nosuchtool
  assert_status 2
}
