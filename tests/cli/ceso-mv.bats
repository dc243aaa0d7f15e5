#!/usr/bin/env bats
# ceso-mv: cold migration between two standalone hosts (two simulators, each
# its own host), host to host through the datastore HTTP endpoints. Every
# failure test checks that the source VM and its files are as they were and
# that the target has no VM and no folder left.

load helpers/common
bats_require_minimum_version 1.5.0

sim_dir() { echo "$BATS_FILE_TMPDIR/sim-$1"; }
on_sim() { CESO_SIM_STATE=$(sim_dir "$1") "$SIMCTL" "${@:2}"; }
id_of() { local u; u=$(cat "$(sim_dir "$1")/url"); u=${u#http://}; echo "${u%/sdk}"; }
ds_of() { on_sim "$1" datastore | jq -r '.LocalDS_0'; }
http_count() { on_sim "$1" stats | jq --arg k "$2" '.http[$k] // 0'; }
# SHA-256 of every file in a VM's folder on a host, one line each.
folder_sums() { (cd "$(ds_of "$1")/$2" && sha256sum -- * | sort -k2); }
uuid_on() { ceso-ls -H "$1" --name "$2" | jq -r .uuid; }

setup_file() {
  use_private_dirs
  cat >"$BATS_FILE_TMPDIR/a.json" <<'JSON'
[{"name":"web01","power":"off","disks_mib":[4],"ip":"10.0.0.21","hostname":"web01"},
 {"name":"on01","power":"on"},
 {"name":"clash01","power":"off"},
 {"name":"snap01","power":"off"},
 {"name":"pt01","power":"off","pci_passthrough":true}]
JSON
  echo '[{"name":"clash01","power":"off"}]' >"$BATS_FILE_TMPDIR/b.json"
  local s
  for s in a b; do
    mkdir -p "$(sim_dir "$s")"
    on_sim "$s" start -model esx -vms 1 -fill-mib 2 -vm-spec "$BATS_FILE_TMPDIR/$s.json" >/dev/null
  done
  mkdir -p "$XDG_CONFIG_HOME/ceso"
  {
    echo "hosts:"
    for s in a b; do
      printf '  %s:\n    url: %s\n    user: root\n    password_file: %s\n' \
        "$s" "$(cat "$(sim_dir "$s")/url")" "$(sim_dir "$s")/password"
    done
  } >"$XDG_CONFIG_HOME/ceso/config"
  # f: a free-licensed host with SSH access (its API is read-only)
  echo '[{"name":"free01","power":"off","disks_mib":[3]}]' >"$BATS_FILE_TMPDIR/f.json"
  start_free f "$BATS_FILE_TMPDIR/f.json"
}

# Neither VM nor folder named $2 on the free host $1, and no temporary file left.
free_clean() {
  assert_eq "$(ceso-ls -H "$1" --name "$2")" ""
  [ ! -e "$(ds_of "$1")/$2" ] || { echo "left on $1: $(ls -a "$(ds_of "$1")/$2")" >&2; return 1; }
}

teardown_file() { for s in a b v f g w x; do on_sim "$s" stop >/dev/null 2>&1 || true; done; }

# start_free NAME SPEC [ssh]: a free-licensed simulator (with SSH access when "ssh"), added
# to the config file as host NAME (and as NAME-nossh, the same host without SSH access).
start_free() {
  local name=$1 spec=$2 exports port
  mkdir -p "$(sim_dir "$name")"
  exports=$(on_sim "$name" start -vms 0 -fill-mib 2 -vm-spec "$spec" --license free --ssh)
  port=$(echo "$exports" | grep -o 'CESO_SIM_SSH_PORT=[0-9]*' | cut -d= -f2)
  printf '  %s:\n    url: %s\n    user: root\n    password_file: %s\n    ssh: root@127.0.0.1:%s\n    ssh_identity: %s\n    ssh_host_key: %s\n' \
    "$name" "$(cat "$(sim_dir "$name")/url")" "$(sim_dir "$name")/password" "$port" \
    "$(sim_dir "$name")/ssh/id_ed25519" "$(cat "$(sim_dir "$name")/ssh/fingerprint")" \
    >>"$XDG_CONFIG_HOME/ceso/config"
  printf '  %s-nossh:\n    url: %s\n    user: root\n    password_file: %s\n' \
    "$name" "$(cat "$(sim_dir "$name")/url")" "$(sim_dir "$name")/password" \
    >>"$XDG_CONFIG_HOME/ceso/config"
}
ssh_log() { cat "$(sim_dir "$1")/ssh/commands.log"; }

setup() {
  for s in a b; do on_sim "$s" fail '{}' >/dev/null; done
  [ ! -d "$(sim_dir f)" ] || rm -f "$(sim_dir f)/ssh/truncate" "$(sim_dir f)/ssh/hold" "$(sim_dir f)/ssh/fsize"
  uuid0=$(uuid_on a web01)
  sums0=$(folder_sums a web01)
}

# The source is as it was, the target has neither VM nor folder.
source_intact_target_clean() {
  assert_eq "$(uuid_on a web01)" "$uuid0"
  assert_eq "$(folder_sums a web01)" "$sums0"
  assert_eq "$(ceso-ls -H b --name web01)" ""
  [ ! -e "$(ds_of b)/web01" ] || { echo "left on b: $(ls "$(ds_of b)/web01")" >&2; return 1; }
}

@test "move a → b and back: same uuid, same bytes, source gone, one audit entry per host" {
  run --separate-stderr ceso-mv -H a web01 --to b
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .endpoint)" "$(id_of b)"
  assert_eq "$(echo "$output" | jq -r .uuid)" "$uuid0"
  assert_eq "$(echo "$output" | jq -r .moved_from.endpoint)" "$(id_of a)"
  assert_eq "$(echo "$output" | jq '[.files[] | select(.verified)] | length')" \
    "$(echo "$output" | jq '.files | length')"
  assert_eq "$(ceso-ls -H a --name web01)" ""
  [ ! -e "$(ds_of a)/web01" ]
  assert_eq "$(uuid_on b web01)" "$uuid0"
  # the disk's bytes arrived unchanged; the .vmx gained uuid.action only
  assert_eq "$(cd "$(ds_of b)/web01" && sha256sum web01-flat.vmdk web01.vmdk | sort -k2)" \
    "$(echo "$sums0" | grep -E ' web01(-flat)?\.vmdk$')"
  # the .vmx sent is the source's with uuid.action = "keep" (the simulator rewrites it on
  # registration, as its own .vmx): its hash differs, every other file's does not
  assert_eq "$(echo "$output" | jq -r '.files[] | select(.sha256 != .source_sha256) | .kind')" config
  audit=$(jq -c 'select(.tool=="ceso-mv")' "$XDG_STATE_HOME/ceso/audit.log")
  assert_eq "$(echo "$audit" | jq -r '[.endpoint, .operation, .result] | join(" ")')" \
    "$(id_of b) RegisterVM_Task ok
$(id_of a) Destroy_Task ok"
  # and back: records on stdin
  run --separate-stderr bash -c 'ceso-ls -H b --name web01 | ceso-mv -H b --to a'
  assert_status 0
  assert_eq "$(uuid_on a web01)" "$uuid0"
  assert_eq "$(ceso-ls -H b --name web01)" ""
  [ ! -e "$(ds_of b)/web01" ]
}

@test "--dry-run prints the plan (files, sizes, target paths) and changes nothing" {
  on_sim a reset >/dev/null
  on_sim b reset >/dev/null
  run --separate-stderr ceso-mv -H a web01 --to b --dry-run
  assert_status 0
  assert_eq "$(echo "$output" | jq -r '.operation' | tr '\n' ' ')" "RegisterVM_Task Destroy_Task "
  assert_eq "$(echo "$output" | head -1 | jq -r '.params.files[] | select(.to | endswith("-flat.vmdk")) | .bytes')" \
    "$(stat -c %s "$(ds_of a)/web01/web01-flat.vmdk")"
  assert_eq "$(echo "$output" | head -1 | jq -r '.params.vmx')" "[LocalDS_0] web01/web01.vmx"
  [ "$(http_count a 'GET /folder')" -eq 0 ]
  [ "$(http_count b 'PUT /folder')" -eq 0 ]
  source_intact_target_clean
}

@test "--keep-source: a copy with a new uuid, new MAC and new cloud-init identity; source kept" {
  run --separate-stderr ceso-mv -H a web01 --to b --keep-source --as web01-copy \
    --ip 10.0.0.31/24 --gateway 10.0.0.1
  assert_status 0
  new_uuid=$(echo "$output" | jq -r .uuid)
  [ "$new_uuid" != "$uuid0" ]
  [ -n "$(echo "$output" | jq -r .instance_id)" ]
  old_mac=$(echo "$output" | jq -r '.macs[0].from')
  new_mac=$(echo "$output" | jq -r '.macs[0].to')
  [ "$old_mac" != "$new_mac" ]
  assert_eq "$(ceso-info -H b web01-copy | jq -r '.nics[0].mac')" "$new_mac"
  run ceso-info -H b web01-copy --decode
  echo "$output" | jq -e '.guestinfo["guestinfo.metadata"] | contains("web01-copy")' >/dev/null
  assert_eq "$(uuid_on a web01)" "$uuid0"
  assert_eq "$(folder_sums a web01)" "$sums0"
  ceso-rm -H b web01-copy --yes >/dev/null
}

@test "bad input: no --to, unknown host, same host, --as without --keep-source, no --as" {
  run ceso-mv -H a web01
  assert_status 2
  run ceso-mv -H a web01 --to nosuchhost
  assert_status 2
  run ceso-mv -H a web01 --to a
  assert_status 2
  assert_contains "$output" "same host"
  run ceso-mv -H a web01 --to b --as x
  assert_status 2
  run ceso-mv -H a web01 --to b --keep-source
  assert_status 2
  run ceso-mv -H a web01 --to b --datastore nosuchds
  assert_status 1
  assert_contains "$output" "nosuchds"
  source_intact_target_clean
}

@test "refused: powered on (exit 5), name clash, snapshots, PCI passthrough; nothing sent" {
  on_sim b reset >/dev/null
  run ceso-mv -H a on01 --to b
  assert_status 5
  assert_contains "$output" "powered on"
  run ceso-mv -H a clash01 --to b
  assert_status 1
  assert_contains "$output" "exists on"
  ceso-snap -H a create snap01 --name before-move >/dev/null
  run ceso-mv -H a snap01 --to b
  assert_status 1
  assert_contains "$output" "snapshots"
  run ceso-mv -H a pt01 --to b
  assert_status 1
  assert_contains "$output" "passthrough"
  [ "$(http_count b 'PUT /folder')" -eq 0 ]
  assert_eq "$(ceso-ls -H b --name snap01)$(ceso-ls -H b --name pt01)$(ceso-ls -H b --name on01)" ""
  source_intact_target_clean
}

@test "target disk full mid-stream: target rolled back, source intact" {
  on_sim b fail '{"http":"PUT /folder","path":"-flat","after_bytes":1048576,"status":507,"body":"No space left on device","count":-1}' >/dev/null
  run ceso-mv -H a web01 --to b --retries 1
  [ "$status" -ne 0 ]
  source_intact_target_clean
}

@test "source GET failing mid-stream: target rolled back, source intact" {
  on_sim a fail '{"http":"GET /folder","path":"-flat","after_bytes":1048576,"count":1}' >/dev/null
  on_sim a fail '{"http":"GET /folder","path":"-flat","status":503,"count":-1}' >/dev/null
  run ceso-mv -H a web01 --to b --retries 1
  [ "$status" -ne 0 ]
  assert_contains "$output" "503"
  source_intact_target_clean
}

@test "a connection cut once is resumed (GET) or restarted (PUT); the move succeeds and moves back" {
  on_sim a fail '{"http":"GET /folder","path":"-flat","after_bytes":1048576,"count":1}' >/dev/null
  on_sim b fail '{"http":"PUT /folder","path":"-flat","after_bytes":1048576,"count":1}' >/dev/null
  run --separate-stderr ceso-mv -H a web01 --to b
  assert_status 0
  assert_eq "$(uuid_on b web01)" "$uuid0"
  run --separate-stderr ceso-mv -H b web01 --to a
  assert_status 0
  assert_eq "$(uuid_on a web01)" "$uuid0"
  assert_eq "$(folder_sums a web01 | grep vmdk)" "$(echo "$sums0" | grep vmdk)"
}

@test "connection killed on every try: exit 6, target rolled back, source intact" {
  on_sim b fail '{"http":"PUT /folder","path":"-flat","after_bytes":1048576,"count":-1}' >/dev/null
  run ceso-mv -H a web01 --to b --retries 1
  assert_status 6
  source_intact_target_clean
}

@test "Ctrl-C mid-stream: exit 130, target rolled back, source intact" {
  on_sim b reset >/dev/null
  on_sim b fail '{"http":"PUT /folder","path":"-flat","after_bytes":1048576,"stall_ms":5000}' >/dev/null
  ceso-mv -H a web01 --to b >/dev/null 2>"$BATS_TEST_TMPDIR/err" &
  pid=$!
  for _ in $(seq 200); do
    [ "$(http_count b 'PUT /folder')" -ge 2 ] && break
    sleep 0.05
  done
  sleep 0.3
  kill -INT "$pid"
  rc=0
  wait "$pid" || rc=$?
  assert_eq "$rc" 130
  source_intact_target_clean
}

@test "RegisterVM_Task failing on the target: the copied folder is removed, source intact" {
  on_sim b fail '{"method":"RegisterVM_Task","fault":"InvalidState","message":"injected","task":true}' >/dev/null
  run ceso-mv -H a web01 --to b
  assert_status 1
  assert_contains "$output" "injected"
  source_intact_target_clean
}

@test "silent corruption is caught by the read-back: stored or served wrong, in any segment; source intact" {
  # The 4 MiB disk is checked in four 1 MiB segments, two ranged GETs at once.
  local at
  for at in 0 3145733 4194303; do
    on_sim b fail "{\"http\":\"PUT /folder\",\"path\":\"-flat\",\"flip_at\":$at}" >/dev/null
    run --separate-stderr ceso-mv -H a web01 --to b
    assert_status 1
    assert_contains "$stderr" "verify: '[LocalDS_0] web01/web01-flat.vmdk' on $(id_of b): bytes"
    local seg=$((at / 1048576))
    assert_contains "$stderr" "bytes $((seg * 1048576))-$((seg * 1048576 + 1048575)) differ from what was sent"
    source_intact_target_clean
  done
  # right on the target's disk, wrong on the way back: not verified either
  on_sim b fail '{"http":"GET /folder","path":"-flat","flip_at":2097152,"count":-1}' >/dev/null
  run --separate-stderr ceso-mv -H a web01 --to b
  assert_status 1
  assert_contains "$stderr" "bytes 2097152-3145727 differ"
  on_sim b fail '{}' >/dev/null
  source_intact_target_clean
  # the .vmx (one segment, one plain GET)
  on_sim b fail '{"http":"PUT /folder","path":".vmx","flip_at":10}' >/dev/null
  run --separate-stderr ceso-mv -H a web01 --to b
  assert_status 1
  assert_contains "$stderr" "verify: '[LocalDS_0] web01/web01.vmx' on $(id_of b): differs from what was sent"
  source_intact_target_clean
  # --no-verify trusts the host: a byte stored wrong goes through; moved back
  # with the same byte inverted again, the disk is as it was
  on_sim b fail '{"http":"PUT /folder","path":"-flat","flip_at":5}' >/dev/null
  run ceso-mv -H a web01 --to b --no-verify
  assert_status 0
  [ "$(folder_sums b web01 | grep flat | cut -d' ' -f1)" != "$(echo "$sums0" | grep flat | cut -d' ' -f1)" ]
  on_sim a fail '{"http":"PUT /folder","path":"-flat","flip_at":5}' >/dev/null
  run ceso-mv -H b web01 --to a --no-verify
  assert_status 0
  assert_eq "$(folder_sums a web01 | grep flat)" "$(echo "$sums0" | grep flat)"
}

@test "vCenter model: RelocateVM_Task to another host of the vCenter; refusals" {
  mkdir -p "$(sim_dir v)"
  echo '[{"name":"cold01","power":"off"},{"name":"hot01","power":"on"}]' >"$BATS_TEST_TMPDIR/v.json"
  on_sim v start -model vpx -vms 1 -vm-spec "$BATS_TEST_TMPDIR/v.json" >/dev/null
  export CESO_URL CESO_USER=root CESO_PASSWORD_FILE
  CESO_URL=$(cat "$(sim_dir v)/url")
  CESO_PASSWORD_FILE=$(sim_dir v)/password
  run --separate-stderr ceso-mv cold01 --to DC0_C0_H0 --dry-run
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .operation)" RelocateVM_Task
  from=$(echo "$output" | jq -r .params.from_host)
  to=DC0_C0_H1
  [ "$from" != "$to" ] || to=DC0_C0_H2
  [ "$(on_sim v stats | jq '.soap.RelocateVM_Task // 0')" -eq 0 ]
  run --separate-stderr ceso-mv cold01 --to "$to"
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .host)" "$to"
  assert_eq "$(echo "$output" | jq -r .moved_from.host)" "$from"
  [ "$(on_sim v stats | jq '.soap.RelocateVM_Task')" -eq 1 ]
  # the host now runs it: moving it there again is the same host
  run ceso-mv cold01 --to "$to"
  assert_status 2
  assert_contains "$output" "already"
  run ceso-mv hot01 --to "$from"
  assert_status 5
  run ceso-mv cold01 --to nosuchhost
  assert_status 2
  run ceso-mv cold01 --to "$from" --keep-source --as x
  assert_status 2
  on_sim v stop >/dev/null
}

@test "free-licensed source with SSH access: moved away (GET over /folder, destroy over SSH) and back over SSH" {
  uuid=$(uuid_on f free01)
  run --separate-stderr ceso-mv -H f free01 --to b
  assert_status 0
  assert_eq "$(uuid_on b free01)" "$uuid"
  free_clean f free01
  audit=$(jq -c 'select(.tool=="ceso-mv" and .vm=="free01")' "$XDG_STATE_HOME/ceso/audit.log")
  assert_eq "$(echo "$audit" | jq -r '[.operation, .transport] | join(" ")')" \
    "RegisterVM_Task api
Destroy_Task ssh"
  # and back: the free target takes it over SSH
  run --separate-stderr ceso-mv -H b free01 --to f
  assert_status 0
  assert_eq "$(uuid_on f free01)" "$uuid"
  assert_eq "$(ceso-ls -H b --name free01)" ""
}

@test "free target with SSH: files written and read back over SSH, registervm, same identity; source removed after verify" {
  on_sim f reset >/dev/null
  log0=$(ssh_log f | wc -l)
  iuuid0=$(ceso-info -H a web01 | jq -r .instance_uuid)
  run --separate-stderr ceso-mv -H a web01 --to f
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .endpoint)" "$(id_of f)"
  assert_eq "$(echo "$output" | jq -r .uuid)" "$uuid0"
  assert_eq "$(echo "$output" | jq '[.files[] | select(.verified)] | length')" \
    "$(echo "$output" | jq '.files | length')"
  # the target's identity is the source's: BIOS and instance uuid, name, .vmx path
  assert_eq "$(uuid_on f web01)" "$uuid0"
  assert_eq "$(ceso-info -H f web01 | jq -r .instance_uuid)" "$iuuid0"
  assert_eq "$(ceso-info -H f web01 | jq -r .vmx)" "[LocalDS_0] web01/web01.vmx"
  # the disk's bytes arrived unchanged, and no temporary file is left
  assert_eq "$(cd "$(ds_of f)/web01" && sha256sum web01-flat.vmdk web01.vmdk | sort -k2)" \
    "$(echo "$sums0" | grep -E ' web01(-flat)?\.vmdk$')"
  assert_eq "$(cd "$(ds_of f)/web01" && ls -A | grep -c ceso-tmp || true)" 0
  # the source is gone
  assert_eq "$(ceso-ls -H a --name web01)" ""
  [ ! -e "$(ds_of a)/web01" ]
  # nothing went through the free host's API writes or /folder PUT: all over SSH, in
  # this order: the host check, mkdir, the writes, the read-backs, registervm
  [ "$(http_count f 'PUT /folder')" -eq 0 ]
  cmds=$(ssh_log f | tail -n +"$((log0 + 1))")
  assert_eq "$(echo "$cmds" | head -1)" "'vim-cmd' 'hostsvc/hostsummary' "
  assert_eq "$(echo "$cmds" | grep -c hostsummary)" 1
  echo "$cmds" | grep -q "^'mkdir' '/vmfs/volumes/LocalDS_0/web01'"
  n=$(echo "$output" | jq '.files | length')
  assert_eq "$(echo "$cmds" | grep -c "cat >")" "$n"
  assert_eq "$(echo "$cmds" | grep -c "^'cat' '/vmfs/volumes/LocalDS_0/web01/")" "$n"
  order=$(echo "$cmds" | sed -nE "s/^'(mkdir|sh|cat|vim-cmd)'.*/\1/p" | uniq | tr '\n' ' ')
  assert_eq "$order" "vim-cmd mkdir sh cat vim-cmd "
  echo "$cmds" | grep -q "^'vim-cmd' 'solo/registervm' '/vmfs/volumes/LocalDS_0/web01/web01.vmx' 'web01'"
  audit=$(jq -c 'select(.tool=="ceso-mv" and .vm=="web01")' "$XDG_STATE_HOME/ceso/audit.log" | tail -2)
  assert_eq "$(echo "$audit" | jq -r '[.endpoint, .operation, .transport, .result] | join(" ")')" \
    "$(id_of f) RegisterVM_Task ssh ok
$(id_of a) Destroy_Task api ok"
  # and back to a (a free source: destroyed over SSH)
  run --separate-stderr ceso-mv -H f web01 --to a
  assert_status 0
  assert_eq "$(uuid_on a web01)" "$uuid0"
  free_clean f web01
  assert_eq "$(folder_sums a web01 | grep vmdk)" "$(echo "$sums0" | grep vmdk)"
}

@test "free target --keep-source: a copy with a new identity over SSH; source kept" {
  run --separate-stderr ceso-mv -H a web01 --to f --keep-source --as web01-copy \
    --ip 10.0.0.32/24 --gateway 10.0.0.1
  assert_status 0
  new_uuid=$(echo "$output" | jq -r .uuid)
  [ "$new_uuid" != "$uuid0" ]
  [ -n "$(echo "$output" | jq -r .instance_id)" ]
  new_mac=$(echo "$output" | jq -r '.macs[0].to')
  [ "$(echo "$output" | jq -r '.macs[0].from')" != "$new_mac" ]
  info=$(ceso-info -H f web01-copy)
  assert_eq "$(echo "$info" | jq -r .uuid)" "$new_uuid"
  assert_eq "$(echo "$info" | jq -r '.nics[0].mac')" "$new_mac"
  [ "$(echo "$info" | jq -r .instance_uuid)" != "$(ceso-info -H a web01 | jq -r .instance_uuid)" ]
  run ceso-info -H f web01-copy --decode
  echo "$output" | jq -e '.guestinfo["guestinfo.metadata"] | contains("web01-copy")' >/dev/null
  assert_eq "$(uuid_on a web01)" "$uuid0"
  assert_eq "$(folder_sums a web01)" "$sums0"
  ceso-rm -H f web01-copy --yes >/dev/null
  free_clean f web01-copy
}

@test "free target --dry-run: the plan says SSH (registervm command), nothing is changed or sent" {
  on_sim a reset >/dev/null
  log0=$(ssh_log f | wc -l)
  run --separate-stderr ceso-mv -H a web01 --to f --dry-run
  assert_status 0
  # the target's step names its SSH access and the command; the source's is the API's
  assert_eq "$(echo "$output" | jq -r '[.operation, (.params.ssh // "api")] | join(" ")')" \
    "RegisterVM_Task root@127.0.0.1:$(cat "$(sim_dir f)/ssh/port")
Destroy_Task api"
  assert_eq "$(echo "$output" | head -1 | jq -r .params.command)" \
    "'vim-cmd' 'solo/registervm' '/vmfs/volumes/LocalDS_0/web01/web01.vmx' 'web01'"
  [ "$(http_count a 'GET /folder')" -eq 0 ]
  assert_eq "$(ssh_log f | wc -l)" "$log0"
  source_intact_target_clean
  free_clean f web01
}

@test "free target without SSH access: refused before anything, saying how to configure it" {
  on_sim a reset >/dev/null
  log0=$(ssh_log f | wc -l)
  run ceso-mv -H a web01 --to f-nossh
  assert_status 1
  assert_contains "$output" "free-licensed"
  assert_contains "$output" "ssh: root@127.0.0.1"
  assert_contains "$output" "FREE ESXI OVER SSH"
  [ "$(http_count a 'GET /folder')" -eq 0 ]
  assert_eq "$(ssh_log f | wc -l)" "$log0"
  source_intact_target_clean
  free_clean f web01
  # SSH configured but forbidden by --transport api: said so, not "configure it"
  run ceso-mv -H a web01 --to f --transport api
  assert_status 1
  assert_contains "$output" "its SSH access is configured, but --transport api forbids it"
  [ "$(http_count a 'GET /folder')" -eq 0 ]
  assert_eq "$(ssh_log f | wc -l)" "$log0"
  source_intact_target_clean
}

@test "free target whose ssh: leads to another host: refused (exit 2) before anything is sent; nothing on either host, source intact" {
  local port logf logx
  if [ ! -f "$(sim_dir x)/url" ]; then
    mkdir -p "$(sim_dir x)"
    port=$(on_sim x start -vms 0 --license free --ssh | grep -o 'CESO_SIM_SSH_PORT=[0-9]*' | cut -d= -f2)
    # x: another free host; fx: f's API with x's SSH access (a mistyped ssh:)
    printf '  x:\n    url: %s\n    user: root\n    password_file: %s\n' \
      "$(cat "$(sim_dir x)/url")" "$(sim_dir x)/password" >>"$XDG_CONFIG_HOME/ceso/config"
    printf '  fx:\n    url: %s\n    user: root\n    password_file: %s\n    ssh: root@127.0.0.1:%s\n    ssh_identity: %s\n    ssh_host_key: %s\n' \
      "$(cat "$(sim_dir f)/url")" "$(sim_dir f)/password" "$port" \
      "$(sim_dir x)/ssh/id_ed25519" "$(cat "$(sim_dir x)/ssh/fingerprint")" >>"$XDG_CONFIG_HOME/ceso/config"
  fi
  on_sim a reset >/dev/null
  logf=$(ssh_log f | wc -l)
  logx=$(ssh_log x | wc -l)
  run ceso-mv -H a web01 --to fx
  assert_status 2
  assert_contains "$output" "does not lead to the host of $(id_of f)"
  assert_contains "$output" "check \`ssh:\` (or CESO_SSH) for $(id_of f)"
  # the source was not even read, and only the check ran on the other host
  [ "$(http_count a 'GET /folder')" -eq 0 ]
  assert_eq "$(ssh_log f | wc -l)" "$logf"
  assert_eq "$(ssh_log x | tail -n +"$((logx + 1))")" "'vim-cmd' 'hostsvc/hostsummary' "
  source_intact_target_clean
  free_clean f web01
  free_clean x web01
}

@test "free target, a write cut short that the host does not report: the read-back finds it, target cleaned, source intact" {
  echo 1048576 >"$(sim_dir f)/ssh/truncate"
  run --separate-stderr ceso-mv -H a web01 --to f
  rm -f "$(sim_dir f)/ssh/truncate"
  assert_status 1
  assert_contains "$stderr" "verify"
  assert_contains "$stderr" "web01-flat.vmdk"
  assert_contains "$stderr" "1048576 bytes"
  source_intact_target_clean
  free_clean f web01
  audit=$(jq -c 'select(.tool=="ceso-mv" and .vm=="web01")' "$XDG_STATE_HOME/ceso/audit.log" | tail -1)
  assert_eq "$(echo "$audit" | jq -r '[.endpoint, .operation, .transport, .result] | join(" ")')" \
    "$(id_of f) RegisterVM_Task ssh error"
}

@test "free target, Ctrl-C while a write over SSH is held: exit 130, target cleaned over SSH, source intact" {
  # the host takes the first MiB of each write, then holds it (the .vmx, the first
  # file, is whole by then and its command waits)
  echo $((1024 * 1024)) >"$(sim_dir f)/ssh/hold"
  ceso-mv -H a web01 --to f >/dev/null 2>"$BATS_TEST_TMPDIR/err" &
  pid=$!
  held=""
  for _ in $(seq 400); do
    held=$(ls -A "$(ds_of f)/web01" 2>/dev/null | grep ceso-tmp || true)
    [ -n "$held" ] && break
    sleep 0.05
  done
  [ -n "$held" ]
  sleep 0.3
  kill -INT "$pid"
  rm -f "$(sim_dir f)/ssh/hold"
  rc=0
  wait "$pid" || rc=$?
  cat "$BATS_TEST_TMPDIR/err"
  assert_eq "$rc" 130
  source_intact_target_clean
  free_clean f web01
}

@test "free target: a folder of that name there already (not ours) is refused and kept" {
  mkdir "$(ds_of f)/web01"
  echo keep >"$(ds_of f)/web01/someone-elses"
  run ceso-mv -H a web01 --to f
  assert_status 1
  assert_contains "$output" "exists on"
  assert_eq "$(cat "$(ds_of f)/web01/someone-elses")" keep
  assert_eq "$(ls -A "$(ds_of f)/web01")" someone-elses
  rm -r "$(ds_of f)/web01"
  source_intact_target_clean
  free_clean f web01
}

@test "free target full in the middle of a disk (a write fails over SSH): exit 1 naming the file, target cleaned, source intact" {
  echo $((1024 * 1024)) >"$(sim_dir f)/ssh/fsize"
  run --separate-stderr ceso-mv -H a web01 --to f
  rm -f "$(sim_dir f)/ssh/fsize"
  assert_status 1
  assert_contains "$stderr" "web01-flat.vmdk.ceso-tmp"
  assert_contains "$stderr" "File too large"
  source_intact_target_clean
  free_clean f web01
}

@test "free target, the source's GET failing mid-stream: target cleaned over SSH, source intact" {
  on_sim a fail '{"http":"GET /folder","path":"-flat","after_bytes":1048576,"count":1}' >/dev/null
  on_sim a fail '{"http":"GET /folder","path":"-flat","status":503,"count":-1}' >/dev/null
  run --separate-stderr ceso-mv -H a web01 --to f --retries 1
  [ "$status" -ne 0 ]
  assert_contains "$stderr" "503"
  source_intact_target_clean
  free_clean f web01
}

@test "free target, registervm failing: nothing registered or left on the target, source intact" {
  CESO_SIM_STATE=$(sim_dir f) "$SIMCTL" shim-fault 'vim-cmd solo/registervm SystemError 1 injected'
  run ceso-mv -H a web01 --to f
  CESO_SIM_STATE=$(sim_dir f) "$SIMCTL" shim-fault
  assert_status 1
  assert_contains "$output" "injected"
  source_intact_target_clean
  free_clean f web01
}

@test "free source whose ssh: leads to another host: refused (exit 2) before anything is copied; the VM stays on its host only" {
  local port uuid sums logx
  echo '[{"name":"wrong01","power":"off","disks_mib":[2]}]' >"$BATS_TEST_TMPDIR/w.json"
  start_free w "$BATS_TEST_TMPDIR/w.json"
  if [ ! -f "$(sim_dir x)/url" ]; then
    mkdir -p "$(sim_dir x)"
    on_sim x start -vms 0 --license free --ssh >/dev/null
  fi
  port=$(cat "$(sim_dir x)/ssh/port")
  # wx: w's API with x's SSH access (a mistyped ssh: on the source)
  printf '  wx:\n    url: %s\n    user: root\n    password_file: %s\n    ssh: root@127.0.0.1:%s\n    ssh_identity: %s\n    ssh_host_key: %s\n' \
    "$(cat "$(sim_dir w)/url")" "$(sim_dir w)/password" "$port" \
    "$(sim_dir x)/ssh/id_ed25519" "$(cat "$(sim_dir x)/ssh/fingerprint")" >>"$XDG_CONFIG_HOME/ceso/config"
  uuid=$(uuid_on w wrong01)
  sums=$(folder_sums w wrong01)
  logx=$(ssh_log x 2>/dev/null | wc -l)
  on_sim w reset >/dev/null
  run --separate-stderr ceso-mv -H wx wrong01 --to b
  assert_status 2
  assert_contains "$stderr" "does not lead to the host of $(id_of w)"
  # nothing read from the source, nothing made on the target, and only the
  # check ran on the other host
  [ "$(http_count w 'GET /folder')" -eq 0 ]
  assert_eq "$(ceso-ls -H b --name wrong01)" ""
  [ ! -e "$(ds_of b)/wrong01" ]
  assert_eq "$(ssh_log x | tail -n +"$((logx + 1))")" "'vim-cmd' 'hostsvc/hostsummary' "
  assert_eq "$(uuid_on w wrong01)" "$uuid"
  assert_eq "$(folder_sums w wrong01)" "$sums"
  on_sim w stop >/dev/null
}

@test "free source and free target, both over SSH" {
  echo '[{"name":"both01","power":"off","disks_mib":[2]}]' >"$BATS_TEST_TMPDIR/g.json"
  start_free g "$BATS_TEST_TMPDIR/g.json"
  uuid=$(uuid_on g both01)
  sums=$(folder_sums g both01 | grep vmdk)
  run --separate-stderr ceso-mv -H g both01 --to f
  assert_status 0
  assert_eq "$(uuid_on f both01)" "$uuid"
  assert_eq "$(folder_sums f both01 | grep vmdk)" "$sums"
  free_clean g both01
  audit=$(jq -c 'select(.tool=="ceso-mv" and .vm=="both01")' "$XDG_STATE_HOME/ceso/audit.log")
  assert_eq "$(echo "$audit" | jq -r '[.endpoint, .operation, .transport] | join(" ")')" \
    "$(id_of f) RegisterVM_Task ssh
$(id_of g) Destroy_Task ssh"
  ceso-rm -H f both01 --yes >/dev/null
  free_clean f both01
  on_sim g stop >/dev/null
}
