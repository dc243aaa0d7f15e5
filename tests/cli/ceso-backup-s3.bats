#!/usr/bin/env bats
# ceso-backup and ceso-restore on an s3:// target: a real S3 server on
# 127.0.0.1 (moto 5.2.1 with signature checks on, tests/s3/s3server.py)
# and the simulator. Never skipped: without moto and botocore the test
# bed does not start and every test fails (scripts/install-deps installs them).

load helpers/common
load helpers/s3

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"web01","power":"on","tags":["web"],"tools":"running"},
 {"name":"db01","power":"off","tags":["db"]}]
JSON
  sim_start -vms 0 -fill-mib 12 -vm-spec "$spec"
  s3_start
}

teardown_file() {
  s3_stop
  sim_stop
}

keys() { s3py 'print("\n".join(o["Key"] for o in s3.list_objects_v2(Bucket="ceso-test", Prefix="backups/").get("Contents", [])))'; }
uploads() { s3py 'print(len(s3.list_multipart_uploads(Bucket="ceso-test").get("Uploads", [])))'; }

setup() { sim_reset; sim_fail '{}'; s3_fault '{}'; }

@test "the test bed checks signatures: a wrong secret is refused by the server itself" {
  run s3py 'print(len(s3.list_objects_v2(Bucket="ceso-test").get("Contents", [])))'
  assert_status 0
  AWS_ACCESS_KEY_ID=$(awk '/key_id/{print $3}' "$AWS_SHARED_CREDENTIALS_FILE") \
    AWS_SECRET_ACCESS_KEY=wrong-secret run s3py 's3.list_objects_v2(Bucket="ceso-test")'
  assert_status 1
  assert_contains "$output" "SignatureDoesNotMatch"
}

@test "backup, ls, verify, restore and prune on s3://; multipart for a disk larger than a part" {
  id=$(ceso-backup --hot web01 | jq -r .backup.id)
  [ -n "$id" ] && [ "$id" != null ]
  keys >"$BATS_TEST_TMPDIR/keys"
  grep -qx "backups/site a/$id/manifest.json" "$BATS_TEST_TMPDIR/keys"
  ! grep -q "manifest.json.tmp\|\.in-progress" "$BATS_TEST_TMPDIR/keys"
  # The 12 MiB random disk went up in parts of 5 MiB: its ETag is a
  # multipart one ("…-3"), and it decompresses to the datastore's bytes.
  name=$(s3py "import json; m=json.loads(s3.get_object(Bucket='ceso-test', Key='backups/site a/$id/manifest.json')['Body'].read()); print([f['name'] for f in m['files'] if f['kind']=='extent'][0])")
  etag=$(s3py "print(s3.head_object(Bucket='ceso-test', Key='backups/site a/$id/$name')['ETag'])")
  assert_contains "$etag" "-3\""
  s3py "open('$BATS_TEST_TMPDIR/disk.zst','wb').write(s3.get_object(Bucket='ceso-test', Key='backups/site a/$id/$name')['Body'].read())"
  zstd -qdc "$BATS_TEST_TMPDIR/disk.zst" | cmp - "$(flat_of web01 0)"
  assert_eq "$(uploads)" 0
  run ceso-backup ls web01
  assert_status 0
  assert_contains "$output" "\"id\":\"$id\""
  assert_contains "$output" "s3://ceso-test/backups/site%20a"
  run ceso-backup verify "$id"
  assert_status 0
  echo "$output" | jq -e '.verify == "ok"'
  # reindex from the target's manifests finds it.
  rm "$XDG_STATE_HOME/ceso/backups.db"*
  run ceso-backup reindex --target "$CESO_BACKUP_TARGET"
  assert_status 0
  assert_contains "$output" "rebuilt from 1 backup(s) at $CESO_BACKUP_TARGET"
  assert_contains "$(ceso-backup ls web01)" "\"id\":\"$id\""
  # Restore from S3: the new VM's disk has the backed-up bytes.
  run ceso-restore "$id" --as web01-restored
  assert_status 0
  cmp "$(flat_of web01-restored 0)" "$(flat_of web01 0)"
  # Prune keeps the newest one.
  id2=$(ceso-backup --hot web01 | jq -r .backup.id)
  run ceso-backup prune --keep-last 1 web01
  assert_status 0
  ! keys | grep -q "/$id/"
  keys | grep -qx "backups/site a/$id2/manifest.json"
}

@test "a wrong secret: one clear line, exit 6, no retries, nothing written" {
  before=$(s3_stats | jq '.PUT // 0')
  AWS_ACCESS_KEY_ID=$(awk '/key_id/{print $3}' "$AWS_SHARED_CREDENTIALS_FILE") \
    AWS_SECRET_ACCESS_KEY=not-the-secret run ceso-backup --hot db01
  assert_status 6
  assert_contains "$output" "SignatureDoesNotMatch"
  assert_contains "$output" "check the secret access key"
  assert_contains "$output" "the environment (AWS_ACCESS_KEY_ID)"
  [ "$(s3_stats | jq '.PUT // 0')" -eq "$before" ]
  # A bucket that does not exist: exit 1, named.
  run ceso-backup reindex --target s3://no-such-bucket/x
  assert_status 1
  assert_contains "$output" "bucket 'no-such-bucket' does not exist"
}

@test "a clock more than 15 minutes off is refused with a clear message (exit 6)" {
  # The server's clock runs an hour ahead of this machine's.
  s3_fault '{"clock_offset": 3600}'
  run ceso-backup --hot db01
  assert_status 6
  assert_contains "$output" "clock differs from the server's by more than 15 minutes"
  assert_contains "$output" "RequestTimeTooSkewed"
}

@test "transient 503s are retried; a slow server that never recovers ends at the time budget" {
  # Two part uploads answered 503, then accepted: the backup succeeds.
  s3_fault '{"match": "partNumber=", "status": 503, "count": 2}'
  run ceso-backup --hot web01
  assert_status 0
  assert_contains "$output" "retrying"
  id=$(echo "$output" | grep '^{' | jq -r .backup.id)
  # Reads too: two ranged GETs of the disk answered 503, then served.
  s3_fault '{"match": "GET /ceso-test/backups/site a/'"$id"'/disk0", "status": 503, "count": 2}'
  run ceso-backup verify "$id"
  assert_status 0
  assert_contains "$output" "retrying"
  echo "$output" | grep '^{' | jq -e '.verify == "ok"'
  # Every upload is slow and fails: the run gives up at the retry budget,
  # exit 6, and leaves nothing listed complete and no open upload.
  s3_fault '{"match": "partNumber=", "status": 503, "delay": 1}'
  CESO_S3_RETRY_BUDGET=3 run ceso-backup --hot web01
  assert_status 6
  assert_contains "$output" "CESO_S3_RETRY_BUDGET"
  s3_fault '{}'
  assert_eq "$(uploads)" 0
  run ceso-backup ls web01
  [ "$(echo "$output" | jq -s 'map(select(.status=="failed")) | length')" -ge 1 ]
  # Every backup directory left at the target has its manifest.
  for d in $(keys | sed -n 's|^backups/site a/\([^/]*\)/.*|\1|p' | sort -u); do
    keys | grep -qx "backups/site a/$d/manifest.json"
  done
}

@test "kill -9 during a multipart upload: nothing listed complete; gc removes it and its upload" {
  # Slow parts keep the run inside the upload long enough to kill it there.
  s3_fault '{"match": "partNumber=", "delay": 2, "after": 1}'
  ceso-backup --hot web01 >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 200); do [ "$(uploads)" -ge 1 ] && break; sleep 0.1; done
  [ "$(uploads)" -ge 1 ]
  kill -9 "$pid"
  wait "$pid" || true
  s3_fault '{}'
  left=$(keys | sed -n 's|^backups/site a/\([^/]*\)/\.in-progress$|\1|p')
  [ -n "$left" ]
  ! keys | grep -qx "backups/site a/$left/manifest.json"
  ! ceso-backup ls web01 | jq -r .id | grep -qx "$left"
  run ceso-backup gc
  assert_status 0
  assert_contains "$output" "$left"
  ! keys | grep -q "/$left/"
  assert_eq "$(uploads)" 0
  # The next run removes the killed run's snapshot and succeeds.
  run ceso-backup --hot web01
  assert_status 0
}

@test "a hostile server: a listing answer above its cap is a limit (exit 6), not retried" {
  before=$(s3_stats | jq '.GET // 0')
  s3_fault '{"match": "list-type=2", "body_mib": 20}'
  run ceso-backup reindex --target "$CESO_BACKUP_TARGET"
  assert_status 6
  assert_contains "$output" "the server's answer is larger than"
  [ "$(s3_stats | jq '.GET // 0')" -eq $((before + 1)) ]
}

@test "s3:// URLs: bad ones refused with exit 2; no credentials is exit 6" {
  for u in 's3://Bad_Bucket/x' 's3://bkt/a/../b' 's3://user:pw@bkt/x' 's3://bkt:9000/x'; do
    run ceso-backup reindex --target "$u"
    assert_status 2
    assert_contains "$output" "backup target"
  done
  AWS_SHARED_CREDENTIALS_FILE=/nonexistent run ceso-backup reindex --target s3://ceso-test/x
  assert_status 6
  assert_contains "$output" "no S3 credentials"
}
