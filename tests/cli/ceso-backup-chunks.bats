#!/usr/bin/env bats
# ceso-backup --format 2: the chunk store (4 MiB chunks by SHA-256, zstd,
# zero chunks not stored), dedup across backups and VMs, restore, verify,
# prune and the chunk sweep, also while a backup runs; kill -9; lost chunks.

load helpers/common
load helpers/sshd

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"c01","power":"on","tools":"running"},
 {"name":"c02","power":"off"},
 {"name":"c03","power":"off"},
 {"name":"slow01","power":"off"}]
JSON
  sim_start -vms 0 -fill-mib 16 -vm-spec "$spec"
  export CESO_BACKUP_TARGET="file://$BATS_FILE_TMPDIR/target"
  mkdir -p "$BATS_FILE_TMPDIR/target"
}

teardown_file() {
  sshd_stop
  sim_stop
}

setup() { sim_reset; sim_fail '{}'; }
teardown() { for j in $(jobs -p); do kill -9 "$j" 2>/dev/null || true; done; }

T() { echo "$BATS_FILE_TMPDIR/target"; }

# The disk file as the backup's index and chunks say, rebuilt with the
# zstd tool only (an independent reader of the format).
rebuild_from_chunks() { # TARGET_DIR ID
  local t=$1 id=$2 idx line n=0 size
  idx=$(jq -r '.files[] | select(.kind=="extent") | .name' "$t/$id/manifest.json")
  size=$(sed -n 3p "$t/$id/$idx" | cut -d' ' -f2)
  tail -n +4 "$t/$id/$idx" | while read -r line; do
    if [ "$line" = 0 ]; then
      head -c 4194304 /dev/zero
    else
      zstd -qdc "$t/chunks/${line:0:2}/$line"
    fi
  done | head -c "$size"
}

stored_chunks() { find "$(T)/chunks" -type f -name '[0-9a-f]*' ! -name '*.tmp' | wc -l; }

@test "format 2: index → chunks, zero chunks not stored, the bytes are the datastore's" {
  flat=$(flat_of c02 0)
  dd if=/dev/zero of="$flat" bs=4M seek=1 count=1 conv=notrunc status=none
  run ceso-backup --format 2 c02
  assert_status 0
  id=$(echo "$output" | jq -r .backup.id)
  echo "$output" | jq -e '.backup.format == 2 and .backup.chunks.chunks == 4
    and .backup.chunks.zero == 1 and .backup.chunks.uploaded == 3'
  m="$(T)/$id/manifest.json"
  jq -e '.format == 2 and ([.files[] | select(.kind=="extent")] | length) == 1
    and (.files[] | select(.kind=="extent") | .compression == "chunks" and .name == "disk0-flat.vmdk.idx")
    and (.files[] | select(.kind!="extent") | .compression == "zstd")' "$m"
  idx="$(T)/$id/disk0-flat.vmdk.idx"
  assert_eq "$(head -3 "$idx" | tr '\n' '|')" "ceso-chunk-index 1|chunk_size 4194304|size 16777216|"
  assert_eq "$(sed -n 5p "$idx")" 0
  # The manifest carries the index's hash; each chunk is stored under the
  # SHA-256 of its raw bytes.
  assert_eq "$(jq -r '.files[] | select(.kind=="extent") | .stored_sha256' "$m")" \
    "$(sha256sum <"$idx" | cut -d' ' -f1)"
  c=$(sed -n 4p "$idx")
  assert_eq "$(zstd -qdc "$(T)/chunks/${c:0:2}/$c" | sha256sum | cut -d' ' -f1)" "$c"
  [ "$(stored_chunks)" -eq 3 ]
  rebuild_from_chunks "$(T)" "$id" | cmp - "$flat"
  assert_eq "$(jq -r '.files[] | select(.kind=="extent") | .sha256' "$m")" \
    "$(sha256sum <"$flat" | cut -d' ' -f1)"
  run ceso-backup verify "$id"
  assert_status 0
  echo "$output" | jq -e '.verify == "ok" and .problems == []'
}

@test "incremental without CBT: unchanged chunks are not uploaded again, one changed chunk is" {
  flat=$(flat_of c01 0)
  run ceso-backup --format 2 c01
  assert_status 0
  echo "$output" | jq -e '.backup.chunks.uploaded == 4'
  run ceso-backup --format 2 c01
  assert_status 0
  echo "$output" | jq -e '.backup.chunks.uploaded == 0 and .backup.chunks.reused == 4'
  printf 'changed' | dd of="$flat" bs=1 seek=$((9 << 20)) conv=notrunc status=none
  run ceso-backup --format 2 c01
  assert_status 0
  id=$(echo "$output" | jq -r .backup.id)
  echo "$output" | jq -e '.backup.chunks.uploaded == 1 and .backup.chunks.reused == 3'
  # bytes_stored counts what this backup added: one chunk plus its small files.
  [ "$(echo "$output" | jq .backup.bytes_stored)" -lt $((5 << 20)) ]
  rebuild_from_chunks "$(T)" "$id" | cmp - "$flat"
}

@test "dedup across VMs: a clone's disk costs no chunk" {
  cp "$(flat_of c02 0)" "$(flat_of c03 0)"
  before=$(stored_chunks)
  run ceso-backup --format 2 c02 c03
  assert_status 0
  assert_eq "$(echo "$output" | jq -s 'map(.backup.chunks.uploaded) | add')" 0
  [ "$(stored_chunks)" -eq "$before" ]
}

@test "restore from chunks: the same bytes on the host; a damaged chunk rolls back" {
  run ceso-backup --format 2 c02
  id=$(echo "$output" | jq -r .backup.id)
  run ceso-restore "$id" --as c02-r -q
  assert_status 0
  cmp "$(flat_of c02-r 0)" "$(flat_of c02 0)"
  ceso-rm --yes c02-r >/dev/null
  # Damage a chunk (same size, other bytes): the upload is re-hashed on the
  # fly, the restore fails and leaves nothing.
  c=$(sed -n 4p "$(T)/$id/disk0-flat.vmdk.idx")
  f="$(T)/chunks/${c:0:2}/$c"
  cp "$f" "$BATS_TEST_TMPDIR/keep"
  head -c 4194304 /dev/urandom | zstd -q -c >"$f"
  run ceso-restore "$id" --as c02-bad -q
  assert_status 1
  assert_contains "$output" "$c"
  run ceso-info c02-bad
  [ "$status" -ne 0 ]
  cp "$BATS_TEST_TMPDIR/keep" "$f"
}

@test "a chunk lost behind ceso's back: verify, --index-only and prune see it; the next backup uploads it again" {
  run ceso-backup --format 2 c01
  id=$(echo "$output" | jq -r .backup.id)
  c=$(sed -n 4p "$(T)/$id/disk0-flat.vmdk.idx")
  rm "$(T)/chunks/${c:0:2}/$c"
  run ceso-backup verify --index-only "$id"
  assert_status 4
  assert_contains "$output" "chunk $c missing"
  run ceso-backup verify --sample 10% "$id"
  assert_status 4
  run ceso-backup verify "$id"
  assert_status 4
  ceso-backup ls c01 | jq -e --arg id "$id" 'select(.id == $id) | .verify == "failed"'
  # prune does not count it (nor remove it): it is missing a chunk.
  run ceso-backup prune --keep-last 1 c01
  assert_status 4
  echo "$output" | grep '^{' | jq -se --arg id "$id" --arg c "$c" \
    'map(select(.id == $id))[0] | .action == "missing" and (.reasons[0] | contains($c))'
  # The local cache still lists the chunk: the next backup asks the target
  # and uploads it again instead of trusting the cache.
  run ceso-backup --format 2 c01
  assert_status 0
  id2=$(echo "$output" | jq -r .backup.id)
  echo "$output" | jq -e '.backup.chunks.uploaded == 1'
  [ -f "$(T)/chunks/${c:0:2}/$c" ]
  run ceso-backup verify "$id2"
  assert_status 0
}

@test "verify --sample and --index-only on a good backup; bad values refused" {
  run ceso-backup --format 2 c03
  id=$(echo "$output" | jq -r .backup.id)
  run ceso-backup verify --sample 50 "$id"
  assert_status 0
  run ceso-backup verify --index-only "$id"
  assert_status 0
  run ceso-backup verify --sample 101 "$id"
  assert_status 2
  run ceso-backup verify --sample 5 --index-only "$id"
  assert_status 2
  run ceso-backup --format 3 c03
  assert_status 2
}

@test "a tampered index: verify names it, restore refuses before changing anything" {
  run ceso-backup --format 2 c03
  id=$(echo "$output" | jq -r .backup.id)
  idx="$(T)/$id/disk0-flat.vmdk.idx"
  cp "$idx" "$BATS_TEST_TMPDIR/idx"
  sed -i '4s/^./0/' "$idx"
  run ceso-backup verify "$id"
  assert_status 4
  assert_contains "$output" "SHA-256 of the index differs"
  run ceso-restore "$id" --as c03-bad -q
  assert_status 1
  run ceso-info c03-bad
  [ "$status" -ne 0 ]
  cp "$BATS_TEST_TMPDIR/idx" "$idx"
}

@test "formats side by side: prune keeps and removes both, the sweep removes only unreferenced chunks" {
  rm -rf "$(T)"/* && mkdir -p "$(T)"
  ceso-backup gc >/dev/null # forgets the rows of the backups just removed
  flat=$(flat_of c02 0)
  head -c $((16 << 20)) /dev/urandom >"$flat"
  id1=$(ceso-backup c02 | jq -r .backup.id) # format 1
  sleep 1
  id2=$(ceso-backup --format 2 c02 | jq -r .backup.id)
  head -c $((4 << 20)) /dev/urandom | dd of="$flat" bs=4M seek=2 conv=notrunc status=none
  sleep 1
  id3=$(ceso-backup --format 2 c02 | jq -r .backup.id)
  [ "$(stored_chunks)" -eq 5 ]
  run ceso-backup verify "$id1" "$id2" "$id3"
  assert_status 0
  # Keep the newest: the format 1 backup and the first format 2 backup go;
  # the chunk only id2 used goes with them, the ones id3 shares stay.
  run ceso-backup prune --keep-last 1 c02
  assert_status 0
  echo "$output" | jq -se --arg a "$id1" --arg b "$id2" --arg c "$id3" '
    (map(select(.type=="backup")) | map({(.id): .action}) | add) == {($a): "remove", ($b): "remove", ($c): "keep"}
    and (map(select(.type=="chunks"))[0] | .removed == 1 and .referenced == 4)'
  [ ! -e "$(T)/$id1" ] && [ ! -e "$(T)/$id2" ]
  [ "$(stored_chunks)" -eq 4 ]
  run ceso-backup verify "$id3"
  assert_status 0
  rebuild_from_chunks "$(T)" "$id3" | cmp - "$flat"
}

@test "prune during a backup: chunks of the running backup are never swept" {
  # A chunk no complete backup names (an earlier run's, its backup removed).
  run ceso-backup --format 2 slow01
  old=$(echo "$output" | jq -r .backup.id)
  ceso-backup rm "$old" >/dev/null
  [ "$(stored_chunks)" -ge 4 ]
  ceso-backup --format 2 c01 >/dev/null
  before=$(stored_chunks)
  # The next backup of slow01 reuses those unreferenced chunks while it runs.
  ceso-backup --format 2 --limit-rate 2M slow01 >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
  pid=$!
  for _ in $(seq 200); do
    ls "$(T)"/slow01-*/.in-progress >/dev/null 2>&1 && break
    sleep 0.05
  done
  ls "$(T)"/slow01-*/.in-progress
  run ceso-backup gc
  assert_status 0
  assert_contains "$output" "not swept"
  assert_contains "$output" "in progress"
  [ "$(stored_chunks)" -eq "$before" ]
  run ceso-backup prune --keep-last 1 c01
  assert_contains "$output" "not swept"
  [ "$(stored_chunks)" -eq "$before" ]
  wait "$pid"
  id=$(jq -r .backup.id "$BATS_TEST_TMPDIR/out")
  run ceso-backup verify "$id"
  assert_status 0
  # Now nothing runs: the sweep goes through and the backup stays whole.
  run ceso-backup gc
  assert_status 0
  echo "$output" | jq -se 'map(select(.type=="chunks")) | length == 1'
  run ceso-backup verify "$id"
  assert_status 0
}

@test "a run waits for a live sweep's lock; a dead sweep's lock is removed" {
  mkdir "$(T)/.gc-lock"
  sleep 60 &
  live=$!
  printf '{"sweep":true,"host":"%s","pid":%d,"started":%d}\n' "$(hostname)" "$live" "$(date +%s)" \
    >"$(T)/.gc-lock/owner.json"
  ceso-backup --format 2 c03 >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
  pid=$!
  for _ in $(seq 200); do grep -q "waiting for the chunk sweep" "$BATS_TEST_TMPDIR/err" && break; sleep 0.05; done
  assert_contains "$(cat "$BATS_TEST_TMPDIR/err")" "waiting for the chunk sweep"
  # While it waits, no index exists for it.
  d=$(dirname "$(ls "$(T)"/c03-*/.in-progress)")
  [ ! -e "$d/disk0-flat.vmdk.idx" ] && [ ! -e "$d/manifest.json" ]
  kill "$live"
  wait "$live" || true
  wait "$pid"
  assert_contains "$(cat "$BATS_TEST_TMPDIR/err")" "died"
  [ ! -e "$(T)/.gc-lock" ]
  jq -e '.backup.format == 2' "$BATS_TEST_TMPDIR/out"
}

@test "kill -9 during the chunk upload: nothing listed complete, gc removes the leftovers" {
  ceso-backup --format 2 --limit-rate 2M c01 >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 200); do
    ls "$(T)"/c01-*/.in-progress >/dev/null 2>&1 && break
    sleep 0.05
  done
  sleep 2
  kill -9 "$pid"
  wait "$pid" || true
  left=$(for d in "$(T)"/c01-*/; do [ -f "$d/manifest.json" ] || basename "$d"; done)
  [ -n "$left" ]
  ! ceso-backup ls c01 | jq -r .id | grep -qx "$left"
  # A temporary upload as a killed run leaves it: gc removes it too.
  mkdir -p "$(T)/chunks/ab"
  touch "$(T)/chunks/ab/ab$(printf '%062d' 0).0123456789abcdef.tmp"
  run ceso-backup gc
  assert_status 0
  assert_contains "$output" "$left"
  [ ! -e "$(T)/$left" ]
  [ -z "$(find "$(T)/chunks" -name '*.tmp')" ]
  id=$(ceso-backup --format 2 c01 2>/dev/null | jq -r .backup.id)
  run ceso-backup verify "$id"
  assert_status 0
}

@test "format 2 on an sftp target: backup, dedup, verify, restore" {
  sshd_start
  dir="$BATS_FILE_TMPDIR/sftp-chunks"
  mkdir -p "$dir"
  url="sftp://root@127.0.0.1:$SSHD_PORT$dir"
  run ceso-backup --target "$url" --accept-new-host-key --format 2 c02
  assert_status 0
  id=$(echo "$output" | jq -r .backup.id)
  rebuild_from_chunks "$dir" "$id" | cmp - "$(flat_of c02 0)"
  run ceso-backup --target "$url" --format 2 c02
  assert_status 0
  echo "$output" | jq -e '.backup.chunks.uploaded == 0'
  run ceso-backup verify --target "$url" "$id"
  assert_status 0
  run ceso-restore --target "$url" "$id" --as c02-sftp -q
  assert_status 0
  cmp "$(flat_of c02-sftp 0)" "$(flat_of c02 0)"
  ceso-rm --yes c02-sftp >/dev/null
  sshd_stop
}

@test "ceso-restore --to-file: one disk as a local raw file, both formats; damage leaves no file" {
  flat=$(flat_of c03 0)
  id1=$(ceso-backup c03 | jq -r .backup.id)
  id2=$(ceso-backup --format 2 c03 | jq -r .backup.id)
  run ceso-restore "$id1" --to-file "$BATS_TEST_TMPDIR/d1.raw"
  assert_status 0
  echo "$output" | jq -e --arg id "$id1" '.type == "file" and .restored_from == $id and .disk == 0'
  cmp "$BATS_TEST_TMPDIR/d1.raw" "$flat"
  run ceso-restore "$id2" --disk 0 --to-file "$BATS_TEST_TMPDIR/d2.raw" -q
  assert_status 0
  cmp "$BATS_TEST_TMPDIR/d2.raw" "$flat"
  # An existing file is never overwritten; a disk that does not exist is named.
  run ceso-restore "$id2" --to-file "$BATS_TEST_TMPDIR/d2.raw"
  assert_status 1
  assert_contains "$output" "exists already"
  run ceso-restore "$id2" --disk 3 --to-file "$BATS_TEST_TMPDIR/d3.raw"
  assert_status 1
  assert_contains "$output" "no disk 3"
  run ceso-restore "$id2" --disk 0
  assert_status 2
  # --dry-run writes nothing.
  run ceso-restore "$id2" --dry-run --to-file "$BATS_TEST_TMPDIR/dry.raw"
  assert_status 0
  [ ! -e "$BATS_TEST_TMPDIR/dry.raw" ]
  # A damaged chunk: the file is not made, no temporary file stays.
  c=$(sed -n 6p "$(T)/$id2/disk0-flat.vmdk.idx")
  f="$(T)/chunks/${c:0:2}/$c"
  cp "$f" "$BATS_TEST_TMPDIR/keep"
  head -c 100 /dev/urandom | zstd -q -c >"$f"
  run ceso-restore "$id2" --to-file "$BATS_TEST_TMPDIR/bad.raw"
  assert_status 1
  assert_contains "$output" "damaged"
  [ -z "$(ls "$BATS_TEST_TMPDIR" | grep bad.raw)" ]
  cp "$BATS_TEST_TMPDIR/keep" "$f"
}

@test "gc --dry-run names the chunks a sweep would remove and writes nothing, not even the lock" {
  id=$(ceso-backup --format 2 c02 | jq -r .backup.id)
  ceso-backup gc >/dev/null
  head -c $((4 << 20)) /dev/urandom | dd of="$(flat_of c02 0)" bs=4M seek=3 conv=notrunc status=none
  id2=$(ceso-backup --format 2 c02 | jq -r .backup.id)
  ceso-backup rm "$id2" >/dev/null
  before=$(stored_chunks)
  run ceso-backup gc --dry-run
  assert_status 0
  echo "$output" | jq -se 'map(select(.type=="chunks"))[0] | .removed == 1 and .changed == false'
  [ "$(stored_chunks)" -eq "$before" ]
  [ ! -e "$(T)/.gc-lock" ]
  run ceso-backup gc
  assert_status 0
  [ "$(stored_chunks)" -eq $((before - 1)) ]
  run ceso-backup verify "$id"
  assert_status 0
}
