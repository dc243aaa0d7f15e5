#!/usr/bin/env bats
# ceso-power against the simulator (ESX model, real-ESXi guest operations:
# ShutdownGuest/RebootGuest need running Tools and finish later).

bats_require_minimum_version 1.5.0
load helpers/common
load helpers/identity

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"p 01 & <x> \"q\" é","power":"off","tags":["pw"]},
 {"name":"on1","power":"off"},
 {"name":"off1","power":"on"},
 {"name":"idem","power":"off"},
 {"name":"sd1","power":"on","tools":"running"},
 {"name":"sdhang","power":"on","tools":"running","extra_config":{"cesosim.guest.shutdown":"ignore"}},
 {"name":"sdnotools","power":"on","tools":"notRunning"},
 {"name":"rb1","power":"on","tools":"running"},
 {"name":"rbnotools","power":"on","tools":"notRunning"},
 {"name":"susp1","power":"on"},
 {"name":"drv","power":"off"},
 {"name":"wt","power":"off","tools":"running"},{"name":"wnt","power":"off"},
 {"name":"failme","power":"off"},
 {"name":"w1","power":"on","tags":["web"]},{"name":"w2","power":"on","tags":["web"]},
 {"name":"w3","power":"on","tags":["web"]},{"name":"w4","power":"on","tags":["web"]},
 {"name":"w5","power":"on","tags":["web"]},{"name":"w6","power":"on","tags":["web"]},
 {"name":"in1","power":"off"},{"name":"in2","power":"off"},{"name":"in3","power":"off"},
 {"name":"in4","power":"off"},{"name":"in5","power":"off"},
 {"name":"pgold","power":"off"},{"name":"ptook","power":"off"},{"name":"prereg","power":"off"},
 {"name":"pren","power":"off"},{"name":"ptpass","power":"off"}]
JSON
  sim_start -vms 0 -vm-spec "$spec"
}

teardown_file() { sim_stop; }

power_of() { ceso-ls --name "$1" | jq -r .power; }

@test "on: powers on, prints the record with changed:true; a hostile name works" {
  run ceso-power on 'p 01 & <x> "q" é'
  assert_status 0
  echo "$output" | jq -e '.type == "vm" and .name == "p 01 & <x> \"q\" é" and .power == "on" and .changed == true'
  assert_eq "$(power_of 'p 01*')" on
}

@test "idempotent: a VM already there gives changed:false and no write call" {
  sim_reset
  run ceso-power off idem
  assert_status 0
  echo "$output" | jq -e '.changed == false and .power == "off"'
  assert_eq "$(sim_count PowerOffVM_Task)" 0
}

@test "off: hard power-off through PowerOffVM_Task" {
  sim_reset
  run ceso-power off off1
  assert_status 0
  echo "$output" | jq -e '.changed == true and .power == "off"'
  assert_eq "$(sim_count PowerOffVM_Task)" 1
}

@test "shutdown goes through VMware Tools and waits for the guest to power off" {
  sim_reset
  run ceso-power shutdown sd1
  assert_status 0
  echo "$output" | jq -e '.changed == true and .power == "off" and (has("forced") | not)'
  assert_eq "$(sim_count ShutdownGuest)" 1
  assert_eq "$(sim_count PowerOffVM_Task)" 0
}

@test "shutdown of a hung guest: fails after --timeout; --force powers off hard" {
  run ceso-power shutdown --timeout 1 sdhang
  assert_status 1
  assert_contains "$output" "did not shut down within 1 s"
  assert_contains "$output" "--force"
  assert_eq "$(power_of sdhang)" on
  sim_reset
  run ceso-power shutdown --timeout 1 --force sdhang
  assert_status 0
  echo "$output" | jq -e '.power == "off" and .forced == "PowerOffVM_Task"'
  assert_eq "$(sim_count ShutdownGuest)" 1
  assert_eq "$(sim_count PowerOffVM_Task)" 1
}

@test "shutdown without running Tools: refused unless --force" {
  run ceso-power shutdown sdnotools
  assert_status 1
  assert_contains "$output" "VMware Tools is not running"
  assert_eq "$(power_of sdnotools)" on
  run ceso-power shutdown --force sdnotools
  assert_status 0
  echo "$output" | jq -e '.power == "off" and .forced == "PowerOffVM_Task"'
}

@test "reboot through Tools; without Tools --force resets" {
  sim_reset
  run ceso-power reboot rb1
  assert_status 0
  echo "$output" | jq -e '.changed == true and .power == "on"'
  assert_eq "$(sim_count RebootGuest)" 1
  run ceso-power reboot rbnotools
  assert_status 1
  assert_contains "$output" "VMware Tools is not running"
  sim_reset
  run ceso-power reboot --force rbnotools
  assert_status 0
  echo "$output" | jq -e '.forced == "ResetVM_Task"'
  assert_eq "$(sim_count ResetVM_Task)" 1
}

@test "suspend, then on resumes; suspend of a VM that is off is refused" {
  run ceso-power suspend susp1
  assert_status 0
  echo "$output" | jq -e '.power == "suspended" and .changed == true'
  run ceso-power on susp1
  echo "$output" | jq -e '.power == "on"'
  run ceso-power suspend idem
  assert_status 1
  assert_contains "$output" "cannot suspend a VM that is powered off"
  run ceso-power reset idem
  assert_status 1
  assert_contains "$output" "cannot reset"
}

@test "--wait: after on, waits for VMware Tools; times out with exit 1" {
  run ceso-power on --wait --timeout 30 wt
  assert_status 0
  echo "$output" | jq -e '.power == "on" and .changed == true'
  run --separate-stderr ceso-power on --wait --timeout 1 wnt
  assert_status 1
  assert_eq "$output" ""
  assert_contains "$stderr" "waiting for VMware Tools"
}

@test "--dry-run prints a plan record and makes zero write calls" {
  sim_reset
  run ceso-power --dry-run on drv
  assert_status 0
  echo "$output" | jq -e '.type == "plan" and .vm == "drv" and .operation == "PowerOnVM_Task"'
  assert_eq "$(sim_count PowerOnVM_Task)" 0
  assert_eq "$(power_of drv)" off
}

@test "an injected PowerOnVM_Task failure: the record is not printed, exit 1" {
  sim_fail '{"method":"PowerOnVM_Task","fault":"InsufficientResourcesFault","message":"no memory left","task":true}'
  run --separate-stderr ceso-power on failme
  sim_fail '{}'
  assert_status 1
  assert_eq "$output" ""
  assert_contains "$stderr" "ceso-power: 'failme': "
  assert_contains "$stderr" "no memory left"
}

@test "restricted mode refuses with exit 5 and audits the refusal" {
  sim_reset
  CESO_MODE=restricted CESO_AUDIT_LOG="$BATS_TEST_TMPDIR/audit.log" run ceso-power on failme
  assert_status 5
  assert_contains "$output" "restricted"
  assert_eq "$(sim_count PowerOnVM_Task)" 0
  jq -e '.result == "refused" and .operation == "PowerOnVM_Task" and .vm == "failme"' "$BATS_TEST_TMPDIR/audit.log"
}

@test "pipeline with -j 4: ceso-ls --tag web | ceso-power off; one audit record per change" {
  export CESO_AUDIT_LOG="$BATS_TEST_TMPDIR/audit.log"
  sim_reset
  run bash -c 'ceso-ls --tag web | ceso-power -j 4 off'
  assert_status 0
  [ "$(echo "$output" | jq -s 'map(select(.changed and .power == "off")) | length')" -eq 6 ]
  assert_eq "$(sim_count PowerOffVM_Task)" 6
  [ "$(wc -l <"$CESO_AUDIT_LOG")" -eq 6 ]
  jq -se 'all(.result == "ok" and .operation == "PowerOffVM_Task" and .tool == "ceso-power")' "$CESO_AUDIT_LOG"
  run bash -c 'ceso-ls --tag web | ceso-power -j 4 off'
  [ "$(echo "$output" | jq -s 'map(select(.changed == false)) | length')" -eq 6 ]
}

@test "bad input: unknown VM (1), malformed record (3), bad action or option (2)" {
  run ceso-power on nosuchvm
  assert_status 1
  assert_contains "$output" "no VM named 'nosuchvm'"
  run bash -c 'echo "{not json" | ceso-power on'
  assert_status 3
  assert_contains "$output" "<stdin>:1"
  run ceso-power sideways on1
  assert_status 2
  assert_contains "$output" "unknown action 'sideways'"
  run ceso-power on --timeout x on1
  assert_status 2
  run ceso-power
  assert_status 2
}

@test "free license: one clear line, exit 1" {
  local state="$BATS_FILE_TMPDIR/free"
  mkdir -p "$state"
  eval "$(CESO_SIM_STATE="$state" "$SIMCTL" start -vms 1 -free)"
  # No SSH access for it: the API is tried, and the message says how to
  # configure SSH; --transport api gives the host's refusal alone.
  CESO_SSH='' run -1 ceso-power off --transport api ha-host_VM0
  local api_output=$output
  CESO_SSH='' run ceso-power off ha-host_VM0
  CESO_SIM_STATE="$state" "$SIMCTL" stop
  assert_status 1
  assert_eq "$(echo "$output" | wc -l)" 1
  assert_contains "$output" "RestrictedVersion"
  assert_contains "$output" "read-only"
  assert_contains "$output" 'configure `ssh: root@127.0.0.1`'
  assert_contains "$api_output" "RestrictedVersion"
  [[ "$api_output" != *"configure"* ]]
}

# ------------------------------------------------------------- hostile input on stdin
# ceso(7): a bad record is reported with its line and skipped, the others are
# processed (exit 4; 3 when every record was bad); a failed read is exit 1.

vm_line() { printf '{"type":"vm","name":"%s"}' "$1"; }

@test "stdin: a line over 16 MiB between good records is named, the good ones are done, exit 4" {
  local in="$BATS_TEST_TMPDIR/in"
  { vm_line in1; echo
    printf '{"type":"vm","name":"'; head -c $((16 * 1024 * 1024)) /dev/zero | tr '\0' x; echo '"}'
    vm_line in2; echo; } >"$in"
  run --separate-stderr ceso-power on <"$in"
  assert_status 4
  assert_contains "$stderr" "error (at <stdin>:2): line longer than 16777216 bytes"
  assert_eq "$(echo "$output" | jq -r 'select(.changed) | .name' | tr '\n' ' ')" "in1 in2 "
  assert_eq "$(power_of in2)" on
  # Alone, the over-long line is bad input (3).
  { head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' '{'; } >"$in"
  run --separate-stderr ceso-power on <"$in"
  assert_status 3
  assert_contains "$stderr" "<stdin>:1): line longer than"
}

@test "stdin: a last record without a newline is processed" {
  run --separate-stderr bash -c "{ $(declare -f vm_line); vm_line in3; echo; vm_line in4; } | ceso-power on"
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .name | tr '\n' ' ')" "in3 in4 "
  assert_eq "$(power_of in4)" on
}

@test "stdin: NUL bytes and invalid UTF-8 are named with their line, the others processed, exit 4" {
  local in="$BATS_TEST_TMPDIR/in"
  { printf '{"type":"vm","name":"in5\0"}\n'; printf '\0\0\0\n'
    printf '{"type":"vm","name":"\xff\xfe"}\n'; printf '{"type":"vm","name":"in\xc3"}\n'
    vm_line in5; echo; } >"$in"
  run --separate-stderr ceso-power on <"$in"
  assert_status 4
  assert_contains "$stderr" "error (at <stdin>:1): a NUL byte at column 25"
  assert_contains "$stderr" "error (at <stdin>:2): a NUL byte at column 1"
  assert_contains "$stderr" "error (at <stdin>:3): not a JSON record"
  assert_contains "$stderr" "error (at <stdin>:4): not a JSON record"
  assert_contains "$stderr" "UTF-8"
  assert_eq "$(echo "$output" | jq -r .name)" in5
}

@test "stdin: a read error is exit 1 with its own message, never the end of input" {
  run --separate-stderr ceso-power on <"$BATS_TEST_TMPDIR"
  assert_status 1
  assert_contains "$stderr" "cannot read <stdin> at line 1: Is a directory"
  # Nothing is done for records never read.
  sim_reset
  run --separate-stderr ceso-power off <"$BATS_TEST_TMPDIR"
  assert_status 1
  assert_eq "$(sim_count PowerOffVM_Task)" 0
}

# ---- identity, not names (ceso(7) RECORDS) ----

@test "a saved record whose VM was replaced by a newer one of the same name: exit 3, nothing powered" {
  saved=$(saved_record ptook)
  ceso-rm --yes ptook >/dev/null
  needs_copy_tools
  ceso-mkvm --from pgold ptook --no-power-on >/dev/null
  sim_reset
  run --separate-stderr ceso-power on <<<"$saved"
  assert_status 3
  assert_eq "$output" ""
  assert_contains "$stderr" "error (at <stdin>:1)"
  assert_contains "$stderr" "another uuid"
  assert_eq "$(sim_count PowerOnVM_Task)" 0
  assert_eq "$(power_of ptook)" off
  # the same through a pipeline stage that only waits: refused as well
  run --separate-stderr ceso-wait --for off --timeout 1 <<<"$saved"
  assert_status 3
}

@test "re-registered (new id, same uuid): powered on; renamed: powered off; records show the VM acted on" {
  saved=$(saved_record prereg)
  new=$(reregister_vm "$(jq -r .id <<<"$saved")")
  run --separate-stderr ceso-power on <<<"$saved"
  assert_status 0
  echo "$output" | jq -e --arg id "$new" --argjson s "$saved" \
    '.id == $id and .uuid == $s.uuid and .power == "on" and .changed == true'
  saved=$(saved_record pren)
  ceso-power on pren >/dev/null
  rename_vm "$(jq -r .id <<<"$saved")" pren2
  run --separate-stderr ceso-power off <<<"$saved"
  assert_status 0
  echo "$output" | jq -e --argjson s "$saved" '.id == $s.id and .name == "pren2" and .power == "off"'
  assert_eq "$(power_of pren2)" off
}

# ---- pass-through: unknown upstream fields kept, our fields fresh (ceso(7) RECORDS) ----

@test "pass-through: unknown fields kept; a stale power, ip, template, forced or ceso-info detail is not" {
  rec=$(ceso-info ptpass | jq -c '.power = "poweredOn" | .ip = "192.0.2.9" | .template = true
    | .forced = "PowerOffVM_Task" | .tags = "x" | .note = {"keep": ["me", 1]}')
  run --separate-stderr ceso-power off <<<"$rec"
  assert_status 0
  echo "$output" | jq -e '.power == "off" and has("ip") and .ip == null and .tags == []
    and .changed == false and .note == {"keep": ["me", 1]}
    and (has("template") or has("forced") or has("hardware") or has("snapshots") or has("tools") | not)'
  # One layout: ours first (as for a VM given by name), then the extras.
  assert_eq "$(echo "$output" | jq -c keys_unsorted)" \
    "$(ceso-power off ptpass | jq -c 'keys_unsorted + ["note"]')"
  # vm fields of another JSON type or null upstream: the host's are printed.
  rec=$(ceso-ls --name ptpass | jq -c '.cpus = "many" | .memory_mib = null | .disks_gib = {}')
  run --separate-stderr ceso-power on <<<"$rec"
  assert_status 0
  echo "$output" | jq -e --argjson s "$(ceso-ls --name ptpass)" \
    '.power == "on" and .changed == true and .id == $s.id and .uuid == $s.uuid and .cpus == $s.cpus
     and .memory_mib == $s.memory_mib and .disks_gib == $s.disks_gib'
  ceso-power off ptpass >/dev/null
}
