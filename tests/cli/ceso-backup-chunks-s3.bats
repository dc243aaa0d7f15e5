#!/usr/bin/env bats
# ceso-backup --format 2 (the chunk store) on an s3:// target: a real S3
# server on 127.0.0.1 (moto, signatures checked; helpers/s3.bash) and the
# simulator. Incremental backups, the requests they cost, verify, restore,
# prune and the chunk sweep, injected faults.

load helpers/common
load helpers/s3

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"c01","power":"on","tools":"running","disks_mib":[64]},
 {"name":"c02","power":"off","disks_mib":[16]}]
JSON
  sim_start -vms 0 -fill-mib 64 -vm-spec "$spec"
  s3_start "chunked/site%20b"
}

teardown_file() {
  s3_stop
  sim_stop
}

setup() { sim_reset; sim_fail '{}'; s3_fault '{}'; }

P="chunked/site b"
keys() { # every key under the target's prefix
  s3py 'p = s3.get_paginator("list_objects_v2")
for page in p.paginate(Bucket="ceso-test", Prefix="'"$P"'/"):
    for o in page.get("Contents", []): print(o["Key"])'
}
stored_chunks() { keys | grep -c "^$P/chunks/[0-9a-f][0-9a-f]/[0-9a-f]\{64\}\$" || true; }
# Requests the server answered since the last call of stats_mark, by method.
stats_mark() { s3_stats >"$BATS_TEST_TMPDIR/stats"; }
stats_since() { # METHOD
  echo $(($(s3_stats | jq ".$1 // 0") - $(jq ".$1 // 0" "$BATS_TEST_TMPDIR/stats")))
}

idx_line() { # ID N: line N of the disk's index at the bucket (4: the first chunk)
  s3py 'print(s3.get_object(Bucket="ceso-test", Key="'"$P/$1"'/disk0-flat.vmdk.idx")["Body"].read().decode().split("\n")['"$(($2 - 1))"'])'
}

# The disk as the backup's index and chunks at the bucket say, fetched with
# botocore and decompressed with the zstd tool (an independent reader).
rebuild_from_s3() { # ID
  s3py '
import json, subprocess, sys
pfx = "'"$P"'/'"$1"'/"
m = json.loads(s3.get_object(Bucket="ceso-test", Key=pfx + "manifest.json")["Body"].read())
f = [f for f in m["files"] if f["kind"] == "extent"][0]
idx = s3.get_object(Bucket="ceso-test", Key=pfx + f["name"])["Body"].read().decode().split("\n")
size = int(idx[2].split(" ")[1])
out = sys.stdout.buffer
for c in idx[3:-1]:
    n = min(4194304, size)
    if c == "0":
        out.write(bytes(n))
    else:
        z = s3.get_object(Bucket="ceso-test", Key="'"$P"'/chunks/%s/%s" % (c[:2], c))["Body"].read()
        out.write(subprocess.run(["zstd", "-qdc"], input=z, capture_output=True, check=True).stdout)
    size -= n
'
}

@test "format 2 on s3://: the second backup uploads only the changed chunk and asks little; verify and restore give the same bytes" {
  flat=$(flat_of c01 0)
  stats_mark
  run ceso-backup --format 2 c01
  assert_status 0
  id1=$(echo "$output" | jq -r .backup.id)
  echo "$output" | jq -e '.backup.format == 2 and .backup.chunks.chunks == 16 and .backup.chunks.uploaded == 16'
  put1=$(stats_since PUT)
  # One PUT a new chunk, at its final name (no temporary copy, no DELETE).
  [ "$(stats_since DELETE)" -le 2 ]
  [ "$(stored_chunks)" -eq 16 ]
  rebuild_from_s3 "$id1" | cmp - "$flat"
  # One chunk of the disk changes (as a guest writing a few bytes).
  printf 'changed' | dd of="$flat" bs=1 seek=$((37 << 20)) conv=notrunc status=none
  stats_mark
  run ceso-backup --format 2 c01
  assert_status 0
  id2=$(echo "$output" | jq -r .backup.id)
  echo "$output" | jq -e '.backup.chunks.uploaded == 1 and .backup.chunks.reused == 15'
  [ "$(echo "$output" | jq .backup.chunks.bytes_uploaded)" -le $(((4 << 20) + 4096)) ]
  # The same small files as the first and one chunk: 15 PUTs fewer. The
  # 15 unchanged chunks cost no request each: one listing of the target's
  # chunks answers for them.
  assert_eq "$(stats_since PUT)" $((put1 - 15))
  [ $(($(stats_since HEAD) + $(stats_since GET))) -lt 15 ]
  [ "$(stored_chunks)" -eq 17 ]
  rebuild_from_s3 "$id2" | cmp - "$flat"
  run ceso-backup verify "$id1" "$id2"
  assert_status 0
  # Reading a chunk back costs its open (a HEAD) and one GET: 32 for the 16
  # chunks, 22 for the manifest, index and small files (no HEAD of its own
  # before each open: that was 70 in all).
  stats_mark
  run ceso-backup verify "$id2"
  assert_status 0
  [ $(($(stats_since HEAD) + $(stats_since GET))) -le 56 ]
  run ceso-restore "$id2" --to-file "$BATS_TEST_TMPDIR/d.raw" -q
  assert_status 0
  cmp "$BATS_TEST_TMPDIR/d.raw" "$flat"
  run ceso-restore "$id1" --as c01-r -q
  assert_status 0
  # id1 is the disk before the change: the restored VM differs exactly there.
  cmp -l "$(flat_of c01-r 0)" "$flat" | awk '{print $1}' >"$BATS_TEST_TMPDIR/diff"
  assert_eq "$(wc -l <"$BATS_TEST_TMPDIR/diff")" 7
  assert_eq "$(head -1 "$BATS_TEST_TMPDIR/diff")" $(((37 << 20) + 1))
  ceso-rm --yes c01-r >/dev/null
}

@test "a chunk lost behind ceso's back on s3:// is uploaded again: the listing is the target's, not the cache's" {
  run ceso-backup --format 2 c02
  assert_status 0
  id=$(echo "$output" | jq -r .backup.id)
  c=$(idx_line "$id" 5)
  s3py "s3.delete_object(Bucket='ceso-test', Key='$P/chunks/${c:0:2}/$c')"
  run ceso-backup verify --index-only "$id"
  assert_status 4
  assert_contains "$output" "chunk $c missing"
  run ceso-backup --format 2 c02
  assert_status 0
  id2=$(echo "$output" | jq -r .backup.id)
  echo "$output" | jq -e '.backup.chunks.uploaded == 1'
  run ceso-backup verify "$id2"
  assert_status 0
  rebuild_from_s3 "$id2" | cmp - "$(flat_of c02 0)"
}

@test "prune and the chunk sweep on s3:// remove only the chunks no kept backup names" {
  flat=$(flat_of c02 0)
  id1=$(ceso-backup --format 2 c02 | jq -r .backup.id)
  sleep 1
  head -c $((4 << 20)) /dev/urandom | dd of="$flat" bs=4M seek=1 conv=notrunc status=none
  id2=$(ceso-backup --format 2 c02 | jq -r .backup.id)
  keys >"$BATS_TEST_TMPDIR/before"
  old=$(idx_line "$id1" 5)
  new=$(idx_line "$id2" 5)
  [ "$old" != "$new" ]
  grep -qx "$P/chunks/${old:0:2}/$old" "$BATS_TEST_TMPDIR/before"
  n=$(stored_chunks)
  run ceso-backup prune --keep-last 1 c02
  assert_status 0
  echo "$output" | jq -se --arg a "$id1" --arg b "$id2" '
    (map(select(.type=="backup" and (.id == $a or .id == $b))) | map({(.id): .action}) | add) == {($a): "remove", ($b): "keep"}
    and (map(select(.type=="chunks"))[0] | .removed >= 1)'
  keys >"$BATS_TEST_TMPDIR/after"
  ! grep -q "^$P/$id1/" "$BATS_TEST_TMPDIR/after"
  ! grep -qx "$P/chunks/${old:0:2}/$old" "$BATS_TEST_TMPDIR/after"
  grep -qx "$P/chunks/${new:0:2}/$new" "$BATS_TEST_TMPDIR/after"
  [ "$(stored_chunks)" -lt "$n" ]
  run ceso-backup verify "$id2"
  assert_status 0
  rebuild_from_s3 "$id2" | cmp - "$flat"
}

@test "injected faults mid-run on s3:// (chunk uploads, the manifest's copy, kill -9): no backup looks complete" {
  flat=$(flat_of c01 0)
  head -c $((8 << 20)) /dev/urandom | dd of="$flat" bs=4M seek=4 conv=notrunc status=none
  complete() { ceso-backup ls c01 | jq -r 'select(.status == "complete") | .id' | sort; }
  complete >"$BATS_TEST_TMPDIR/complete"
  n=$(stored_chunks)
  # The first new chunk goes up, the next is refused until the retry
  # budget runs out: the run fails and removes its directory; the chunk
  # that went up is named by no index.
  s3_fault '{"match": "PUT /ceso-test/'"$P"'/chunks/", "status": 503, "after": 1}'
  CESO_S3_RETRY_BUDGET=2 run ceso-backup --format 2 c01
  assert_status 6
  assert_contains "$output" "retry budget"
  s3_fault '{}'
  [ "$(stored_chunks)" -eq $((n + 1)) ]
  failed=$(ceso-backup ls c01 | jq -r 'select(.status == "failed") | .id' | tail -1)
  [ -n "$failed" ]
  ! keys | grep -q "^$P/$failed/"
  complete | cmp - "$BATS_TEST_TMPDIR/complete"
  # The copy of manifest.json.tmp to manifest.json fails: every chunk and
  # the index went up, yet the run fails and no manifest is left.
  s3_fault '{"match": "/manifest.json?", "status": 503}'
  CESO_S3_RETRY_BUDGET=2 run ceso-backup --format 2 c01
  assert_status 6
  s3_fault '{}'
  # Manifests at the bucket: exactly those of the complete backups.
  keys | sed -n "s|^$P/\(c01-[^/]*\)/manifest.json\$|\1|p" | sort | cmp - "$BATS_TEST_TMPDIR/complete"
  complete | cmp - "$BATS_TEST_TMPDIR/complete"
  # kill -9 while chunks go up slowly: the directory stays, with its
  # marker and without manifest or index; it is not listed; gc removes it
  # and then sweeps the chunks only it had.
  head -c $((4 << 20)) /dev/urandom | dd of="$flat" bs=4M seek=8 conv=notrunc status=none
  # (The delayed PUT of the one new chunk is still in flight when the run dies.)
  s3_fault '{"match": "PUT /ceso-test/'"$P"'/chunks/", "delay": 8}'
  ceso-backup --format 2 c01 >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 300); do keys | grep -q "^$P/c01-[^/]*/\.in-progress\$" && break; sleep 0.1; done
  sleep 4
  kill -9 "$pid"
  wait "$pid" || true
  s3_fault '{}'
  left=$(keys | sed -n "s|^$P/\(c01-[^/]*\)/\.in-progress\$|\1|p")
  [ -n "$left" ]
  ! keys | grep -qx "$P/$left/manifest.json"
  ! keys | grep -q "^$P/$left/.*\.idx\$"
  complete | cmp - "$BATS_TEST_TMPDIR/complete"
  run ceso-backup gc
  assert_status 0
  assert_contains "$output" "$left"
  ! keys | grep -q "^$P/$left/"
  echo "$output" | grep '^{' | jq -se 'map(select(.type=="chunks"))[0] | .removed >= 1'
  # Every complete backup is still whole; the next run completes.
  for id in $(complete); do ceso-backup verify --index-only "$id" >/dev/null; done
  # The next run removes the killed run's snapshot and completes.
  run ceso-backup --format 2 c01
  assert_status 0
  assert_contains "$output" "left by an interrupted run"
  id=$(echo "$output" | grep '^{' | jq -r .backup.id)
  run ceso-backup verify "$id"
  assert_status 0
  rebuild_from_s3 "$id" | cmp - "$flat"
}

@test "--cbt on s3://: the second backup reads and uploads only the changed chunk; restore gives the same bytes" {
  flat=$(flat_of c02 0)
  run ceso-backup --format 2 --cbt c02
  assert_status 0
  # The first --cbt backup of the VM: tracking enabled, "*" asked (the
  # whole disk holds data: all of it read).
  assert_contains "$output" "change tracking enabled"
  echo "$output" | grep '^{' | jq -e '.backup.cbt.disks[0].since == "*" and .backup.cbt.bytes_read == 67108864'
  printf 'cbt' | dd of="$flat" bs=1 seek=$((6 << 20)) conv=notrunc status=none
  sim_reset
  run ceso-backup --format 2 --cbt c02
  assert_status 0
  out=$(echo "$output" | grep '^{')
  id=$(echo "$out" | jq -r .backup.id)
  echo "$out" | jq -e '.backup.cbt.disks[0].chunks_read == 1 and .backup.cbt.bytes_read == 4194304
    and .backup.chunks.uploaded == 1 and .backup.chunks.reused == 15'
  # One 4 MiB chunk and the small files crossed from the host.
  [ "$(sim_stats | jq .http_bytes)" -lt $(((4 << 20) + (64 << 10))) ]
  rebuild_from_s3 "$id" | cmp - "$flat"
  run ceso-backup verify "$id"
  assert_status 0
  run ceso-restore "$id" --to-file "$BATS_TEST_TMPDIR/d.raw" -q
  assert_status 0
  cmp "$BATS_TEST_TMPDIR/d.raw" "$flat"
}
