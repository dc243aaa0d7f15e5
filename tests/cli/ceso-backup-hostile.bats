#!/usr/bin/env bats
# ceso-backup against hostile input and a target changed behind its back:
# untrusted backup ids, foreign entries at the target root, backups deleted
# outside ceso, id collisions, bad manifests, broken descriptors, files the
# host does not serve, identity on restore, concurrent runs. Each target case
# runs against file:// and against sftp:// (a real local sshd).

load helpers/common
load helpers/sshd

setup_file() {
  cat >"$BATS_FILE_TMPDIR/vms.json" <<'JSON'
[{"name":"hv01","power":"off"},
 {"name":"hv02","power":"off"},
 {"name":"hv03","power":"off"},
 {"name":"dup","power":"off"},
 {"name":"live01","power":"on","tools":"running"}]
JSON
  sim_start -vms 0 -fill-mib 2 -vm-spec "$BATS_FILE_TMPDIR/vms.json"
  mkdir -p "$BATS_FILE_TMPDIR/file-target" "$BATS_FILE_TMPDIR/sftp-target"
  export CESO_BACKUP_TARGET="file://$BATS_FILE_TMPDIR/file-target"
  sshd_start
  export SFTP_URL="sftp://root@127.0.0.1:$SSHD_PORT$BATS_FILE_TMPDIR/sftp-target"
  rm -f "$HOME/.ssh/known_hosts"
  ceso-backup gc --target "$SFTP_URL" --accept-new-host-key -q >/dev/null
}

teardown_file() {
  sshd_stop
  sim_stop
}

setup() { sim_reset; sim_fail '{}'; }

# Both targets: their URL and their local directory.
KINDS="file sftp"
url_of() { if [ "$1" = file ]; then echo "file://$BATS_FILE_TMPDIR/file-target"; else echo "$SFTP_URL"; fi; }
dir_of() { echo "$BATS_FILE_TMPDIR/$1-target"; }
row_of() { ceso-backup ls | jq -c --arg i "$1" 'select(.id == $i) | {status, created}'; }
backup_to() { ceso-backup --target "$(url_of "$1")" "$2" | jq -r .backup.id; }

@test "ids are untrusted: rm, verify and ceso-restore resolve them or exit 3, and remove nothing else" {
  for k in $KINDS; do
    url=$(url_of "$k")
    dir=$(dir_of "$k")
    id=$(backup_to "$k" hv01)
    mkdir -p "$BATS_FILE_TMPDIR/outside" && echo keep >"$BATS_FILE_TMPDIR/outside/x"
    row=$(row_of "$id")
    long=$(printf 'a%.0s' $(seq 300))
    for bad in "" "." ".." "../outside" "$id/" "$dir/$id" "/abs" "a/b" "$id"$'\n'x "$long" \
      "$id-unknown" "${id:0:20}"; do
      for cmd in "ceso-backup rm" "ceso-backup verify" ceso-restore; do
        run $cmd --target "$url" "$bad"
        [ "$status" -eq 3 ] || { echo "$cmd $k ${bad@Q}: status $status: $output"; false; }
        # One line naming the problem; a newline in the id is shown escaped.
        [ "$(echo "$output" | wc -l)" -eq 1 ] || { echo "$output"; false; }
      done
      [ -f "$dir/$id/manifest.json" ]
      [ -f "$BATS_FILE_TMPDIR/outside/x" ]
      assert_eq "$(row_of "$id")" "$row"
    done
    assert_eq "$(sim_count CreateVM_Task)" 0
    # The id of a backup at the other target, with this --target: refused.
    other=$(backup_to "$([ "$k" = file ] && echo sftp || echo file)" hv01)
    run ceso-backup rm --target "$url" "$other"
    assert_status 3
    assert_contains "$output" "not at $url"
    [ -n "$(row_of "$other")" ]
    ceso-backup rm "$other" >/dev/null
    # Known only by its manifest (the catalog lost it): found at --target.
    sqlite3 "$XDG_STATE_HOME/ceso/backups.db" "DELETE FROM backups WHERE id = '$id'"
    run ceso-backup verify --target "$url" "$id"
    assert_status 0
    # A well-formed id whose directory holds another backup's manifest.
    cp -r "$dir/$id" "$dir/impostor"
    run ceso-backup rm --target "$url" impostor
    assert_status 3
    assert_contains "$output" "holds a manifest of '$id'"
    [ -d "$dir/impostor" ]
    rm -rf "$dir/impostor"
    # A damaged manifest of a backup the catalog knows: rm still removes it.
    dmg=$(backup_to "$k" hv01)
    echo '{broken' >"$dir/$dmg/manifest.json"
    run ceso-backup rm "$dmg"
    assert_status 0
    [ ! -e "$dir/$dmg" ] && [ -z "$(row_of "$dmg")" ]
    # Only that backup's own directory goes.
    run ceso-backup rm --target "$url" "$id"
    assert_status 0
    [ ! -e "$dir/$id" ]
    [ -d "$dir" ]
    [ -f "$BATS_FILE_TMPDIR/outside/x" ]
  done
}

@test "gc removes only ceso's dead runs; stray entries break neither create, gc nor reindex" {
  for k in $KINDS; do
    url=$(url_of "$k")
    dir=$(dir_of "$k")
    mkdir -p "$dir/lost+found" "$dir/foreign" "$dir/empty"
    echo data >"$dir/foreign/file"
    echo stray >"$dir/README"
    # Another machine's run in progress: its marker names a host we cannot check.
    mkdir -p "$dir/hv01-20000101T000000Z-0000000000000000"
    echo '{"run":"x","vm_key":"k","lock":"/x.lock","host":"elsewhere.example","pid":1,"started":1}' \
      >"$dir/hv01-20000101T000000Z-0000000000000000/.in-progress"
    # A run of ours killed mid-copy.
    ceso-backup --target "$url" --limit-rate 256K hv02 >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do
      killed=$(cd "$dir" && for d in hv02-*/; do if [ -f "$d.in-progress" ]; then echo "${d%/}"; fi; done)
      [ -n "$killed" ] && break
      sleep 0.1
    done
    sleep 0.5
    kill -9 "$pid"
    wait "$pid" || true
    [ -n "$killed" ] && [ -d "$dir/$killed" ]
    # create, gc and reindex all work with the stray file at the root.
    run ceso-backup --target "$url" hv01
    assert_status 0
    run ceso-backup gc --target "$url"
    assert_status 0
    assert_eq "$(echo "$output" | grep '^{' | jq -r .id)" "$killed"
    assert_contains "$output" "'lost+found': not made by ceso-backup"
    assert_contains "$output" "'README': not made by ceso-backup"
    [ ! -e "$dir/$killed" ]
    [ -d "$dir/lost+found" ] && [ -d "$dir/empty" ] && [ -f "$dir/foreign/file" ] && [ -f "$dir/README" ]
    [ -f "$dir/hv01-20000101T000000Z-0000000000000000/.in-progress" ]
    run ceso-backup reindex --target "$url"
    assert_status 0
    rm -rf "$dir/lost+found" "$dir/foreign" "$dir/empty" "$dir/README" "$dir"/hv01-20000101T*
  done
}

@test "prune counts only backups present at the target; a VM keeps its newest restorable one" {
  for k in $KINDS; do
    url=$(url_of "$k")
    dir=$(dir_of "$k")
    ids=()
    for _ in 1 2 3; do ids+=("$(backup_to "$k" hv03)"); sleep 1; done
    # The newest is deleted behind ceso's back.
    rm -rf "${dir:?}/${ids[2]}"
    run ceso-backup prune --target "$url" --keep-last 1 hv03
    assert_status 4
    assert_contains "$output" "not at $url as the catalog says"
    recs=$(echo "$output" | grep '^{')
    assert_eq "$(echo "$recs" | jq -r --arg i "${ids[2]}" 'select(.id == $i) | .action')" missing
    assert_eq "$(echo "$recs" | jq -r --arg i "${ids[1]}" 'select(.id == $i) | .action')" keep
    assert_eq "$(echo "$recs" | jq -r --arg i "${ids[0]}" 'select(.id == $i) | .action')" remove
    [ -f "$dir/${ids[1]}/manifest.json" ] && [ ! -e "$dir/${ids[0]}" ]
    # A truncated file counts as not present: the last real backup stays.
    f=$(ls "$dir/${ids[1]}"/*flat*.zst | head -1)
    truncate -s -10 "$f"
    run ceso-backup prune --target "$url" --keep-last 1 hv03
    assert_status 4
    assert_contains "$output" "bytes, the manifest says"
    [ -f "$f" ]
    rm -rf "${dir:?}/${ids[1]}"
    ceso-backup gc --target "$url" -q >/dev/null
    # --keep-within 0h keeps no backup by its rule, the newest one still stays.
    a=$(backup_to "$k" hv03)
    sleep 1
    b=$(backup_to "$k" hv03)
    run ceso-backup prune --target "$url" --keep-within 0h hv03
    assert_status 0
    [ ! -e "$dir/$a" ] && [ -f "$dir/$b/manifest.json" ]
    echo "$output" | jq -e -s --arg b "$b" 'map(select(.id == $b))[0].reasons | index("newest")'
    ceso-backup rm "$b" >/dev/null
  done
}

@test "a forced id collision fails without touching the other run's backup or catalog row" {
  for k in $KINDS; do
    url=$(url_of "$k")
    dir=$(dir_of "$k")
    id="collide-$k"
    CESO_BACKUP_TEST_ID=$id run ceso-backup --target "$url" hv01
    assert_status 0
    row=$(row_of "$id")
    sum=$(cd "$dir/$id" && sha256sum ./* | sha256sum)
    sleep 1
    CESO_BACKUP_TEST_ID=$id run ceso-backup --target "$url" hv02
    assert_status 1
    assert_contains "$output" "exists already"
    assert_contains "$output" "nothing was changed"
    assert_eq "$(row_of "$id")" "$row"
    assert_eq "$(cd "$dir/$id" && sha256sum ./* | sha256sum)" "$sum"
    run ceso-backup verify "$id"
    assert_status 0
    # A directory of someone else's with that name: refused, left as it is.
    mkdir -p "$dir/taken-$k" && echo mine >"$dir/taken-$k/f"
    CESO_BACKUP_TEST_ID=taken-$k run ceso-backup --target "$url" hv01
    assert_status 1
    assert_eq "$(cat "$dir/taken-$k/f")" mine
    [ -z "$(row_of "taken-$k")" ]
    # The hook takes only well-formed ids.
    CESO_BACKUP_TEST_ID=../x run ceso-backup --target "$url" hv01
    assert_status 3
    assert_contains "$output" "bad backup id"
    rm -rf "$dir/taken-$k"
    ceso-backup rm "$id" >/dev/null
  done
}

@test "reindex indexes every good manifest and names each bad one (exit 4)" {
  for k in $KINDS; do
    url=$(url_of "$k")
    dir=$(dir_of "$k")
    a=$(backup_to "$k" hv01)
    b=$(backup_to "$k" hv02)
    mkdir -p "$dir/bad-json" && echo '{not json' >"$dir/bad-json/manifest.json"
    cp -r "$dir/$a" "$dir/moved"
    echo stray >"$dir/stray-file"
    rm -f "$XDG_STATE_HOME"/ceso/backups.db*
    run ceso-backup reindex --target "$url"
    assert_status 4
    assert_contains "$output" "not indexed: bad-json: manifest: not JSON"
    assert_contains "$output" "not indexed: moved: its manifest names '$a'"
    ids=$(ceso-backup ls | jq -r .id)
    echo "$ids" | grep -qx "$a"
    echo "$ids" | grep -qx "$b"
    ! echo "$ids" | grep -qx -e bad-json -e moved
    rm -rf "$dir/bad-json" "$dir/moved" "$dir/stray-file"
    run ceso-backup reindex --target "$url"
    assert_status 0
    ceso-backup rm "$a" "$b" >/dev/null
  done
}

@test "a descriptor restore could not parse fails the backup; verify and restore catch one that got in" {
  # The host wrote a VM name with a newline into the extent line.
  desc=$(ds_file "$(ceso-info hv03 | jq -r '.disks[0].file')")
  cp "$desc" "$BATS_TEST_TMPDIR/desc"
  sed -i 's/^RW \([0-9]*\) VMFS "\(.*\)"$/RW \1 VMFS "hv\n03-\2"/' "$desc"
  grep -q '^03-' "$desc"
  run ceso-backup hv03
  assert_status 1
  assert_contains "$output" "could not be restored"
  assert_contains "$output" "broken extent line"
  ceso-backup ls hv03 | jq -e -s 'last | .status == "failed"'
  for d in "$(dir_of file)"/hv03-*/; do [ ! -e "$d" ] || [ -f "$d/manifest.json" ]; done
  cp "$BATS_TEST_TMPDIR/desc" "$desc"
  # A backup whose stored descriptor was swapped (hashes made to match).
  id=$(backup_to file hv03)
  dir=$(dir_of file)/$id
  name=$(jq -r '.files[] | select(.kind == "descriptor") | .name' "$dir/manifest.json")
  zstd -qdc "$dir/$name" | sed 's/^RW \([0-9]*\) VMFS "\(.*\)"$/RW \1 VMFS "\2/' >"$BATS_TEST_TMPDIR/bad"
  zstd -q -f "$BATS_TEST_TMPDIR/bad" -o "$dir/$name"
  jq --arg n "$name" --argjson size "$(stat -c %s "$BATS_TEST_TMPDIR/bad")" \
    --argjson ssize "$(stat -c %s "$dir/$name")" \
    --arg sha "$(sha256sum <"$BATS_TEST_TMPDIR/bad" | cut -d' ' -f1)" \
    --arg sxxh "$(xxhsum -H2 <"$dir/$name" | cut -d' ' -f1)" \
    '.files |= map(if .name == $n then .size = $size | .stored_size = $ssize | .sha256 = $sha
      | .stored_xxh128 = $sxxh else . end)' "$dir/manifest.json" >"$BATS_TEST_TMPDIR/m"
  mv "$BATS_TEST_TMPDIR/m" "$dir/manifest.json"
  run ceso-backup verify "$id"
  assert_status 4
  assert_contains "$output" "restore cannot use it"
  run ceso-restore "$id" --as hv03b
  assert_status 1
  assert_contains "$output" "cannot be restored"
  assert_eq "$(sim_count MakeDirectory)" 0
  ceso-backup rm "$id" >/dev/null
}

@test "a file layoutEx lists but the host does not serve is a warning in the record" {
  sim_fail '{"http":"GET /folder","path":".nvram","status":404,"count":-1}'
  run ceso-backup hv01
  assert_status 0
  assert_contains "$output" "not served (HTTP 404)"
  rec=$(echo "$output" | grep '^{')
  echo "$rec" | jq -e '.backup.warnings | length == 1 and (.[0] | test("nvram"))'
  id=$(echo "$rec" | jq -r .backup.id)
  jq -e '.warnings | length == 1' "$(dir_of file)/$id/manifest.json"
  jq -e '[.files[].kind] | index("nvram") == null' "$(dir_of file)/$id/manifest.json"
  # A served NVRAM: no warnings field.
  sim_fail '{}'
  ceso-backup hv01 | jq -e '.backup | has("warnings") | not'
}

@test "restore by name considers only the same VM; --replace checks identity" {
  id=$(backup_to file dup)
  uuid=$(ceso-info dup | jq -r .uuid)
  dir=$(dir_of file)
  # Another host's newer backup of a VM also named dup.
  cp -r "$dir/$id" "$dir/dup-other"
  jq '.id = "dup-other" | .vm.endpoint = "esx-other.example:443" | .vm.uuid = "4200-other"
    | .started += 100' "$dir/dup-other/manifest.json" >"$BATS_TEST_TMPDIR/m"
  mv "$BATS_TEST_TMPDIR/m" "$dir/dup-other/manifest.json"
  ceso-backup reindex -q
  # --as another VM by name: that VM is not the one backed up.
  hv02=$(ceso-ls --name hv02 | jq -r .id)
  run ceso-restore dup --as hv02 --replace
  assert_status 5
  assert_contains "$output" "is not the VM backup '$id' was made of"
  assert_eq "$(ceso-ls --name hv02 | jq -r .id)" "$hv02"
  assert_eq "$(sim_count CreateVM_Task)" 0
  # The live dup's own backup, not the other host's newer one.
  run ceso-restore dup --replace
  assert_status 0
  assert_contains "$output" "the newest backup of 'dup' (VM on 127.0.0.1"
  echo "$output" | grep '^{' | jq -e --arg id "$id" --arg u "$uuid" '.restored_from == $id
    and .backup_of.uuid == $u and .backup_of.name == "dup"'
  # The restored dup has a new uuid: by name it has no backup; by id it may be replaced.
  run ceso-restore dup --replace
  assert_status 3
  assert_contains "$output" "has no backup"
  assert_contains "$output" "esx-other.example:443 uuid 4200-other (newest dup-other)"
  # No VM of that name: backups of two VMs are ambiguous, both listed.
  ceso-rm --yes dup >/dev/null
  run ceso-restore dup
  assert_status 3
  assert_contains "$output" "more than one VM"
  assert_contains "$output" "uuid $uuid (newest $id)"
  assert_contains "$output" "uuid 4200-other (newest dup-other)"
  assert_eq "$(sim_count CreateVM_Task)" 1
  # By id it restores.
  run ceso-restore "$id" -q
  assert_status 0
  ceso-backup rm dup-other >/dev/null
}

@test "a second run from another state directory never removes the first run's live snapshot" {
  ceso-backup --hot --limit-rate 512K live01 >"$BATS_TEST_TMPDIR/out" 2>&1 &
  pid=$!
  for _ in $(seq 100); do [ "$(sim_count CreateSnapshot_Task)" -eq 1 ] && break; sleep 0.1; done
  sleep 0.3
  snaps=$(ceso-info live01 | jq -c '[.snapshots[].name]')
  XDG_STATE_HOME="$BATS_TEST_TMPDIR/other-state" run ceso-backup --hot live01
  assert_status 1
  assert_contains "$output" "being backed up by another run"
  assert_contains "$output" "pid $pid"
  assert_eq "$(ceso-info live01 | jq -c '[.snapshots[].name]')" "$snaps"
  [ "$(sim_count RemoveSnapshot_Task)" -eq 0 ]
  # gc from that state directory leaves the live run's directory alone too.
  live=$(cd "$(dir_of file)" && for d in live01-*/; do if [ -f "$d.in-progress" ]; then echo "${d%/}"; fi; done)
  [ -n "$live" ]
  XDG_STATE_HOME="$BATS_TEST_TMPDIR/other-state" run ceso-backup gc
  assert_status 0
  assert_contains "$output" "'$live': its backup run may still be going"
  [ -f "$(dir_of file)/$live/.in-progress" ]
  wait "$pid"
  assert_eq "$(ceso-info live01 | jq -c '[.snapshots[].name]')" '[]'
  # A run of another machine: its snapshot is never removed; the run refuses.
  ceso-snap create --name 'ceso-backup elsewhere' \
    --description 'Temporary snapshot of a ceso-backup run; removed when the backup ends. Run: {"run":"elsewhere","host":"elsewhere.example","pid":1,"lock":"/x","started":1}' \
    live01 >/dev/null 2>&1 || true
  run ceso-backup --hot live01
  assert_status 1
  assert_contains "$output" "machine 'elsewhere.example'"
  assert_eq "$(ceso-info live01 | jq -c '[.snapshots[].name]')" '["ceso-backup elsewhere"]'
}
