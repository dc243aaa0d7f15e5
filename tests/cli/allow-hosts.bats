#!/usr/bin/env bats
# The endpoint allowlist (allow_hosts in the config file; docs/configuration.md
# "Allowed hosts"): allowed hosts work against the simulator on 127.0.0.1;
# any other is refused with exit 5, naming the host and the key, before any
# name resolution or connection — shown by the simulator receiving no call,
# by a refusal of a host that really listens, and by names no resolver
# could answer being refused at once with 5 (a lookup would fail with 6).

load helpers/common
load helpers/sshd

setup_file() {
  sim_start -vms 2
  PORT=${CESO_URL#http://127.0.0.1:}
  export PORT=${PORT%%/sdk}
  export CFG="$XDG_CONFIG_HOME/ceso/config"
  mkdir -p "$XDG_CONFIG_HOME/ceso"
}

teardown_file() {
  sshd_stop
  sim_stop
}

setup() {
  fresh_cache
  sim_reset
}

allow() { printf 'allow_hosts: [%s]\n' "$1" >"$CFG"; }

# No SOAP call reached the simulator since the last reset.
assert_no_call() {
  local calls
  calls=$(sim_stats | jq '[.soap // {} | .[]] | add // 0')
  [ "$calls" -eq 0 ] || {
    echo "the simulator got $calls calls" >&2
    return 1
  }
}

# The refusal message for HOST given through WHAT.
refusal() { echo "ceso-ls: $1: host '$2' is not in allow_hosts (config file '$CFG', line 1); not connecting"; }

@test "allowed by address, by network and by name: the simulator is reached" {
  for entry in 127.0.0.1 127.0.0.0/8 "192.0.2.1, 127.0.0.1/32" "::ffff:127.0.0.0/104"; do
    allow "$entry"
    fresh_cache
    run ceso-ls -o name
    assert_status 0
    [ "$(echo "$output" | wc -l)" -eq 2 ]
  done
  allow "LocalHost."
  fresh_cache
  run env -u CESO_URL ceso-ls --url "http://localhost:$PORT/sdk" -o name
  assert_status 0
  [ "$(echo "$output" | wc -l)" -eq 2 ]
  # Without allow_hosts every host is allowed.
  rm -f "$CFG"
  fresh_cache
  run ceso-ls -o name
  assert_status 0
}

@test "a host that listens but is not listed is refused with 5 and never contacted" {
  allow "192.0.2.0/24, esxi1.lab.example"
  run ceso-ls
  assert_status 5
  assert_eq "$output" "$(refusal CESO_URL 127.0.0.1)"
  assert_no_call
  # A name is not matched by its address, nor an address by a name.
  allow "127.0.0.1"
  run ceso-ls --url "http://localhost:$PORT/sdk"
  assert_status 5
  assert_eq "$output" "$(refusal --url localhost)"
  allow "localhost"
  run ceso-ls
  assert_status 5
  assert_eq "$output" "$(refusal CESO_URL 127.0.0.1)"
  # Other spellings of 127.0.0.1 are 127.0.0.1, not names to slip through.
  allow "192.0.2.0/24, 127.1, 2130706433"
  run ceso-ls
  assert_status 3 # short forms are refused in the list itself
  allow "localhost, 192.0.2.0/24"
  for spelling in 127.1 2130706433 0x7f000001 127.0.0.1 "[::ffff:127.0.0.1]"; do
    run ceso-ls --url "http://$spelling:$PORT/sdk"
    assert_status 5
    assert_contains "$output" "is not in allow_hosts"
  done
  assert_no_call
}

@test "every way to name the vSphere host is checked: --url, -H, default, CESO_URL, GOVC_URL" {
  cat >"$CFG" <<YAML
allow_hosts: [127.0.0.2]
hosts:
  sim:
    url: $CESO_URL
    user: $CESO_USER
default: sim
YAML
  run ceso-ls --url "$CESO_URL"
  assert_status 5
  assert_eq "$output" "$(refusal --url 127.0.0.1)"
  run ceso-ls -H sim
  assert_status 5
  assert_eq "$output" "$(refusal "config 'sim'" 127.0.0.1)"
  run env -u CESO_URL ceso-ls
  assert_status 5
  assert_eq "$output" "$(refusal "config 'sim'" 127.0.0.1)"
  run env -u CESO_URL GOVC_URL="$CESO_URL" ceso-ls
  assert_status 5
  assert_eq "$output" "$(refusal GOVC_URL 127.0.0.1)"
  assert_no_call
}

@test "names that would need DNS are refused at once with 5, not looked up (that would be 6)" {
  allow "127.0.0.1"
  for name in esxi9.ceso-test.invalid ESXI9.CESO-TEST.INVALID. nas.example.invalid; do
    start=$(date +%s%N)
    run ceso-ls --url "https://$name/sdk"
    took=$((($(date +%s%N) - start) / 1000000))
    assert_status 5
    assert_contains "$output" "host '$(echo "${name%.}" | tr A-Z a-z)"
    [ "$took" -lt 2000 ] || {
      echo "took $took ms" >&2
      return 1
    }
  done
}

@test "a record from a host not in allow_hosts is refused (5), the allowed ones are acted on" {
  allow "127.0.0.1"
  rec=$(ceso-ls --json | head -1)
  other=$(echo "$rec" | jq -c ".endpoint = \"localhost:$PORT\"")
  sim_reset
  run ceso-info -o name <<<"$other"
  assert_status 5
  assert_contains "$output" "record endpoint 'localhost:$PORT': host 'localhost' is not in allow_hosts"
  assert_no_call
  run ceso-info -o name <<<"$rec"$'\n'"$other"
  assert_status 4
  assert_contains "$output" "$(echo "$rec" | jq -r .name)"
}

@test "sftp backup targets: a host not listed is refused before connecting, a listed one is used" {
  sshd_start
  dir="$BATS_FILE_TMPDIR/sftp-target"
  mkdir -p "$dir"
  vm=$(ceso-ls --json -o name | head -1 | jq -r .name)
  printf 'allow_hosts: [127.0.0.1]\nbackup:\n  target: sftp://root@localhost:%s%s\n' "$SSHD_PORT" "$dir" >"$CFG"
  for host in "localhost:$SSHD_PORT" nas.ceso-test.invalid "[::ffff:127.0.0.2]"; do
    run ceso-backup --target "sftp://root@$host$dir" --hot --accept-new-host-key "$vm"
    assert_status 5
    assert_contains "$output" "backup target: host '"
    assert_contains "$output" "is not in allow_hosts"
  done
  run ceso-backup --hot --accept-new-host-key "$vm" # the config's target
  assert_status 5
  assert_contains "$output" "backup target: host 'localhost' is not in allow_hosts"
  [ -z "$(ls "$dir")" ]
  rm -f "$HOME/.ssh/known_hosts"
  run ceso-backup --target "sftp://root@127.0.0.1:$SSHD_PORT$dir" --hot --accept-new-host-key "$vm"
  assert_status 0
  [ -n "$(ls "$dir")" ]
}

@test "a malformed allow_hosts is bad input naming the file, line and entry" {
  printf 'hosts: {}\nallow_hosts:\n  - 127.0.0.1\n  - 127.0.0.1/8\n' >"$CFG"
  run ceso-ls
  assert_status 3
  assert_eq "$output" "ceso-ls: config file '$CFG', line 4: allow_hosts: '127.0.0.1/8': host bits are set; the network is 127.0.0.0/8"
  printf 'allow_hosts: 127.0.0.1\n' >"$CFG"
  run ceso-ls
  assert_status 3
  assert_contains "$output" "line 1: allow_hosts: expected a list"
}
