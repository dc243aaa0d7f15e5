#!/usr/bin/env bats
# ceso-pci against the simulator: ESX model (file-wide), vCenter model (own simulator).
# The simulator's hosts each have an Intel X710 (0000:18:00.0, capable, passthrough off),
# an NVIDIA Tesla T4 (0000:3b:00.0) and a Quadro RTX 6000 with its audio function
# (0000:af:00.0, 0000:af:00.1), all three enabled and active (tests/sim/README.md).

bats_require_minimum_version 1.5.0
load helpers/common

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"gpu01","power":"on","pci_passthrough":true},
 {"name":"p1","power":"off"},{"name":"p2","power":"off"},{"name":"p3","power":"off"},
 {"name":"pon","power":"on"},{"name":"raw","power":"off"},{"name":"det","power":"off"},
 {"name":"golden","power":"off"}]
JSON
  sim_start -vms 0 -vm-spec "$spec"
}

teardown_file() { sim_stop; }

setup() { export CESO_AUDIT_LOG="$BATS_TEST_TMPDIR/audit.log"; }

# The VM's config as the host has it, through plain SOAP (not ceso).
vm_prop() {
  raw_login
  raw_soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">ha-property-collector</_this><specSet><propSet><type>VirtualMachine</type><pathSet>$2</pathSet></propSet><objectSet><obj type=\"VirtualMachine\">$1</obj></objectSet></specSet><options></options></RetrievePropertiesEx>"
}
vm_id() { ceso-info "$1" | jq -r .id; }

@test "ls: one pci record per device, hex ids, names, class, passthrough state and owner" {
  run --separate-stderr ceso-pci ls
  assert_status 0
  echo "$output" | jq -se 'all(.type == "pci" and .host == "localhost.localdomain")'
  echo "$output" | jq -se 'map(select(.address == "0000:3b:00.0"))[0] |
    .ids == "10de:1eb8" and .vendor == "NVIDIA Corporation" and .device == "TU104GL [Tesla T4]"
    and .class == "3D controller" and .gpu and .passthrough.capable and .passthrough.active
    and .vm == "gpu01" and .vm_power == "on" and (.assignable | not)'
  echo "$output" | jq -se 'map(select(.address == "0000:18:00.0"))[0] |
    .ids == "8086:1572" and .class == "Ethernet controller" and .passthrough.capable
    and (.passthrough.enabled | not) and .vm == null'
  # vcsim's own chipset devices: signed 16-bit ids read as unsigned hex, not capable.
  echo "$output" | jq -se 'map(select(.address == "0000:00:00.0"))[0] |
    .vendor_id == "8086" and (.passthrough.capable | not)'
}

@test "ls --gpus and --assignable filter; ls takes no operands" {
  run ceso-pci ls --gpus
  assert_status 0
  echo "$output" | jq -se 'all(.gpu) and (map(.address) | index("0000:3b:00.0") and index("0000:af:00.0"))'
  run ceso-pci ls --gpus --assignable
  echo "$output" | jq -se 'map(.address) == ["0000:af:00.0"]'
  run ceso-pci ls --assignable
  echo "$output" | jq -se 'map(.address) == ["0000:af:00.0", "0000:af:00.1"]'
  run ceso-pci ls 0000:3b:00.0
  assert_status 2
  run ceso-pci ls --esxi nosuchhost
  assert_status 1
  assert_contains "$output" "no host named 'nosuchhost'"
}

@test "info: by address (short form too) and from pci records on stdin" {
  run ceso-pci info 3b:00.0
  assert_status 0
  echo "$output" | jq -e '.address == "0000:3b:00.0" and .vm == "gpu01"'
  run bash -c 'ceso-pci ls --gpus --assignable | ceso-pci info'
  assert_status 0
  echo "$output" | jq -se 'map(.address) == ["0000:af:00.0"]'
}

@test "bad addresses: exit 2 naming the reason; unknown device exit 1; bad records exit 3" {
  for a in "" "3b:00" "0000:3b:00.8" "0000:3b:20.0" "zz:00.0" "../3b:00.0" "0000:3b:00.0.0" \
    "00000:3b:00.0" "$(printf 'a%.0s' {1..5000})"; do
    run --separate-stderr ceso-pci info "$a"
    assert_status 2
    assert_contains "$stderr" "is not a PCI address"
  done
  run --separate-stderr ceso-pci info 0000:99:00.0
  assert_status 1
  assert_contains "$stderr" "no PCI device 0000:99:00.0"
  run --separate-stderr bash -c 'echo "{\"type\":\"pci\",\"name\":\"x\",\"address\":\"../../x\"}" | ceso-pci info'
  assert_status 3
  assert_contains "$stderr" "is not a PCI address"
  run --separate-stderr bash -c 'echo "{\"type\":\"pci\",\"name\":\"x\",\"address\":7}" | ceso-pci info'
  assert_status 3
  assert_contains "$stderr" 'needs "address"'
}

@test "enable: --dry-run plans only; then UpdatePassthruConfig, reboot needed; idempotent" {
  sim_reset
  run --separate-stderr ceso-pci enable 0000:18:00.0 --dry-run
  assert_status 0
  echo "$output" | jq -e '.type == "plan" and .operation == "UpdatePassthruConfig"
    and .params.address == "0000:18:00.0" and .params.enabled == true'
  [ "$(sim_count UpdatePassthruConfig)" -eq 0 ]
  [ ! -s "$CESO_AUDIT_LOG" ]
  ceso-pci info 18:00.0 | jq -e '.passthrough.enabled == false'

  run --separate-stderr ceso-pci enable 18:00.0
  assert_status 0
  echo "$output" | jq -e '.changed == true and .passthrough.enabled and (.passthrough.active | not)
    and .passthrough.reboot_needed'
  assert_contains "$stderr" "takes effect when the host reboots"
  [ "$(sim_count UpdatePassthruConfig)" -eq 1 ]
  jq -e '.operation == "UpdatePassthruConfig" and .result == "ok" and .params.address == "0000:18:00.0"' "$CESO_AUDIT_LOG"

  run --separate-stderr ceso-pci enable 18:00.0
  echo "$output" | jq -e '.changed == false'
  [ "$(sim_count UpdatePassthruConfig)" -eq 1 ]
  # Not active before the reboot: a VM cannot take it yet.
  run --separate-stderr ceso-pci attach p3 0000:18:00.0
  assert_status 1
  assert_contains "$stderr" "not active for passthrough until the host reboots"

  curl -sf -X POST "${CESO_URL%/sdk}/_ceso/reboot-host" | jq -e '.activated == 1'
  ceso-pci info 18:00.0 | jq -e '.passthrough.active and .assignable'

  run --separate-stderr ceso-pci disable 18:00.0 --now
  assert_status 0
  echo "$output" | jq -e '.changed == true and (.passthrough.enabled | not) and (.passthrough.active | not)'
}

@test "enable: a device that is not capable fails (exit 1); restricted mode refuses (exit 5)" {
  run --separate-stderr ceso-pci enable 0000:00:00.0
  assert_status 1
  assert_contains "$stderr" "cannot be passed through"
  CESO_MODE=restricted run --separate-stderr ceso-pci enable 0000:18:00.0
  assert_status 5
  jq -e '.result == "refused"' "$CESO_AUDIT_LOG"
}

@test "attach ADDRESS: hex backing, memory locked to max, 64-bit MMIO for a GPU; idempotent" {
  sim_reset
  run --separate-stderr ceso-pci attach p1 0000:af:00.0 --dry-run
  assert_status 0
  echo "$output" | jq -e '.type == "plan" and .operation == "ReconfigVM_Task" and .params.address == "0000:af:00.0"
    and .params.memory_reservation_locked_to_max and .params.mmio_gb == 64'
  [ "$(sim_count ReconfigVM_Task)" -eq 0 ]

  run --separate-stderr ceso-pci attach p1 af:00.0
  assert_status 0
  echo "$output" | jq -e '.type == "vm" and .name == "p1" and .changed == true and
    (.pci | length == 1) and .pci[0].kind == "static" and .pci[0].address == "0000:af:00.0"
    and .pci[0].vendor_id == "10de" and .pci[0].device_id == "1e30"'
  jq -e '.operation == "ReconfigVM_Task" and .result == "ok" and .vm == "p1"' "$CESO_AUDIT_LOG"
  id=$(vm_id p1)
  out=$(vm_prop "$id" config)
  assert_contains "$out" "<memoryReservationLockedToMax>true</memoryReservationLockedToMax>"
  assert_contains "$out" "<deviceId>1e30</deviceId>"
  assert_contains "$out" "<key>pciPassthru.64bitMMIOSizeGB</key><value XMLSchema-instance:type=\"xsd:string\">64</value>"
  assert_contains "$out" "<key>pciPassthru.use64bitMMIO</key><value XMLSchema-instance:type=\"xsd:string\">TRUE</value>"
  ceso-info p1 | jq -e '.pci[0].address == "0000:af:00.0"'
  ceso-pci info af:00.0 | jq -e '.vm == "p1" and .vm_power == "off" and (.assignable | not)'

  sim_reset
  run ceso-pci attach p1 af:00.0
  echo "$output" | jq -e '.changed == false'
  [ "$(sim_count ReconfigVM_Task)" -eq 0 ]

  # The host accepts the power-on: ids, systemId, reservation are what it wants.
  run ceso-power on p1
  assert_status 0
  ceso-pci info af:00.0 | jq -e '.vm == "p1" and .vm_power == "on"'
  # A passthrough VM: no snapshot (so no hot backup).
  run --separate-stderr ceso-snap create --name s p1
  assert_status 1
  assert_contains "$stderr" "PCI passthrough"
  assert_contains "$stderr" "--cold"
  run ceso-power off --force p1
  assert_status 0
}

@test "attach refuses: VM powered on, device owned by another VM, unknown device, not capable" {
  run --separate-stderr ceso-pci attach pon af:00.1
  assert_status 1
  assert_contains "$stderr" "is powered on: passthrough devices change only while it is off"
  run --separate-stderr ceso-pci attach p2 0000:3b:00.0
  assert_status 1
  assert_contains "$stderr" "is configured in VM 'gpu01' (on)"
  run --separate-stderr ceso-pci attach p2 0000:99:00.0
  assert_status 1
  assert_contains "$stderr" "has no PCI device 0000:99:00.0"
  run --separate-stderr ceso-pci attach p2 0000:00:00.0
  assert_status 1
  assert_contains "$stderr" "cannot be passed through"
  run --separate-stderr ceso-pci attach p2
  assert_status 2
  run --separate-stderr ceso-pci attach p2 --gpu 10de:1eb8 --mmio-gb 100
  assert_status 2
  assert_contains "$stderr" "not a power of two"
  run --separate-stderr ceso-pci attach nosuchvm 0000:af:00.1
  assert_status 1
  ceso-info p2 | jq -e '.pci == []'
}

@test "--gpu: hex ids only (decimal ids get a hint), malformed ids exit 2, unknown ids exit 1" {
  run --separate-stderr ceso-pci attach p2 --gpu 4318:7864
  assert_status 1
  assert_contains "$stderr" "4318:7864 read as decimal is 10de:1eb8"
  for g in 10de 10de: :1eb8 10de:1eb8:0 g0de:1eb8 10de:12345 0000:1eb8 -1:1; do
    run --separate-stderr ceso-pci attach p2 --gpu "$g"
    assert_status 2
    assert_contains "$stderr" "is not VENDOR:DEVICE"
  done
  run --separate-stderr ceso-pci attach p2 --gpu 10de:ffff
  assert_status 1
  assert_contains "$stderr" "offers no device 10de:ffff"
  ceso-info p2 | jq -e '.pci == []'
}

@test "--gpu uses dynamic DirectPath; the host assigns a free device at power-on or refuses" {
  # over SSH --gpu picks a device statically (free-pci-net.bats; docs/esxi.md)
  is_free_model && skip "free model: no dynamic DirectPath in a .vmx written over SSH"
  run --separate-stderr ceso-pci attach p2 --gpu 10de:1eb8 --mmio-gb 128
  assert_status 0
  echo "$output" | jq -e '.changed and .pci[0].kind == "dynamic" and .pci[0].allowed == ["10de:1eb8"]'
  out=$(vm_prop "$(vm_id p2)" config.extraConfig)
  assert_contains "$out" ">128</value>"
  # The only T4 is gpu01's, which is on: nothing free to assign.
  run --separate-stderr ceso-power on p2
  assert_status 1
  assert_contains "$stderr" "No free PCI passthrough device"
  run ceso-pci detach p2 --gpu 10de:1eb8
  assert_status 0
  echo "$output" | jq -e '.changed and .pci == []'
  out=$(vm_prop "$(vm_id p2)" config.extraConfig)
  [[ "$out" != *pciPassthru.64bitMMIOSizeGB* ]]
  # The Quadro is free: assigned at power-on, and then owned by p2.
  ceso-pci attach p2 --gpu 10de:1e30 | jq -e '.changed'
  run ceso-power on p2
  assert_status 0
  ceso-pci info af:00.0 | jq -e '.vm == "p2" and .vm_power == "on"'
  ceso-info p2 | jq -e '.pci[0].address == "0000:af:00.0"'
  run ceso-power off --force p2
  assert_status 0
}

@test "simulator: power-on checks of a real host (decimal ids, no reservation, device in use)" {
  id=$(vm_id raw)
  # What govc 0.24 sent: the device id in decimal (7864 = 0x1eb8), reservation locked.
  raw_login
  out=$(raw_soap "<ReconfigVM_Task xmlns=\"urn:vim25\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><_this type=\"VirtualMachine\">$id</_this><spec><deviceChange><operation>add</operation><device xsi:type=\"VirtualPCIPassthrough\"><key>-1</key><backing xsi:type=\"VirtualPCIPassthroughDeviceBackingInfo\"><deviceName></deviceName><id>0000:af:00.1</id><deviceId>4343</deviceId><systemId>x</systemId><vendorId>4318</vendorId></backing></device></deviceChange></spec></ReconfigVM_Task>")
  assert_contains "$out" "<returnval type=\"Task\">"
  run --separate-stderr ceso-power on raw
  assert_status 1
  assert_contains "$stderr" "Invalid memory setting"
  raw_soap "<ReconfigVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$id</_this><spec><memoryReservationLockedToMax>true</memoryReservationLockedToMax></spec></ReconfigVM_Task>" >/dev/null
  run --separate-stderr ceso-power on raw
  assert_status 1
  assert_contains "$stderr" "device ids are hexadecimal"
  # Through ceso the ids are hex and the systemId the host's.
  run ceso-pci detach raw 0000:af:00.1
  assert_status 0
  run ceso-pci attach raw 0000:af:00.1
  assert_status 0
  run ceso-power on raw
  assert_status 0
  # A second VM with the same device cannot power on while raw is on.
  run ceso-pci attach det 0000:af:00.1
  assert_status 1
  assert_contains "$output" "is configured in VM 'raw' (on)"
  run ceso-power off --force raw
  assert_status 0
  ceso-pci detach raw --all | jq -e '.changed'
}

@test "detach: --dry-run, by address, --all; refuses while on; nothing to detach is unchanged" {
  ceso-pci attach det 0000:af:00.1 | jq -e '.changed'
  sim_reset
  run ceso-pci detach det 0000:af:00.1 --dry-run
  assert_status 0
  echo "$output" | jq -e '.type == "plan" and .params.remove == ["0000:af:00.1"]'
  [ "$(sim_count ReconfigVM_Task)" -eq 0 ]
  run --separate-stderr ceso-pci detach gpu01 --all
  assert_status 1
  assert_contains "$stderr" "is powered on"
  run ceso-pci detach det --all
  assert_status 0
  echo "$output" | jq -e '.changed and .pci == []'
  run ceso-pci detach det --all
  echo "$output" | jq -e '.changed == false'
  run --separate-stderr ceso-pci detach det
  assert_status 2
  run --separate-stderr ceso-pci detach det --all --gpu 10de:1eb8
  assert_status 2
}

@test "attach from vm records on stdin (ceso-ls | ceso-pci attach ADDRESS)" {
  run bash -c 'ceso-ls | jq -c "select(.name == \"p3\")" | ceso-pci attach 0000:af:00.1'
  assert_status 0
  echo "$output" | jq -e '.name == "p3" and .changed and .pci[0].address == "0000:af:00.1"'
  run ceso-pci detach p3 af:00.1
  assert_status 0
}

@test "ceso-mkvm --gpu/--pci: the new VM gets the device before it powers on; a taken device creates nothing" {
  run --separate-stderr ceso-mkvm --from golden --pci 0000:af:00.1 g1 --dry-run
  assert_status 0
  echo "$output" | jq -se 'map(select(.operation == "ReconfigVM_Task"))[0].params |
    .address == "0000:af:00.1" and .memory_reservation_locked_to_max'
  run --separate-stderr ceso-info g1
  assert_status 1

  # over SSH (free model) --gpu takes a device no VM has configured: p1 gives its Quadro back
  if is_free_model; then ceso-pci detach p1 --all >/dev/null; fi
  run --separate-stderr ceso-mkvm --from golden --gpu 10de:1e30 --mmio-gb 32 g2
  assert_status 0
  # over SSH (free model) --gpu picks a device statically (docs/esxi.md)
  if is_free_model; then
    echo "$output" | jq -e '.name == "g2" and .changed and .power == "on" and .pci[0].kind == "static"
      and .pci[0].address == "0000:af:00.0"'
  else
    echo "$output" | jq -e '.name == "g2" and .changed and .power == "on" and .pci[0].kind == "dynamic"
      and .pci[0].allowed == ["10de:1e30"]'
  fi
  ceso-pci info af:00.0 | jq -e '.vm == "g2" and .vm_power == "on"'
  out=$(vm_prop "$(vm_id g2)" config)
  assert_contains "$out" "<memoryReservationLockedToMax>true</memoryReservationLockedToMax>"
  assert_contains "$out" ">32</value>"
  jq -se 'map(select(.tool == "ceso-mkvm" and .operation == "ReconfigVM_Task"))[0].params |
    .gpu == "10de:1e30" or .ids == "10de:1e30"' "$CESO_AUDIT_LOG"

  # The T4 is gpu01's: refused before anything is made.
  sim_reset
  run --separate-stderr ceso-mkvm --from golden --pci 3b:00.0 g3
  assert_status 1
  assert_contains "$stderr" "is configured in VM 'gpu01' (on)"
  [ "$(sim_count CreateVM_Task)" -eq 0 ]
  run ceso-info g3
  assert_status 1

  run --separate-stderr ceso-mkvm --from golden --pci 3b:00.0 --gpu 10de:1eb8 g4
  assert_status 2
  run --separate-stderr ceso-mkvm --from golden --mmio-gb 64 g4
  assert_status 2
  run --separate-stderr ceso-mkvm --from golden --pci 3b:00 g4
  assert_status 2
  assert_contains "$stderr" "--pci: '3b:00' is not a PCI address"
  run ceso-power off --force g2
  assert_status 0
}

@test "failure paths: the host refuses UpdatePassthruConfig / ReconfigVM_Task; mkvm removes its half-made VM" {
  sim_fail '{"method":"UpdatePassthruConfig","fault":"HostConfigFault","message":"injected refusal"}'
  run --separate-stderr ceso-pci enable 0000:18:00.0
  assert_status 1
  assert_contains "$stderr" "injected refusal"
  jq -e '.operation == "UpdatePassthruConfig" and .result == "error"' "$CESO_AUDIT_LOG"
  ceso-pci info 18:00.0 | jq -e '.passthrough.enabled == false'

  sim_fail '{"method":"ReconfigVM_Task","fault":"InvalidDeviceSpec","message":"injected device refusal","task":true}'
  run --separate-stderr ceso-pci attach p3 0000:af:00.1
  assert_status 1
  assert_contains "$stderr" "injected device refusal"
  ceso-info p3 | jq -e '.pci == []'

  sim_reset
  sim_fail '{"method":"ReconfigVM_Task","fault":"InvalidDeviceSpec","message":"injected device refusal","task":true}'
  run --separate-stderr ceso-mkvm --from golden --pci 0000:af:00.1 g5
  assert_status 1
  assert_contains "$stderr" "injected device refusal"
  # made, then removed
  # (over SSH: registered with vim-cmd solo/registervm, rolled back by unregistering it
  # and removing its folder)
  if is_free_model; then
    [ "$(sim_count RegisterVM_Task)" -eq 1 ]
    [ "$("$SIMCTL" stats | jq '.local_soap.UnregisterVM // 0')" -eq 1 ]
  else
    [ "$(sim_count CreateVM_Task)" -eq 1 ]
    [ "$(sim_count Destroy_Task)" -eq 1 ]
  fi
  run ceso-info g5
  assert_status 1
  # (over SSH registervm applies the .vmx with ReconfigVM_Task itself: the refusal hits it)
  local failed=ReconfigVM_Task
  if is_free_model; then failed=RegisterVM_Task; fi
  jq -se --arg op "$failed" 'map(select(.tool == "ceso-mkvm" and .operation == $op and .vm == "g5"))[0].result == "error"' "$CESO_AUDIT_LOG"
}

@test "vCenter: devices of every host; --esxi picks one; --gpu falls back to a static device without dynamic DirectPath" {
  local st="$BATS_TEST_TMPDIR/vpx"
  mkdir -p "$st"
  echo '[{"name":"v1","power":"off"}]' >"$BATS_TEST_TMPDIR/vpx.json"
  eval "$(CESO_SIM_STATE=$st "$SIMCTL" start -model vpx -vms 0 -no-dynamic-passthrough -vm-spec "$BATS_TEST_TMPDIR/vpx.json")"
  ls_out=$(ceso-pci ls --gpus --assignable)
  run --separate-stderr ceso-pci enable 0000:18:00.0
  amb_status=$status amb=$stderr
  run --separate-stderr ceso-pci enable 0000:18:00.0 --esxi DC0_C0_H1
  one_status=$status one=$output
  run --separate-stderr ceso-pci attach v1 --gpu 10de:1e30
  att_status=$status att=$output att_err=$stderr
  run --separate-stderr ceso-power on v1
  on_status=$status on_err=$stderr
  CESO_SIM_STATE=$st "$SIMCTL" stop
  echo "$ls_out" | jq -se 'map(.host) | unique == ["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"]'
  echo "$ls_out" | jq -se 'length == 6'
  [ "$amb_status" -eq 1 ]
  [[ "$amb" == *"exists on 3 hosts: name one with --esxi"* ]]
  [ "$one_status" -eq 0 ]
  echo "$one" | jq -e '.host == "DC0_C0_H1" and .changed'
  [ "$att_status" -eq 0 ] || { echo "$att_err"; false; }
  echo "$att" | jq -e '.pci[0].kind == "static" and .pci[0].device_id == "1e30"'
  [ "$on_status" -eq 0 ] || { echo "$on_err"; false; }
}
