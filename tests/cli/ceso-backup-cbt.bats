#!/usr/bin/env bats
# ceso-backup --format 2 --cbt: Changed Block Tracking against the
# simulator's tracker (tests/sim/cesosim/cbt.go): "*" for the first backup,
# only the changed chunks read afterwards (the simulator's byte counters),
# restore byte for byte, a tracking reset, hostile answers, kill -9, verify;
# the same on an sftp:// target (a real sshd on 127.0.0.1).

load helpers/common
load helpers/sshd
bats_require_minimum_version 1.5.0

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"k01","power":"on","disks_mib":[64]},
 {"name":"k02","power":"on","disks_mib":[64]},
 {"name":"k03","power":"off","disks_mib":[32]},
 {"name":"k04","power":"on","disks_mib":[32]},
 {"name":"k05","power":"on","disks_mib":[32]},
 {"name":"k06","power":"off","disks_mib":[32]},
 {"name":"k07","power":"on","disks_mib":[64]}]
JSON
  sim_start -vms 0 -fill-mib 16 -vm-spec "$spec"
  export CESO_BACKUP_TARGET="file://$BATS_FILE_TMPDIR/target"
  mkdir -p "$BATS_FILE_TMPDIR/target"
}

teardown_file() {
  sshd_stop
  sim_stop
}

setup() {
  sim_reset
  sim_fail '{}'
  export CESO_AUDIT_LOG="$BATS_TEST_TMPDIR/audit.log"
}
teardown() { for j in $(jobs -p); do kill -9 "$j" 2>/dev/null || true; done; }

T() { echo "$BATS_FILE_TMPDIR/target"; }
# Body bytes the simulator sent for GET /folder since the last reset.
folder_bytes() { sim_stats | jq '.http_bytes'; }
extent() { jq '.files[] | select(.kind=="extent")' "$(T)/$1/manifest.json"; }
# ReconfigVM_Task(changeTrackingEnabled) behind ceso's back, as another client.
raw_ctk() { # VM-NAME true|false
  local ref
  ref=$(ceso-info "$1" | jq -r .id)
  raw_login
  raw_soap "<ReconfigVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$ref</_this><spec><changeTrackingEnabled>$2</changeTrackingEnabled></spec></ReconfigVM_Task>" >/dev/null
  sleep 0.3
}

@test "--cbt needs --format 2 and --hot, said clearly" {
  run --separate-stderr ceso-backup --cbt k01
  assert_status 2
  assert_contains "$stderr" "--cbt needs --format 2"
  run --separate-stderr ceso-backup --format 2 --cbt --cold k01
  assert_status 2
  assert_contains "$stderr" "--cbt needs --hot"
  [ -z "$(ls "$(T)")" ]
}

@test "first --cbt backup: tracking enabled (audited), '*' reads only the areas holding data" {
  flat=$(flat_of k01 0)
  ceso-info k01 | jq -e '.hardware.cbt == false'
  run --separate-stderr ceso-backup --format 2 --cbt k01
  assert_status 0
  assert_contains "$stderr" "change tracking enabled"
  id=$(echo "$output" | jq -r .backup.id)
  echo "$output" | jq -e '.backup.cbt.disks[0].since == "*" and .backup.cbt.base == null
    and .backup.cbt.bytes_read == 16777216 and .backup.cbt.disks[0].chunks_read == 4
    and (.backup.cbt.disks[0].change_id | test("^([0-9a-f]{2} ){7}[0-9a-f]{2}-([0-9a-f]{2} ){7}[0-9a-f]{2}/[0-9]+$"))'
  # 16 MiB of the 64 MiB disk hold data: only those crossed the network.
  [ "$(folder_bytes)" -lt $(((16 << 20) + (64 << 10))) ]
  [ "$(folder_bytes)" -ge $((16 << 20)) ]
  jq -se 'map(.operation) == ["ReconfigVM_Task", "CreateSnapshot_Task", "RemoveSnapshot_Task"]
    and .[0].params.changeTrackingEnabled == true and all(.result == "ok")' "$CESO_AUDIT_LOG"
  ceso-info k01 | jq -e '.hardware.cbt == true'
  # The change id is in the manifest, per disk; no whole-file SHA-256 (the
  # disk was not read whole), the chunks' digest instead.
  jq -e '.disks[0].change_id | test("/[0-9]+$")' "$(T)/$id/manifest.json"
  extent "$id" | jq -e 'has("sha256") | not'
  extent "$id" | jq -e '.chunks_sha256 | test("^[0-9a-f]{64}$")'
  run ceso-restore "$id" --to-file "$BATS_TEST_TMPDIR/d.raw" -q
  assert_status 0
  cmp "$BATS_TEST_TMPDIR/d.raw" "$flat"
}

@test "second --cbt backup after changing ~1%: reads only the changed chunks; restore and digest equal a full read" {
  flat=$(flat_of k01 0)
  # Two small writes: one in the data, one in a zero area.
  printf 'x' | dd of="$flat" bs=1 seek=$((5 << 20)) conv=notrunc status=none
  printf 'hello' | dd of="$flat" bs=1 seek=$((41 << 20)) conv=notrunc status=none
  sim_reset
  run --separate-stderr ceso-backup --format 2 --cbt k01
  assert_status 0
  id=$(echo "$output" | jq -r .backup.id)
  base=$(echo "$output" | jq -r .backup.cbt.base)
  [ "$base" != null ]
  prev=$(jq -r '.disks[0].change_id' "$(T)/$base/manifest.json")
  echo "$output" | jq -e --arg p "$prev" '.backup.cbt.disks[0].since == $p
    and .backup.cbt.disks[0].chunks_read == 2 and .backup.cbt.bytes_read == 8388608
    and .backup.chunks.uploaded == 2 and .backup.chunks.reused == 3'
  # Two 4 MiB chunks read (ranged GETs), plus the small files.
  [ "$(folder_bytes)" -lt $(((8 << 20) + (64 << 10))) ]
  assert_eq "$(sim_count ReconfigVM_Task)" 0
  run ceso-restore "$id" --to-file "$BATS_TEST_TMPDIR/d.raw" -q
  assert_status 0
  cmp "$BATS_TEST_TMPDIR/d.raw" "$flat"
  run ceso-backup verify "$id"
  assert_status 0
  # A full read of the same disk state names the same content.
  run --separate-stderr ceso-backup --format 2 k01
  assert_status 0
  full=$(echo "$output" | jq -r .backup.id)
  assert_eq "$(extent "$full" | jq -r .chunks_sha256)" "$(extent "$id" | jq -r .chunks_sha256)"
  assert_eq "$(extent "$full" | jq -r .sha256)" "$(sha256sum <"$flat" | cut -d' ' -f1)"
}

@test "a restored VM is another VM: its tracking has its own uuid, its first --cbt backup reads '*'" {
  id=$(ceso-backup ls k01 | jq -r 'select(.status=="complete") | .id' | tail -1)
  old=$(jq -r '.disks[0].change_id' "$(T)/$id/manifest.json")
  run --separate-stderr ceso-restore "$id" --as k01c -q
  assert_status 0
  run --separate-stderr ceso-backup --format 2 --cbt k01c
  assert_status 0
  new=$(echo "$output" | jq -r .backup.cbt.disks[0].change_id)
  echo "$output" | jq -e '.backup.cbt.disks[0].since == "*" and .backup.cbt.base == null'
  [ "${new%/*}" != "${old%/*}" ]
  run ceso-restore "$(echo "$output" | jq -r .backup.id)" --to-file "$BATS_TEST_TMPDIR/d.raw" -q
  assert_status 0
  cmp "$BATS_TEST_TMPDIR/d.raw" "$(flat_of k01c 0)"
}

@test "many changed areas: QueryChangedDiskAreas is asked again until the disk is covered" {
  flat=$(flat_of k02 0)
  run --separate-stderr ceso-backup --format 2 --cbt k02
  assert_status 0
  # 160 separate 1-byte changes in the zero area (16 to 36 MiB), 128 KiB
  # apart: more areas than one answer holds.
  for i in $(seq 0 159); do
    printf 'z' | dd of="$flat" bs=1 seek=$(((16 << 20) + i * 131072 + 7)) conv=notrunc status=none
  done
  sim_reset
  run --separate-stderr ceso-backup --format 2 --cbt k02
  assert_status 0
  id=$(echo "$output" | jq -r .backup.id)
  echo "$output" | jq -e '.backup.cbt.disks[0].areas == 160 and .backup.cbt.disks[0].chunks_read == 5'
  [ "$(sim_count QueryChangedDiskAreas)" -ge 3 ]
  run ceso-restore "$id" --to-file "$BATS_TEST_TMPDIR/d.raw" -q
  assert_status 0
  cmp "$BATS_TEST_TMPDIR/d.raw" "$flat"
}

@test "tracking reset (off and on behind ceso's back): all areas read again with a warning; the old change id faults" {
  flat=$(flat_of k03 0)
  run --separate-stderr ceso-backup --format 2 --cbt k03
  assert_status 0
  old=$(echo "$output" | jq -r .backup.cbt.disks[0].change_id)
  raw_ctk k03 false
  raw_ctk k03 true
  printf 'y' | dd of="$flat" bs=1 seek=$((3 << 20)) conv=notrunc status=none
  run --separate-stderr ceso-backup --format 2 --cbt k03
  assert_status 0
  assert_contains "$stderr" "change tracking was reset"
  id=$(echo "$output" | jq -r .backup.id)
  new=$(echo "$output" | jq -r .backup.cbt.disks[0].change_id)
  [ "${new%/*}" != "${old%/*}" ]
  echo "$output" | jq -e '.backup.cbt.disks[0].since == "*" and .backup.cbt.bytes_read == 16777216'
  run ceso-restore "$id" --to-file "$BATS_TEST_TMPDIR/d.raw" -q
  assert_status 0
  cmp "$BATS_TEST_TMPDIR/d.raw" "$flat"
  # The host refuses the old id against a snapshot of the new epoch.
  ref=$(ceso-info k03 | jq -r .id)
  key=$(jq -r '.disks[0].device_key' "$(T)/$id/manifest.json")
  snap=$(ceso-snap create --name probe k03 | jq -r .snapshot.ref)
  raw_login
  [ -n "$snap" ]
  q() { # CHANGE-ID: the answer, fault or not (raw_soap's curl -f hides faults)
    curl -s -b "$BATS_TEST_TMPDIR/raw-jar" -H 'Content-Type: text/xml' -H 'SOAPAction: urn:vim25/6.5' \
      --data-binary @- "$CESO_URL" <<XML
<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><QueryChangedDiskAreas xmlns="urn:vim25"><_this type="VirtualMachine">$ref</_this><snapshot type="VirtualMachineSnapshot">$snap</snapshot><deviceKey>$key</deviceKey><startOffset>0</startOffset><changeId>$1</changeId></QueryChangedDiskAreas></soapenv:Body></soapenv:Envelope>
XML
  }
  assert_contains "$(q "$old")" "FileFault"
  assert_contains "$(q "not-an-id")" "InvalidArgument"
  assert_contains "$(q "$new")" "<length>33554432</length>"
  # No tracking on the VM: a fault, as on ESXi.
  raw_ctk k03 false
  assert_contains "$(q "*")" "FileFault"
  run ceso-snap rm --name probe k03
}

@test "hostile QueryChangedDiskAreas answers: the disk is read in full with a warning, never trusted" {
  flat=$(flat_of k04 0)
  run --separate-stderr ceso-backup --format 2 --cbt k04
  assert_status 0
  printf 'w' | dd of="$flat" bs=1 seek=$((9 << 20)) conv=notrunc status=none
  n=0
  for rule in \
    '"change_length":33554432,"change_areas":"33554000:4096"' \
    '"change_length":33554432,"change_areas":"0:4096,2048:4096"' \
    '"change_length":33554432,"change_areas":"-4096:8192"' \
    '"change_length":67108864,"change_areas":"0:4096"' \
    '"change_start":4096,"change_length":4096,"change_areas":"4096:1"' \
    '"change_length":-1'; do
    sim_fail "{\"method\":\"QueryChangedDiskAreas\",$rule}"
    run --separate-stderr ceso-backup --format 2 --cbt k04
    assert_status 0
    assert_contains "$stderr" "read in full, its changed areas are not usable"
    id=$(echo "$output" | jq -r .backup.id)
    echo "$output" | jq -e '.backup.cbt.disks[0].since == "full" and .backup.cbt.bytes_read == 33554432'
    run ceso-restore "$id" --to-file "$BATS_TEST_TMPDIR/d$n.raw" -q
    assert_status 0
    cmp "$BATS_TEST_TMPDIR/d$n.raw" "$flat"
    n=$((n + 1))
  done
  # A full read keeps the change id: the next run is incremental again.
  run --separate-stderr ceso-backup --format 2 --cbt k04
  assert_status 0
  echo "$output" | jq -e '.backup.cbt.disks[0].since != "*" and .backup.cbt.disks[0].since != "full"
    and .backup.cbt.bytes_read == 0'
}

@test "an unchanged chunk missing at the target is read again, never assumed present" {
  flat=$(flat_of k05 0)
  run --separate-stderr ceso-backup --format 2 --cbt k05
  assert_status 0
  id1=$(echo "$output" | jq -r .backup.id)
  c=$(sed -n 5p "$(T)/$id1/disk0-flat.vmdk.idx")
  rm "$(T)/chunks/${c:0:2}/$c"
  run --separate-stderr ceso-backup --format 2 --cbt k05
  assert_status 0
  assert_contains "$stderr" "missing at the target; read again"
  id2=$(echo "$output" | jq -r .backup.id)
  echo "$output" | jq -e '.backup.cbt.disks[0].chunks_read == 1 and .backup.chunks.uploaded == 1'
  run ceso-backup verify "$id2"
  assert_status 0
  run ceso-restore "$id2" --to-file "$BATS_TEST_TMPDIR/d.raw" -q
  assert_status 0
  cmp "$BATS_TEST_TMPDIR/d.raw" "$flat"
}

@test "verify catches a flipped byte in a chunk of a --cbt backup" {
  run --separate-stderr ceso-backup --format 2 --cbt k05
  assert_status 0
  id=$(echo "$output" | jq -r .backup.id)
  c=$(sed -n 4p "$(T)/$id/disk0-flat.vmdk.idx")
  f="$(T)/chunks/${c:0:2}/$c"
  cp "$f" "$BATS_TEST_TMPDIR/keep"
  chmod u+w "$f"
  printf '\x5a' | dd of="$f" bs=1 seek=100 conv=notrunc status=none
  run --separate-stderr ceso-backup verify "$id"
  assert_status 4
  echo "$output" | jq -e '.verify == "failed" and (.problems | length) >= 1'
  cp "$BATS_TEST_TMPDIR/keep" "$f"
  # A changed chunks_sha256 in the manifest is caught too (read or index-only).
  m="$(T)/$id/manifest.json"
  cp "$m" "$BATS_TEST_TMPDIR/m"
  jq '(.files[] | select(.kind=="extent") | .chunks_sha256) |= ("0" * 64)' "$BATS_TEST_TMPDIR/m" >"$m"
  run ceso-backup verify "$id"
  assert_status 4
  assert_contains "$output" "chunks' digest differs"
  run ceso-backup verify --index-only "$id"
  assert_status 4
  assert_contains "$output" "chunks' digest differs"
  cp "$BATS_TEST_TMPDIR/m" "$m"
  run ceso-backup verify "$id"
  assert_status 0
}

@test "kill -9 during an incremental --cbt backup: nothing listed complete" {
  flat=$(flat_of k02 0)
  for i in 1 3 5 7 9 11 13; do
    printf 'q' | dd of="$flat" bs=1 seek=$((i << 20)) conv=notrunc status=none
  done
  ceso-backup --format 2 --cbt --limit-rate 1M k02 >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 200); do
    ls "$(T)"/k02-*/.in-progress >/dev/null 2>&1 && break
    sleep 0.05
  done
  sleep 2
  kill -9 "$pid"
  wait "$pid" || true
  left=$(for d in "$(T)"/k02-*/; do [ -f "$d/manifest.json" ] || basename "$d"; done)
  [ -n "$left" ]
  ! ceso-backup ls k02 | jq -r .id | grep -qx "$left"
  # The next run removes the leftovers (its snapshot too) and is whole.
  run --separate-stderr ceso-backup --format 2 --cbt k02
  assert_status 0
  id=$(echo "$output" | jq -r .backup.id)
  [ ! -e "$(T)/$left" ]
  run ceso-restore "$id" --to-file "$BATS_TEST_TMPDIR/d.raw" -q
  assert_status 0
  cmp "$BATS_TEST_TMPDIR/d.raw" "$flat"
}

@test "--dry-run --cbt plans the tracking change with the snapshot and changes nothing" {
  before=$(ls "$(T)" | wc -l)
  run --separate-stderr ceso-backup --format 2 --cbt --dry-run k06
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .operation | tr '\n' ,)" \
    'ReconfigVM_Task,CreateSnapshot_Task,Backup,RemoveSnapshot_Task,'
  # k05 has tracking on already (earlier tests): no ReconfigVM_Task; a VM
  # that is off is snapshotted too with --cbt.
  run --separate-stderr ceso-backup --format 2 --cbt --dry-run k05
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .operation | tr '\n' ,)" 'CreateSnapshot_Task,Backup,RemoveSnapshot_Task,'
  assert_eq "$(sim_count ReconfigVM_Task)" 0
  assert_eq "$(sim_count CreateSnapshot_Task)" 0
  [ "$(ls "$(T)" | wc -l)" -eq "$before" ]
  ceso-info k06 | jq -e '.hardware.cbt == false'
}

@test "--cbt on an sftp:// target: '*' first, then only the changed chunks read; restore and verify" {
  sshd_start
  dir="$BATS_FILE_TMPDIR/sftp-cbt"
  mkdir -p "$dir"
  url="sftp://root@127.0.0.1:$SSHD_PORT$dir"
  flat=$(flat_of k07 0)
  run --separate-stderr ceso-backup --target "$url" --accept-new-host-key --format 2 --cbt k07
  assert_status 0
  id1=$(echo "$output" | jq -r .backup.id)
  echo "$output" | jq -e '.backup.cbt.disks[0].since == "*" and .backup.cbt.base == null
    and .backup.cbt.bytes_read == 16777216 and .backup.cbt.disks[0].chunks_read == 4
    and .backup.chunks.uploaded == 4'
  # 16 MiB of the 64 MiB disk hold data: only those crossed from the host.
  [ "$(folder_bytes)" -lt $(((16 << 20) + (64 << 10))) ]
  jq -e '.files[] | select(.kind=="extent") | has("sha256") | not' "$dir/$id1/manifest.json"
  jq -e '.disks[0].change_id | test("/[0-9]+$")' "$dir/$id1/manifest.json"
  run ceso-restore --target "$url" "$id1" --to-file "$BATS_TEST_TMPDIR/d1.raw" -q
  assert_status 0
  cmp "$BATS_TEST_TMPDIR/d1.raw" "$flat"
  # One write in the data, one in a zero area: two chunks change.
  printf 'x' | dd of="$flat" bs=1 seek=$((7 << 20)) conv=notrunc status=none
  printf 'hello' | dd of="$flat" bs=1 seek=$((50 << 20)) conv=notrunc status=none
  sim_reset
  run --separate-stderr ceso-backup --target "$url" --format 2 --cbt k07
  assert_status 0
  id2=$(echo "$output" | jq -r .backup.id)
  prev=$(jq -r '.disks[0].change_id' "$dir/$id1/manifest.json")
  echo "$output" | jq -e --arg p "$prev" --arg b "$id1" '.backup.cbt.base == $b
    and .backup.cbt.disks[0].since == $p
    and .backup.cbt.disks[0].chunks_read == 2 and .backup.cbt.bytes_read == 8388608
    and .backup.chunks.uploaded == 2 and .backup.chunks.reused == 3'
  # Two 4 MiB chunks read (ranged GETs), plus the small files.
  [ "$(folder_bytes)" -lt $(((8 << 20) + (64 << 10))) ]
  run ceso-backup verify --target "$url" "$id2"
  assert_status 0
  run ceso-restore --target "$url" "$id2" --to-file "$BATS_TEST_TMPDIR/d2.raw" -q
  assert_status 0
  cmp "$BATS_TEST_TMPDIR/d2.raw" "$flat"
  # Its chunks at the target, read with the zstd tool alone, are the disk.
  idx="$dir/$id2/disk0-flat.vmdk.idx"
  tail -n +4 "$idx" | while read -r c; do
    if [ "$c" = 0 ]; then head -c 4194304 /dev/zero; else zstd -qdc "$dir/chunks/${c:0:2}/$c"; fi
  done | cmp - "$flat"
  sshd_stop
}
