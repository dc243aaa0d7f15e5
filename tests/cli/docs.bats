#!/usr/bin/env bats
# Documentation and completions stay in step with the option tables.

load helpers/common

tools() {
  for t in "$CESO_BUILD"/tools/ceso "$CESO_BUILD"/tools/ceso-*; do
    [[ -x "$t" && -f "$t" && "$(basename "$t")" != *.* ]] && basename "$t"
  done
}

@test "committed completions equal the ones generated from the option tables" {
  out="$BATS_TEST_TMPDIR/completions"
  "$REPO_ROOT/scripts/gen-completions" "$CESO_BUILD" "$out"
  run diff -ru "$REPO_ROOT/completions" "$out"
  if [ "$status" -ne 0 ]; then
    echo "$output" | head -40
    echo "completions are stale: run 'make completions' and commit them" >&2
    return 1
  fi
}

@test "every tool has a man page listing every option of its table" {
  for t in $(tools); do
    page="$REPO_ROOT/man/$t.1.scd"
    [ -f "$page" ] || { echo "missing man/$t.1.scd" >&2; return 1; }
    while read -r name short; do
      grep -q -- "--$name\b" "$page" || { echo "$t: --$name missing from $page" >&2; return 1; }
      if [ -n "$short" ]; then
        grep -q -- "\*-$short\*" "$page" || { echo "$t: -$short missing from $page" >&2; return 1; }
      fi
    done < <("$CESO_BUILD/tools/$t" --dump-options | jq -r '.options[], .verbs[].options[]? | "\(.name) \(.short)"')
  done
}

# With per-verb tables each verb's item under COMMANDS (from its "*VERB*"
# line to the next unindented line) names every option that verb takes.
@test "every verb's man-page item lists the options of its table" {
  for t in $(tools); do
    dump=$("$CESO_BUILD/tools/$t" --dump-options)
    [ "$(jq -r '.per_verb_options // false' <<<"$dump")" = true ] || continue
    page="$REPO_ROOT/man/$t.1.scd"
    for verb in $(jq -r '.verbs[].name' <<<"$dump"); do
      item=$(awk -v v="*$verb*" '/^# /{c = ($0 == "# COMMANDS")} c && index($0, v) == 1 {p = 1; print; next} p && /^[^\t ]/ && NF {p = 0} p' "$page")
      [ -n "$item" ] || { echo "$t: no item *$verb* under COMMANDS in $page" >&2; return 1; }
      for name in $(jq -r --arg v "$verb" '.verbs[] | select(.name == $v) | .options[].name' <<<"$dump"); do
        case $name in quiet | help | version) continue ;; esac
        grep -q -- "--$name\b" <<<"$item" || { echo "$t $verb: --$name missing from its item in $page" >&2; return 1; }
      done
    done
  done
}

@test "every man page documents the exit status and points to ceso(7)" {
  for t in $(tools); do
    page="$REPO_ROOT/man/$t.1.scd"
    grep -q '^# EXIT STATUS' "$page" || { echo "$page: no EXIT STATUS" >&2; return 1; }
    grep -q 'ceso\*(7)\|\*ceso\*(7)' "$page" || { echo "$page: no ceso(7)" >&2; return 1; }
  done
}

@test "every tool has a bats test, --help and --version" {
  for t in $(tools); do
    [ "$t" = ceso ] && continue
    [ -f "$REPO_ROOT/tests/cli/$t.bats" ] || { echo "$t: no tests/cli/$t.bats" >&2; return 1; }
    run "$CESO_BUILD/tools/$t" --help
    assert_status 0
    assert_contains "$output" "Usage: $t"
    run "$CESO_BUILD/tools/$t" --version
    assert_status 0
  done
}

@test "one name per test file: no links in tests/cli" {
  run find "$REPO_ROOT/tests/cli" -type l
  assert_status 0
  [ -z "$output" ] || { echo "links in tests/cli: $output" >&2; return 1; }
}

@test "the man pages build with scdoc without warnings" {
  for p in "$REPO_ROOT"/man/*.scd; do
    scdoc <"$p" >/dev/null || { echo "scdoc failed on $p" >&2; return 1; }
  done
}

# meson installs the pages it lists: every page under man/ must be listed
# (ceso-net.1 was once left out and never installed).
@test "man/meson.build installs every man page" {
  for p in "$REPO_ROOT"/man/*.scd; do
    page=$(basename "$p" .scd)
    grep -q "'$page'" "$REPO_ROOT/man/meson.build" ||
      { echo "man/meson.build does not list $page" >&2; return 1; }
  done
}

# The exit codes are interface: enum class Exit is the source, ceso(7) and
# docs/design.md (the contract) must list exactly its codes.
@test "ceso(7) and docs/design.md list exactly the exit codes of error.hpp" {
  codes=$(sed -n '/enum class Exit/,/};/p' "$REPO_ROOT/libcore/base/error.hpp" |
    grep -o '= [0-9]*' | tr -dc '0-9\n' | sort -n | tr '\n' ' ')
  [ -n "$codes" ]
  man=$(sed -n '/^# EXIT STATUS/,/^# /p' "$REPO_ROOT/man/ceso.7.scd" |
    grep -o '^|[[ ] *\*[0-9]*\*' | tr -dc '0-9\n' | sort -n | tr '\n' ' ')
  design=$(sed -n '/^## Exit status/,/^## /p' "$REPO_ROOT/docs/design.md" |
    grep -o '^| [0-9]* |' | tr -dc '0-9\n' | sort -n | tr '\n' ' ')
  assert_eq "$man" "$codes"
  assert_eq "$design" "$codes"
}

@test "the completions parse in bash and zsh" {
  for f in "$REPO_ROOT"/completions/bash/*; do bash -n "$f" || return 1; done
  for f in "$REPO_ROOT"/completions/zsh/_*; do zsh -n "$f" || return 1; done
}

@test "bash completion offers options and choices from the table" {
  source "$REPO_ROOT/completions/bash/ceso-ls"
  COMP_WORDS=(ceso-ls --pow); COMP_CWORD=1; _ceso_ls
  assert_eq "${COMPREPLY[*]}" "--power"
  COMP_WORDS=(ceso-ls --power s); COMP_CWORD=2; _ceso_ls
  assert_eq "${COMPREPLY[*]}" "suspended"
}

@test "bash completion offers the verb's own options after the verb" {
  source "$REPO_ROOT/completions/bash/ceso-backup"
  COMP_WORDS=(ceso-backup ls --); COMP_CWORD=2; _ceso_backup
  assert_eq "${COMPREPLY[*]}" "--target --json --output --quiet --help --version"
  COMP_WORDS=(ceso-backup --target file:///t prune --keep-d); COMP_CWORD=4; _ceso_backup
  assert_eq "${COMPREPLY[*]}" "--keep-daily"
  # an option value that is a verb's name is not the verb
  COMP_WORDS=(ceso-backup restore --as ls --power); COMP_CWORD=4; _ceso_backup
  assert_eq "${COMPREPLY[*]}" "--power-on"
  # before any verb: the default verb's (create's) options
  COMP_WORDS=(ceso-backup --ho); COMP_CWORD=1; _ceso_backup
  assert_eq "${COMPREPLY[*]}" "--hot --host"
  source "$REPO_ROOT/completions/bash/ceso-snap"
  COMP_WORDS=(ceso-snap rm --al); COMP_CWORD=2; _ceso_snap
  assert_eq "${COMPREPLY[*]}" "--all"
  COMP_WORDS=(ceso-snap ls --j); COMP_CWORD=2; _ceso_snap
  assert_eq "${COMPREPLY[*]}" "--json --jobs"
}

@test "libcore's folders keep the layer rule (scripts/check-layers)" {
  run "$REPO_ROOT/scripts/check-layers"
  [ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
  [ -z "$output" ]
}

@test "scripts/check-layers refuses an upward include, Args below cli/, and an unknown folder" {
  tree="$BATS_TEST_TMPDIR/libcore"
  cp -r "$REPO_ROOT/libcore" "$tree"
  # Each variant alone, on a fresh copy of one file.
  cp "$tree/base/util.cpp" "$BATS_TEST_TMPDIR/util.cpp"
  printf '#include "vm/vm.hpp"\n' >>"$tree/base/util.cpp"
  run "$REPO_ROOT/scripts/check-layers" "$tree"
  [ "$status" -eq 1 ]
  [[ "$output" == *'base/util.cpp:'*'base/ includes "vm/vm.hpp": vm/ is above base/'* ]]
  cp "$BATS_TEST_TMPDIR/util.cpp" "$tree/base/util.cpp"

  printf '  #  include "cli/tool.hpp"\n' >>"$tree/vm/spec.hpp"
  run "$REPO_ROOT/scripts/check-layers" "$tree"
  [ "$status" -eq 1 ]
  [[ "$output" == *'vm/ includes "cli/tool.hpp": cli/ is above vm/'* ]]
  cp "$REPO_ROOT/libcore/vm/spec.hpp" "$tree/vm/spec.hpp"

  printf 'void f(const Args& a);\n' >>"$tree/backup/backup.hpp"
  run "$REPO_ROOT/scripts/check-layers" "$tree"
  [ "$status" -eq 1 ]
  [[ "$output" == *'backup/ names Args'* ]]
  cp "$REPO_ROOT/libcore/backup/backup.hpp" "$tree/backup/backup.hpp"

  printf '#include "nowhere/x.hpp"\n' >>"$tree/cli/tool.cpp"
  run "$REPO_ROOT/scripts/check-layers" "$tree"
  [ "$status" -eq 1 ]
  [[ "$output" == *'includes "nowhere/x.hpp", which is in no layer'* ]]
  cp "$REPO_ROOT/libcore/cli/tool.cpp" "$tree/cli/tool.cpp"

  mkdir "$tree/misc"
  run "$REPO_ROOT/scripts/check-layers" "$tree"
  [ "$status" -eq 1 ]
  [[ "$output" == *'misc: folder is not a layer'* ]]
  rmdir "$tree/misc"

  # Back to the original: clean again (the variants above were each the cause).
  run "$REPO_ROOT/scripts/check-layers" "$tree"
  [ "$status" -eq 0 ]
}

@test "docs/architecture.md lists the layers of scripts/check-layers, in order" {
  script=$(sed -n 's/^LAYERS=(\(.*\))$/\1/p' "$REPO_ROOT/scripts/check-layers")
  # The layer table's first column, top to bottom; the script's list is bottom to top.
  doc=$(sed -n 's/^| `\([a-z]*\)` | `.*/\1/p' "$REPO_ROOT/docs/architecture.md" | grep -v '^ceso' | tac | tr '\n' ' ')
  [ -n "$script" ]
  [ "$doc" = "$script " ] || { echo "architecture.md: '$doc' vs check-layers: '$script'" >&2; return 1; }
  # Every folder of libcore is a layer.
  for d in "$REPO_ROOT"/libcore/*/; do
    [[ " $script " == *" $(basename "$d") "* ]] || { echo "libcore/$(basename "$d") is not a layer" >&2; return 1; }
  done
}
