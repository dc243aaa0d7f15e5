#!/usr/bin/env bats
# ceso-host pool ls|add|rm and ceso-mkvm --pool against the simulator: a licensed ESX
# host (file-wide), a vCenter and a free-licensed host (own simulators). The simulator
# checks CreateResourcePool as a host does: all four allocation fields of CPU and memory,
# the name, the shares level, limit >= reservation (tests/sim/README.md).

bats_require_minimum_version 1.5.0
load helpers/common

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"golden","power":"off","disks_mib":[2]},{"name":"busy","power":"off"}]
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

alloc() { # reservation expandable limit level: a full ResourceAllocationInfo body
  echo "<reservation>$1</reservation><expandableReservation>$2</expandableReservation><limit>$3</limit><shares><shares>0</shares><level>$4</level></shares>"
}

@test "pool ls: the root pool with its allocation, runtime use and VM count, in one call" {
  ceso-host ls >/dev/null # warm session
  sim_reset
  run --separate-stderr ceso-host pool ls
  assert_status 0
  [ "$(echo "$output" | wc -l)" -eq 1 ]
  echo "$output" | jq -e '.type == "pool" and .path == "Resources" and .parent == null and .root
    and .cluster == null and (.host | length > 0) and .id == "ha-root-pool" and .vms == 2
    and (.cpu_mhz | has("reservation") and has("limit") and has("expandable") and has("shares_level")
         and has("shares") and has("reservation_used") and has("usage") and has("max_usage"))
    and (.memory_mib.reservation | type) == "number"'
  assert_eq "$(sim_count RetrievePropertiesEx)" 1
  assert_eq "$(sim_stats | jq .soap_total)" 1
}

@test "pool add: dry-run plans all four fields; add sends them; again is unchanged; audited" {
  sim_reset
  run --separate-stderr ceso-host pool add Resources/prod --cpu-reservation 500 --mem-limit 4G --dry-run
  assert_status 0
  echo "$output" | jq -e '.type == "plan" and .operation == "CreateResourcePool"
    and .params.path == "Resources/prod" and .params.cpu_mhz.reservation == 500
    and .params.cpu_mhz.expandable == true and .params.cpu_mhz.limit == null
    and .params.cpu_mhz.shares_level == "normal" and .params.memory_mib.limit == 4096'
  assert_eq "$(sim_count CreateResourcePool)" 0
  run --separate-stderr ceso-host pool add Resources/prod --cpu-reservation 500 --mem-limit 4G
  assert_status 0
  echo "$output" | jq -e '.path == "Resources/prod" and .parent == "Resources" and .changed
    and .cpu_mhz.reservation == 500 and .cpu_mhz.limit == null and .cpu_mhz.expandable
    and .cpu_mhz.shares_level == "normal" and .cpu_mhz.shares == 4000
    and .memory_mib.limit == 4096 and .memory_mib.reservation == 0 and .vms == 0'
  assert_eq "$(sim_count CreateResourcePool)" 1
  # "prod" below the root is the same pool: unchanged, nothing sent
  run --separate-stderr ceso-host pool add prod --cpu-reservation 500 --mem-limit 4096
  assert_status 0
  echo "$output" | jq -e '.changed == false'
  assert_eq "$(sim_count CreateResourcePool)" 1
  run --separate-stderr ceso-host pool add prod/web --cpu-shares high --mem-shares 1234 \
    --cpu-expandable no --mem-reservation 512 --mem-limit 1G
  assert_status 0
  echo "$output" | jq -e '.path == "Resources/prod/web" and .cpu_mhz.shares == 8000
    and .cpu_mhz.expandable == false and .memory_mib.shares_level == "custom"
    and .memory_mib.shares == 1234 and .memory_mib.reservation == 512'
  jq -se 'map(select(.operation == "CreateResourcePool")) | length == 2 and all(.result == "ok")
    and .[0].params.path == "Resources/prod"' "$CESO_AUDIT_LOG"
  run --separate-stderr ceso-host pool ls
  echo "$output" | jq -se 'map(.path) == ["Resources","Resources/prod","Resources/prod/web"]'
  echo "$output" | jq -se '.[1].pools == ["web"]'
  ceso-host pool rm --force prod >/dev/null
}

@test "pool add: other allocations for an existing pool, a missing parent: exit 1, nothing sent" {
  ceso-host pool add clash >/dev/null
  sim_reset
  run --separate-stderr ceso-host pool add clash --cpu-limit 100
  assert_status 1
  assert_contains "$stderr" "already exists"
  run --separate-stderr ceso-host pool add nope/child
  assert_status 1
  assert_contains "$stderr" "no parent pool 'Resources/nope'"
  assert_eq "$(sim_count CreateResourcePool)" 0
  ceso-host pool rm clash >/dev/null
}

@test "hostile paths, names and values: usage errors naming the field; nothing sent" {
  sim_reset
  for p in '' '/' 'a//b' 'prod/' '..' 'Resources/../x' './a' "$(printf 'a\nb')" "$(printf 'a\033[2Jb')" \
    'a%2fb' 'a\b' ' lead' "$(head -c 81 /dev/zero | tr '\0' a)" "$(head -c 100000 /dev/zero | tr '\0' a)"; do
    run --separate-stderr ceso-host pool add "$p"
    [ "$status" -eq 2 ] || { echo "path ${p:0:40}: status $status, $stderr"; false; }
    assert_contains "$stderr" "argument 1"
  done
  run --separate-stderr ceso-host pool add x --cpu-limit 100 --cpu-reservation 200
  assert_status 2
  assert_contains "$stderr" "below the reservation"
  run --separate-stderr ceso-host pool add x --cpu-shares medium
  assert_status 2
  assert_contains "$stderr" "--cpu-shares"
  run --separate-stderr ceso-host pool add x --mem-limit 1X
  assert_status 2
  assert_contains "$stderr" "mem-limit"
  run --separate-stderr ceso-host pool add x --cpu-expandable maybe
  assert_status 2
  run --separate-stderr ceso-host pool add x --cpu-reservation -5
  assert_status 2
  run --separate-stderr ceso-host pool add Resources
  assert_status 2
  assert_contains "$stderr" "root pool"
  run --separate-stderr ceso-host pool rm x --cpu-limit 5
  assert_status 2
  run --separate-stderr ceso-host pool add x --force
  assert_status 2
  run --separate-stderr ceso-host pool frob
  assert_status 2
  assert_contains "$stderr" "use ls, add or rm"
  run --separate-stderr ceso-host pool ls extra
  assert_status 2
  run --separate-stderr ceso-host pool ls --cluster nosuch
  assert_status 1
  assert_contains "$stderr" "no cluster or host named 'nosuch'"
  assert_eq "$(sim_count CreateResourcePool)" 0
}

@test "pool rm: refuses the root, a pool with VMs or child pools (--force moves them up); --missing-ok" {
  ceso-host pool add rmme >/dev/null
  ceso-host pool add rmme/kid >/dev/null
  sim_reset
  run --separate-stderr ceso-host pool rm Resources
  assert_status 2
  assert_contains "$stderr" "root pool"
  run --separate-stderr ceso-host pool rm rmme
  assert_status 1
  assert_contains "$stderr" "1 child pools (--force"
  assert_eq "$(sim_count Destroy_Task)" 0
  run --separate-stderr ceso-host pool rm rmme --dry-run --force
  assert_status 0
  echo "$output" | jq -e '.type == "plan" and .operation == "Destroy_Task" and .params.pools == ["kid"]'
  assert_eq "$(sim_count Destroy_Task)" 0
  run --separate-stderr ceso-host pool rm --force rmme
  assert_status 0
  echo "$output" | jq -e '.removed and .changed and .path == "Resources/rmme"'
  # its child moved to the root, as on a host
  ceso-host pool ls | jq -se 'map(.path) | index("Resources/kid")'
  run --separate-stderr ceso-host pool rm rmme
  assert_status 1
  assert_contains "$stderr" "--missing-ok"
  run --separate-stderr ceso-host pool rm rmme --missing-ok
  assert_status 0
  echo "$output" | jq -e '.absent and .changed == false'
  # records from pool ls drive rm (pipeline)
  run --separate-stderr bash -c 'ceso-host pool ls | jq -c "select(.path == \"Resources/kid\")" | ceso-host pool rm'
  assert_status 0
  echo "$output" | jq -e '.removed and .path == "Resources/kid"'
  jq -se 'map(select(.operation == "Destroy_Task")) | length == 2 and all(.result == "ok")' "$CESO_AUDIT_LOG"
  # a malformed record: bad input
  run --separate-stderr bash -c 'echo "{\"type\":\"pool\",\"name\":\"x\",\"path\":\"../x\"}" | ceso-host pool rm'
  assert_status 3
  assert_contains "$stderr" 'field "path"'
}

@test "mkvm --pool: the new VM is in that pool; a missing pool fails before anything is made" {
  ceso-host pool add mk >/dev/null
  ceso-ls >/dev/null
  sim_reset
  run --separate-stderr ceso-mkvm --from golden inpool --pool Resources/mk --no-power-on
  assert_status 0
  assert_eq "$(sim_count CreateVM_Task)" 1
  ceso-host pool ls | jq -se 'map(select(.path == "Resources/mk"))[0].vms == 1'
  sim_reset
  run --separate-stderr ceso-mkvm --from golden nopool --pool Resources/absent --no-power-on
  assert_status 1
  assert_contains "$stderr" "--pool: no pool 'Resources/absent'"
  assert_eq "$(sim_stats | jq '.soap | keys - ["RetrievePropertiesEx","Login","RetrieveServiceContent","CreateContainerView","DestroyView"]')" '[]'
  run --separate-stderr ceso-mkvm --from golden nopool --pool '../x'
  assert_status 2
  run --separate-stderr ceso-mkvm --dry-run --from golden planned --pool mk --no-power-on
  assert_status 0
  echo "$output" | jq -se 'map(select(.operation == "CreateVM_Task"))[0].params.pool | startswith("resgroup-")'
  # the pool holds a VM now: rm refuses without --force
  run --separate-stderr ceso-host pool rm mk
  assert_status 1
  assert_contains "$stderr" "holds 1 VMs"
  ceso-rm --yes --force inpool >/dev/null
  ceso-host pool rm mk >/dev/null
}

@test "clone --pool: the clone is in that pool; a missing pool or a bad path fails before anything is made" {
  ceso-host pool add cl >/dev/null
  sim_reset
  run --separate-stderr ceso-clone golden clpool --pool cl --no-power-on
  assert_status 0
  ceso-host pool ls | jq -se 'map(select(.path == "Resources/cl"))[0].vms == 1'
  sim_reset
  run --separate-stderr ceso-clone golden clnone --pool Resources/absent --no-power-on
  assert_status 1
  assert_contains "$stderr" "--pool: no pool 'Resources/absent'"
  run --separate-stderr ceso-clone golden clnone --pool 'a//b'
  assert_status 2
  assert_eq "$(sim_stats | jq '.soap | keys - ["RetrievePropertiesEx","Login","RetrieveServiceContent","CreateContainerView","DestroyView"]')" '[]'
  ceso-rm --yes --force clpool >/dev/null
  ceso-host pool rm cl >/dev/null
}

@test "simulator: CreateResourcePool without one of the four allocation fields faults, as a host" {
  raw_login
  local full cpu
  full=$(alloc 0 true -1 normal)
  for missing in reservation expandableReservation limit shares; do
    cpu=$(echo "$full" | sed -E "s#<$missing>.*</$missing>##")
    [ "$missing" = shares ] && cpu='<reservation>0</reservation><expandableReservation>true</expandableReservation><limit>-1</limit>'
    out=$(raw_call "<CreateResourcePool xmlns=\"urn:vim25\"><_this type=\"ResourcePool\">ha-root-pool</_this><name>raw</name><spec><cpuAllocation>$cpu</cpuAllocation><memoryAllocation>$full</memoryAllocation></spec></CreateResourcePool>")
    [[ "$out" == *"InvalidArgument"* && "$out" == *"spec.cpuAllocation.$missing"* ]] || { echo "$missing: $out"; false; }
  done
  out=$(raw_call "<CreateResourcePool xmlns=\"urn:vim25\"><_this type=\"ResourcePool\">ha-root-pool</_this><name>raw</name><spec><cpuAllocation>$(alloc 200 true 100 normal)</cpuAllocation><memoryAllocation>$full</memoryAllocation></spec></CreateResourcePool>")
  [[ "$out" == *"spec.cpuAllocation.limit"* ]]
  out=$(raw_call "<CreateResourcePool xmlns=\"urn:vim25\"><_this type=\"ResourcePool\">ha-root-pool</_this><name>raw</name><spec><cpuAllocation>$(alloc 0 true -1 medium)</cpuAllocation><memoryAllocation>$full</memoryAllocation></spec></CreateResourcePool>")
  [[ "$out" == *"spec.cpuAllocation.shares.level"* ]]
  out=$(raw_call "<CreateResourcePool xmlns=\"urn:vim25\"><_this type=\"ResourcePool\">ha-root-pool</_this><name></name><spec><cpuAllocation>$full</cpuAllocation><memoryAllocation>$full</memoryAllocation></spec></CreateResourcePool>")
  [[ "$out" == *"InvalidName"* ]]
  ceso-host pool ls | jq -se 'map(.path) | index("Resources/raw") | not'
}

@test "vCenter: pools of the cluster; --cluster; mkvm --pool clones into the pool" {
  local st="$BATS_TEST_TMPDIR/vpx" spec="$BATS_TEST_TMPDIR/vpx.json"
  mkdir -p "$st"
  echo '[{"name":"golden","power":"off"}]' >"$spec"
  eval "$(CESO_SIM_STATE=$st "$SIMCTL" start -model vpx -vms 1 -vm-spec "$spec")"
  run --separate-stderr ceso-host pool ls
  ls_status=$status ls_out=$output
  run --separate-stderr ceso-host pool add web --cluster DC0_C0 --mem-reservation 1G
  add_status=$status add=$output add_err=$stderr
  run --separate-stderr ceso-host pool add other --cluster NoSuchCluster
  nocl_status=$status nocl=$stderr
  run --separate-stderr ceso-mkvm --from golden vcpool --pool Resources/web --no-power-on
  mk_status=$status mk_err=$stderr
  after=$(ceso-host pool ls --cluster DC0_C0)
  run --separate-stderr ceso-host pool rm web
  rm_status=$status rm_err=$stderr
  run --separate-stderr ceso-host pool rm web --force
  force_status=$status
  root_after=$(ceso-host pool ls --cluster DC0_C0 | jq -s 'map(select(.root))[0].vms')
  CESO_SIM_STATE=$st "$SIMCTL" stop
  [ "$ls_status" -eq 0 ]
  echo "$ls_out" | jq -se 'map(select(.root)) | length >= 1 and all(.path == "Resources")'
  echo "$ls_out" | jq -se 'map(select(.cluster == "DC0_C0" and .root)) | length == 1 and .[0].host == null'
  [ "$add_status" -eq 0 ] || { echo "$add_err"; false; }
  echo "$add" | jq -e '.cluster == "DC0_C0" and .path == "Resources/web" and .memory_mib.reservation == 1024 and .changed'
  [ "$nocl_status" -eq 1 ]
  [[ "$nocl" == *"no cluster or host named 'NoSuchCluster'"* ]]
  [ "$mk_status" -eq 0 ] || { echo "$mk_err"; false; }
  echo "$after" | jq -se 'map(select(.path == "Resources/web"))[0].vms == 1'
  [ "$rm_status" -eq 1 ]
  [[ "$rm_err" == *"holds 1 VMs"* ]]
  [ "$force_status" -eq 0 ]
  # Destroy_Task moved the VM to the parent (root) pool
  [ "$root_after" -ge 2 ]
}

@test "free-licensed host: pool ls works; add and rm are refused with a clear message" {
  local st="$BATS_TEST_TMPDIR/free"
  mkdir -p "$st"
  eval "$(CESO_SIM_STATE=$st "$SIMCTL" start -model esx -vms 1 --license free)"
  run --separate-stderr ceso-host pool ls
  ls_status=$status ls_out=$output
  run --separate-stderr ceso-host pool add x
  add_status=$status add_err=$stderr
  CESO_SIM_STATE=$st "$SIMCTL" stop
  [ "$ls_status" -eq 0 ]
  echo "$ls_out" | jq -e '.root'
  [ "$add_status" -eq 1 ]
  [[ "$add_err" == *"free licence"* ]]
}

@test "restricted mode refuses pool add (exit 5); ls still works" {
  run --separate-stderr env CESO_MODE=restricted ceso-host pool add restricted
  assert_status 5
  run --separate-stderr env CESO_MODE=restricted ceso-host pool ls
  assert_status 0
}
