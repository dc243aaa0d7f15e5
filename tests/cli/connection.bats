#!/usr/bin/env bats
# Connection settings and TLS against the simulator serving HTTPS with a
# self-signed certificate.

load helpers/common

setup_file() {
  sim_start -vms 2 -tls
  export CESO_BACKUP_TARGET="file://$BATS_FILE_TMPDIR/target"
  mkdir -p "$BATS_FILE_TMPDIR/target"
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

# ---- Limits on what a host sends (ceso(7) LIMITS). The simulator plays the
# hostile host (tests/sim/cesosim/hostile.go); small limits via the
# environment keep the tests short. Only exit codes and messages are checked.

hostile_setup() {
  export CESO_THUMBPRINT="$CESO_SIM_THUMBPRINT"
  fresh_cache
  sim_fail '{}'
}
# A logged-in session in the cache, so the next run goes straight to its call.
warm_session() { ceso-ls >/dev/null; }
# No raw control character (ESC, CR, …) may reach the terminal.
assert_no_controls() {
  if printf '%s' "$1" | tr -d '\n' | LC_ALL=C grep -q '[[:cntrl:]]'; then
    printf 'control characters in:\n%s\n' "$1" | cat -v >&2
    return 1
  fi
}
VM0=ha-host_VM0

@test "an answer nested 100,000 or 1,000,000 deep at login is refused, not a crash (exit 6)" {
  hostile_setup
  for n in 100000 1000000; do
    sim_fail "{\"method\":\"RetrieveServiceContent\",\"nest\":$n}"
    run ceso-ls
    assert_status 6
    assert_contains "$output" "RetrieveServiceContent on 127.0.0.1:"
    assert_contains "$output" "host answer nested deeper than 512 levels"
  done
  sim_fail '{"method":"Login","nest":1000000}'
  run ceso-ls
  assert_status 6
  assert_contains "$output" "Login on 127.0.0.1:"
  assert_contains "$output" "host answer nested deeper than 512 levels"
  run ceso-ls -o name  # the host behaves again: so does ceso
  assert_status 0
}

@test "deep nesting in a property retrieval and in a fault body is refused (exit 6)" {
  hostile_setup
  warm_session
  for rule in '{"method":"RetrievePropertiesEx","nest":600,"nest_in":"val"}' \
    '{"method":"RetrievePropertiesEx","nest":1000000,"nest_in":"val"}' \
    '{"method":"RetrievePropertiesEx","fault":"SystemError","nest":1000000}'; do
    sim_fail "$rule"
    run ceso-ls
    assert_status 6
    assert_contains "$output" "RetrievePropertiesEx on 127.0.0.1:"
    assert_contains "$output" "host answer nested deeper than 512 levels"
  done
  run ceso-info "$VM0"
  assert_status 0
}

@test "an endless answer ends at the size cap (exit 6), at login and in a streamed retrieval" {
  hostile_setup
  sim_fail '{"method":"RetrieveServiceContent","endless":true}'
  run ceso-ls
  assert_status 6
  assert_contains "$output" "RetrieveServiceContent on 127.0.0.1:"
  assert_contains "$output" "host answer larger than 64 MiB"
  sim_fail '{"method":"RetrieveServiceContent","endless":true}'
  CESO_MAX_ANSWER_MIB=1 run ceso-ls
  assert_status 6
  assert_contains "$output" "host answer larger than 1 MiB"
  warm_session
  sim_fail '{"method":"RetrievePropertiesEx","endless":true}'
  CESO_MAX_ANSWER_MIB=2 run ceso-ls
  assert_status 6
  assert_contains "$output" "RetrievePropertiesEx on 127.0.0.1:"
  assert_contains "$output" "host answer larger than 2 MiB"
}

@test "a host that sends nothing is given up after the idle timeout (exit 6)" {
  hostile_setup
  sim_fail '{"method":"RetrieveServiceContent","stall_ms":8000}'
  CESO_IDLE_TIMEOUT=1 run ceso-ls
  assert_status 6
  assert_contains "$output" "RetrieveServiceContent on 127.0.0.1:"
  assert_contains "$output" "host sent nothing for 1 s"
  warm_session
  sim_fail '{"method":"RetrievePropertiesEx","stall_ms":8000}'
  CESO_IDLE_TIMEOUT=1 run ceso-ls
  assert_status 6
  assert_contains "$output" "RetrievePropertiesEx on 127.0.0.1:"
  assert_contains "$output" "host sent nothing for 1 s"
}

@test "a host trickling 2 bytes/s ends at the call timeout (exit 6): login and property retrieval" {
  hostile_setup
  sim_fail '{"method":"Login","trickle_bps":2}'
  CESO_CALL_TIMEOUT=2 run ceso-ls
  assert_status 6
  assert_contains "$output" "Login on 127.0.0.1:"
  assert_contains "$output" "host call took more than 2 s"
  sim_fail '{}'
  warm_session
  sim_fail '{"method":"RetrievePropertiesEx","trickle_bps":2}'
  CESO_CALL_TIMEOUT=2 run ceso-ls
  assert_status 6
  assert_contains "$output" "RetrievePropertiesEx on 127.0.0.1:"
  assert_contains "$output" "host call took more than 2 s"
}

@test "a datastore download trickling 2 bytes/s ends at the idle timeout (exit 6)" {
  hostile_setup
  sim_fail '{"http":"GET /folder","path":"flat","trickle_bps":2,"count":-1}'
  CESO_IDLE_TIMEOUT=2 run ceso-backup --hot --retries 0 "$VM0"
  assert_status 6
  assert_contains "$output" "host sent less than 1 KiB/s for 2 s"
  assert_contains "$output" "[LocalDS_0] $VM0/"
  ceso-info "$VM0" | jq -e '.snapshots == []'  # cleaned up
}

@test "HTTP errors on a download name the status and the file, with the page's first line escaped" {
  hostile_setup
  for code in 401 403 404 500 503; do
    sim_fail "{\"http\":\"GET /folder\",\"path\":\"flat\",\"status\":$code,\"count\":-1,\"body\":\"\\u001b[2J\\u001b]0;pwned\\u0007busy\\r\\nsecond line\"}"
    run ceso-backup --hot --retries 0 "$VM0"
    sim_fail '{}'
    case $code in
      401 | 403) assert_status 6 ;;
      *) assert_status 1 ;;
    esac
    assert_no_controls "$output"
    if [ "$code" = 404 ]; then
      assert_contains "$output" "the host says it does not exist"
      continue
    fi
    assert_contains "$output" "HTTP $code "
    assert_contains "$output" " from host for [LocalDS_0] $VM0/"
    assert_contains "$output" '\x1b[2J\x1b]0;pwned\x07busy'
    [[ "$output" != *"second line"* ]]
    [[ "$output" != *"Failure writing"* ]]
  done
  sim_fail '{"http":"GET /folder","path":"flat","status":503,"count":-1}'
  run ceso-backup --hot --retries 0 "$VM0"
  assert_contains "$output" "HTTP 503 Service Unavailable from host for [LocalDS_0] $VM0/"
}

@test "HTTP errors on an upload name the status and the file, with the page's first line escaped" {
  hostile_setup
  id=$(ceso-backup --hot "$VM0" | jq -r .backup.id)
  [ -n "$id" ] && [ "$id" != null ]
  for code in 401 403 404 500 503; do
    sim_fail "{\"http\":\"PUT /folder\",\"status\":$code,\"count\":-1,\"body\":\"\\u001b[2Jrefused\\nsecond line\"}"
    run ceso-restore "$id" --as "restored-$code" --retries 0
    sim_fail '{}'
    assert_status 1  # restore reports a failed upload as its own failure, rolled back
    assert_contains "$output" "rolled back"
    assert_no_controls "$output"
    assert_contains "$output" "HTTP $code "
    assert_contains "$output" " from host for [LocalDS_0] restored-$code/"
    assert_contains "$output" '\x1b[2Jrefused'
    [[ "$output" != *"second line"* ]]
  done
}

@test "a fault string with terminal controls and newlines, or 10 MB long, is printed escaped and short" {
  hostile_setup
  warm_session
  sim_fail '{"method":"RetrievePropertiesEx","fault":"SystemError","message":"\u009b2J\u009b31mroot ok\nceso-ls: all fine\r"}'
  run ceso-ls
  assert_status 1
  assert_no_controls "$output"
  assert_contains "$output" '\xc2\x9b2J\xc2\x9b31mroot ok\nceso-ls: all fine\r'
  [ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ]
  sim_fail '{"method":"RetrievePropertiesEx","fault":"SystemError","message":"A","message_repeat":10485760}'
  run ceso-ls
  assert_status 1
  assert_contains "$output" "$(printf 'A%.0s' {1..300})…"
  [ "${#output}" -lt 1000 ]
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
