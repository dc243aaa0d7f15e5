#!/usr/bin/env bats
# ceso-host ls against the simulator: one `host` record per HostSystem, all
# of them in one RetrievePropertiesEx (ESX model, and vCenter below).

load helpers/common

setup_file() { sim_start -model esx -vms 2; }
teardown_file() { sim_stop; }

setup() {
  ceso-host ls >/dev/null # a warm session, as in a pipeline
  sim_reset
}

@test "ceso-host ls: one host record with the documented fields, in one call" {
  run ceso-host ls
  assert_status 0
  [ "$(echo "$output" | wc -l)" -eq 1 ]
  echo "$output" | jq -e '.type == "host" and .endpoint == env.CESO_URL[7:-4] and .id == "ha-host"
    and (.name | length) > 0 and (.version | test("^[0-9]+\\.[0-9]+")) and (.build | test("^[0-9]+$"))
    and (.version as $v | .product | contains($v)) and .cpu_cores > 0 and .cpu_mhz > 0
    and .cpu_capacity_mhz == .cpu_cores * .cpu_mhz and (.cpu_used_mhz | type) == "number"
    and .memory_mib > 0 and (.memory_used_mib | type) == "number"
    and .maintenance == false and .connection == "connected" and .cluster == null
    and (.pools | type) == "array"'
  [ "$(sim_count RetrievePropertiesEx)" -eq 1 ]
  [ "$("$SIMCTL" stats | jq .soap_total)" -eq 1 ]
}

@test "ceso-host ls: the host's datastores with capacity and free space, as the simulator has them" {
  run ceso-host ls
  assert_status 0
  expected=$("$SIMCTL" datastore | jq -c 'keys')
  assert_eq "$(echo "$output" | jq -c '[.datastores[].name]')" "$expected"
  echo "$output" | jq -e '.datastores | all(.capacity_gib > 0 and .free_gib >= 0 and .free_gib <= .capacity_gib)'
}

@test "ceso-host ls: the licence edition, read in the same call; free only on a free-licensed host" {
  run ceso-host ls
  assert_status 0
  echo "$output" | jq -e '.edition == "eval" and .free == false'
  [ "$(sim_count RetrievePropertiesEx)" -eq 1 ]
  local st="$BATS_TEST_TMPDIR/free"
  mkdir -p "$st"
  eval "$(CESO_SIM_STATE=$st "$SIMCTL" start -license free -vms 1)"
  run ceso-host ls
  local free_out=$output free_status=$status
  CESO_SIM_STATE=$st "$SIMCTL" stop
  [ "$free_status" -eq 0 ] || { echo "$free_out"; false; }
  echo "$free_out" | jq -e '.edition == "esxBasic" and .free == true'
}

@test "ceso-host ls on a cold cache: service content, login and the one listing" {
  fresh_cache
  run ceso-host ls
  assert_status 0
  assert_eq "$("$SIMCTL" stats | jq -c '.soap')" '{"Login":1,"RetrievePropertiesEx":1,"RetrieveServiceContent":1}'
}

@test "ceso-host ls -o, and the usage errors" {
  run ceso-host ls -o name,free
  assert_status 0
  assert_eq "$(echo "$output" | jq -c 'keys')" '["free","name"]'
  run ceso-host
  assert_status 2
  assert_contains "$output" "missing command: ls"
  run ceso-host list
  assert_status 2
  assert_contains "$output" "unknown command 'list'"
  run ceso-host ls extra
  assert_status 2
  assert_contains "$output" "ls takes no arguments"
  [ "$("$SIMCTL" stats | jq .soap_total)" -eq 1 ]
}

@test "ceso-host ls: a host that fails the call is exit 6 with its message" {
  sim_fail '{"method":"RetrievePropertiesEx","fault":"HostCommunication"}'
  run ceso-host ls
  sim_fail '{}'
  assert_status 6
  assert_contains "$output" "HostCommunication"
}

@test "ceso-host ls on vCenter: every host of the cluster, its cluster and pools, no licence read" {
  local st="$BATS_TEST_TMPDIR/vpx"
  mkdir -p "$st"
  eval "$(CESO_SIM_STATE=$st "$SIMCTL" start -model vpx -vms 0)"
  # resource pools web and web/front in the cluster, made as another client would
  raw_soap "<Login xmlns=\"urn:vim25\"><_this type=\"SessionManager\">SessionManager</_this><userName>$CESO_USER</userName><password>$CESO_PASSWORD</password></Login>" >/dev/null
  local root alloc web
  root=$(raw_soap '<FindByInventoryPath xmlns="urn:vim25"><_this type="SearchIndex">SearchIndex</_this><inventoryPath>DC0/host/DC0_C0/Resources</inventoryPath></FindByInventoryPath>' |
    sed -n 's/.*<returnval[^>]*>\([^<]*\)<.*/\1/p')
  alloc='<reservation>0</reservation><expandableReservation>true</expandableReservation><limit>-1</limit><shares><shares>4000</shares><level>normal</level></shares>'
  pool() { raw_soap "<CreateResourcePool xmlns=\"urn:vim25\"><_this type=\"ResourcePool\">$1</_this><name>$2</name><spec><cpuAllocation>$alloc</cpuAllocation><memoryAllocation>$alloc</memoryAllocation></spec></CreateResourcePool>" |
    sed -n 's/.*<returnval[^>]*>\([^<]*\)<.*/\1/p'; }
  web=$(pool "$root" web)
  [ -n "$web" ] && pool "$web" front >/dev/null
  CESO_SIM_STATE=$st "$SIMCTL" reset >/dev/null
  run ceso-host ls
  local st_out=$output st_status=$status
  local stats
  stats=$(CESO_SIM_STATE=$st "$SIMCTL" stats | jq -c .soap)
  CESO_SIM_STATE=$st "$SIMCTL" stop
  [ "$st_status" -eq 0 ] || { echo "$st_out"; false; }
  assert_eq "$(echo "$st_out" | jq -sc 'map(.name)')" '["DC0_C0_H0","DC0_C0_H1","DC0_C0_H2"]'
  echo "$st_out" | jq -se 'all(.cluster == "DC0_C0" and .edition == null and .free == false
    and .pools == ["web", "web/front"] and (.datastores | length) > 0 and (.id | startswith("host-")))'
  assert_eq "$stats" '{"Login":1,"RetrievePropertiesEx":1,"RetrieveServiceContent":1}'
}
