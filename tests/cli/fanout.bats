#!/usr/bin/env bats
# Fan-out: ceso-ls and ceso-host ls over several hosts (-H NAME given several
# times, or -H all from the config file), queried in parallel, records merged
# in host order. Three simulators, each its own standalone host with its own
# VM count; a host that does not answer is a warning and exit 4.

load helpers/common
bats_require_minimum_version 1.5.0

sim_dir() { echo "$BATS_FILE_TMPDIR/sim-$1"; }
# simctl for one of the three: on_sim a stats
on_sim() { CESO_SIM_STATE=$(sim_dir "$1") "$SIMCTL" "${@:2}"; }
id_of() { local u; u=$(cat "$(sim_dir "$1")/url"); u=${u#http://}; echo "${u%/sdk}"; }
soap_total() { on_sim "$1" stats | jq '.soap_total'; }
listings() { on_sim "$1" stats | jq '.soap.RetrievePropertiesEx // 0'; }
reset_all() { for s in a b c; do on_sim "$s" reset >/dev/null; done; }

setup_file() {
  use_private_dirs
  local s n=1
  for s in a b c; do
    mkdir -p "$(sim_dir "$s")"
    on_sim "$s" start -model esx -vms "$n" >/dev/null
    n=$((n + 1))
  done
  mkdir -p "$XDG_CONFIG_HOME/ceso"
  {
    echo "hosts:"
    for s in a b c; do
      printf '  %s:\n    url: %s\n    user: root\n    password_file: %s\n' \
        "$s" "$(cat "$(sim_dir "$s")/url")" "$(sim_dir "$s")/password"
    done
  } >"$XDG_CONFIG_HOME/ceso/config"
}

teardown_file() { for s in a b c; do on_sim "$s" stop >/dev/null 2>&1 || true; done; }

setup() {
  for s in a b c; do on_sim "$s" fail '{}' >/dev/null; done
  ceso-ls -H all >/dev/null # warm sessions, as in a pipeline
  reset_all
}

@test "-H all: every host's VMs, hosts in config order, each record with its endpoint; one listing per host" {
  run --separate-stderr ceso-ls -H all
  assert_status 0
  assert_eq "$stderr" ""
  [ "$(echo "$output" | wc -l)" -eq 6 ]
  assert_eq "$(echo "$output" | jq -r .endpoint | uniq | tr '\n' ' ')" "$(id_of a) $(id_of b) $(id_of c) "
  # -vms 1, 2 and 3
  assert_eq "$(echo "$output" | jq -r .endpoint | uniq -c | awk '{print $1}' | tr '\n' ' ')" "1 2 3 "
  for s in a b c; do
    [ "$(listings "$s")" -eq 1 ]
    [ "$(soap_total "$s")" -eq 1 ]
  done
  # the same records as the hosts one by one
  assert_eq "$output" "$(ceso-ls -H a; ceso-ls -H b; ceso-ls -H c)"
}

@test "several -H: in the order given; filters apply on every host" {
  run ceso-ls -H c -H a
  assert_status 0
  assert_eq "$output" "$(ceso-ls -H c; ceso-ls -H a)"
  [ "$(listings b)" -eq 0 ]
  run ceso-ls -H c -H b --name '*VM1'
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .endpoint | tr '\n' ' ')" "$(id_of c) $(id_of b) "
}

@test "one -H is the single-host path: one listing, nothing else" {
  run ceso-ls -H b
  assert_status 0
  [ "$(echo "$output" | wc -l)" -eq 2 ]
  [ "$(soap_total b)" -eq 1 ]
  [ "$(soap_total a)" -eq 0 ]
}

@test "ceso-host ls -H all: one host record per simulator, in config order, one call each" {
  run --separate-stderr ceso-host ls -H all
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .endpoint | tr '\n' ' ')" "$(id_of a) $(id_of b) $(id_of c) "
  echo "$output" | jq -se 'all(.type == "host" and .id == "ha-host")'
  for s in a b c; do [ "$(soap_total "$s")" -eq 1 ]; done
}

@test "ceso-pci ls -H all: every host's devices in host order; --esxi needs one -H" {
  run --separate-stderr ceso-pci ls -H all
  assert_status 0
  assert_eq "$output" "$(ceso-pci ls -H a; ceso-pci ls -H b; ceso-pci ls -H c)"
  assert_eq "$(echo "$output" | jq -r .endpoint | uniq | tr '\n' ' ')" "$(id_of a) $(id_of b) $(id_of c) "
  run ceso-pci ls -H a -H b --esxi x
  assert_status 2
  assert_contains "$output" "--esxi picks a host of one vCenter"
}

@test "a tool that talks to one host refuses a second -H instead of using the last" {
  run ceso-info -H a -H b DC0_H0_VM0
  assert_status 2
  assert_contains "$output" "-H is given 2 times"
  run ceso-pci enable -H a -H b 0000:18:00.0
  assert_status 2
  for s in a b c; do [ "$(soap_total "$s")" -eq 0 ]; done
}

@test "bad -H lists are usage errors before any host is contacted" {
  run ceso-ls -H a -H nosuch
  assert_status 2
  assert_contains "$output" "nosuch"
  run ceso-ls -H a -H b -H a
  assert_status 2
  assert_contains "$output" "-H 'a' is given twice"
  run ceso-ls -H all -H a
  assert_status 2
  assert_contains "$output" "-H all names every host of the config file"
  run ceso-host ls -H a -H ""
  assert_status 2
  assert_contains "$output" "empty host name"
  run ceso-ls --url "$(cat "$(sim_dir a)/url")" -H a -H b
  assert_status 2
  assert_contains "$output" "--url and several -H"
  # a second name for the same endpoint
  cp "$XDG_CONFIG_HOME/ceso/config" "$BATS_TEST_TMPDIR/config"
  printf '  again:\n    url: %s\n' "$(cat "$(sim_dir a)/url")" >>"$XDG_CONFIG_HOME/ceso/config"
  run ceso-ls -H a -H again
  cp "$BATS_TEST_TMPDIR/config" "$XDG_CONFIG_HOME/ceso/config"
  assert_status 2
  assert_contains "$output" "are the same endpoint $(id_of a)"
  # -H all without hosts in the config file
  mkdir -p "$BATS_TEST_TMPDIR/empty"
  run env XDG_CONFIG_HOME="$BATS_TEST_TMPDIR/empty" ceso-ls -H all
  assert_status 2
  assert_contains "$output" "-H all: the config file names no hosts"
  for s in a b c; do [ "$(soap_total "$s")" -eq 0 ]; done
}

@test "a host that fails: a warning naming it, exit 4, the other hosts' records all there" {
  on_sim b fail '{"method":"RetrievePropertiesEx","fault":"HostCommunication","count":-1}' >/dev/null
  run --separate-stderr ceso-ls -H all
  assert_status 4
  assert_contains "$stderr" "host 'b' ($(id_of b))"
  assert_contains "$stderr" "HostCommunication"
  assert_eq "$output" "$(ceso-ls -H a; ceso-ls -H c)"
}

@test "every host fails: their common exit code" {
  on_sim a fail '{"method":"RetrievePropertiesEx","fault":"HostCommunication","count":-1}' >/dev/null
  on_sim c fail '{"method":"RetrievePropertiesEx","fault":"HostCommunication","count":-1}' >/dev/null
  run --separate-stderr ceso-host ls -H c -H a
  assert_status 6
  assert_eq "$output" ""
  assert_contains "$stderr" "host 'c'"
  assert_contains "$stderr" "host 'a'"
}

@test "a stopped host: warning and exit 4; ceso-ls and ceso-host ls still print the others' records" {
  local expect_ls expect_host b_id
  b_id=$(id_of b)
  expect_ls=$(ceso-ls -H a; ceso-ls -H c)
  expect_host=$(ceso-host ls -H a; ceso-host ls -H c)
  on_sim b stop >/dev/null
  run --separate-stderr ceso-ls -H all
  assert_status 4
  assert_contains "$stderr" "host 'b' ($b_id): cannot reach"
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
  assert_eq "$output" "$expect_ls"
  run --separate-stderr ceso-host ls -H all
  assert_status 4
  assert_contains "$stderr" "host 'b'"
  assert_eq "$output" "$expect_host"
}
