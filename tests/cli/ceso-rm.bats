#!/usr/bin/env bats
# ceso-rm against the simulator (ESX model).

bats_require_minimum_version 1.5.0
load helpers/common
load helpers/identity

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"r 01 & <x> \"q\" é","power":"off"},
 {"name":"running","power":"on"},
 {"name":"prot","power":"off","tags":["protected"]},
 {"name":"asked","power":"off"},
 {"name":"drv","power":"on","tags":["protected"]},
 {"name":"failme","power":"off"},
 {"name":"g1","tags":["gone"]},{"name":"g2","tags":["gone"]},{"name":"g3","tags":["gone"]},
 {"name":"g4","tags":["gone"]},{"name":"g5","tags":["gone"]},
 {"name":"pcap","power":"off","extra_config":{"ceso.tags":"Protected"}},
 {"name":"pupper","power":"off","extra_config":{"ceso.tags":"web,PROTECTED"}},
 {"name":"pspace","power":"off","extra_config":{"ceso.tags":"web, \tprotected ,db"}},
 {"name":"pdup","power":"off","extra_config":{"ceso.tags":"protected,Protected,protected"}},
 {"name":"golden","power":"off"},
 {"name":"took","power":"off"},{"name":"rereg","power":"off"},{"name":"renamed","power":"off"},
 {"name":"handid","power":"off"},{"name":"handid2","power":"off"},{"name":"elsewhere","power":"off"},
 {"name":"mixok","power":"off"},{"name":"mixbad","power":"off"},
 {"name":"rmpass","power":"off"},{"name":"rmpassrun","power":"on"},{"name":"rmpassop","power":"on"}]
JSON
  sim_start -vms 0 -vm-spec "$spec"
}

teardown_file() { sim_stop; }

exists() { [ -n "$(ceso-ls --name "$1")" ]; }

@test "deletes a powered-off VM with --yes; its directory goes too; hostile name" {
  export CESO_AUDIT_LOG="$BATS_TEST_TMPDIR/audit.log"
  ds=$("$SIMCTL" datastore | jq -r .LocalDS_0)
  [ -d "$ds/r 01 & <x> \"q\" é" ]
  run ceso-rm --yes 'r 01 & <x> "q" é'
  assert_status 0
  echo "$output" | jq -e '.deleted == true and .changed == true and .name == "r 01 & <x> \"q\" é"'
  ! exists 'r 01*'
  [ ! -e "$ds/r 01 & <x> \"q\" é" ]
  jq -se 'length == 1 and .[0].operation == "Destroy_Task" and .[0].result == "ok"' "$CESO_AUDIT_LOG"
}

@test "a powered-on VM is refused (exit 5) unless --force, which powers it off first" {
  sim_reset
  run ceso-rm --yes running
  assert_status 5
  assert_contains "$output" "powered on"
  assert_contains "$output" "--force"
  assert_eq "$(sim_count Destroy_Task)" 0
  exists running
  run ceso-rm --yes --force running
  assert_status 0
  assert_eq "$(sim_count PowerOffVM_Task)" 1
  assert_eq "$(sim_count Destroy_Task)" 1
  ! exists running
}

@test "a VM tagged protected is refused (exit 5) unless --force" {
  run ceso-rm --yes prot
  assert_status 5
  assert_contains "$output" "protected"
  exists prot
  run ceso-rm --yes --force prot
  assert_status 0
  ! exists prot
}

@test "tags compare case-insensitively: Protected, PROTECTED, blanks and duplicates protect too" {
  for vm in pcap pupper pspace pdup; do
    run --separate-stderr ceso-rm --yes "$vm"
    assert_status 5
    assert_contains "$stderr" "tagged 'protected'"
    exists "$vm"
  done
  # From records on stdin, whatever the record says, the host's tags decide.
  run --separate-stderr bash -c 'ceso-ls --name "p[cusd]*" | jq -c ".tags = []" | ceso-rm --yes'
  assert_status 5
  exists pcap
  run ceso-rm --yes --force pcap
  assert_status 0
  ! exists pcap
}

@test "without a terminal and without --yes: refused, exit 5, nothing deleted" {
  sim_reset
  run setsid -w ceso-rm asked </dev/null
  assert_status 5
  assert_contains "$output" "pass --yes"
  assert_eq "$(sim_count Destroy_Task)" 0
  exists asked
}

@test "on a terminal: declined → exit 5; accepted → deleted" {
  run bash -c "echo n | script -qec 'ceso-rm asked' /dev/null"
  assert_status 5
  assert_contains "$output" "Delete VM 'asked'"
  assert_contains "$output" "confirmation declined"
  exists asked
  run bash -c "echo y | script -qec 'ceso-rm asked' /dev/null"
  assert_status 0
  ! exists asked
}

@test "--dry-run: plan records (power-off and destroy), zero write calls" {
  sim_reset
  run ceso-rm --dry-run --force drv
  assert_status 0
  echo "$output" | jq -se 'map(.type) == ["plan","plan"] and map(.operation) == ["PowerOffVM_Task","Destroy_Task"]'
  assert_eq "$(sim_count PowerOffVM_Task)" 0
  assert_eq "$(sim_count Destroy_Task)" 0
  exists drv
}

@test "injected Destroy_Task failure: record not printed, exit 1, VM kept" {
  sim_fail '{"method":"Destroy_Task","fault":"FileLocked","message":"locked by backup","task":true}'
  run --separate-stderr ceso-rm --yes failme
  sim_fail '{}'
  assert_status 1
  assert_eq "$output" ""
  assert_contains "$stderr" "locked by backup"
  exists failme
}

@test "restricted mode: exit 5 without asking" {
  CESO_MODE=restricted run setsid -w ceso-rm failme </dev/null
  assert_status 5
  assert_contains "$output" "restricted"
  exists failme
}

@test "pipeline with -j 4: ceso-ls --tag gone | ceso-rm --yes" {
  run bash -c 'ceso-ls --tag gone | ceso-rm -j 4 --yes'
  assert_status 0
  [ "$(echo "$output" | jq -s 'map(select(.deleted)) | length')" -eq 5 ]
  [ -z "$(ceso-ls --tag gone)" ]
}

@test "bad input: unknown VM (1), malformed record (3), bad option (2)" {
  run ceso-rm --yes nosuch
  assert_status 1
  run bash -c 'echo "[1]" | ceso-rm --yes'
  assert_status 3
  run ceso-rm --frobnicate x
  assert_status 2
}

@test "free license: one clear line, exit 1" {
  local state="$BATS_FILE_TMPDIR/free"
  mkdir -p "$state"
  eval "$(CESO_SIM_STATE="$state" "$SIMCTL" start -vms 1 -free)"
  CESO_SSH='' run ceso-rm --yes --force ha-host_VM0  # no SSH access for that host
  CESO_SIM_STATE="$state" "$SIMCTL" stop
  assert_status 1
  assert_eq "$(echo "$output" | wc -l)" 1
  assert_contains "$output" "read-only"
}

# ---- identity, not names (ceso(7) RECORDS) ----

@test "a saved record whose VM was replaced by a newer VM of the same name: exit 3, the newer VM stays" {
  saved=$(saved_record took)
  ceso-rm --yes took >/dev/null
  needs_copy_tools
  ceso-mkvm --from golden took --no-power-on >/dev/null
  newer=$(saved_record took)
  [ "$(jq -r .uuid <<<"$newer")" != "$(jq -r .uuid <<<"$saved")" ]
  sim_reset
  run --separate-stderr ceso-rm --yes <<<"$saved"
  assert_status 3
  assert_eq "$output" ""
  assert_contains "$stderr" "error (at <stdin>:1)"
  assert_contains "$stderr" "id $(jq -r .id <<<"$saved")"
  assert_contains "$stderr" "uuid $(jq -r .uuid <<<"$saved")"
  assert_contains "$stderr" "$(jq -r .id <<<"$newer"), uuid $(jq -r .uuid <<<"$newer")), another uuid"
  assert_eq "$(sim_count Destroy_Task)" 0
  assert_eq "$(saved_record took)" "$newer"
  # The same record with --force, and within a longer stream: still refused, the rest done.
  run --separate-stderr ceso-rm --yes --force <<<"$saved
$(saved_record mixok)"
  assert_status 4
  assert_contains "$stderr" "error (at <stdin>:1)"
  echo "$output" | jq -se 'length == 1 and .[0].name == "mixok"'
  exists took
  ! exists mixok
}

@test "a re-registered VM (new id, same uuid) is found by name and uuid; the record printed has its new id" {
  saved=$(saved_record rereg)
  old=$(jq -r .id <<<"$saved")
  new=$(reregister_vm "$old")
  [ "$new" != "$old" ]
  run --separate-stderr ceso-rm --yes <<<"$saved"
  assert_status 0
  echo "$output" | jq -e --arg id "$new" --argjson s "$saved" \
    '.deleted == true and .id == $id and .uuid == $s.uuid and .name == "rereg"'
  ! exists rereg
}

@test "a renamed VM (same id and uuid) is the same VM: deleted, the record carries its new name" {
  saved=$(saved_record renamed)
  rename_vm "$(jq -r .id <<<"$saved")" renamed-now
  run --separate-stderr ceso-rm --yes <<<"$saved"
  assert_status 0
  echo "$output" | jq -e --argjson s "$saved" \
    '.deleted == true and .name == "renamed-now" and .id == $s.id and .uuid == $s.uuid'
  ! exists renamed-now
}

@test "a record with id but no uuid needs the id and the name to match; never a name fallback" {
  id=$(saved_record handid | jq -r .id)
  other=$(saved_record handid2 | jq -r .id)
  sim_reset
  # id of another VM: refused, neither VM touched
  run --separate-stderr ceso-rm --yes <<<"{\"type\":\"vm\",\"id\":\"$other\",\"name\":\"handid\"}"
  assert_status 3
  assert_contains "$stderr" "VM $other is now named 'handid2'"
  assert_contains "$stderr" "without uuid"
  # an id that no longer exists: refused too, although a VM of that name exists
  run --separate-stderr ceso-rm --yes <<<'{"type":"vm","id":"vm-99999","name":"handid"}'
  assert_status 3
  assert_contains "$stderr" "no VM has id vm-99999 now"
  assert_eq "$(sim_count Destroy_Task)" 0
  exists handid
  exists handid2
  # id and name agree: deleted
  run ceso-rm --yes <<<"{\"type\":\"vm\",\"id\":\"$id\",\"name\":\"handid\"}"
  assert_status 0
  ! exists handid
}

@test "a record from a host not configured is never acted on through the default host" {
  rec=$(saved_record elsewhere)
  sim_reset
  run --separate-stderr ceso-rm --yes <<<"$(jq -c '.endpoint = "esxi9.example:443"' <<<"$rec")"
  assert_status 1
  assert_contains "$stderr" "no credentials for it are configured"
  for bad in 'null' '42' '""' '["x"]'; do
    run --separate-stderr ceso-rm --yes <<<"$(jq -c ".endpoint = $bad" <<<"$rec")"
    assert_status 3
  done
  for bad in '42' 'true'; do
    run --separate-stderr ceso-rm --yes <<<"$(jq -c ".uuid = $bad" <<<"$rec")"
    assert_status 3
    assert_contains "$stderr" '"uuid" is not a string'
  done
  assert_eq "$(sim_count Destroy_Task)" 0
  exists elsewhere
}

# ---- pass-through: unknown upstream fields kept, our fields fresh (ceso(7) RECORDS) ----

@test "pass-through: unknown fields kept; a stale power, ip, template or ceso-info detail is not" {
  rec=$(ceso-info rmpass | jq -c '.power = "poweredOn" | .ip = "192.0.2.9" | .template = true
    | .deleted = "no" | .note = {"keep": ["me", 1]}')
  run --separate-stderr ceso-rm --yes <<<"$rec"
  assert_status 0
  echo "$output" | jq -e '.name == "rmpass" and .deleted == true and .changed == true
    and .power == "off" and has("ip") and .ip == null and .note == {"keep": ["me", 1]}
    and (has("template") or has("hardware") or has("snapshots") or has("guestinfo") | not)'
  ! exists rmpass
}

@test "--force on a running VM: the record shows it powered off, given by record or by name" {
  rec=$(ceso-ls --name rmpassrun | jq -c '.note = "keep me"')
  [ "$(jq -r .power <<<"$rec")" = on ]
  run --separate-stderr ceso-rm --yes --force <<<"$rec"
  assert_status 0
  echo "$output" | jq -e '.power == "off" and .deleted == true and .note == "keep me"'
  run --separate-stderr ceso-rm --yes --force rmpassop
  assert_status 0
  echo "$output" | jq -e '.power == "off" and .deleted == true and .name == "rmpassop"'
  ! exists rmpassrun
  ! exists rmpassop
}
