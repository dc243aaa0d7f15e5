#!/usr/bin/env bats
# Connection settings and TLS against the simulator serving HTTPS with a
# self-signed certificate.

load helpers/common

setup_file() {
  sim_start -vms 2 -tls
}

teardown_file() { sim_stop; }

@test "a self-signed certificate is refused by default, with its thumbprint and how to pin it" {
  fresh_cache
  run ceso-ls
  assert_status 6
  assert_contains "$output" "$CESO_SIM_THUMBPRINT"
  assert_contains "$output" "CESO_THUMBPRINT="
}

@test "the right thumbprint is accepted, in any case and without colons" {
  fresh_cache
  CESO_THUMBPRINT="$CESO_SIM_THUMBPRINT" run ceso-ls -o name
  assert_status 0
  [ "$(echo "$output" | wc -l)" -eq 2 ]
  fresh_cache
  tp=$(echo "$CESO_SIM_THUMBPRINT" | tr -d : | tr A-F a-f)
  CESO_THUMBPRINT="$tp" run ceso-ls -o name
  assert_status 0
}

@test "a wrong thumbprint is refused" {
  fresh_cache
  CESO_THUMBPRINT=$(printf 'AB%.0s' {1..32}) run ceso-ls
  assert_status 6
  assert_contains "$output" "does not match"
}

@test "CESO_INSECURE=1 skips the checks" {
  fresh_cache
  CESO_INSECURE=1 run ceso-ls -o name
  assert_status 0
}

@test "the system CA check passes with the host's certificate as CA file" {
  fresh_cache
  CESO_CA_FILE="$CESO_SIM_CERT" run ceso-ls -o name
  assert_status 0
}

@test "govc variables work when CESO ones are unset" {
  fresh_cache
  env -u CESO_URL -u CESO_USER -u CESO_PASSWORD GOVC_URL="$CESO_URL" GOVC_USERNAME="$CESO_USER" \
    GOVC_PASSWORD="$CESO_PASSWORD" GOVC_INSECURE=1 ceso-ls -o name >"$BATS_TEST_TMPDIR/out"
  [ "$(wc -l <"$BATS_TEST_TMPDIR/out")" -eq 2 ]
}

@test "config file with named hosts and -H; password file must be private" {
  fresh_cache
  mkdir -p "$XDG_CONFIG_HOME/ceso"
  printf '%s\n' "$CESO_PASSWORD" >"$XDG_CONFIG_HOME/ceso/lab.pw"
  chmod 600 "$XDG_CONFIG_HOME/ceso/lab.pw"
  cat >"$XDG_CONFIG_HOME/ceso/config" <<YAML
hosts:
  lab:
    url: $CESO_URL
    user: $CESO_USER
    password_file: lab.pw
    thumbprint: "$CESO_SIM_THUMBPRINT"
YAML
  run env -u CESO_URL -u CESO_PASSWORD ceso-ls -H lab -o name
  assert_status 0
  [ "$(echo "$output" | wc -l)" -eq 2 ]
  fresh_cache
  chmod 644 "$XDG_CONFIG_HOME/ceso/lab.pw"
  run env -u CESO_URL -u CESO_PASSWORD ceso-ls -H lab
  assert_status 5
  assert_contains "$output" "lab.pw"
  run env -u CESO_URL ceso-ls -H nosuch
  assert_status 2
  assert_contains "$output" "lab"
  rm -f "$XDG_CONFIG_HOME/ceso/config"
}

@test "no host anywhere is a usage error naming the ways to give one" {
  run env -u CESO_URL ceso-ls
  assert_status 2
  assert_contains "$output" "CESO_URL"
}

@test "a password on the command line is refused" {
  run ceso-ls --url "https://root:secret@127.0.0.1:1/sdk"
  assert_status 2
  [[ "$output" != *secret* ]]
}

@test "the session cache file is private" {
  fresh_cache
  CESO_INSECURE=1 ceso-ls >/dev/null
  f=$(ls "$XDG_CACHE_HOME"/ceso/sessions/*.json)
  assert_eq "$(stat -c %a "$f")" 600
  assert_eq "$(stat -c %a "$XDG_CACHE_HOME/ceso/sessions")" 700
  ! grep -q "$CESO_PASSWORD" "$f"
}

# Every tool makes ceso's directories and files private: which tool runs
# first on a fresh machine, and the umask, make no difference.
@test "private state: 0700 directories, 0600 files, whatever the umask and the first tool" {
  local vm mask first home bad tool
  vm=$(CESO_INSECURE=1 ceso-ls --json -o name | head -1 | jq -r .name)
  for mask in 000 022; do
    for first in backup set ls; do
      home="$BATS_TEST_TMPDIR/home-$mask-$first"
      mkdir -m 700 "$home"
      (
        umask "$mask"
        export HOME="$home" XDG_CACHE_HOME="$home/.cache" XDG_STATE_HOME="$home/.local/state"
        export XDG_CONFIG_HOME="$home/.config" CESO_INSECURE=1
        export CESO_BACKUP_TARGET="file://$BATS_TEST_TMPDIR/target-$mask-$first"
        mkdir -p "$BATS_TEST_TMPDIR/target-$mask-$first"
        for tool in "$first" backup set ls; do
          case $tool in
            ls) ceso-ls >/dev/null ;;
            set) ceso-set "$vm" --tag "+t$mask$first" >/dev/null ;;
            backup) ceso-backup --quiet "$vm" >/dev/null && ceso-backup ls >/dev/null ;;
          esac
        done
      )
      for f in .local/state/ceso/audit.log .local/state/ceso/audit.log.head \
        .local/state/ceso/backups.db .cache/ceso/sessions; do
        [ -e "$home/$f" ] || { echo "missing $home/$f" >&2; return 1; }
      done
      bad=$(find "$home" -mindepth 1 \( -type d ! -perm 700 \) -o \( -type f ! -perm 600 \) \
        -printf '%m %p\n')
      if [ -n "$bad" ]; then
        echo "umask $mask, $first first: not private:" >&2
        echo "$bad" >&2
        return 1
      fi
    done
  done
}

@test "no error echoes a password given in a URL, however malformed" {
  local pw=Pw9sEcReTz u
  for u in "root:$pw" "root:$pw@" "https://root:$pw@" "https://root:$pw@/sdk" \
    "https://root:pa#$pw@127.0.0.1/sdk" "root:pa/$pw" "ftp://root:$pw@h"; do
    run env CESO_URL="$u" ceso-ls
    assert_status 2
    [[ "$output" != *"$pw"* ]] || { echo "CESO_URL=$u: $output" >&2; return 1; }
    run env -u CESO_URL GOVC_URL="$u" ceso-ls
    [[ "$output" != *"$pw"* ]] || { echo "GOVC_URL=$u: $output" >&2; return 1; }
    run ceso-ls --url "$u"
    assert_status 2
    [[ "$output" != *"$pw"* ]] || { echo "--url $u: $output" >&2; return 1; }
  done
  mkdir -p "$XDG_CONFIG_HOME/ceso"
  printf 'hosts:\n  lab:\n    url: "root:%s"\n' "$pw" >"$XDG_CONFIG_HOME/ceso/config"
  chmod 600 "$XDG_CONFIG_HOME/ceso/config"
  run env -u CESO_URL ceso-ls -H lab
  assert_status 3
  [[ "$output" != *"$pw"* ]]
  rm -f "$XDG_CONFIG_HOME/ceso/config"
  # Backup targets: a password is refused without being shown.
  for u in "sftp://backup:$pw@" "sftp://backup:$pw@nas" "file://backup:$pw@/srv" "nas:$pw@x"; do
    run ceso-backup reindex --target "$u"
    assert_status 2
    [[ "$output" != *"$pw"* ]] || { echo "--target $u: $output" >&2; return 1; }
  done
}
