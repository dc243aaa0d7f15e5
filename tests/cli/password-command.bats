#!/usr/bin/env bats
# Passwords from a command (CESO_PASSWORD_COMMAND, password_command in the
# config file; docs/configuration.md "Password from a command") against the
# simulator, and what the command sees of ceso (no password in its
# environment, /dev/null as input, the terminal's standard error).

load helpers/common

setup_file() {
  sim_start -vms 2
  export SIM_URL=$CESO_URL SIM_PASSWORD=$CESO_PASSWORD
}

teardown_file() { sim_stop; }

setup() {
  fresh_cache # every run logs in: the password is needed each time
  unset CESO_PASSWORD
  rm -f "$XDG_CONFIG_HOME/ceso/config"
  mkdir -p "$XDG_CONFIG_HOME/ceso"
  BIN="$BATS_TEST_TMPDIR/bin"
  mkdir -p "$BIN"
}

# A program in $BIN printing its first argument's text (printf format) on
# standard output, recording that it ran, its arguments, environment and
# standard input.
make_program() {
  local name=$1 out=$2 status=${3:-0}
  cat >"$BIN/$name" <<SH
#!/bin/sh
dir=\$(dirname "\$0")
printf '%s\n' "\$@" >"\$dir/$name.args"
env >"\$dir/$name.env"
cat >"\$dir/$name.stdin"
printf '$out'
exit $status
SH
  chmod 700 "$BIN/$name"
}

config() { printf '%s\n' "$@" >"$XDG_CONFIG_HOME/ceso/config"; }

@test "CESO_PASSWORD_COMMAND logs in with the first line of the output" {
  make_program pw "$SIM_PASSWORD\\nuser: nobody\\nnotes: x\\n"
  CESO_PASSWORD_COMMAND="$BIN/pw show 'lab/sim 1'" run ceso-ls -o name
  assert_status 0
  [ "$(echo "$output" | wc -l)" -eq 2 ]
  assert_eq "$(cat "$BIN/pw.args")" "$(printf 'show\nlab/sim 1')"
}

@test "password_command in a config entry, as a command line and as a list of words" {
  make_program pw "$SIM_PASSWORD \\r\\n"
  config "hosts:" "  sim:" "    url: $SIM_URL" "    user: $CESO_USER" \
    "    password_command: $BIN/pw \"a b\" c\\ d 'e\"f'"
  run env -u CESO_URL ceso-ls -H sim -o name
  assert_status 0
  assert_eq "$(cat "$BIN/pw.args")" "$(printf 'a b\nc d\ne"f')"
  config "hosts:" "  sim:" "    url: $SIM_URL" "    user: $CESO_USER" \
    "    password_command: ['$BIN/pw', '\$HOME', '*']"
  fresh_cache
  run env -u CESO_URL ceso-ls -H sim -o name
  assert_status 0
  assert_eq "$(cat "$BIN/pw.args")" "$(printf '$HOME\n*')"
}

@test "a wrong password from the command is an authentication failure (exit 6)" {
  make_program pw 'not-the-password\n'
  CESO_PASSWORD_COMMAND="$BIN/pw" run ceso-ls
  assert_status 6
}

@test "the command never sees a password in its environment, nor ceso's input" {
  make_program pw "$SIM_PASSWORD\\n"
  # The command is the entry's; the password variables are for other hosts
  # (CESO_URL, GOVC_URL name them), so they are set but do not apply.
  config "hosts:" "  sim:" "    url: $SIM_URL" "    user: $CESO_USER" "    password_command: $BIN/pw"
  run env CESO_URL="http://127.0.0.1:1/sdk" CESO_PASSWORD=CesoPwEnvMarker \
    GOVC_URL="http://user:GovcUrlMarker@127.0.0.1:2/sdk" GOVC_PASSWORD=GovcPwEnvMarker \
    CESO_VISIBLE_MARKER=seen bash -c 'echo "records on stdin" | ceso-ls -H sim -o name'
  assert_status 0
  [ -f "$BIN/pw.env" ]
  grep -q '^CESO_VISIBLE_MARKER=seen$' "$BIN/pw.env"
  grep -q '^CESO_URL=http://127.0.0.1:1/sdk$' "$BIN/pw.env"
  # (bats ignores a failing "! cmd": test the result explicitly)
  leaked=$(grep -v '^CESO_VISIBLE_MARKER=' "$BIN/pw.env" | grep -E 'Marker|^GOVC_URL=' || true)
  assert_eq "$leaked" ""
  assert_eq "$(wc -c <"$BIN/pw.stdin")" 0
}

@test "the command's standard error reaches the terminal; its output never does" {
  cat >"$BIN/pw" <<SH
#!/bin/sh
echo "Enter the passphrase for ceso-test" >&2
echo "$SIM_PASSWORD"
SH
  chmod 700 "$BIN/pw"
  CESO_PASSWORD_COMMAND="$BIN/pw" run ceso-ls -o name
  assert_status 0
  assert_contains "$output" "Enter the passphrase for ceso-test"
  [[ "$output" != *"$SIM_PASSWORD"* ]]
}

@test "a failing command is exit 1 naming the setting and program, never its output" {
  make_program pw 'CesoOutputMarker\n' 3
  CESO_PASSWORD_COMMAND="$BIN/pw" run ceso-ls
  assert_status 1
  assert_eq "$output" "ceso-ls: CESO_PASSWORD_COMMAND: '$BIN/pw' exited with status 3"
  config "hosts:" "  sim:" "    url: $SIM_URL" "    password_command: $BIN/pw"
  run env -u CESO_URL ceso-ls -H sim
  assert_status 1
  assert_eq "$output" "ceso-ls: config 'sim' password_command: '$BIN/pw' exited with status 3"
  CESO_PASSWORD_COMMAND="ceso-no-such-password-program x" run ceso-ls
  assert_status 1
  assert_contains "$output" "cannot run 'ceso-no-such-password-program': no such program"
  # Nothing printed, or only white space: no password.
  for out in '' '\n' '  \n' '\nCesoOutputMarker\n'; do
    make_program pw "$out"
    CESO_PASSWORD_COMMAND="$BIN/pw" run ceso-ls
    assert_status 1
    assert_eq "$output" "ceso-ls: CESO_PASSWORD_COMMAND: '$BIN/pw' printed no password"
  done
  # Killed by a signal.
  printf '#!/bin/sh\nkill -9 $$\n' >"$BIN/pw"
  CESO_PASSWORD_COMMAND="$BIN/pw" run ceso-ls
  assert_status 1
  assert_contains "$output" "was killed by signal 9"
}

@test "more than 64 KiB of output is refused" {
  CESO_PASSWORD_COMMAND="yes CesoOutputMarker" run ceso-ls
  assert_status 1
  assert_eq "$output" "ceso-ls: CESO_PASSWORD_COMMAND: 'yes' wrote more than 64 KiB to standard output; it was stopped"
}

@test "malformed commands name the key: exit 3 in the config file, exit 2 in the environment" {
  for bad in "pw 'lab" 'pw "lab' 'pw lab\' 'pass show x | head -1' 'sh -c $HOME'; do
    config "hosts:" "  sim:" "    url: $SIM_URL" "    password_command: >-" "      $bad"
    run env -u CESO_URL ceso-ls -H sim
    assert_status 3
    assert_contains "$output" "config file '$XDG_CONFIG_HOME/ceso/config', line 4: hosts.sim.password_command: "
    rm "$XDG_CONFIG_HOME/ceso/config"
    CESO_PASSWORD_COMMAND="$bad" run ceso-ls
    assert_status 2
    assert_contains "$output" "ceso-ls: CESO_PASSWORD_COMMAND: "
  done
  CESO_PASSWORD_COMMAND="pw 'lab" run ceso-ls
  assert_contains "$output" "ceso-ls: CESO_PASSWORD_COMMAND: unterminated single quote (')"
}

@test "one password source per level: variables exclusive (2), entry keys exclusive (3)" {
  make_program pw "$SIM_PASSWORD\\n"
  printf '%s\n' "$SIM_PASSWORD" >"$BATS_TEST_TMPDIR/pwfile"
  chmod 600 "$BATS_TEST_TMPDIR/pwfile"
  CESO_PASSWORD_COMMAND="$BIN/pw" CESO_PASSWORD_FILE="$BATS_TEST_TMPDIR/pwfile" run ceso-ls
  assert_status 2
  assert_contains "$output" "CESO_PASSWORD_FILE and CESO_PASSWORD_COMMAND are both set"
  CESO_PASSWORD_COMMAND="$BIN/pw" CESO_PASSWORD=x run ceso-ls
  assert_status 2
  [ ! -f "$BIN/pw.args" ] # refused before running it
  config "hosts:" "  sim:" "    url: $SIM_URL" "    password_file: $BATS_TEST_TMPDIR/pwfile" \
    "    password_command: $BIN/pw"
  run env -u CESO_URL ceso-ls -H sim
  assert_status 3
  assert_contains "$output" "give one of password, password_file and password_command"
  # The environment beats the entry; the entry's command then does not run.
  config "hosts:" "  sim:" "    url: $SIM_URL" "    user: $CESO_USER" "    password_command: $BIN/pw"
  run env -u CESO_URL CESO_PASSWORD_FILE="$BATS_TEST_TMPDIR/pwfile" ceso-ls -H sim -o name
  assert_status 0
  [ ! -f "$BIN/pw.args" ]
}

@test "gpg -d FILE as the password command (a real gpg, key without passphrase)" {
  command -v gpg >/dev/null || skip "gpg is not installed"
  export GNUPGHOME="$BATS_TEST_TMPDIR/gnupg"
  mkdir -m 700 "$GNUPGHOME"
  gpg --batch --quiet --passphrase '' --quick-gen-key ceso-test@example.invalid ed25519 cert,sign never 2>/dev/null
  fpr=$(gpg --batch --with-colons --list-keys ceso-test@example.invalid | awk -F: '/^fpr/ {print $10; exit}')
  gpg --batch --quiet --passphrase '' --quick-add-key "$fpr" cv25519 encr never 2>/dev/null
  printf '%s\n' "$SIM_PASSWORD" | gpg --batch --quiet --trust-model always -e -r ceso-test@example.invalid \
    -o "$BATS_TEST_TMPDIR/sim.gpg"
  CESO_PASSWORD_COMMAND="gpg --batch --quiet --decrypt '$BATS_TEST_TMPDIR/sim.gpg'" run ceso-ls -o name
  status_ls=$status
  gpgconf --kill gpg-agent 2>/dev/null || true
  status=$status_ls
  assert_status 0
  [ "$(echo "$output" | wc -l)" -eq 2 ]
}
