#!/usr/bin/env bats
# The tools that change VMs on a free-licensed host: reads over the API,
# changes over SSH with the host's vim-cmd (vm/writer, ceso(7) FREE ESXI OVER
# SSH). The failure paths of that way; the tools' own suites run their whole
# bodies in this model too (CESO_TEST_HOST_MODEL=free, helpers/common.bash).

bats_require_minimum_version 1.5.0
load helpers/common

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"f1","power":"off"},{"name":"f2","power":"on"},{"name":"f3","power":"off"},
 {"name":"fname","power":"off"},{"name":"fdry","power":"on"}]
JSON
  sim_start --license free --ssh -vms 0 -vm-spec "$spec" -host-uuid 5A5A5A5A-0000-4000-8000-00000000000A
}

teardown_file() { sim_stop; }

teardown() { other_stop "$BATS_TEST_TMPDIR/other"; }

setup() {
  export CESO_SSH="$CESO_SIM_SSH_USER@127.0.0.1:$CESO_SIM_SSH_PORT"
  export CESO_SSH_IDENTITY="$CESO_SIM_SSH_KEY" CESO_SSH_HOST_KEY="$CESO_SIM_SSH_FINGERPRINT"
  "$SIMCTL" shim-fault >/dev/null
}

power_of() { ceso-ls --name "$1" | jq -r .power; }
logins() { grep -c 'Accepted publickey' "$CESO_SIM_STATE/ssh/sshd.log" || true; }
local_count() { sim_stats | jq -r --arg m "$1" '.local_soap[$m] // 0'; }

@test "auto: the licence is read once per session, changes go over SSH, the audit entry says so" {
  fresh_cache
  sim_reset
  run ceso-power on f1
  assert_status 0
  echo "$output" | jq -e '.power == "on" and .changed == true'
  assert_eq "$(local_count PowerOnVM_Task)" 1                 # by the host's own client
  assert_eq "$(sim_stats | jq '.soap.PowerOnVM_Task // 0')" 0 # not over the API
  tail -1 "$XDG_STATE_HOME/ceso/audit.log" | jq -e '.operation == "PowerOnVM_Task" and .transport == "ssh" and .result == "ok"'
  # The licence is kept with the session: the next tool does not read it again.
  local before after
  before=$(sim_stats | jq '.soap.RetrievePropertiesEx')
  run ceso-power off f1
  assert_status 0
  after=$(sim_stats | jq '.soap.RetrievePropertiesEx')
  ceso-power on f1 >/dev/null
  [ $(($(sim_stats | jq '.soap.RetrievePropertiesEx') - after)) -eq $((after - before)) ]
  ceso-power off f1 >/dev/null
}

@test "one SSH connection per tool run, however many VMs" {
  local n
  n=$(logins)
  run bash -c 'ceso-ls --name "f[13]" | ceso-power on'
  assert_status 0
  assert_eq "$(echo "$output" | jq -s 'map(select(.changed)) | length')" 2
  assert_eq "$(($(logins) - n))" 1
  ceso-ls --name 'f[13]' | ceso-power off >/dev/null
}

@test "--dry-run plans the same and never connects over SSH" {
  local n
  n=$(logins)
  run ceso-power off --dry-run fdry
  assert_status 0
  echo "$output" | jq -e '.type == "plan" and .operation == "PowerOffVM_Task"'
  assert_eq "$(logins)" "$n"
  assert_eq "$(power_of fdry)" on
}

@test "--transport api on a free host: the host's RestrictedVersion refusal, exit 1" {
  run ceso-power off --transport api fdry
  assert_status 1
  assert_contains "$output" "RestrictedVersion"
  assert_contains "$output" "read-only"
  assert_eq "$(power_of fdry)" on
  tail -1 "$XDG_STATE_HOME/ceso/audit.log" | jq -e '.transport == "api" and .result == "error"'
  CESO_TRANSPORT=api run ceso-snap create --name x fdry
  assert_status 1
  assert_contains "$output" "RestrictedVersion"
}

@test "--transport ssh without SSH access, or a bad transport: exit 2, nothing sent" {
  sim_reset
  CESO_SSH= run ceso-power off --transport ssh fdry
  assert_status 2
  assert_contains "$output" "no SSH access is configured"
  run ceso-power off --transport telnet fdry
  assert_status 2
  assert_contains "$output" "--transport: 'telnet' is not a transport"
  CESO_TRANSPORT=x run ceso-power off fdry
  assert_status 2
  assert_contains "$output" "CESO_TRANSPORT"
  assert_eq "$(power_of fdry)" on
}

@test "a wrong pinned host key: refused before login, naming both keys (exit 6)" {
  local n
  n=$(logins)
  CESO_SSH_HOST_KEY=SHA256:XdxVDWV9DxxIbl50k2ahdHogegJX89cYWms6kCbdIVQ run ceso-power off fdry
  assert_status 6
  assert_contains "$output" "$CESO_SIM_SSH_FINGERPRINT"
  assert_contains "$output" "SHA256:XdxVDWV9DxxIbl50k2ahdHogegJX89cYWms6kCbdIVQ"
  assert_eq "$(logins)" "$n"
  assert_eq "$(power_of fdry)" on
}

@test "a changed host key in known_hosts: refused with the old and new fingerprints; unknown: refused" {
  mkdir -p "$HOME/.ssh"
  ssh-keygen -q -t ecdsa -b 256 -N '' -f "$BATS_TEST_TMPDIR/other"
  echo "[127.0.0.1]:$CESO_SIM_SSH_PORT $(cut -d' ' -f1,2 "$BATS_TEST_TMPDIR/other.pub")" >"$HOME/.ssh/known_hosts"
  old=$(ssh-keygen -lf "$BATS_TEST_TMPDIR/other.pub" | cut -d' ' -f2)
  CESO_SSH_HOST_KEY= run ceso-power off fdry
  assert_status 6
  assert_contains "$output" "CHANGED"
  assert_contains "$output" "$old"
  assert_contains "$output" "$CESO_SIM_SSH_FINGERPRINT"
  rm "$HOME/.ssh/known_hosts"
  CESO_SSH_HOST_KEY= run ceso-power off fdry
  assert_status 6
  assert_contains "$output" "is not known"
  assert_eq "$(power_of fdry)" on
}

@test "a name with control characters never reaches the host's shell (exit 3; 2 for an option XML cannot carry)" {
  sim_reset
  local n
  n=$(logins)
  run ceso-snap create --name $'evil\n; reboot' f3
  assert_status 3
  assert_eq "$(local_count CreateSnapshot_Task)" 0
  # a .vmx key XML cannot carry either: the option is refused before any call
  run ceso-set --guestinfo $'k\x01=v' f3
  assert_status 2
  assert_contains "$output" "--guestinfo: text contains a control character (0x01)"
  assert_eq "$(ceso-snap ls f3 | wc -l)" 0
  # Quotes, $() and ; are data, not shell.
  run ceso-snap create --name "it's \$(touch /tmp/x); \`id\`" --description '"; rm -rf /' f3
  assert_status 0
  echo "$output" | jq -e '.snapshot.name == "it'"'"'s $(touch /tmp/x); `id`" and .snapshot.description == "\"; rm -rf /"'
  ceso-snap rm --all --yes f3 >/dev/null
}

@test "shim fault mode: a fault block with exit status 0 is a failure; a transient ManagedObjectNotFound is retried" {
  "$SIMCTL" shim-fault 'vim-cmd vmsvc/power.on InvalidPowerState 1' >/dev/null
  run ceso-power on f3
  assert_status 1
  assert_contains "$output" "InvalidPowerState"
  tail -1 "$XDG_STATE_HOME/ceso/audit.log" | jq -e '.transport == "ssh" and .result == "error"'
  assert_eq "$(power_of f3)" off
  "$SIMCTL" shim-fault 'vim-cmd vmsvc/power.on ManagedObjectNotFound 2' >/dev/null
  run ceso-power on f3
  assert_status 0
  assert_eq "$(power_of f3)" on
  "$SIMCTL" shim-fault 'vim-cmd vmsvc/power.off ManagedObjectNotFound -1' >/dev/null
  run ceso-power off f3
  assert_status 1
  assert_contains "$output" "ManagedObjectNotFound"
  "$SIMCTL" shim-fault >/dev/null
  ceso-power off f3 >/dev/null
}

@test "ceso-set over SSH: the .vmx is edited while off and reloaded; running VMs and devices refused" {
  run ceso-set --cpus 2 --memory 2G --guestinfo 'note=a "quoted" | value' --tag +free f1
  assert_status 0
  echo "$output" | jq -e '.cpus == 2 and .memory_mib == 2048 and .tags == ["free"] and .changed == true'
  ceso-info f1 | jq -e '.cpus == 2 and .memory_mib == 2048 and .guestinfo["guestinfo.note"] == "a \"quoted\" | value"'
  grep -q '^guestinfo.note = "a |22quoted|22 |7C value"$' "$(ds_file '[LocalDS_0] f1/f1.vmx')"
  ! ls -a "$(dirname "$(ds_file '[LocalDS_0] f1/f1.vmx')")" | grep -q ceso-
  run ceso-set --guestinfo note= f1
  assert_status 0
  ceso-info f1 | jq -e '.guestinfo | has("guestinfo.note") | not'
  run ceso-set --cpus 4 f2
  assert_status 1
  assert_contains "$output" "needs it powered off"
  run ceso-set --network 'VM Network' --annotation x f1
  assert_status 0
  run ceso-set --disk-grow +1G f1
  assert_status 1
  assert_contains "$output" "cannot change devices"
}

# The identity check (vm/writer VmWriters::Link::connect): SSH access that
# leads to another host is refused before any command of the tool runs
# there, whatever VMs either host has.
@test "SSH access that leads to another host: refused before any change, naming both uuids (exit 2)" {
  local other="$BATS_TEST_TMPDIR/other" spec="$BATS_TEST_TMPDIR/o.json" log0 id cpus
  echo '[{"name":"o1","power":"off"}]' >"$spec"
  # Another free host whose VM has the same id as this file's first VM.
  other_start "$other" -vms 0 -vm-spec "$spec" -host-uuid 0b0b0b0b-0000-4000-8000-00000000000b
  id=$(cat "$CESO_SIM_STATE/url")
  id=${id#http://}
  id=${id%/sdk}
  export $(other_ssh "$other")
  log0=$(ssh_commands_of "$other" | wc -l)
  cpus=$(ceso-info f1 | jq .cpus)
  sim_reset
  for cmd in "ceso-power on f1" "ceso-snap create --name x f1" "ceso-set --cpus $((cpus + 1)) f1"; do
    run $cmd
    assert_status 2
    assert_contains "$output" "SSH access $CESO_SSH does not lead to the host of $id"
    assert_contains "$output" "'5A5A5A5A-0000-4000-8000-00000000000A'"
    assert_contains "$output" "'0b0b0b0b-0000-4000-8000-00000000000b'"
    assert_contains "$output" "check \`ssh:\` (or CESO_SSH) for $id"
  done
  # nothing changed on either host, and the other host ran the check only
  assert_eq "$(power_of f1)" off
  assert_eq "$(ceso-snap ls f1 | wc -l)" 0
  assert_eq "$(ceso-info f1 | jq .cpus)" "$cpus"
  assert_eq "$(local_count PowerOnVM_Task)" 0
  assert_eq "$(on_other "$other" ceso-ls --name o1 | jq -r .power)" off
  assert_eq "$(ssh_commands_of "$other" "$log0" | sort -u)" "'vim-cmd' 'hostsvc/hostsummary'"
  assert_eq "$(ssh_commands_of "$other" "$log0" | wc -l)" 3 # one per run
  # The other way round: the API of the other host, SSH to this one.
  log0=$(ssh_commands_of "$CESO_SIM_STATE" | wc -l)
  export CESO_SSH="$CESO_SIM_SSH_USER@127.0.0.1:$CESO_SIM_SSH_PORT"
  export CESO_SSH_IDENTITY="$CESO_SIM_SSH_KEY" CESO_SSH_HOST_KEY="$CESO_SIM_SSH_FINGERPRINT"
  run on_other "$other" ceso-power on o1
  assert_status 2
  assert_contains "$output" "does not lead to the host of"
  assert_eq "$(on_other "$other" ceso-ls --name o1 | jq -r .power)" off
  assert_eq "$(ssh_commands_of "$CESO_SIM_STATE" "$log0")" "'vim-cmd' 'hostsvc/hostsummary'"
  other_stop "$other"
}

@test "the identity check costs one SSH command per run, the first" {
  local log0
  log0=$(ssh_commands_of "$CESO_SIM_STATE" | wc -l)
  run bash -c 'ceso-ls --name "f[13]" | ceso-power on'
  assert_status 0
  assert_eq "$(ssh_commands_of "$CESO_SIM_STATE" "$log0" | head -1)" "'vim-cmd' 'hostsvc/hostsummary'"
  assert_eq "$(ssh_commands_of "$CESO_SIM_STATE" "$log0" | grep -c hostsummary)" 1
  ceso-ls --name 'f[13]' | ceso-power off >/dev/null
}

@test "the identity check failing on the host (a fault block from hostsummary): nothing else runs, nothing changes" {
  local log0
  log0=$(ssh_commands_of "$CESO_SIM_STATE" | wc -l)
  "$SIMCTL" shim-fault 'vim-cmd hostsvc/hostsummary HostCommunication 1' >/dev/null
  run ceso-power on f1
  assert_status 6
  assert_contains "$output" "vim-cmd hostsvc/hostsummary on $CESO_SSH failed: HostCommunication"
  assert_eq "$(ssh_commands_of "$CESO_SIM_STATE" "$log0")" "'vim-cmd' 'hostsvc/hostsummary'"
  assert_eq "$(power_of f1)" off
}
