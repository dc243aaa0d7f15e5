#!/usr/bin/env bats
# ceso-place: where each new VM fits best over several hosts. Three
# standalone simulators of different sizes (cesosim -host-memory-mib,
# -datastore-gib…), each with a golden image; b also holds a VM tagged "web".
#
#   a   8 GiB memory, 1 GiB in use;  datastore 100 GiB, 80 free
#   b  16 GiB memory, 2 GiB in use;  datastore 200 GiB, 150 free; VM web-old (tag web)
#   c   4 GiB memory, 0.5 GiB in use; datastore 50 GiB, 10 free

load helpers/common
bats_require_minimum_version 1.5.0

sim_dir() { echo "$BATS_FILE_TMPDIR/sim-$1"; }
on_sim() { CESO_SIM_STATE=$(sim_dir "$1") "$SIMCTL" "${@:2}"; }
id_of() { local u; u=$(cat "$(sim_dir "$1")/url"); u=${u#http://}; echo "${u%/sdk}"; }
calls() { on_sim "$1" stats | jq -r ".soap.$2 // 0"; }
soap_total() { on_sim "$1" stats | jq '.soap_total'; }
reset_all() { for s in a b c; do on_sim "$s" reset >/dev/null; done; }

write_config() {
  mkdir -p "$XDG_CONFIG_HOME/ceso"
  {
    echo "hosts:"
    for s in "$@"; do
      printf '  %s:\n    url: %s\n    user: root\n    password_file: %s\n' \
        "$s" "$(cat "$(sim_dir "$s")/url")" "$(sim_dir "$s")/password"
    done
  } >"$XDG_CONFIG_HOME/ceso/config"
}

setup_file() {
  use_private_dirs
  echo '[{"name":"golden","power":"off","disks_mib":[4]}]' >"$BATS_FILE_TMPDIR/golden.json"
  echo '[{"name":"golden","power":"off","disks_mib":[4]},
         {"name":"web-old","power":"on","tags":["web"],"memory_mib":512}]' >"$BATS_FILE_TMPDIR/b.json"
  mkdir -p "$(sim_dir a)" "$(sim_dir b)" "$(sim_dir c)"
  on_sim a start -model esx -vms 1 -vm-spec "$BATS_FILE_TMPDIR/golden.json" \
    -host-memory-mib 8192 -host-memory-used-mib 1024 -datastore-gib 100 -datastore-free-gib 80 >/dev/null
  on_sim b start -model esx -vms 1 -vm-spec "$BATS_FILE_TMPDIR/b.json" \
    -host-memory-mib 16384 -host-memory-used-mib 2048 -datastore-gib 200 -datastore-free-gib 150 >/dev/null
  on_sim c start -model esx -vms 1 -vm-spec "$BATS_FILE_TMPDIR/golden.json" \
    -host-memory-mib 4096 -host-memory-used-mib 512 -datastore-gib 50 -datastore-free-gib 10 >/dev/null
  write_config a b c
}

teardown_file() { for s in a b c d t v; do on_sim "$s" stop >/dev/null 2>&1 || true; done; }

setup() {
  for s in a b c; do on_sim "$s" fail '{}' >/dev/null; done
  write_config a b c
  ceso-ls -H all >/dev/null # warm sessions and VM views, as in a pipeline
  reset_all
}

# N guestinfo records named PREFIX1..N from ceso-cloudinit.
fleet() {
  local i
  for i in $(seq 1 "$2"); do echo "{\"hostname\":\"$1$i\"}"; done | ceso-cloudinit
}

@test "a fleet across three hosts: cloudinit | place -H all | mkvm; each VM on the host place chose" {
  run --separate-stderr bash -c "$(declare -f fleet); fleet app 3 |
    ceso-place -H all --memory 1G --disk 2 --tag app --anti-affinity app"
  assert_status 0
  assert_eq "$stderr" ""
  local placed="$output"
  [ "$(echo "$placed" | wc -l)" -eq 3 ]
  # one per host (anti-affinity), b first (most room), every record explains itself
  assert_eq "$(echo "$placed" | jq -r .endpoint | sort | tr '\n' ' ')" \
    "$(printf '%s\n' "$(id_of a)" "$(id_of b)" "$(id_of c)" | sort | tr '\n' ' ')"
  assert_eq "$(echo "$placed" | jq -r 'select(.name == "app1") | .endpoint')" "$(id_of b)"
  echo "$placed" | jq -se 'all(.type == "guestinfo" and .datastore == "LocalDS_0"
    and .host == "localhost.localdomain" and .memory_mib == 1024 and .disk_gib == 2
    and .tags == ["app"] and (.placement.score | type) == "number"
    and (.placement.terms | keys) == ["cpu", "datastore", "memory"]
    and (.guestinfo | has("guestinfo.metadata")))'
  # app2 and app3 saw the app VMs placed before them
  echo "$placed" | jq -se '.[2].placement.rejected | length == 2 and
    all(.why[] | test("anti-affinity: tag .app. is on .app[12]."))'
  # two reads per host, nothing else: host records and VMs
  for s in a b c; do
    [ "$(calls "$s" RetrievePropertiesEx)" -eq 2 ]
    [ "$(soap_total "$s")" -eq 2 ]
  done
  # mkvm takes each record to its endpoint, without -H
  echo "$placed" >"$BATS_TEST_TMPDIR/placed"
  run --separate-stderr ceso-mkvm --from golden --no-power-on <"$BATS_TEST_TMPDIR/placed"
  assert_status 0
  echo "$output" | jq -se 'length == 3 and all(.changed == true and .placement.score != null)'
  local n ep
  for n in app1 app2 app3; do
    ep=$(echo "$placed" | jq -r "select(.name == \"$n\") | .endpoint")
    for s in a b c; do
      if [ "$(id_of $s)" = "$ep" ]; then
        [ "$(ceso-ls -H $s --name "$n" | jq -r .name)" = "$n" ]
        [ "$(ceso-ls -H $s --name "$n" | jq -r .memory_mib)" = 1024 ]
        [ "$(ceso-ls -H $s --name "$n" | jq -r '.tags[0]')" = app ]
      else
        [ -z "$(ceso-ls -H $s --name "$n")" ]
      fi
    done
  done
  # placed again, the VMs are where they are (existing), nothing counted
  run --separate-stderr bash -c "$(declare -f fleet); fleet app 3 | ceso-place -H all --memory 1G --disk 2"
  assert_status 0
  echo "$output" | jq -se 'all(.placement.existing == true)'
  assert_eq "$(echo "$output" | jq -r 'select(.name == "app1") | .endpoint')" "$(id_of b)"
  for s in a b c; do ceso-rm -H $s --force --yes app1 app2 app3 >/dev/null 2>&1 || true; done
}

@test "capacity placed in the run counts: the specs that fit nowhere exit 4, the others still emitted" {
  # 3 GiB each (+1 GiB disk, 3 GiB swap): a takes 2 (7 GiB free), b 4 (14 GiB),
  # c none (3.5 GiB free, but 10 GiB of datastore hold one… and memory 3.5 GiB: 1)
  run --separate-stderr ceso-place -H all --memory 3G --disk 1 v1 v2 v3 v4 v5 v6 v7 v8 v9 v10
  assert_status 4
  [ "$(echo "$output" | wc -l)" -eq 7 ]
  assert_eq "$(echo "$output" | jq -r .endpoint | sort | uniq -c | awk '{print $1}' | sort -n | tr '\n' ' ')" "1 2 4 "
  assert_eq "$(echo "$stderr" | grep -c 'fits on no host')" 3
  assert_contains "$stderr" "'v8': fits on no host (3 GiB memory, 1 GiB disk, 1 vCPU)"
  assert_contains "$stderr" "memory: needs 3 GiB, 512 MiB free after reservations"
  # deterministic: the same run, the same answer
  assert_eq "$output" "$(ceso-place -H all --memory 3G --disk 1 v1 v2 v3 v4 v5 v6 v7 v8 v9 v10 2>/dev/null)"
}

@test "anti-affinity with a VM already on a host; --force breaks it least and says so" {
  run --separate-stderr ceso-place -H all --memory 1G --disk 1 --tag web -A web web1 web2 web3
  assert_status 4
  # b holds web-old: web1 goes to a (the next best), web2 to c, web3 nowhere
  assert_eq "$(echo "$output" | jq -r .endpoint | tr '\n' ' ')" "$(id_of a) $(id_of c) "
  echo "$output" | jq -se ".[0].placement.rejected[0] | .endpoint == \"$(id_of b)\" and
    (.why[0] | test(\"tag .web. is on .web-old.\"))"
  assert_contains "$stderr" "'web3': fits on no host"
  run --separate-stderr ceso-place -H all --memory 1G --disk 1 --tag web -A web --force web1 web2 web3
  assert_status 0
  assert_eq "$(echo "$output" | jq -r 'select(.name == "web3") | .placement.forced[0]')" web
  # "prod" is not an anti-affinity tag here; '*' makes every tag one
  run ceso-place -H all --memory 1G --disk 1 --tag prod p1 p2
  assert_status 0
  echo "$output" | jq -se '.[1].placement.rejected == [] and (.[1].placement.others | length) == 2'
  run ceso-place -H all --memory 1G --disk 1 --tag prod -A '*' p1 p2
  assert_status 0
  echo "$output" | jq -se '(.[1].placement.rejected | length) == 1 and
    .[1].placement.rejected[0].endpoint == .[0].endpoint and .[0].endpoint != .[1].endpoint'
  run ceso-place -H all --memory 1G --disk 1 --tag prod -A '*' p1 p2 p3 p4
  assert_status 4
  assert_contains "$output" "'p4': fits on no host"
  run ceso-place -H all --memory 1G --disk 1 --force p1
  assert_status 2
  assert_contains "$output" "--force only loosens --anti-affinity"
}

@test "hostile specs: no memory, no disk, huge values, duplicate names, bad fields" {
  # VMs named as arguments need the sizes on the command line: nothing contacted
  run ceso-place -H all --disk 1 x1
  assert_status 2
  assert_contains "$output" "VMs named as arguments need --memory"
  run ceso-place -H all --memory 1G x1
  assert_status 2
  assert_contains "$output" "VMs named as arguments need --disk"
  for s in a b c; do [ "$(soap_total "$s")" -eq 0 ]; done
  # a record without them
  run --separate-stderr bash -c 'echo "{\"type\":\"spec\",\"name\":\"r0\",\"disk_gib\":1}" | ceso-place -H all'
  assert_status 3
  assert_contains "$stderr" "'r0' has no memory size: give --memory or a \"memory_mib\" field"
  run ceso-place -H all --memory 30T --disk 1 x1
  assert_status 2
  run ceso-place -H all --memory 1G --disk 100T x1
  assert_status 2
  run --separate-stderr bash -c 'printf "%s\n" \
    "{\"type\":\"spec\",\"name\":\"r1\",\"memory_mib\":1e15,\"disk_gib\":1}" \
    "{\"type\":\"spec\",\"name\":\"r2\",\"memory_mib\":1024,\"disk_gib\":\"x\"}" \
    "{\"type\":\"spec\",\"name\":\"r3\",\"memory_mib\":1024,\"disk_gib\":1,\"tags\":\"web\"}" \
    "{\"type\":\"spec\",\"name\":\"../x\",\"memory_mib\":1024,\"disk_gib\":1}" \
    "{\"type\":\"spec\",\"name\":\"ok\",\"memory_mib\":1024,\"disk_gib\":1}" \
    "{\"type\":\"spec\",\"name\":\"ok\",\"memory_mib\":1024,\"disk_gib\":1}" \
    "{\"type\":\"spec\",\"name\":\"huge\",\"memory_mib\":16777216,\"disk_gib\":63488}" \
    "{\"type\":\"vm\",\"name\":\"v\"}" | ceso-place -H all'
  assert_status 4
  assert_eq "$(echo "$output" | jq -r .name)" ok
  assert_contains "$stderr" "<stdin>:1): field \"memory_mib\" must be a whole number"
  assert_contains "$stderr" "<stdin>:2): field \"disk_gib\" must be a number"
  assert_contains "$stderr" "<stdin>:3): field \"tags\" must be an array"
  assert_contains "$stderr" "<stdin>:4): field \"name\""
  assert_contains "$stderr" "'ok' is placed already in this run (at <stdin>:5)"
  assert_contains "$stderr" "'huge': fits on no host (16 TiB memory, 62 TiB disk"
  assert_contains "$stderr" "cannot act on a record of type 'vm'"
  # a host name not in the config: nothing contacted
  reset_all
  run ceso-place -H a -H nosuch --memory 1G --disk 1 x1
  assert_status 2
  assert_contains "$output" "nosuch"
  for s in a b c; do [ "$(soap_total "$s")" -eq 0 ]; done
  # a name that is a VM on all three hosts
  run --separate-stderr ceso-place -H all --memory 1G --disk 1 golden
  assert_status 1
  assert_contains "$stderr" "VMs named 'golden' exist on 3 hosts"
}

@test "one host unreachable: a warning naming it, exit 4, the specs placed on the others" {
  on_sim b fail '{"method":"RetrievePropertiesEx","fault":"HostCommunication","count":-1}' >/dev/null
  run --separate-stderr ceso-place -H all --memory 1G --disk 1 u1 u2
  assert_status 4
  assert_contains "$stderr" "host 'b' ($(id_of b))"
  assert_contains "$stderr" "its capacity is unknown, no VM is placed there"
  [ "$(echo "$output" | wc -l)" -eq 2 ]
  ! echo "$output" | grep -q "$(id_of b)"
  # the only host: its error as it is
  run --separate-stderr ceso-place -H b --memory 1G --disk 1 u1
  assert_status 6
  [ -z "$output" ]
}

@test "a host answering nonsense capacity takes no VM, with a warning" {
  mkdir -p "$(sim_dir d)"
  on_sim d start -model esx -vms 1 -host-memory-mib 1024 -host-memory-used-mib 99999 \
    -datastore-gib 10 -datastore-free-gib 500 >/dev/null
  write_config a d
  run --separate-stderr ceso-place -H all --memory 1G --disk 1 n1
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .endpoint)" "$(id_of a)"
  assert_contains "$stderr" "'d' host 'localhost.localdomain' ($(id_of d)) reports more memory in use (99999 MiB) than it has (1 GiB)"
  echo "$output" | jq -e '.placement.rejected[0].why[0] | test("host reports more memory in use")'
  write_config d
  run --separate-stderr ceso-place -H all --memory 1G --disk 1 n1
  assert_status 4
  assert_contains "$stderr" "'n1': fits on no host"
  on_sim d stop >/dev/null
}

@test "read from the host: thin disks count at full size, reservations of powered-on VMs, swap needs room" {
  mkdir -p "$(sim_dir t)"
  echo '[{"name":"big","power":"off","disks_mib":[2048]},
         {"name":"gpu","power":"on","pci_passthrough":true,"memory_mib":2048}]' >"$BATS_TEST_TMPDIR/t.json"
  on_sim t start -model esx -vms 0 -vm-spec "$BATS_TEST_TMPDIR/t.json" -host-memory-mib 8192 \
    -host-memory-used-mib 1024 -datastore-gib 100 -datastore-free-gib 50 >/dev/null
  write_config t
  [ "$(ceso-info -H t big | jq -r '.disks[0].provisioning')" = thin ]
  run --separate-stderr ceso-place -H t --memory 1G --disk 1 t1
  assert_status 0
  # 8192 − max(1024 in use, 2048 reserved by the powered-on VM) − 1024
  assert_eq "$(echo "$output" | jq .placement.memory_free_mib)" 5120
  local free_mib
  free_mib=$(ceso-host ls -H t | jq '.datastores[0].free_gib * 1024')
  # free − thin growth (big's 2 GiB, gpu's 1 MiB) − (1 GiB disk + 1 GiB swap)
  assert_eq "$(echo "$output" | jq .placement.datastore_free_mib)" "$((free_mib - 2049 - 2048))"
  run --separate-stderr ceso-place -H t --memory 1G --disk "$((free_mib / 1024 - 2))" t2
  assert_status 4
  assert_contains "$stderr" "(disk + swap), $((free_mib - 2049)) MiB free after thin growth"
  run --separate-stderr ceso-place -H t --memory 7G --disk 1 t3
  assert_status 4
  assert_contains "$stderr" "memory: needs 7 GiB, 6 GiB free after reservations"
  on_sim t stop >/dev/null
}

@test "--dry-run: the same records (ceso-place changes nothing); -o and a table" {
  run ceso-place -H all --memory 1G --disk 1 d1 d2
  assert_status 0
  assert_eq "$output" "$(ceso-place -H all --memory 1G --disk 1 --dry-run d1 d2)"
  run ceso-place -H all --memory 1G --disk 1 -o name,endpoint,placement.score d1
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .endpoint)" "$(id_of b)"
  [ "$(echo "$output" | jq -c 'keys_unsorted')" = '["name","endpoint","placement"]' ]
}

@test "mkvm honours a record's endpoint and datastore; one not configured is refused" {
  run --separate-stderr bash -c "ceso-place -H c --memory 512M --disk 1 m1 |
    jq -c '.datastore = \"nosuch\"' | ceso-mkvm --from golden --no-power-on"
  assert_status 1
  assert_contains "$stderr" "[nosuch] m1 failed"
  assert_contains "$stderr" "InvalidDatastore"
  [ -z "$(ceso-ls -H c --name m1)" ]
  run --separate-stderr bash -c "echo '{\"type\":\"spec\",\"name\":\"m2\",\"endpoint\":\"127.0.0.1:1\"}' |
    ceso-mkvm --from golden --no-power-on"
  assert_status 1
  assert_contains "$stderr" "no credentials"
  run --separate-stderr bash -c "echo '{\"type\":\"spec\",\"name\":\"m3\"}' | ceso-mkvm --from golden"
  assert_status 2
  assert_contains "$stderr" "no host for 'm3'"
}

@test "vCenter: hosts of one cluster share a datastore; capacity counted once for all" {
  mkdir -p "$(sim_dir v)"
  on_sim v start -model vpx -vms 0 -host-memory-mib 8192 -host-memory-used-mib 0 \
    -datastore-gib 100 -datastore-free-gib 20 >/dev/null
  write_config v
  # 3 hosts in the cluster DC0_C0 (and DC0_H0 standalone), one datastore of 20 GiB
  run --separate-stderr ceso-place -H v --memory 4G --disk 4 -A web --tag web w1 w2 w3 w4 w5
  on_sim v stop >/dev/null
  assert_status 4
  [ "$(echo "$output" | jq -r .host | sort -u | wc -l)" -eq "$(echo "$output" | wc -l)" ]
  # 20 GiB hold two VMs of 4 GiB disk + 4 GiB swap, whatever host they are on
  [ "$(echo "$output" | wc -l)" -eq 2 ]
  assert_contains "$stderr" "free after thin growth"
}

@test "vCenter: ceso-mkvm clones each placed VM onto the host ceso-place chose (RelocateSpec.host)" {
  mkdir -p "$(sim_dir v)"
  on_sim v start -model vpx -vms 0 -vm-spec "$BATS_FILE_TMPDIR/golden.json" \
    -host-memory-mib 8192 -host-memory-used-mib 0 -datastore-gib 100 -datastore-free-gib 80 >/dev/null
  write_config v
  run --separate-stderr bash -c "ceso-place -H v --memory 1G --disk 1 -A web --tag web w1 w2 |
    tee '$BATS_TEST_TMPDIR/placed' | ceso-mkvm --from golden --no-power-on"
  assert_status 0
  [ "$(jq -r .host_id "$BATS_TEST_TMPDIR/placed" | sort -u | wc -l)" -eq 2 ]
  [ "$(on_sim v stats | jq -r '.soap.CloneVM_Task // 0')" -eq 2 ]
  # Where the VMs run now, as ceso-place reads it: each on the host chosen for it.
  run --separate-stderr ceso-place -H v --memory 1G --disk 1 -A web --tag web w3
  for w in w1 w2; do
    chosen=$(jq -r "select(.name == \"$w\") | .host" "$BATS_TEST_TMPDIR/placed")
    now=$(echo "$output" | jq -r --arg w "$w" \
      '.placement.rejected[] | select(.why | any(contains("'"'"'" + $w + "'"'"'"))) | .host')
    [ "$now" = "$chosen" ] ||
      { echo "$w runs on '$now', placed on '$chosen': $output" >&2; on_sim v stop >/dev/null; return 1; }
  done
  # A host id that is not a host of this vCenter: refused before any clone.
  run --separate-stderr bash -c "jq -c 'select(.name == \"w1\") | .name = \"w9\" | .host_id = \"host-99999\"' \
    '$BATS_TEST_TMPDIR/placed' | ceso-mkvm --from golden --no-power-on"
  assert_status 1
  [ "$(on_sim v stats | jq -r '.soap.CloneVM_Task // 0')" -eq 2 ]
  run --separate-stderr bash -c "jq -c 'select(.name == \"w1\") | .name = \"w9\" | .host_id = \"<x>\"' \
    '$BATS_TEST_TMPDIR/placed' | ceso-mkvm --from golden --no-power-on"
  on_sim v stop >/dev/null
  assert_status 3
  assert_contains "$stderr" 'field "host_id" must be a host id'
}
