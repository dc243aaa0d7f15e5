#!/usr/bin/env bats
# ceso-net against the simulator: a licensed ESX host (file-wide), a vCenter and a
# free-licensed host (own simulators). The ESX host has vSwitch0 with "VM Network" (the
# VMs' network) and "Management Network" (vmk0); the simulator checks portgroups as ESXi
# does (VLAN 0-4095, AlreadyExists, NotFound, ResourceInUse: tests/sim/README.md).

bats_require_minimum_version 1.5.0
load helpers/common

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"web01","power":"on"},{"name":"web02","power":"off"},{"name":"idle","power":"off"}]
JSON
  sim_start -model esx -vms 0 -vm-spec "$spec"
}

teardown_file() { sim_stop; }

setup() { export CESO_AUDIT_LOG="$BATS_TEST_TMPDIR/audit.log"; }

# A SOAP call whose fault (HTTP 500) is wanted: raw_soap without --fail.
raw_call() {
  curl -s -c "$BATS_TEST_TMPDIR/raw-jar" -b "$BATS_TEST_TMPDIR/raw-jar" -H 'Content-Type: text/xml' \
    -H 'SOAPAction: urn:vim25/6.5' --data-binary @- "$CESO_URL" <<XML
<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>$1</soapenv:Body></soapenv:Envelope>
XML
}

# The host's portgroups as it has them, through plain SOAP (not ceso).
host_portgroups() {
  raw_login
  raw_soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">ha-property-collector</_this><specSet><propSet><type>HostNetworkSystem</type><pathSet>networkInfo</pathSet></propSet><objectSet><obj type=\"HostNetworkSystem\">$(net_system)</obj></objectSet></specSet><options></options></RetrievePropertiesEx>"
}
# The host's HostNetworkSystem moref value (configManager.networkSystem).
net_system() {
  raw_login
  raw_soap '<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">ha-property-collector</_this><specSet><propSet><type>HostSystem</type><pathSet>configManager.networkSystem</pathSet></propSet><objectSet><obj type="HostSystem">ha-host</obj></objectSet></specSet><options></options></RetrievePropertiesEx>' |
    sed -n 's/.*type="HostNetworkSystem"[^>]*>\([^<]*\)<.*/\1/p'
}

@test "ls: vSwitches and portgroups with VLAN, vSwitch, VMs and active clients" {
  run --separate-stderr ceso-net ls
  assert_status 0
  echo "$output" | jq -se 'all(.type == "net" and .host == "localhost.localdomain" and (.endpoint | length > 0))'
  echo "$output" | jq -se 'map(select(.kind == "vswitch"))[0] |
    .name == "vSwitch0" and .mtu == 1500 and .uplinks == ["vmnic0"] and
    (.portgroups | index("VM Network") and index("Management Network"))'
  echo "$output" | jq -se 'map(select(.name == "VM Network"))[0] |
    .kind == "portgroup" and .vlan == 0 and .vswitch == "vSwitch0" and .clients == 1 and
    .vms[0] == "web01" and (.vms | length == 3) and (.vmkernel | not) and (.trunk | not)'
  echo "$output" | jq -se 'map(select(.name == "Management Network"))[0] | .vmkernel'
  # Warm: the host list (a container view, read and destroyed), the hosts, their network
  # systems, the networks, the VMs (the session's VM view).
  sim_reset
  ceso-net ls >/dev/null
  [ "$(sim_count CreateContainerView)" -eq 1 ]
  [ "$(sim_count DestroyView)" -eq 1 ]
  [ "$(sim_count RetrievePropertiesEx)" -eq 5 ]
  run ceso-net ls --kind vswitch
  echo "$output" | jq -se 'map(.kind) == ["vswitch"]'
  run ceso-net ls --kind bogus
  assert_status 2
  run ceso-net ls web
  assert_status 2
  run --separate-stderr ceso-net ls --esxi nosuch
  assert_status 1
  assert_contains "$stderr" "no host named 'nosuch'"
}

@test "add: dry-run plans, then adds with the VLAN; again is unchanged; audited" {
  sim_reset
  run --separate-stderr ceso-net add web --vswitch vSwitch0 --vlan 10 --dry-run
  assert_status 0
  echo "$output" | jq -e '.type == "plan" and .operation == "AddPortGroup" and
    .params == {"portgroup":"web","vswitch":"vSwitch0","vlan":10,"host":"localhost.localdomain"}'
  [ "$(sim_count AddPortGroup)" -eq 0 ]
  [[ "$(host_portgroups)" != *"<name>web</name>"* ]]
  run --separate-stderr ceso-net add web --vswitch vSwitch0 --vlan 10
  assert_status 0
  echo "$output" | jq -e '.name == "web" and .vlan == 10 and .vswitch == "vSwitch0" and .changed and .clients == 0'
  [ "$(sim_count AddPortGroup)" -eq 1 ]
  out=$(host_portgroups)
  assert_contains "$out" "<name>web</name><vlanId>10</vlanId><vswitchName>vSwitch0</vswitchName>"
  run --separate-stderr ceso-net add web --vswitch vSwitch0 --vlan 10
  assert_status 0
  echo "$output" | jq -e '.changed == false'
  [ "$(sim_count AddPortGroup)" -eq 1 ]
  [ "$(wc -l <"$CESO_AUDIT_LOG")" -eq 1 ]   # the change only: no dry run, no unchanged run
  jq -se '.[0] | .operation == "AddPortGroup" and .result == "ok" and .params.vlan == 10 and .params.portgroup == "web"
    and .params.host == "localhost.localdomain" and .transport == "api"' "$CESO_AUDIT_LOG"
  # Taken with other settings: refused, pointing at set.
  run --separate-stderr ceso-net add web --vswitch vSwitch0 --vlan 11
  assert_status 1
  assert_contains "$stderr" "already exists"
  assert_contains "$stderr" "ceso-net set"
}

@test "add 4095 is a trunk; --vlan is range-checked before anything is sent" {
  run --separate-stderr ceso-net add trunk --vswitch vSwitch0 --vlan 4095
  assert_status 0
  echo "$output" | jq -e '.vlan == 4095 and .trunk'
  sim_reset
  for v in 4096 5000 -1 abc "" 1.5 " 7" 0x10; do
    run --separate-stderr ceso-net add bad --vswitch vSwitch0 --vlan "$v"
    assert_status 2
    assert_contains "$stderr" "vlan"
  done
  [ "$(sim_count AddPortGroup)" -eq 0 ]
  run --separate-stderr ceso-net set trunk --vlan 4096
  assert_status 2
  ceso-net --help >/dev/null
  run ceso-net add --help
  assert_contains "$output" "4095"
}

@test "bad names and missing options: usage errors; unknown vSwitch: exit 1" {
  sim_reset
  long=$(printf 'x%.0s' {1..60})
  for n in "" "$long" $'a\nb' $'tab\tx' " lead" "trail "; do
    run --separate-stderr ceso-net add "$n" --vswitch vSwitch0
    assert_status 2
    assert_contains "$stderr" "portgroup name"
  done
  run --separate-stderr ceso-net add "$(printf 'x%.0s' {1..59})" --vswitch vSwitch0 --dry-run
  assert_status 0
  run --separate-stderr ceso-net add nosw
  assert_status 2
  assert_contains "$stderr" "--vswitch"
  run --separate-stderr ceso-net set web
  assert_status 2
  run --separate-stderr ceso-net add x --vswitch vSwitch9
  assert_status 1
  assert_contains "$stderr" "no standard vSwitch 'vSwitch9'"
  [ "$(sim_count AddPortGroup)" -eq 0 ]
  # A net record of another kind is not a portgroup.
  run --separate-stderr bash -c 'ceso-net ls --kind vswitch | ceso-net rm'
  assert_status 3
  assert_contains "$stderr" "not a standard portgroup"
}

@test "set: VLAN change keeps the rest; unchanged is not sent; unknown portgroup exit 1" {
  ceso-net add app --vswitch vSwitch0 --vlan 20 | jq -e .changed
  sim_reset
  run --separate-stderr ceso-net set app --vlan 21 --dry-run
  assert_status 0
  echo "$output" | jq -e '.type == "plan" and .operation == "UpdatePortGroup" and .params.vlan == 21'
  [ "$(sim_count UpdatePortGroup)" -eq 0 ]
  run --separate-stderr ceso-net set app --vlan 21
  assert_status 0
  echo "$output" | jq -e '.vlan == 21 and .vswitch == "vSwitch0" and .changed'
  assert_contains "$(host_portgroups)" "<name>app</name><vlanId>21</vlanId>"
  run ceso-net set app --vlan 21
  echo "$output" | jq -e '.changed == false'
  [ "$(sim_count UpdatePortGroup)" -eq 1 ]
  # The portgroup's own policy survives a VLAN change (UpdatePortGroup replaces the spec).
  raw_login
  raw_soap "<UpdatePortGroup xmlns=\"urn:vim25\"><_this type=\"HostNetworkSystem\">$(net_system)</_this><pgName>app</pgName><portgrp><name>app</name><vlanId>21</vlanId><vswitchName>vSwitch0</vswitchName><policy><security><allowPromiscuous>true</allowPromiscuous></security></policy></portgrp></UpdatePortGroup>" >/dev/null
  sim_reset
  ceso-net set app --vlan 22 | jq -e '.vlan == 22 and .changed'
  assert_contains "$(host_portgroups)" "<name>app</name><vlanId>22</vlanId><vswitchName>vSwitch0</vswitchName><policy><security><allowPromiscuous>true</allowPromiscuous>"
  ceso-net set app --vlan 21 | jq -e '.changed'
  [ "$(sim_count UpdatePortGroup)" -eq 2 ]
  run --separate-stderr ceso-net set nosuch --vlan 3
  assert_status 1
  assert_contains "$stderr" "no portgroup 'nosuch'"
  run --separate-stderr ceso-net set "Management Network" --vlan 5
  assert_status 1
  assert_contains "$stderr" "VMkernel"
  [ "$(sim_count UpdatePortGroup)" -eq 2 ]
  run --separate-stderr ceso-net set app --vswitch vSwitch7
  assert_status 1
  assert_contains "$stderr" "vSwitch7"
}

@test "rm: in use by a powered-on VM, by powered-off VMs (--force), by vmk0; idempotent" {
  run --separate-stderr ceso-net rm "VM Network"
  assert_status 1
  assert_contains "$stderr" "in use by powered-on VMs: 'web01'"
  run --separate-stderr ceso-net rm "Management Network"
  assert_status 1
  assert_contains "$stderr" "VMkernel"
  # The host itself refuses too (not only ceso): RemovePortGroup while web01 is on.
  raw_login
  out=$(raw_call '<RemovePortGroup xmlns="urn:vim25"><_this type="HostNetworkSystem">'"$(net_system)"'</_this><pgName>VM Network</pgName></RemovePortGroup>')
  assert_contains "$out" "ResourceInUse"
  ceso-net add gone --vswitch vSwitch0 --vlan 5 | jq -e .changed
  sim_reset
  run --separate-stderr ceso-net rm gone --dry-run
  assert_status 0
  echo "$output" | jq -e '.type == "plan" and .operation == "RemovePortGroup"'
  [ "$(sim_count RemovePortGroup)" -eq 0 ]
  run --separate-stderr ceso-net rm gone
  assert_status 0
  echo "$output" | jq -e '.name == "gone" and .removed and .changed and .vlan == 5'
  [[ "$(host_portgroups)" != *"<name>gone</name>"* ]]
  run --separate-stderr ceso-net rm gone
  assert_status 0
  echo "$output" | jq -e '.absent and .changed == false'
  [ "$(sim_count RemovePortGroup)" -eq 1 ]
  jq -se 'map(select(.operation == "RemovePortGroup")) | length == 1 and .[0].result == "ok" and .[0].params.portgroup == "gone"' "$CESO_AUDIT_LOG"
}

@test "rm of a portgroup only powered-off VMs use needs --force" {
  ceso-net add lab --vswitch vSwitch0 --vlan 30 | jq -e .changed
  run ceso-set --network lab idle
  assert_status 0
  ceso-net ls --kind portgroup | jq -se 'map(select(.name == "lab"))[0] | .vms == ["idle"] and .clients == 0'
  run --separate-stderr ceso-net rm lab
  assert_status 1
  assert_contains "$stderr" "powered-off VMs: 'idle'"
  run --separate-stderr ceso-net rm --force lab
  assert_status 0
  echo "$output" | jq -e '.removed and .changed'
}

@test "restricted mode refuses every change (exit 5), audited; ls still works" {
  CESO_MODE=restricted run --separate-stderr ceso-net add blocked --vswitch vSwitch0 --vlan 7
  assert_status 5
  jq -e '.result == "refused" and .operation == "AddPortGroup"' "$CESO_AUDIT_LOG"
  [[ "$(host_portgroups)" != *"<name>blocked</name>"* ]]
  CESO_MODE=restricted run ceso-net ls
  assert_status 0
}

@test "records from ls drive set and rm (pipeline)" {
  ceso-net add p1 --vswitch vSwitch0 --vlan 99 | jq -e .changed
  ceso-net add p2 --vswitch vSwitch0 --vlan 99 | jq -e .changed
  run bash -c "ceso-net ls --kind portgroup | jq -c 'select(.vlan == 99)' | ceso-net set --vlan 98"
  assert_status 0
  echo "$output" | jq -se 'map(.name) == ["p1", "p2"] and all(.vlan == 98 and .changed)'
  run bash -c "ceso-net ls --kind portgroup | jq -c 'select(.vlan == 98)' | ceso-net rm"
  assert_status 0
  echo "$output" | jq -se 'length == 2 and all(.removed)'
}

@test "free-licensed host without SSH access: ls works, changes are refused with a clear message" {
  local st="$BATS_TEST_TMPDIR/free"
  mkdir -p "$st"
  eval "$(CESO_SIM_STATE=$st "$SIMCTL" start -license free -vms 1)"
  run --separate-stderr ceso-net ls --kind portgroup
  ls_status=$status ls_out=$output
  run --separate-stderr ceso-net add web --vswitch vSwitch0 --vlan 10
  add_status=$status add_err=$stderr
  CESO_SIM_STATE=$st "$SIMCTL" stop
  [ "$ls_status" -eq 0 ]
  echo "$ls_out" | jq -se 'map(.name) | index("VM Network")'
  [ "$add_status" -eq 1 ]
  [[ "$add_err" == *"free licence"* && "$add_err" == *"Configure SSH access"* ]]
}

@test "vCenter: every host's portgroups and the distributed portgroups; --esxi picks the host" {
  local st="$BATS_TEST_TMPDIR/vpx"
  mkdir -p "$st"
  eval "$(CESO_SIM_STATE=$st "$SIMCTL" start -model vpx -vms 1)"
  ls_out=$(ceso-net ls)
  run --separate-stderr ceso-net add web --vswitch vSwitch0 --vlan 10
  amb_status=$status amb=$stderr
  run --separate-stderr ceso-net add web --vswitch vSwitch0 --vlan 10 --esxi DC0_C0_H1
  one_status=$status one=$output one_err=$stderr
  after=$(ceso-net ls --kind portgroup)
  CESO_SIM_STATE=$st "$SIMCTL" stop
  echo "$ls_out" | jq -se 'map(select(.kind == "portgroup") | .host) | unique | length >= 3'
  echo "$ls_out" | jq -se 'map(select(.kind == "dvportgroup")) | length >= 1 and
    all(.host == null and (.vswitch | length > 0) and (.key | length > 0))'
  [ "$amb_status" -eq 2 ]
  [[ "$amb" == *"name one with --esxi"* ]]
  [ "$one_status" -eq 0 ] || { echo "$one_err"; false; }
  echo "$one" | jq -e '.host == "DC0_C0_H1" and .vlan == 10 and .changed'
  echo "$after" | jq -se 'map(select(.name == "web") | .host) == ["DC0_C0_H1"]'
}

@test "vCenter --dvs: a distributed portgroup with a VLAN or a trunk; idempotent; audited; refused on ESXi" {
  run --separate-stderr ceso-net add dv --dvs DVS0 --vlan 10
  assert_status 1
  assert_contains "$stderr" "need a vCenter"
  run --separate-stderr ceso-net add dv --dvs DVS0 --vswitch vSwitch0
  assert_status 2
  local st="$BATS_TEST_TMPDIR/vpx"
  mkdir -p "$st"
  eval "$(CESO_SIM_STATE=$st "$SIMCTL" start -model vpx -vms 1)"
  run --separate-stderr ceso-net add dvweb --dvs DVS0 --vlan 10 --dry-run
  plan_status=$status plan=$output
  run --separate-stderr ceso-net add dvweb --dvs DVS0 --vlan 10
  add_status=$status add=$output add_err=$stderr
  again=$(ceso-net add dvweb --dvs DVS0 --vlan 10)
  run --separate-stderr ceso-net add dvweb --dvs DVS0 --vlan 11
  clash_status=$status clash=$stderr
  trunk=$(ceso-net add dvtrunk --dvs DVS0 --vlan 4095)
  run --separate-stderr ceso-net add x --dvs NoSuchDVS
  nosw_status=$status nosw=$stderr
  listed=$(ceso-net ls --kind dvportgroup)
  CESO_SIM_STATE=$st "$SIMCTL" stop
  [ "$plan_status" -eq 0 ]
  echo "$plan" | jq -e '.type == "plan" and .operation == "AddDVPortgroup_Task" and .params.dvs == "DVS0" and .params.vlan == 10'
  [ "$add_status" -eq 0 ] || { echo "$add_err"; false; }
  echo "$add" | jq -e '.kind == "dvportgroup" and .name == "dvweb" and .vlan == 10 and .vswitch == "DVS0" and .changed'
  echo "$again" | jq -e '.changed == false'
  [ "$clash_status" -eq 1 ]
  [[ "$clash" == *"already exists"* ]]
  echo "$trunk" | jq -e '.vlan == 4095 and .trunk and .vlan_ranges == "0-4094"'
  [ "$nosw_status" -eq 1 ]
  [[ "$nosw" == *"no distributed switch 'NoSuchDVS'"* ]]
  echo "$listed" | jq -se 'map(.name) | index("dvweb") and index("dvtrunk")'
  jq -se 'map(select(.operation == "AddDVPortgroup_Task")) | length == 2 and all(.result == "ok")' "$CESO_AUDIT_LOG"
}

@test "vCenter set/rm --dvs: VLAN change with the configVersion (ConcurrentAccess when stale); rm refused while VMs use it" {
  run --separate-stderr ceso-net set dv --dvs DVS0 --vlan 5
  assert_status 1
  assert_contains "$stderr" "need a vCenter"
  run --separate-stderr ceso-net rm dv --dvs DVS0
  assert_status 1
  local st="$BATS_TEST_TMPDIR/vpx"
  mkdir -p "$st"
  eval "$(CESO_SIM_STATE=$st "$SIMCTL" start -model vpx -vms 1)"
  ceso-net add dvset --dvs DVS0 --vlan 10 >/dev/null
  CESO_SIM_STATE=$st "$SIMCTL" reset >/dev/null
  run --separate-stderr ceso-net set dvset --dvs DVS0 --vlan 20 --dry-run
  plan_status=$status plan=$output
  plan_calls=$(CESO_SIM_STATE=$st "$SIMCTL" stats | jq '.soap.ReconfigureDVPortgroup_Task // 0')
  run --separate-stderr ceso-net set dvset --dvs DVS0 --vlan 20
  set_status=$status set_out=$output set_err=$stderr
  again=$(ceso-net set dvset --dvs DVS0 --vlan 20)
  trunk=$(ceso-net set dvset --dvs DVS0 --vlan 4095)
  calls=$(CESO_SIM_STATE=$st "$SIMCTL" stats | jq '.soap.ReconfigureDVPortgroup_Task')
  run --separate-stderr ceso-net set dvset --dvs DVS0
  novlan_status=$status
  run --separate-stderr ceso-net set dvset --dvs DVS0 --vlan 4096
  range_status=$status
  run --separate-stderr ceso-net set nosuch --dvs DVS0 --vlan 3
  missing_status=$status missing=$stderr
  # another client changed it between ceso's read and its change: the task fails
  CESO_SIM_STATE=$st "$SIMCTL" fail '{"method":"ReconfigureDVPortgroup_Task","fault":"ConcurrentAccess","task":true}' >/dev/null
  run --separate-stderr ceso-net set dvset --dvs DVS0 --vlan 30
  conc_status=$status conc=$stderr
  # the simulator itself: a stale configVersion faults, the current one works
  local pg
  pg=$(ceso-net ls --kind dvportgroup | jq -r 'select(.name == "dvset") | .key')
  rm -f "$BATS_TEST_TMPDIR/raw-jar"
  raw_soap "<Login xmlns=\"urn:vim25\"><_this type=\"SessionManager\">SessionManager</_this><userName>$CESO_USER</userName><password>$CESO_PASSWORD</password></Login>" >/dev/null
  stale=$(raw_soap "<ReconfigureDVPortgroup_Task xmlns=\"urn:vim25\"><_this type=\"DistributedVirtualPortgroup\">$pg</_this><spec><configVersion>0</configVersion><name>renamed</name></spec></ReconfigureDVPortgroup_Task>" |
    sed -n 's/.*<returnval type="Task">\([^<]*\)<.*/\1/p')
  stale_state=$(raw_soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">propertyCollector</_this><specSet><propSet><type>Task</type><pathSet>info</pathSet></propSet><objectSet><obj type=\"Task\">$stale</obj></objectSet></specSet><options></options></RetrievePropertiesEx>")
  # rm: in use by the generated VM (DC0_DVPG0), refused before anything is sent
  CESO_SIM_STATE=$st "$SIMCTL" reset >/dev/null
  run --separate-stderr ceso-net rm DC0_DVPG0 --dvs DVS0 --force
  inuse_status=$status inuse=$stderr
  destroys=$(CESO_SIM_STATE=$st "$SIMCTL" stats | jq '.soap.Destroy_Task // 0')
  run --separate-stderr ceso-net rm dvset --dvs DVS0 --dry-run
  rmplan_status=$status rmplan=$output
  run --separate-stderr ceso-net rm dvset --dvs DVS0
  rm_status=$status rm_out=$output rm_err=$stderr
  gone=$(ceso-net rm dvset --dvs DVS0)
  ceso-net add dvpipe --dvs DVS0 --vlan 7 >/dev/null
  piped=$(ceso-net ls --kind dvportgroup | jq -c 'select(.name == "dvpipe")' | ceso-net rm)
  listed=$(ceso-net ls --kind dvportgroup)
  CESO_SIM_STATE=$st "$SIMCTL" stop
  [ "$plan_status" -eq 0 ]
  echo "$plan" | jq -e '.type == "plan" and .operation == "ReconfigureDVPortgroup_Task" and .params.vlan == 20
    and .params.config_version == "0" and .params.dvs == "DVS0"'
  [ "$plan_calls" -eq 0 ]
  [ "$set_status" -eq 0 ] || { echo "$set_err"; false; }
  echo "$set_out" | jq -e '.name == "dvset" and .vlan == 20 and .vswitch == "DVS0" and .changed'
  echo "$again" | jq -e '.changed == false and .vlan == 20'
  echo "$trunk" | jq -e '.changed and .vlan == 4095 and .trunk and .vlan_ranges == "0-4094"'
  [ "$calls" -eq 2 ] # the unchanged set sent nothing
  [ "$novlan_status" -eq 2 ]
  [ "$range_status" -eq 2 ]
  [ "$missing_status" -eq 1 ]
  [[ "$missing" == *"no distributed portgroup 'nosuch'"* ]]
  [ "$conc_status" -eq 1 ]
  [[ "$conc" == *"changed since ceso read it"* && "$conc" == *"ConcurrentAccess"* ]]
  [[ "$stale_state" == *"ConcurrentAccess"* && "$stale_state" == *"<state>error</state>"* ]]
  [ "$inuse_status" -eq 1 ]
  [[ "$inuse" == *"in use by VMs"* && "$inuse" == *"also with --force"* ]]
  [ "$destroys" -eq 0 ]
  [ "$rmplan_status" -eq 0 ]
  echo "$rmplan" | jq -e '.type == "plan" and .operation == "Destroy_Task" and .params.portgroup == "dvset"'
  [ "$rm_status" -eq 0 ] || { echo "$rm_err"; false; }
  echo "$rm_out" | jq -e '.removed and .changed and .kind == "dvportgroup"'
  echo "$gone" | jq -e '.absent and .changed == false'
  echo "$piped" | jq -e '.removed and .name == "dvpipe"'
  echo "$listed" | jq -se 'map(.name) | (index("dvset") | not) and (index("dvpipe") | not) and index("DC0_DVPG0")'
  jq -se 'map(select(.operation == "ReconfigureDVPortgroup_Task" and .result == "ok")) | length == 2' "$CESO_AUDIT_LOG"
  jq -se 'map(select(.operation == "Destroy_Task" and .result == "ok")) | length == 2' "$CESO_AUDIT_LOG"
}
