#!/usr/bin/env bats
# ceso, the umbrella: `ceso help` runs what it finds on PATH only as argv,
# never through a shell, only files named ceso-[a-z0-9-]+, with a time limit.

load helpers/common

setup() {
  use_private_dirs
  T=$BATS_TEST_TMPDIR
}

@test "ceso help: PATH directory names are never run as shell commands" {
  local evil p="" i n=0
  mkdir "$T/run"
  for evil in "a;touch pwned1;b" "\$(touch pwned2)" "x'; touch pwned3; '" "\`touch pwned4\`" \
    "sp ace|touch pwned5" "\"; touch pwned6; \""; do
    n=$((n + 1))
    mkdir "$T/$evil"
    cp "$CESO_BUILD/tools/ceso-ls" "$T/$evil/ceso-zz$n"  # one name each: all are run
    p="$p$T/$evil:"
  done
  cd "$T/run"
  PATH="$p$PATH" run ceso help
  assert_status 0
  for i in 1 2 3 4 5 6; do echo "$output" | grep -qE "^  zz$i +List VMs"; done
  for i in 1 2 3 4 5 6; do [ ! -e "$T/run/pwned$i" ] || { echo "pwned$i" >&2; return 1; }; done
}

@test "ceso help: only regular executables named ceso-[a-z0-9-]+ are run, each with a time limit" {
  mkdir -p "$T/bin"
  # Not ceso tools: they must not run, or be cut short, and print nothing.
  printf '#!/bin/sh\ntouch %s/ran-dot\n' "$T" >"$T/bin/ceso-x.sh"
  printf '#!/bin/sh\ntouch %s/ran-upper\n' "$T" >"$T/bin/ceso-Evil"
  printf '#!/bin/sh\ntouch %s/ran-semi\n' "$T" >"$T/bin/ceso-a;b"
  printf '#!/bin/sh\ntouch %s/ran-noexec\n' "$T" >"$T/bin/ceso-noexec"
  mkdir "$T/bin/ceso-dir"
  # Named like a tool: run as argv, stdin closed, killed after the limit.
  printf '#!/bin/sh\necho "$@" >%s/evil-args\nexec sleep 613\n' "$T" >"$T/bin/ceso-evil"
  printf '#!/bin/sh\nprintf "{\\"summary\\":\\"\\\\u001b[31mred\\\\u0007 bell\\"}"\n' >"$T/bin/ceso-esc"
  chmod +x "$T/bin/ceso-x.sh" "$T/bin/ceso-Evil" "$T/bin/ceso-a;b" "$T/bin/ceso-evil" "$T/bin/ceso-esc"
  local start=$SECONDS
  PATH="$T/bin:$PATH" run ceso help
  assert_status 0
  [ $((SECONDS - start)) -lt 30 ]
  for f in ran-dot ran-upper ran-semi ran-noexec; do [ ! -e "$T/$f" ] || { echo "$f" >&2; return 1; }; done
  assert_eq "$(cat "$T/evil-args")" "--dump-options"
  # Listed, with no summary; the sleeping child is gone.
  echo "$output" | grep -qE '^  evil *$'
  ! pgrep -xf "sleep 613" >/dev/null
  # Control characters from a tool's summary never reach the terminal.
  assert_contains "$output" "red bell"
  [[ "$output" != *$'\e'* && "$output" != *$'\a'* ]]
  [[ "$output" != *"x.sh"* && "$output" != *"Evil"* && "$output" != *"a;b"* && "$output" != *"noexec"* ]]
  # Commands are tool names too.
  run ceso "../bin/ceso-evil"
  assert_status 2
}
