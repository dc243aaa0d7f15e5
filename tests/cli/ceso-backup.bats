#!/usr/bin/env bats
# ceso-backup against the simulator (ESX model) with filled disks.

load helpers/common
load helpers/sshd

WEB='web 01 & <x> "q" é'

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"web 01 & <x> \"q\" é","power":"on","tags":["web"],"tools":"running"},
 {"name":"db01","power":"off","tags":["db"]},
 {"name":"app01","power":"on","tags":["app"],"tools":"running"},
 {"name":"snap01","power":"on","tags":["snap"],"tools":"running"},
 {"name":"gpu01","power":"on","tags":["gpu"],"tools":"running","pci_passthrough":true}]
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

target_dir() { echo "$BATS_FILE_TMPDIR/target"; }
snapshots_of() { ceso-info "$1" | jq -c '[.snapshots[].name]'; }

@test "the user's pipeline: ceso-ls --tag web | ceso-backup --hot | jq .backup.id" {
  id=$(ceso-ls --tag web | ceso-backup --hot | jq -r .backup.id)
  [ -n "$id" ] && [ "$id" != null ]
  [ -f "$(target_dir)/$id/manifest.json" ]
  [ "$(sim_count CreateSnapshot_Task)" -eq 1 ]
  [ "$(sim_count RemoveSnapshot_Task)" -eq 1 ]
  assert_eq "$(snapshots_of "$WEB")" '[]'
  # The stored flat file decompresses to the datastore's bytes.
  m="$(target_dir)/$id/manifest.json"
  src=$(jq -r '.files[] | select(.kind=="extent") | .source' "$m")
  name=$(jq -r '.files[] | select(.kind=="extent") | .name' "$m")
  zstd -qdc "$(target_dir)/$id/$name" | cmp - "$(ds_file "$src")"
  [ "$(jq -r '.files[] | select(.kind=="extent") | .size' "$m")" -eq $((16 << 20)) ]
  jq -e --arg n "$WEB" '.format == 1 and .vm.name == $n and .tags == ["web"] and .mode == "hot"
    and (.files | map(.kind) | sort) == ["config","descriptor","extent","nvram","vmx"]
    and all(.files[]; (.sha256|length) == 64 and (.stored_xxh128|length) == 32
      and (has("stored_sha256")|not))' "$m"
  # The raw hash is the source's; the stored stream's is xxhsum's XXH3-128 of the file.
  assert_eq "$(jq -r '.files[] | select(.kind=="extent") | .sha256' "$m")" \
    "$(sha256sum <"$(ds_file "$src")" | cut -d' ' -f1)"
  assert_eq "$(jq -r '.files[] | select(.kind=="extent") | .stored_xxh128' "$m")" \
    "$(xxhsum -H2 <"$(target_dir)/$id/$name" | cut -d' ' -f1)"
  run ceso-backup ls "$WEB"
  assert_status 0
  assert_contains "$output" "\"id\":\"$id\""
}

@test "a powered-off VM is copied without a snapshot; records pass through" {
  run bash -c 'ceso-ls --name db01 | ceso-backup --hot'
  assert_status 0
  echo "$output" | jq -e '.type == "vm" and .name == "db01" and .changed == true
    and .backup.mode == "cold" and .tags == ["db"]'
  [ "$(sim_count CreateSnapshot_Task)" -eq 0 ]
}

@test "pass-through: unknown fields kept; a stale power, ip, template, backup or detail is not" {
  rec=$(ceso-info db01 | jq -c '.power = "poweredOn" | .ip = "192.0.2.9" | .template = true
    | .backup = {"id": "stale", "note": "x"} | .tags = "db" | .note = {"keep": ["me", 1]}')
  out=$(ceso-backup --hot <<<"$rec")
  echo "$out" | jq -e '.name == "db01" and .power == "off" and has("ip") and .ip == null
    and .tags == ["db"] and .changed == true and .backup.id != "stale" and .backup.mode == "cold"
    and (.backup | has("note") | not) and .note == {"keep": ["me", 1]}
    and (has("template") or has("hardware") or has("snapshots") or has("guestinfo") | not)'
  assert_eq "$(echo "$out" | jq -c keys_unsorted)" \
    "$(ceso-backup --hot db01 | jq -c 'keys_unsorted + ["note"]')"
}

@test "--cold shuts a running VM down through Tools and powers it back on" {
  run ceso-backup --cold app01
  assert_status 0
  echo "$output" | jq -e '.backup.mode == "cold" and .name == "app01"'
  [ "$(sim_count ShutdownGuest)" -eq 1 ]
  [ "$(sim_count PowerOnVM_Task)" -eq 1 ]
  [ "$(sim_count CreateSnapshot_Task)" -eq 0 ]
  assert_eq "$(ceso-ls --name app01 | jq -r .power)" on
}

@test "--dry-run prints plans and makes no write call" {
  before=$(ls "$(target_dir)" | wc -l)
  run ceso-backup --dry-run --hot "$WEB"
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .operation | tr '\n' ,)" 'CreateSnapshot_Task,Backup,RemoveSnapshot_Task,'
  [ "$(sim_count CreateSnapshot_Task)" -eq 0 ]
  [ "$(sim_count RemoveSnapshot_Task)" -eq 0 ]
  [ "$(ls "$(target_dir)" | wc -l)" -eq "$before" ]
}

@test "a dry-run pipeline shows every stage's plan; a real stage after a dry one does nothing" {
  before=$(ls "$(target_dir)" | wc -l)
  run bash -c 'ceso-ls --tag web | ceso-snap create --name pre-upgrade --dry-run | ceso-backup --hot --dry-run'
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .tool | uniq | tr '\n' ,)" 'ceso-snap,ceso-backup,'
  assert_eq "$(echo "$output" | jq -r .operation | tr '\n' ,)" \
    'CreateSnapshot_Task,CreateSnapshot_Task,Backup,RemoveSnapshot_Task,'
  echo "$output" | jq -e --arg n "$WEB" 'select(.tool == "ceso-backup") | .vm == $n'
  [ "$(sim_count CreateSnapshot_Task)" -eq 0 ]
  run bash -c 'ceso-ls --tag web | ceso-snap create --name pre-upgrade --dry-run | ceso-backup --hot'
  assert_status 0
  assert_contains "$output" "nothing done"
  [ "$(sim_count CreateSnapshot_Task)" -eq 0 ]
  [ "$(ls "$(target_dir)" | wc -l)" -eq "$before" ]
}

@test "a VM with PCI passthrough: --hot refused before any snapshot (use --cold), --cold works" {
  run ceso-backup --hot gpu01
  assert_status 1
  assert_contains "$output" "PCI passthrough"
  assert_contains "$output" "--cold"
  assert_eq "$(sim_count CreateSnapshot_Task)" 0
  run ceso-backup --cold gpu01
  assert_status 0
  echo "$output" | jq -e '.backup.mode == "cold" and .power == "on"'
  assert_eq "$(ceso-ls --name gpu01 -o power | jq -r .power)" on
}

@test "restricted mode refuses the snapshot with exit 5" {
  CESO_MODE=restricted run ceso-backup --hot "$WEB"
  assert_status 5
  [ "$(sim_count CreateSnapshot_Task)" -eq 0 ]
}

@test "verify: ok, then a flipped byte, a truncated file and a missing file give exit 4" {
  id=$(ceso-backup --hot app01 | jq -r .backup.id)
  run ceso-backup verify "$id"
  assert_status 0
  echo "$output" | jq -e '.verify == "ok" and .problems == []'
  dir="$(target_dir)/$id"
  cp -a "$dir" "$BATS_TEST_TMPDIR/orig"
  # Flip one byte in the middle of the compressed disk.
  f="$dir/disk0-flat.vmdk.zst"
  off=$(($(stat -c %s "$f") / 2))
  b=$(dd if="$f" bs=1 skip="$off" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
  printf "$(printf '\\%03o' $(((b + 1) % 256)))" | dd of="$f" bs=1 seek="$off" conv=notrunc 2>/dev/null
  run ceso-backup verify "$id"
  assert_status 4
  assert_contains "$output" "disk0-flat.vmdk.zst"
  [ "$(ceso-backup ls app01 | jq -r --arg i "$id" 'select(.id==$i) | .verify')" = failed ]
  # Truncated.
  cp "$BATS_TEST_TMPDIR/orig/disk0-flat.vmdk.zst" "$f"
  truncate -s 1000 "$f"
  run ceso-backup verify "$id"
  assert_status 4
  assert_contains "$output" "truncated"
  # Missing.
  rm "$f"
  run ceso-backup verify "$id"
  assert_status 4
  assert_contains "$output" "missing"
  cp "$BATS_TEST_TMPDIR/orig/disk0-flat.vmdk.zst" "$f"
  run ceso-backup verify "$id"
  assert_status 0
}

@test "verify: manifests with SHA-256 stored hashes (before XXH3) still verify; each stored hash is checked" {
  id=$(ceso-backup --hot app01 | jq -r .backup.id)
  dir="$(target_dir)/$id"
  f="$dir/disk0-flat.vmdk.zst"
  # A stored hash that is not the file's: found although the data is intact.
  cp "$dir/manifest.json" "$BATS_TEST_TMPDIR/new.json"
  jq '.files |= map(if .name == "disk0-flat.vmdk.zst" then .stored_xxh128 = "00112233445566778899aabbccddeeff" else . end)' \
    "$BATS_TEST_TMPDIR/new.json" >"$dir/manifest.json"
  run ceso-backup verify "$id"
  assert_status 4
  assert_contains "$output" "disk0-flat.vmdk.zst: XXH3-128 of the stored file differs"
  # The manifest as an older ceso-backup wrote it: stored_sha256 instead.
  for n in $(jq -r '.files[].name' "$BATS_TEST_TMPDIR/new.json"); do
    printf '%s %s\n' "$n" "$(sha256sum <"$dir/$n" | cut -d' ' -f1)"
  done >"$BATS_TEST_TMPDIR/sums"
  jq --rawfile sums "$BATS_TEST_TMPDIR/sums" '
    ($sums | split("\n") | map(select(. != "") | split(" ") | {(.[0]): .[1]}) | add) as $s
    | .files |= map(del(.stored_xxh128) | .stored_sha256 = $s[.name])' \
    "$BATS_TEST_TMPDIR/new.json" >"$BATS_TEST_TMPDIR/old.json"
  jq -e 'all(.files[]; (.stored_sha256|length) == 64 and (has("stored_xxh128")|not))' \
    "$BATS_TEST_TMPDIR/old.json"
  cp "$BATS_TEST_TMPDIR/old.json" "$dir/manifest.json"
  run ceso-backup verify "$id"
  assert_status 0
  jq '.files |= map(if .name == "disk0-flat.vmdk.zst" then .stored_sha256 = ("0" * 64) else . end)' \
    "$BATS_TEST_TMPDIR/old.json" >"$dir/manifest.json"
  run ceso-backup verify "$id"
  assert_status 4
  assert_contains "$output" "disk0-flat.vmdk.zst: SHA-256 of the stored file differs"
  # A flipped byte in an old-style backup, and a file swapped for another
  # backup's file of the same size: found.
  cp "$BATS_TEST_TMPDIR/old.json" "$dir/manifest.json"
  cp "$f" "$BATS_TEST_TMPDIR/orig.zst"
  size=$(stat -c %s "$f")
  printf '\x5a' | dd of="$f" bs=1 seek=$((size / 2)) conv=notrunc status=none
  run ceso-backup verify "$id"
  assert_status 4
  assert_contains "$output" "disk0-flat.vmdk.zst: SHA-256 of the stored file differs"
  # Another VM's disk in its place (new-style manifest).
  id2=$(ceso-backup --hot "$WEB" | jq -r .backup.id)
  cp "$(target_dir)/$id2/disk0-flat.vmdk.zst" "$f"
  run cmp -s "$f" "$BATS_TEST_TMPDIR/orig.zst"
  assert_status 1
  cp "$BATS_TEST_TMPDIR/new.json" "$dir/manifest.json"
  run ceso-backup verify "$id"
  assert_status 4
  assert_contains "$output" "disk0-flat.vmdk.zst"
  cp "$BATS_TEST_TMPDIR/orig.zst" "$f"
  run ceso-backup verify "$id"
  assert_status 0
}

@test "a cut connection is resumed with Range and the copy is byte-exact" {
  sim_fail '{"http":"GET /folder","path":"flat","after_bytes":3000000,"count":2}'
  run ceso-backup --hot "$WEB"
  assert_status 0
  assert_contains "$output" "resuming at byte"
  id=$(echo "$output" | grep '^{' | jq -r .backup.id)
  run ceso-backup verify "$id"
  assert_status 0
  m="$(target_dir)/$id/manifest.json"
  src=$(jq -r '.files[] | select(.kind=="extent") | .source' "$m")
  zstd -qdc "$(target_dir)/$id/disk0-flat.vmdk.zst" | cmp - "$(ds_file "$src")"
}

@test "a copy that keeps failing removes the snapshot and leaves nothing complete" {
  sim_fail '{"http":"GET /folder","path":"flat","status":503,"count":-1}'
  run ceso-backup --hot --retries 1 "$WEB"
  assert_status 1
  assert_contains "$output" "503"
  [ "$(sim_count CreateSnapshot_Task)" -eq 1 ]
  [ "$(sim_count RemoveSnapshot_Task)" -eq 1 ]
  assert_eq "$(snapshots_of "$WEB")" '[]'
  # Nothing without a manifest stays behind; the catalog records the failure.
  for d in "$(target_dir)"/*/; do [ -f "$d/manifest.json" ]; done
  ceso-backup ls "$WEB" | jq -e -s 'last | .status == "failed"'
}

@test "a snapshot of the user's is never removed" {
  # (ceso-snap may complain after creating it; what matters is that it exists)
  ceso-snap create --name 'user snap' snap01 >/dev/null 2>&1 || true
  assert_eq "$(snapshots_of snap01)" '["user snap"]'
  run ceso-backup --hot snap01
  assert_status 0
  [ "$(sim_count CreateSnapshot_Task)" -eq 2 ]
  [ "$(sim_count RemoveSnapshot_Task)" -eq 1 ]
  [ "$(sim_count RemoveAllSnapshots_Task)" -eq 0 ]
  assert_eq "$(snapshots_of snap01)" '["user snap"]'
  # (the VM keeps it: removing nested snapshots confuses the simulator's layout)
}

@test "a second backup of the same VM is refused; SIGTERM removes the snapshot (exit 130)" {
  ceso-backup --hot --limit-rate 1M app01 >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
  pid=$!
  for _ in $(seq 100); do [ "$(sim_count CreateSnapshot_Task)" -eq 1 ] && break; sleep 0.1; done
  sleep 0.5
  run ceso-backup --hot app01
  assert_status 1
  assert_contains "$output" "already being backed up"
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  assert_eq "${rc:-0}" 130
  [ "$(sim_count RemoveSnapshot_Task)" -eq 1 ]
  assert_eq "$(snapshots_of app01)" '[]'
  [ ! -s "$BATS_TEST_TMPDIR/out" ]
}

@test "kill -9 mid-copy: gc removes the leftover, the next run cleans up and succeeds" {
  ceso-backup --hot --limit-rate 1M app01 >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do [ "$(sim_count CreateSnapshot_Task)" -eq 1 ] && break; sleep 0.1; done
  sleep 1
  kill -9 "$pid"
  wait "$pid" || true
  left=$(for d in "$(target_dir)"/*/; do [ -f "$d/manifest.json" ] || basename "$d"; done)
  [ -n "$left" ]
  # Not listed as a backup.
  ! ceso-backup ls app01 | jq -r .id | grep -qx "$left"
  run ceso-backup gc
  assert_status 0
  assert_contains "$output" "$left"
  [ ! -e "$(target_dir)/$left" ]
  # The next run removes the snapshot the killed run left.
  assert_eq "$(snapshots_of app01)" "[\"ceso-backup $left\"]"
  run ceso-backup --hot app01
  assert_status 0
  assert_eq "$(snapshots_of app01)" '[]'
}

@test "-j 2 backs up several VMs at once; one record per VM" {
  run bash -c 'ceso-ls | jq -c "select(.name != \"snap01\" and .name != \"gpu01\")" | ceso-backup -j 2 --hot | jq -r .name | sort'
  assert_status 0
  assert_eq "$(echo "$output" | tr '\n' ,)" "app01,db01,$WEB,"
}

@test "prune: per VM, dry-run lists keep/remove with reasons, then removes" {
  for _ in 1 2; do ceso-backup --hot db01 >/dev/null; done
  n=$(ceso-backup ls db01 | jq -s 'map(select(.status=="complete")) | length')
  [ "$n" -ge 3 ]
  run ceso-backup prune --keep-last 1 --dry-run db01
  assert_status 0
  [ "$(echo "$output" | jq -s 'map(select(.action=="keep")) | length')" -eq 1 ]
  echo "$output" | jq -e -s 'map(select(.action=="keep"))[0].reasons == ["last"]'
  [ "$(ceso-backup ls db01 | jq -s 'map(select(.status=="complete")) | length')" -eq "$n" ]
  CESO_MODE=restricted run ceso-backup prune --keep-last 1 db01
  assert_status 5
  run ceso-backup prune --keep-last 1 db01
  assert_status 0
  [ "$(ceso-backup ls db01 | jq -s 'map(select(.status=="complete")) | length')" -eq 1 ]
  keep=$(ceso-backup ls db01 | jq -r 'select(.status=="complete") | .id')
  [ "$(ls -d "$(target_dir)"/db01-* | wc -l)" -eq 1 ]
  # A failed newest backup holds everything.
  sim_fail '{"http":"GET /folder","path":"flat","status":503,"count":-1}'
  ceso-backup --hot --retries 0 db01 2>/dev/null || true
  sim_fail '{}'
  ceso-backup --hot db01 >/dev/null
  sim_fail '{"http":"GET /folder","path":"flat","status":503,"count":-1}'
  ceso-backup --hot --retries 0 db01 2>/dev/null || true
  run ceso-backup prune --keep-last 1 db01
  assert_status 0
  echo "$output" | jq -e -s 'all(.action == "keep") and (.[0].reasons[0] | startswith("held"))'
  [ -d "$(target_dir)/$keep" ]
}

@test "prune --keep-within: 6mo and 6min work, a bare m is refused before anything is read" {
  # A second after the failed runs of the test above, so this run is the newest.
  sleep 1
  ceso-backup --hot db01 >/dev/null
  n=$(ceso-backup ls db01 | jq -s 'map(select(.status=="complete")) | length')
  run ceso-backup prune --keep-within 6mo --dry-run db01
  assert_status 0
  # Every complete backup is younger than six months (failed runs are removed).
  echo "$output" | jq -e -s 'map(select(.status == "complete"))
    | length > 0 and all(.action == "keep" and (.reasons | index("within 6mo")))'
  run ceso-backup prune --keep-within 6min --dry-run db01
  assert_status 0
  echo "$output" | jq -e -s 'map(select(.status == "complete"))[0]
    | .action == "keep" and (.reasons | index("within 6min"))'
  for d in 6m 1y6m 6m1d; do
    run ceso-backup prune --keep-within "$d" db01
    assert_status 2
    assert_contains "$output" "--keep-within: bad duration '$d': 'm' is ambiguous"
    assert_contains "$output" "min for minutes or"
    assert_contains "$output" "mo for months"
  done
  run ceso-backup prune --keep-within 7 db01
  assert_status 2
  assert_contains "$output" "the number 7 has no unit"
  [ "$(ceso-backup ls db01 | jq -s 'map(select(.status=="complete")) | length')" -eq "$n" ]
}

@test "reindex rebuilds the catalog from the target's manifests" {
  before=$(ceso-backup ls | jq -s -c 'map(select(.status=="complete")) | map(.id) | sort')
  rm -f "$XDG_STATE_HOME/ceso/backups.db"*
  assert_eq "$(ceso-backup ls | wc -l)" 0
  run ceso-backup reindex
  assert_status 0
  assert_eq "$(ceso-backup ls | jq -s -c 'map(.id) | sort')" "$before"
}

@test "rm removes a backup; restricted mode refuses" {
  id=$(ceso-backup --hot db01 | jq -r .backup.id)
  CESO_MODE=restricted run ceso-backup rm "$id"
  assert_status 5
  [ -d "$(target_dir)/$id" ]
  run ceso-backup rm "$id"
  assert_status 0
  [ ! -e "$(target_dir)/$id" ]
  # Gone from the catalog and the target: an unknown id is bad input.
  run ceso-backup verify "$id"
  assert_status 3
  assert_contains "$output" "no backup '$id'"
}

@test "usage errors: --hot with --cold, no target, prune without rules" {
  run ceso-backup --hot --cold db01
  assert_status 2
  CESO_BACKUP_TARGET= run ceso-backup db01
  assert_status 2
  assert_contains "$output" "no backup target"
  run ceso-backup prune
  assert_status 2
}

@test "free license: a hot backup of a running VM fails with one clear line" {
  (
    export CESO_SIM_STATE="$BATS_TEST_TMPDIR/free"
    mkdir -p "$CESO_SIM_STATE"
    eval "$("$SIMCTL" start -free -vms 0 -vm-spec "$BATS_FILE_TMPDIR/vms.json")"
    run ceso-backup --hot app01
    "$SIMCTL" stop
    [ "$status" -eq 1 ]
    assert_contains "$output" "read-only"
    [ "$(echo "$output" | wc -l)" -eq 1 ]
  )
}

@test "sftp target against a real sshd: unknown host refused, accepted once, changed key refused" {
  sshd_start
  dir="$BATS_FILE_TMPDIR/sftp-target"
  mkdir -p "$dir"
  url="sftp://root@127.0.0.1:$SSHD_PORT$dir"
  rm -f "$HOME/.ssh/known_hosts"
  run ceso-backup --target "$url" --hot db01
  assert_status 6
  assert_contains "$output" "not in"
  [ "$(ls "$dir" | wc -l)" -eq 0 ]
  run ceso-backup --target "$url" --accept-new-host-key --hot db01
  assert_status 0
  id=$(echo "$output" | jq -r .backup.id)
  [ -f "$dir/$id/manifest.json" ]
  grep -q "\[127.0.0.1\]:$SSHD_PORT" "$HOME/.ssh/known_hosts"
  # The stored disk is the datastore's.
  src=$(jq -r '.files[] | select(.kind=="extent") | .source' "$dir/$id/manifest.json")
  zstd -qdc "$dir/$id/disk0-flat.vmdk.zst" | cmp - "$(ds_file "$src")"
  # Known now; verify reads back over sftp.
  run ceso-backup verify "$id"
  assert_status 0
  echo "$output" | jq -e '.verify == "ok"'
  # Restore streams from the sftp target into the host: the same bytes.
  run ceso-restore "$id" --as db01-sftp -q
  assert_status 0
  file=$(ceso-info db01-sftp | jq -r '.disks[0].file')
  zstd -qdc "$dir/$id/disk0-flat.vmdk.zst" | cmp - "$(ds_file "${file%.vmdk}-flat.vmdk")"
  ceso-rm --yes db01-sftp >/dev/null
  # A different key for that host is refused.
  ssh-keygen -q -t ed25519 -N '' -f "$BATS_TEST_TMPDIR/other"
  echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$BATS_TEST_TMPDIR/other.pub")" >"$HOME/.ssh/known_hosts"
  run ceso-backup --target "$url" --hot db01
  assert_status 6
  assert_contains "$output" "differs"
  sshd_stop
}

@test "identity, not names: a renamed VM is backed up under its current name; a record whose id names another VM is refused (exit 3)" {
  load helpers/identity
  saved=$(saved_record db01)
  id=$(jq -r .id <<<"$saved")
  rename_vm "$id" db01-renamed
  before=$(ls "$(target_dir)" | wc -l)
  run bash -c 'ceso-backup 2>/dev/null' <<<"$saved"
  assert_status 0
  echo "$output" | jq -e --arg id "$id" '.id == $id and .name == "db01-renamed" and .changed == true'
  jq -e '.vm.name == "db01-renamed"' "$(target_dir)/$(jq -r .backup.id <<<"$output")/manifest.json"
  # hand-written, without uuid: the id's VM has another name now, so nothing is backed up
  run ceso-backup <<<"{\"type\":\"vm\",\"id\":\"$id\",\"name\":\"db01\"}"
  assert_status 3
  assert_contains "$output" "VM $id is now named 'db01-renamed'"
  assert_eq "$(ls "$(target_dir)" | wc -l)" $((before + 1))
  rename_vm "$id" db01
}

# Per-verb option tables: an option of another verb is a usage error naming
# the option and the verb, before any catalog, target or host is touched.
@test "an option of another verb is refused with exit 2 naming option and verb" {
  run ceso-backup ls --keep-daily 3 --power-on --as foo
  assert_status 2
  assert_contains "$output" "option '--keep-daily' is not an option of 'ceso-backup ls' (it is an option of: prune)"
  run ceso-backup ls --power-on
  assert_status 2
  assert_contains "$output" "'--power-on' is not an option of 'ceso-backup ls' (it is an option of: restore)"
  # before the verb; with an inline value; a common group of other verbs
  run ceso-backup --as foo ls
  assert_status 2
  assert_contains "$output" "'--as' is not an option of 'ceso-backup ls'"
  run ceso-backup prune --keep-last 1 --hot
  assert_status 2
  assert_contains "$output" "'--hot' is not an option of 'ceso-backup prune' (it is an option of: create)"
  run ceso-backup verify --level=3
  assert_status 2
  assert_contains "$output" "'--level' is not an option of 'ceso-backup verify'"
  run ceso-backup gc --url https://127.0.0.1:1
  assert_status 2
  assert_contains "$output" "'--url' is not an option of 'ceso-backup gc' (it is an option of: create, restore)"
  run ceso-backup reindex --json
  assert_status 2
  assert_contains "$output" "'--json' is not an option of 'ceso-backup reindex'"
  run ceso-backup ls -j 2
  assert_status 2
  assert_contains "$output" "'-j' is not an option of 'ceso-backup ls' (it is an option of: create)"
  # the default verb (create) refuses restore's and prune's options
  run ceso-backup --keep-last 2 web01
  assert_status 2
  assert_contains "$output" "'--keep-last' is not an option of 'ceso-backup create' (it is an option of: prune)"
  run ceso-backup create --replace web01
  assert_status 2
  assert_contains "$output" "'--replace' is not an option of 'ceso-backup create' (it is an option of: restore)"
  # restore refuses create's options, including the cloud-init group's absence elsewhere
  run ceso-backup restore --cold ID
  assert_status 2
  assert_contains "$output" "'--cold' is not an option of 'ceso-backup restore'"
  run ceso-backup create --fqdn a.example web01
  assert_status 2
  assert_contains "$output" "'--fqdn' is not an option of 'ceso-backup create' (it is an option of: restore)"
}

@test "--timeout and --retries: create's and restore's own, no other verb's" {
  for verb in ls verify rm prune gc reindex; do
    run ceso-backup "$verb" --timeout 5
    assert_status 2
    assert_contains "$output" "'--timeout' is not an option of 'ceso-backup $verb' (it is an option of: create, restore)"
    run ceso-backup "$verb" --retries 1
    assert_status 2
  done
  run ceso-backup create --help
  assert_contains "$output" "cold: how long to wait for a guest shutdown (default 300)"
  [[ "$output" != *"power-on"* ]] || { echo unexpected power-on >&2; return 1; }
  run ceso-backup restore --help
  assert_contains "$output" "limit for each power change and for --wait (default 600)"
  assert_contains "$output" "start a failed disk upload again up to N times (default 3)"
  [[ "$output" != *"guest shutdown"* ]] || { echo unexpected guest shutdown >&2; return 1; }
}

@test "VERB --help lists only that verb's options; --help the verbs and create's" {
  run ceso-backup ls --help
  assert_status 0
  assert_contains "$output" "Usage: ceso-backup ls [OPTION]... [VM]..."
  assert_contains "$output" "--target URL"
  for o in --keep-daily --power-on --as --hot --dry-run --url --accept-new-host-key Commands:; do
    [[ "$output" != *"$o"* ]] || { echo unexpected $o >&2; return 1; }
  done
  run ceso-backup prune --help
  assert_status 0
  assert_contains "$output" "--keep-within DURATION"
  assert_contains "$output" "--dry-run"
  [[ "$output" != *"--as "* ]] || { echo unexpected --as  >&2; return 1; }
  [[ "$output" != *"--level"* ]] || { echo unexpected --level >&2; return 1; }
  run ceso-backup restore --help
  assert_status 0
  assert_contains "$output" "--fqdn"
  assert_contains "$output" "--as NAME"
  [[ "$output" != *"--keep-last"* ]] || { echo unexpected --keep-last >&2; return 1; }
  [[ "$output" != *"--jobs"* ]] || { echo unexpected --jobs >&2; return 1; }
  run ceso-backup --help
  assert_status 0
  assert_contains "$output" "Commands:"
  assert_contains "$output" "Options of create (the default command):"
  assert_contains "$output" "--hot"
  [[ "$output" != *"--keep-daily"* ]] || { echo unexpected --keep-daily >&2; return 1; }
  [[ "$output" != *"--fqdn"* ]] || { echo unexpected --fqdn >&2; return 1; }
}
