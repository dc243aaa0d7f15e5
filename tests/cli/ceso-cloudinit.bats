#!/usr/bin/env bats
# ceso-cloudinit: guestinfo built offline, then read back by cloud-init's own
# code (helpers/validate_cloudinit.py: DataSourceVMware, the cloud-config
# schema, network_state and `netplan generate`). No simulator needed.

bats_require_minimum_version 1.5.0

if [ -f "$BATS_TEST_DIRNAME/helpers/common.bash" ]; then
  load helpers/common
else
  : "${CESO_BUILD:=$BATS_TEST_DIRNAME/../../build}"
  export PATH="$CESO_BUILD/tools:$PATH"
  assert_status() { [ "$status" -eq "$1" ] || { echo "status $status, expected $1: $output" >&2; return 1; }; }
  assert_contains() { [[ "$1" == *"$2"* ]] || { printf 'expected %s in:\n%s\n' "$2" "$1" >&2; return 1; }; }
  assert_eq() { [ "$1" = "$2" ] || { printf 'expected: %s\n     got: %s\n' "$2" "$1" >&2; return 1; }; }
fi

FIX="$BATS_TEST_DIRNAME/fixtures/cloudinit"
# Debian's python3 can import cloudinit; a python3 earlier on PATH may not.
validate() { /usr/bin/python3 "$BATS_TEST_DIRNAME/helpers/validate_cloudinit.py" "$@"; }

setup() { cd "$FIX"; }

# ------------------------------------------------------------ what cloud-init reads

@test "static IPv4: metadata with instance-id, hostname and a netplan v2 default route" {
  run --separate-stderr ceso-cloudinit --hostname web01 --ip 10.0.0.5/24 --gateway 10.0.0.1
  assert_status 0
  echo "$output" | jq -e '.type == "guestinfo" and .name == "web01"
    and (.instance_id | test("^web01-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{12}$"))
    and .guestinfo["guestinfo.metadata.encoding"] == "gzip+base64"
    and .guestinfo["guestinfo.userdata.encoding"] == "gzip+base64"
    and (.guestinfo | keys | map(select(startswith("guestinfo.vendordata"))) == [])'
  id=$(echo "$output" | jq -r .instance_id)
  run validate <<<"$output"
  assert_status 0
  echo "$output" | jq -e --arg id "$id" '.instance_id == $id and .local_hostname == "web01"
    and .addresses == ["10.0.0.5/24"]
    and .network.version == 2
    and .network.ethernets.nic0.match.name == "en*"
    and .network.ethernets.nic0.routes == [{"to": "default", "via": "10.0.0.1"}]
    and (.network.ethernets.nic0 | has("gateway4") | not)'
}

@test "IPv4 and IPv6 addresses with both default routes" {
  run ceso-cloudinit --hostname web01 --ip 10.0.0.5/24 --gateway 10.0.0.1 \
    --ip 2001:db8:0:1::5/64 --gateway6 2001:db8:0:1::1 --route 192.168.0.0/16=10.0.0.254
  assert_status 0
  run validate <<<"$output"
  assert_status 0
  echo "$output" | jq -e '.addresses == ["10.0.0.5/24", "2001:db8:0:1::5/64"]
    and .network.ethernets.nic0.routes == [{"to": "default", "via": "10.0.0.1"},
      {"to": "default", "via": "2001:db8:0:1::1"}, {"to": "192.168.0.0/16", "via": "10.0.0.254"}]'
}

@test "IPv6 gateway may be link-local" {
  run ceso-cloudinit --hostname v6 --ip 2001:db8::5/64 --gateway6 fe80::1
  assert_status 0
  run validate <<<"$output"
  assert_status 0
}

@test "DHCP v4, v6, both, and DHCP when a NIC has no address" {
  for mode in v4 v6 both; do
    run ceso-cloudinit --hostname d1 --dhcp "$mode"
    assert_status 0
    run validate <<<"$output"
    assert_status 0
    want4=false; want6=false
    [ "$mode" != v6 ] && want4=true
    [ "$mode" != v4 ] && want6=true
    echo "$output" | jq -e --argjson d4 "$want4" --argjson d6 "$want6" \
      '(.network.ethernets.nic0.dhcp4 // false) == $d4 and (.network.ethernets.nic0.dhcp6 // false) == $d6'
  done
  run ceso-cloudinit --hostname d2 --mac 00:50:56:00:00:09
  run validate <<<"$output"
  assert_status 0
  echo "$output" | jq -e '.network.ethernets.eth0.dhcp4 == true'
}

@test "two NICs matched by MAC get set-name, addresses and their own routes" {
  spec='{"hostname":"db01","nics":[
    {"mac":"00:50:56:AA:00:01","ip":"10.0.0.21/24","gateway":"10.0.0.1"},
    {"mac":"00:50:56:aa:00:02","nic":"storage","ip":"10.1.0.21/24","mtu":9000}]}'
  run ceso-cloudinit <<<"$(echo "$spec" | jq -c .)"
  assert_status 0
  run validate <<<"$output"
  assert_status 0
  echo "$output" | jq -e '.addresses == ["10.0.0.21/24", "10.1.0.21/24"]
    and .network.ethernets.eth0.match.macaddress == "00:50:56:aa:00:01"
    and .network.ethernets.eth0["set-name"] == "eth0"
    and .network.ethernets.storage.match.macaddress == "00:50:56:aa:00:02"
    and .network.ethernets.storage["set-name"] == "storage"
    and .network.ethernets.storage.mtu == 9000
    and (.network.ethernets.storage | has("routes") | not)'
}

@test "DNS servers and search domains" {
  run ceso-cloudinit --hostname web01 --ip 10.0.0.5/24 --dns 10.0.0.2 --dns 2001:db8::53 \
    --search lab.example --search example.org
  assert_status 0
  run validate <<<"$output"
  assert_status 0
  echo "$output" | jq -e '.network.ethernets.nic0.nameservers ==
    {"addresses": ["10.0.0.2", "2001:db8::53"], "search": ["lab.example", "example.org"]}'
}

@test "users, keys, packages, files and system settings pass cloud-init's strict schema" {
  run ceso-cloudinit --hostname web01 --fqdn web01.lab.example --user ops --ssh-key-file keys.pub \
    --ssh-key "$(cat ed25519.pub)" --sudo --groups adm,docker --shell /bin/bash \
    --password-hash '$6$rounds=4096$saltsalt$Vx5yVvDmr9Qv1TrLZ5vJ2Jy2xrvXU1aYbsSJ8YpC0hG2G8tQd0xkv8nX1' \
    --package nginx --package jq --runcmd 'systemctl enable --now nginx' \
    --write-file /etc/motd=motd.txt --timezone Europe/Paris --locale en_US.UTF-8
  assert_status 0
  run validate <<<"$output"
  assert_status 0
  echo "$output" | jq -e '.userdata_type == "cloud-config"
    and .userdata.fqdn == "web01.lab.example" and .userdata.hostname == "web01"
    and .userdata.users[0].name == "ops"
    and .userdata.users[0].sudo == "ALL=(ALL) NOPASSWD:ALL"
    and .userdata.users[0].groups == ["adm", "docker"]
    and .userdata.users[0].lock_passwd == false
    and (.userdata.users[0].ssh_authorized_keys | length) == 3
    and .userdata.packages == ["nginx", "jq"]
    and .userdata.write_files[0].content == "Welcome to a ceso VM.\n"
    and (.userdata.write_files[0].permissions | type) == "string"
    and .userdata.timezone == "Europe/Paris" and .userdata.locale == "en_US.UTF-8"'
}

@test "merged user-data: theirs wins on scalars, lists concatenate, our user merges with theirs" {
  run ceso-cloudinit --hostname web01 --user-data user-data.yaml --ssh-key-file ed25519.pub --sudo \
    --package nginx --runcmd 'echo ours' --timezone UTC
  assert_status 0
  run validate <<<"$output"
  assert_status 0
  echo "$output" | jq -e '.userdata.timezone == "Europe/Paris"
    and .userdata.package_upgrade == true
    and .userdata.packages == ["nginx", "jq"]
    and .userdata.runcmd == ["echo ours", "echo theirs >> /var/log/first-boot"]
    and (.userdata.users | length) == 2
    and .userdata.users[0].name == "ubuntu" and .userdata.users[0].sudo == "ALL=(ALL) NOPASSWD:ALL"
    and .userdata.users[0].shell == "/bin/bash"
    and (.userdata.users[0].ssh_authorized_keys | length) == 2
    and .userdata.users[1] == "default"
    and .userdata.write_files[0].permissions == "0600"
    and .userdata.write_files[0].content == "yes"'
}

@test "their #cloud-config is written back as cloud-init's YAML loader read it: every scalar kind, style and escape" {
  # hostile-scalars.yaml: plain and quoted look-alikes of YAML 1.1 numbers,
  # booleans, nulls and octals, tags, indicators, flow and block collections,
  # empty ones, literal blocks, control characters, C1, BOM, NEL, non-ASCII.
  for enc in none gzip+base64; do
    run --separate-stderr ceso-cloudinit --hostname h1 --instance-id i1 --encoding "$enc" -v \
      --user-data hostile-scalars.yaml
    assert_status 0
    echo "$output" | jq -j .documents.userdata >"$BATS_TEST_TMPDIR/out.yaml"
    /usr/bin/python3 - hostile-scalars.yaml "$BATS_TEST_TMPDIR/out.yaml" <<'PY'
import sys, yaml
want, got = (yaml.safe_load(open(p, encoding="utf-8")) for p in sys.argv[1:3])
if want != got:
    for k in sorted(set(want) | set(got), key=str):
        if want.get(k) != got.get(k):
            print("key %r: input %r, written %r" % (k, want.get(k), got.get(k)), file=sys.stderr)
    sys.exit(1)
PY
    # What the VM gets is that document.
    if [ "$enc" = none ]; then
      echo "$output" | jq -j '.guestinfo["guestinfo.userdata"]' >"$BATS_TEST_TMPDIR/value"
    else
      echo "$output" | jq -r '.guestinfo["guestinfo.userdata"]' | base64 -d | gzip -dc >"$BATS_TEST_TMPDIR/value"
    fi
    cmp "$BATS_TEST_TMPDIR/value" "$BATS_TEST_TMPDIR/out.yaml"
  done
}

@test "script and multipart user-data are passed through as is" {
  run --separate-stderr ceso-cloudinit --hostname s1 --user-data script.sh -v
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .documents.userdata)" "$(cat script.sh)"
  run validate <<<"$output"
  assert_status 0
  echo "$output" | jq -e '.userdata_type == "text/x-shellscript"'
  run ceso-cloudinit --hostname s1 --user-data multipart.txt
  run validate <<<"$output"
  assert_status 0
  echo "$output" | jq -e '.userdata_type == "multipart"'
}

@test "--network-config is used as is, inside the metadata" {
  run ceso-cloudinit --hostname n1 --network-config network.yaml -v
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .documents.network)" "$(cat network.yaml)"
  run validate <<<"$output"
  assert_status 0
  echo "$output" | jq -e '.addresses == ["192.0.2.10/24"]
    and .network.network.ethernets.uplink["set-name"] == "uplink"'
}

@test "--cleanup asks cloud-init to blank the user-data after reading it" {
  run ceso-cloudinit --hostname c1 --cleanup --ssh-key-file ed25519.pub
  run validate <<<"$output"
  assert_status 0
  echo "$output" | jq -e '.cleanup == ["userdata"]'
  run ceso-cloudinit --hostname c1
  run validate <<<"$output"
  echo "$output" | jq -e '.cleanup == null'
}

@test "every encoding is read back by cloud-init" {
  for enc in gzip+base64 base64 none; do
    run --separate-stderr ceso-cloudinit --hostname e1 --encoding "$enc" --ip 10.0.0.5/24 \
      --gateway 10.0.0.1 --user-data user-data.yaml
    assert_status 0
    want=$enc; [ "$enc" = none ] && want=""
    echo "$output" | jq -e --arg e "$want" '.guestinfo["guestinfo.metadata.encoding"] == $e'
    run validate <<<"$output"
    assert_status 0
    echo "$output" | jq -e '.addresses == ["10.0.0.5/24"] and .userdata.timezone == "Europe/Paris"'
  done
}

@test "every --format carries the same guestinfo" {
  args=(--hostname web01 --instance-id i-fixed --ip 10.0.0.5/24 --gateway 10.0.0.1
        --ssh-key-file ed25519.pub --user-data user-data.yaml)
  want=$(ceso-cloudinit "${args[@]}" | jq -Sc .guestinfo)
  summary=$(ceso-cloudinit "${args[@]}" | validate | jq -Sc .)
  for f in vmx kv govc; do
    got=$(ceso-cloudinit "${args[@]}" --format "$f" | validate --from "$f" --dump | jq -Sc .)
    assert_eq "$got" "$want"
    assert_eq "$(ceso-cloudinit "${args[@]}" --format "$f" | validate --from "$f" | jq -Sc .)" "$summary"
  done
  # dir=PATH: plain files that cloud-init reads to the same result.
  run ceso-cloudinit "${args[@]}" --format "dir=$BATS_TEST_TMPDIR/seed"
  assert_status 0
  assert_eq "$output" ""
  [ "$(stat -c %a "$BATS_TEST_TMPDIR/seed/user-data")" = 600 ]
  head -1 "$BATS_TEST_TMPDIR/seed/user-data" | grep -qx '#cloud-config'
  assert_eq "$(validate --dir "$BATS_TEST_TMPDIR/seed" | jq -Sc .)" "$summary"
}

@test "vmx lines are quoted and escaped as VMware writes them, also for plain text" {
  run ceso-cloudinit --hostname web01 --instance-id 'i-"1"|x' --ip 10.0.0.5/24 --format vmx \
    --encoding none
  assert_status 0
  [ "$(echo "$output" | wc -l)" -eq 4 ]
  # '"' → |22, '|' → |7C, newline → |0A (open-vm-tools lib/dict/dictll.c).
  echo "$output" | grep -q '^guestinfo.metadata = "instance-id: i-|221|22|7Cx|0Alocal-hostname: web01|0A'
  echo "$output" | grep -qx 'guestinfo.metadata.encoding = ""'
  run validate --from vmx <<<"$output"
  assert_status 0
  echo "$output" | jq -e '.instance_id == "i-\"1\"|x"'
}

@test "govc format is -e arguments, shell-quoted when needed" {
  run ceso-cloudinit --hostname web01 --instance-id i-1 --format govc
  assert_status 0
  [[ "$output" == "-e guestinfo.metadata="* ]]
  eval "set -- $output"
  [ "$#" -eq 8 ]
  run ceso-cloudinit --hostname web01 --instance-id "i-it's" --format govc --encoding none
  eval "set -- $output"
  [ "$1" = -e ]
  assert_contains "$2" "instance-id: i-it's"
}

@test "kv refuses plain multi-line values; unknown formats and encodings are usage errors" {
  run ceso-cloudinit --hostname a --format kv --encoding none
  assert_status 2
  assert_contains "$output" "--format kv"
  run ceso-cloudinit --hostname a --format xml
  assert_status 2
  run ceso-cloudinit --hostname a --encoding zip
  assert_status 2
  run ceso-cloudinit --hostname a extra
  assert_status 2
}

# ------------------------------------------------------------ streams of specs

@test "a stream of specs gives one record per spec, with flags as defaults" {
  run --separate-stderr ceso-cloudinit --ssh-key-file ed25519.pub --dns 10.0.0.53 <fleet.ndjson
  assert_status 0
  [ "$(echo "$output" | wc -l)" -eq 3 ]
  assert_eq "$(echo "$output" | jq -r .name | paste -sd,)" 'web01,web 02 "prod",db01'
  run validate <<<"$output"
  assert_status 0
  [ "$(echo "$output" | jq -s '[.[].userdata.users[0].ssh_authorized_keys | length] == [1,1,1]')" = true ]
  echo "$output" | jq -se '.[0].network.ethernets.nic0.nameservers.addresses == ["10.0.0.53"]
    and .[2].network.ethernets.eth0.nameservers.addresses == ["10.0.0.2"]
    and .[2].network.ethernets.eth1.nameservers.search == ["lab.example"]'
}

@test "instance-ids are unique across a stream unless given" {
  run --separate-stderr bash -c 'for i in $(seq 300); do echo "{\"hostname\":\"h\"}"; done | ceso-cloudinit'
  assert_status 0
  [ "$(echo "$output" | jq -r .instance_id | sort -u | wc -l)" -eq 300 ]
  run ceso-cloudinit <<<'{"hostname":"h","instance_id":"keep-me"}'
  echo "$output" | jq -e '.instance_id == "keep-me"'
}

@test "bad specs are reported with their line and field; the others are still processed (exit 4)" {
  run --separate-stderr ceso-cloudinit <fleet-bad.ndjson
  assert_status 4
  assert_eq "$(echo "$output" | jq -r .name | paste -sd,)" "ok01,ok02"
  assert_contains "$stderr" "error (at <stdin>:2): field \"ip\": '10.0.0.300/24'"
  assert_contains "$stderr" "error (at <stdin>:3): field \"gateway\": '10.0.9.1' is outside every subnet"
  assert_contains "$stderr" "error (at <stdin>:4): field \"hostname\": 'bad_03'"
  assert_contains "$stderr" "error (at <stdin>:5): field \"ssh_key\""
  assert_contains "$stderr" "error (at <stdin>:6): field \"ssh_key_file\": cannot read '/nonexistent/keys.pub'"
  assert_contains "$stderr" "error (at <stdin>:7): field \"user_data\": 'bad.yaml': invalid YAML at line 4"
  assert_contains "$stderr" "error (at <stdin>:8): field \"colour\": unknown field"
  assert_contains "$stderr" "error (at <stdin>:9): not a JSON record"
  [ "$(echo "$stderr" | wc -l)" -eq 8 ]
}

@test "a stream where every spec is bad exits 3 and prints nothing" {
  run --separate-stderr ceso-cloudinit <<<'{"hostname":"a","ip":"300.1.1.1/8"}'
  assert_status 3
  assert_eq "$output" ""
  run --separate-stderr ceso-cloudinit <<<'{"type":"vm","name":"web01"}'
  assert_status 3
  assert_contains "$stderr" "type 'vm'"
}

@test "a bad flag is reported once, before any record is read" {
  run --separate-stderr ceso-cloudinit --ssh-key-file bad-key.pub <fleet.ndjson
  assert_status 3
  assert_eq "$output" ""
  assert_contains "$stderr" "--ssh-key-file: 'bad-key.pub' line 1"
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
}

@test "dir=PATH with a stream writes one directory per VM name" {
  run ceso-cloudinit --format "dir=$BATS_TEST_TMPDIR/seeds" <fleet.ndjson
  assert_status 0
  [ -f "$BATS_TEST_TMPDIR/seeds/web01/meta-data" ]
  [ -f "$BATS_TEST_TMPDIR/seeds/web 02 \"prod\"/network-config" ]
  run validate --dir "$BATS_TEST_TMPDIR/seeds/db01"
  assert_status 0
  run ceso-cloudinit --format "dir=$BATS_TEST_TMPDIR/seeds" <<<'{"hostname":"x","name":"a/b"}'
  assert_status 3
}

@test "a closed pipe stops the stream quietly" {
  run --separate-stderr bash -c \
    'for i in $(seq 2000); do echo "{\"hostname\":\"h$i\"}"; done | ceso-cloudinit | head -1; echo "${PIPESTATUS[1]}"'
  [ "$(echo "$output" | tail -1)" = 0 ]
  assert_eq "$stderr" ""
}

# ------------------------------------------------------------ bad input from flags (exit 3)

bad_flag() {  # bad_flag NEEDLE ARGS... : exit 3, no stdout, the message has NEEDLE
  local needle=$1
  shift
  run --separate-stderr ceso-cloudinit "$@"
  assert_status 3
  assert_eq "$output" ""
  assert_contains "$stderr" "$needle"
}

@test "invalid CIDR" {
  bad_flag "--ip: '10.0.0.300/24'" --hostname a --ip 10.0.0.300/24
  bad_flag "--ip: '10.0.0.5' has no prefix length" --hostname a --ip 10.0.0.5
  bad_flag "--route: '10.1.2.0/16' has host bits set" --hostname a --ip 10.0.0.5/24 \
    --route 10.1.2.0/16=10.0.0.1
}

@test "gateway outside every subnet" {
  bad_flag "--gateway: '10.0.1.1' is outside every subnet of the NIC (10.0.0.0/24)" \
    --hostname a --ip 10.0.0.5/24 --gateway 10.0.1.1
  bad_flag "--gateway6: '2001:db9::1' is outside every subnet" \
    --hostname a --ip 2001:db8::5/64 --gateway6 2001:db9::1
}

@test "bad host name" {
  bad_flag "--hostname: 'web_01' is not an RFC 1123 host name" --hostname web_01
  bad_flag "give the dotted name as fqdn" --hostname web01.lab.example
  bad_flag "--fqdn" --fqdn -bad.example
}

@test "malformed SSH keys" {
  bad_flag "--ssh-key-file: 'bad-key.pub' line 1" --hostname a --ssh-key-file bad-key.pub
  bad_flag "is a private key" --hostname a --ssh-key-file private-key
  bad_flag "--ssh-key:" --hostname a --ssh-key "ssh-ed25519 notbase64!"
}

@test "unreadable files" {
  bad_flag "--user-data: cannot read '/nonexistent/ud.yaml'" --hostname a --user-data /nonexistent/ud.yaml
  bad_flag "--write-file: cannot read 'nope.txt'" --hostname a --write-file /etc/x=nope.txt
  bad_flag "--network-config: cannot read '.'" --hostname a --network-config .
}

@test "invalid YAML or a missing header in --user-data" {
  bad_flag "--user-data: 'bad.yaml': invalid YAML at line 4" --hostname a --user-data bad.yaml
  bad_flag "does not start with #cloud-config" --hostname a --user-data no-header.yaml
  bad_flag "cannot be combined with --package" --hostname a --user-data script.sh --package jq
  bad_flag "--ip: cannot be combined with network_config" --hostname a --network-config network.yaml \
    --ip 10.0.0.5/24
}

@test "each encoded value must stay under 64 KiB" {
  head -c 100000 /dev/urandom >"$BATS_TEST_TMPDIR/big.bin"
  bad_flag "guestinfo.userdata: the encoded value is" --hostname a \
    --write-file "/opt/big.bin=$BATS_TEST_TMPDIR/big.bin"
  bad_flag "64 KiB" --hostname a --write-file "/opt/big.bin=$BATS_TEST_TMPDIR/big.bin"
}

# ------------------------------------------------------------ the validator is not a rubber stamp

@test "the validator rejects what cloud-init and netplan reject" {
  # gateway4 passes through --network-config as is; netplan flags it deprecated.
  run ceso-cloudinit --hostname g4 --network-config network-gateway4.yaml
  assert_status 0
  run validate <<<"$output"
  assert_status 1
  assert_contains "$output" "deprecated"
  # A schema error in the user's own cloud-config (theirs wins on scalars).
  printf '#cloud-config\npackage_update: maybe\n' >"$BATS_TEST_TMPDIR/schema.yaml"
  run ceso-cloudinit --hostname s1 --user-data "$BATS_TEST_TMPDIR/schema.yaml"
  assert_status 0
  run validate <<<"$output"
  assert_status 1
  assert_contains "$output" "package_update"
  # Network config in vendordata is not read by cloud-init.
  run validate <<<'{"guestinfo":{"guestinfo.metadata":"instance-id: i\nlocal-hostname: h\n","guestinfo.vendordata":"x"}}'
  assert_status 1
}

# ------------------------------------------------------------ interface

@test "--help and the man page cover every option" {
  run ceso-cloudinit --help
  assert_status 0
  man="$BATS_TEST_DIRNAME/../../man/ceso-cloudinit.1.scd"
  for o in $(ceso-cloudinit --dump-options | jq -r '.options[].name'); do
    assert_contains "$output" "--$o"
    grep -q -- "--$o" "$man" || { echo "man page lacks --$o" >&2; return 1; }
  done
}
