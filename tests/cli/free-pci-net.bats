#!/usr/bin/env bats
# ceso-pci and ceso-net on a free-licensed host: reads over the API, changes
# over SSH with the host's esxcli (passthrough, portgroups) and by editing the
# VM's .vmx (passthrough devices), vm/hostcli (docs/esxi.md "Free-licensed
# hosts over SSH").

bats_require_minimum_version 1.5.0
load helpers/common

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"g1","power":"off","memory_mib":2048},{"name":"g2","power":"off"},
 {"name":"gon","power":"on"},{"name":"gcut","power":"off"}]
JSON
  sim_start --license free --ssh -vms 0 -vm-spec "$spec"
}

teardown_file() { sim_stop; }

setup() {
  export CESO_SSH="$CESO_SIM_SSH_USER@127.0.0.1:$CESO_SIM_SSH_PORT"
  export CESO_SSH_IDENTITY="$CESO_SIM_SSH_KEY" CESO_SSH_HOST_KEY="$CESO_SIM_SSH_FINGERPRINT"
  "$SIMCTL" shim-fault >/dev/null
}

# Every process below PID (by parent ids).
descendants() {
  local s p pp kids
  kids=$(for s in /proc/[0-9]*/stat; do
    { read -r p _ _ pp _ <"$s"; } 2>/dev/null && [ "$pp" = "$1" ] && echo "$p"
  done)
  for p in $kids; do
    echo "$p"
    descendants "$p"
  done
}
teardown() { rm -f "$CESO_SIM_STATE/ssh/hold"; }
audit_last() { tail -1 "$XDG_STATE_HOME/ceso/audit.log"; }
api_calls() { sim_stats | jq -r --arg m "$1" '.soap[$m] // 0'; }
vmx_of() { ds_file "$(ceso-info "$1" | jq -r .vmx)"; }
local_calls() { sim_stats | jq -r --arg m "$1" '.local_soap[$m] // 0'; }

# ---- ceso-pci enable / disable: esxcli hardware pci pcipassthru set

@test "pci enable over SSH: esxcli, not the API; idempotent; says a reboot is needed; audited as ssh" {
  sim_reset
  run ceso-pci ls
  assert_status 0
  echo "$output" | jq -se 'map(select(.address == "0000:18:00.0")) | .[0].passthrough.enabled == false'
  run --separate-stderr ceso-pci enable 0000:18:00.0
  assert_status 0
  echo "$output" | jq -e '.address == "0000:18:00.0" and .passthrough.enabled and (.passthrough.active | not) and .changed'
  assert_contains "$stderr" "takes effect when the host reboots"
  assert_eq "$(api_calls UpdatePassthruConfig)" 0
  assert_eq "$(local_calls UpdatePassthruConfig)" 1
  audit_last | jq -e '.operation == "UpdatePassthruConfig" and .transport == "ssh" and .result == "ok"'
  run --separate-stderr ceso-pci enable 0000:18:00.0
  assert_status 0
  echo "$output" | jq -e '.changed == false'
  assert_eq "$(local_calls UpdatePassthruConfig)" 1
  # --now: applied at once (esxcli --apply-now)
  run --separate-stderr ceso-pci disable --now 0000:18:00.0
  assert_status 0
  echo "$output" | jq -e '(.passthrough.enabled | not) and (.passthrough.active | not) and .changed'
}

@test "pci enable over SSH: --dry-run sends nothing; bad and unknown addresses; esxcli failing" {
  sim_reset
  run --separate-stderr ceso-pci enable --dry-run 0000:18:00.0
  assert_status 0
  echo "$output" | jq -e '.type == "plan" and .operation == "UpdatePassthruConfig"'
  assert_eq "$(local_calls UpdatePassthruConfig)" 0
  run --separate-stderr ceso-pci enable 0000:zz:00.0
  assert_status 2
  run --separate-stderr ceso-pci enable 0000:99:00.0
  assert_status 1
  assert_contains "$stderr" "no PCI device 0000:99:00.0"
  # A device the host says is not capable: refused before esxcli runs.
  local chipset
  chipset=$(ceso-pci ls | jq -r 'select(.passthrough.capable == false) | .address' | head -1)
  run --separate-stderr ceso-pci enable "$chipset"
  assert_status 1
  assert_contains "$stderr" "cannot be passed through"
  # esxcli itself fails: its message, exit 1, the audit says so.
  "$SIMCTL" shim-fault "esxcli hardware PlatformConfigFault 1 Unable to configure passthrough" >/dev/null
  run --separate-stderr ceso-pci enable 0000:18:00.0
  assert_status 1
  assert_contains "$stderr" "esxcli hardware pci pcipassthru set"
  assert_contains "$stderr" "Unable to configure passthrough"
  audit_last | jq -e '.transport == "ssh" and .result != "ok"'
  ceso-pci ls | jq -se 'map(select(.address == "0000:18:00.0")) | .[0].passthrough.enabled == false'
}

# ---- ceso-pci attach / detach: pciPassthruN lines in the .vmx

@test "pci attach over SSH writes the .vmx lines; the VM powers on with the device; detach removes them" {
  sim_reset
  run --separate-stderr ceso-pci attach g1 0000:3b:00.0
  assert_status 0
  echo "$output" | jq -e '.name == "g1" and .changed and (.pci | length == 1) and .pci[0].address == "0000:3b:00.0" and .pci[0].device_id == "1eb8"'
  assert_eq "$(api_calls ReconfigVM_Task)" 0
  audit_last | jq -e '.operation == "ReconfigVM_Task" and .transport == "ssh" and .params.address == "0000:3b:00.0"'
  local vmx
  vmx=$(vmx_of g1)
  grep -qx 'pciPassthru0.present = "TRUE"' "$vmx"
  grep -qx 'pciPassthru0.id = "00000:059:00.0"' "$vmx"
  grep -qx 'pciPassthru0.deviceId = "0x1eb8"' "$vmx"
  grep -qx 'pciPassthru0.vendorId = "0x10de"' "$vmx"
  grep -qx 'sched.mem.min = "2048"' "$vmx"
  grep -qx 'sched.mem.pin = "TRUE"' "$vmx"
  grep -qx 'pciPassthru.use64bitMMIO = "TRUE"' "$vmx"
  grep -qx 'pciPassthru.64bitMMIOSizeGB = "64"' "$vmx"
  ! ls "$(dirname "$vmx")"/.ceso-* 2>/dev/null
  # Again: nothing to do.
  run ceso-pci attach g1 0000:3b:00.0
  assert_status 0
  echo "$output" | jq -e '.changed == false'
  # The host's power-on checks see it: it powers on (hex ids, systemId, memory locked).
  run ceso-power on g1
  assert_status 0
  # The device is now taken: another VM can configure it, but not power on with it.
  run --separate-stderr ceso-pci attach g2 0000:3b:00.0
  assert_status 1
  assert_contains "$stderr" "is taken"
  # On: refused.
  run --separate-stderr ceso-pci detach g1 0000:3b:00.0
  assert_status 1
  assert_contains "$stderr" "powered on"
  ceso-power off g1 >/dev/null
  run ceso-pci detach g1 0000:3b:00.0
  assert_status 0
  echo "$output" | jq -e '.changed and (.pci | length == 0)'
  ! grep -qi 'pciPassthru' "$vmx"
  audit_last | jq -e '.transport == "ssh" and .params.remove == ["0000:3b:00.0"]'
}

@test "pci attach --gpu over SSH picks a free device statically; --dry-run edits nothing" {
  sim_reset
  local vmx before
  vmx=$(vmx_of g2)
  before=$(sha256sum <"$vmx")
  run ceso-pci attach --dry-run g2 --gpu 10de:1e30
  assert_status 0
  echo "$output" | jq -e '.type == "plan" and .params.backing == "static" and .params.address == "0000:af:00.0"'
  assert_eq "$(sha256sum <"$vmx")" "$before"
  run ceso-pci attach g2 --gpu 10de:1e30 --mmio-gb 128
  assert_status 0
  echo "$output" | jq -e '.changed and .pci[0].address == "0000:af:00.0"'
  grep -qx 'pciPassthru.64bitMMIOSizeGB = "128"' "$vmx"
  # A NIC next to it: the next free index, no more MMIO lines.
  ceso-pci enable --now 0000:18:00.0 >/dev/null
  run ceso-pci attach g2 0000:18:00.0
  assert_status 0
  grep -qx 'pciPassthru1.id = "00000:024:00.0"' "$vmx"
  run ceso-pci detach g2 --all
  assert_status 0
  echo "$output" | jq -e '.changed and (.pci | length == 0)'
  ! grep -qi 'pciPassthru' "$vmx"
  ceso-pci disable --now 0000:18:00.0 >/dev/null
}

@test "pci attach over SSH: hostile .vmx entries (gaps, stale keys) keep their lines; a duplicated key refuses" {
  sim_reset
  local vmx
  vmx=$(vmx_of g2)
  cp "$vmx" "$BATS_TEST_TMPDIR/orig"
  # Not the simulator's own file any more (it rewrites those from the VM's config, as
  # hostd would): the lines stay as written, so the edit itself can be checked.
  grep -v '^cesosim.generated' "$BATS_TEST_TMPDIR/orig" >"$vmx"
  printf 'pciPassthru0.pciSlotNumber = "160"\npciPassthru2.present = "FALSE"\n' >>"$vmx"
  run ceso-pci attach g2 0000:3b:00.0
  assert_status 0
  grep -qx 'pciPassthru1.id = "00000:059:00.0"' "$vmx"
  grep -qx 'pciPassthru0.pciSlotNumber = "160"' "$vmx"
  grep -qx 'pciPassthru2.present = "FALSE"' "$vmx"
  ceso-pci detach g2 0000:3b:00.0 >/dev/null
  cp "$BATS_TEST_TMPDIR/orig" "$vmx"
  printf 'memSize = "4096"\n' >>"$vmx"
  before=$(sha256sum <"$vmx")
  run --separate-stderr ceso-pci attach g2 0000:3b:00.0
  assert_status 1
  assert_contains "$stderr" "more than one line"
  assert_eq "$(sha256sum <"$vmx")" "$before"
  cp "$BATS_TEST_TMPDIR/orig" "$vmx"
}

@test "pci attach over SSH: VM on, device not enabled, unknown VM are refused before the .vmx is touched" {
  sim_reset
  local vmx before
  run --separate-stderr ceso-pci attach gon 0000:3b:00.0
  assert_status 1
  assert_contains "$stderr" "powered on"
  vmx=$(vmx_of g2)
  before=$(sha256sum <"$vmx")
  run --separate-stderr ceso-pci attach g2 0000:18:00.0
  assert_status 1
  assert_contains "$stderr" "not active for passthrough"
  run --separate-stderr ceso-pci attach nosuchvm 0000:3b:00.0
  assert_status 1
  assert_eq "$(sha256sum <"$vmx")" "$before"
}

@test "pci attach over SSH: the connection killed mid-edit leaves the .vmx whole" {
  sim_reset
  local vmx before dir pid rc conns
  vmx=$(vmx_of gcut)
  dir=$(dirname "$vmx")
  before=$(sha256sum <"$vmx")
  # The new .vmx is written next to the old one (then renamed): hold it after
  # 10 bytes, and cut the SSH connection there.
  echo 10 >"$CESO_SIM_STATE/ssh/hold"
  ceso-pci attach gcut 0000:3b:00.0 >/dev/null 2>"$BATS_TEST_TMPDIR/err" &
  pid=$!
  for _ in $(seq 400); do
    [ "$(stat -c %s "$dir/.ceso-gcut.vmx.tmp" 2>/dev/null || echo 0)" -ge 10 ] && break
    sleep 0.05
  done
  [ -e "$dir/.ceso-gcut.vmx.tmp" ]
  # the simulator's sshd serves each connection from processes below its own:
  # the only connection now is this tool's
  conns=$(descendants "$(cat "$CESO_SIM_STATE/ssh/pid")")
  [ -n "$conns" ]
  kill -KILL $conns
  rc=0
  wait "$pid" || rc=$?
  rm -f "$CESO_SIM_STATE/ssh/hold"
  assert_eq "$rc" 6 # the connection lost (README, exit codes)
  assert_eq "$(sha256sum <"$vmx")" "$before"
  # the temporary file is removed over a new connection
  [ ! -e "$dir/.ceso-gcut.vmx.tmp" ]
  ceso-info gcut | jq -e '(.pci // []) | length == 0'
  # and the VM is untouched: the next attach works
  run ceso-pci attach gcut 0000:3b:00.0
  assert_status 0
  ceso-pci detach gcut --all >/dev/null
}

# ---- ceso-net add / set / rm: esxcli network vswitch standard portgroup

@test "net add/set/rm over SSH: esxcli, idempotent, audited as ssh" {
  sim_reset
  run ceso-net add web --vswitch vSwitch0 --vlan 10
  assert_status 0
  echo "$output" | jq -e '.name == "web" and .vlan == 10 and .vswitch == "vSwitch0" and .changed'
  assert_eq "$(api_calls AddPortGroup)" 0
  assert_eq "$(local_calls AddPortGroup)" 1
  audit_last | jq -e '.operation == "AddPortGroup" and .transport == "ssh" and .result == "ok"'
  run ceso-net add web --vswitch vSwitch0 --vlan 10
  assert_status 0
  echo "$output" | jq -e '.changed == false'
  run ceso-net set web --vlan 4095
  assert_status 0
  echo "$output" | jq -e '.vlan == 4095 and .trunk and .changed'
  assert_eq "$(local_calls UpdatePortGroup)" 2 # add's VLAN, then set
  run ceso-net set web --vlan 4095
  echo "$output" | jq -e '.changed == false'
  run ceso-net rm web
  assert_status 0
  echo "$output" | jq -e '.removed and .changed'
  ceso-net ls --kind portgroup | jq -se 'map(.name) | index("web") == null'
  run ceso-net rm web
  assert_status 0
  echo "$output" | jq -e '.absent and (.changed | not)'
}

@test "net over SSH: --dry-run, bad input, in use, moving vSwitch, esxcli failing (no half-made portgroup)" {
  sim_reset
  run ceso-net add --dry-run web --vswitch vSwitch0 --vlan 10
  assert_status 0
  echo "$output" | jq -e '.type == "plan" and .operation == "AddPortGroup"'
  assert_eq "$(local_calls AddPortGroup)" 0
  run --separate-stderr ceso-net add web --vswitch vSwitch0 --vlan 4096
  assert_status 2
  run --separate-stderr ceso-net add web --vswitch nosuch
  assert_status 1
  assert_contains "$stderr" "no standard vSwitch"
  # In use by a powered-on VM: refused before esxcli.
  run --separate-stderr ceso-net rm "VM Network"
  assert_status 1
  assert_contains "$stderr" "in use by powered-on VMs"
  # esxcli fails on the VLAN step: the new portgroup is removed again.
  "$SIMCTL" shim-fault "esxcli network.vswitch.standard.portgroup.set PlatformConfigFault 1 Unable to set VLAN" >/dev/null
  run --separate-stderr ceso-net add web2 --vswitch vSwitch0 --vlan 20
  assert_status 1
  assert_contains "$stderr" "esxcli network vswitch standard portgroup"
  ceso-net ls --kind portgroup | jq -se 'map(.name) | index("web2") == null'
  # esxcli moves no portgroup between vSwitches.
  ceso-net add web3 --vswitch vSwitch0 >/dev/null
  run --separate-stderr ceso-net set web3 --vswitch vSwitch1
  [ "$status" -eq 1 ]
  ceso-net rm web3 >/dev/null
}
