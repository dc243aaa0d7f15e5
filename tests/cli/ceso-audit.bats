#!/usr/bin/env bats
# ceso-audit against real audit logs: written by real tools (ceso-snap,
# ceso-power, ceso-set) against the simulator, then read back and tampered with.

bats_require_minimum_version 1.5.0
load helpers/common

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"a1","power":"off"},{"name":"a2","power":"off"},{"name":"a3","power":"off"},
 {"name":"b1","power":"off"}]
JSON
  sim_start -vms 0 -vm-spec "$spec"
  GOLD="$BATS_FILE_TMPDIR/gold/audit.log"
  export GOLD
  # 3 + 1 + 1 (refused) + 1 + 1 records, in five pipelines.
  CESO_AUDIT_LOG=$GOLD CESO_CORRELATION_ID=pipe-1 ceso-snap create --name s1 a1 a2 a3 >/dev/null
  CESO_AUDIT_LOG=$GOLD CESO_CORRELATION_ID=pipe-2 ceso-power on a1 >/dev/null
  CESO_AUDIT_LOG=$GOLD CESO_CORRELATION_ID=pipe-3 CESO_MODE=restricted \
    ceso-snap create --name s2 a2 >/dev/null 2>&1 || true
  CESO_AUDIT_LOG=$GOLD CESO_CORRELATION_ID='=cmd|x,"y"' ceso-snap create --name s3 a3 >/dev/null
  CESO_AUDIT_LOG=$GOLD CESO_CORRELATION_ID=pipe-5 \
    ceso-set b1 --guestinfo api_token=TOPSECRET-0001 >/dev/null
}

teardown_file() { sim_stop; }

# A private copy of the real log and its anchor: $LOG.
setup() {
  LOG="$BATS_TEST_TMPDIR/audit.log"
  cp "$GOLD" "$LOG"
  cp "$GOLD.head" "$LOG.head"
  export CESO_AUDIT_LOG=$LOG
}

# Rewrites line N of $LOG with sed expression E.
edit_line() { sed -i "$1$2" "$LOG"; }
# The SHA-256 of line N of $LOG.
line_hash() { sed -n "${1}p" "$LOG" | tr -d '\n' | sha256sum | cut -c1-64; }
# Lines of the real log, in the order given.
pick() { for n; do sed -n "${n}p" "$GOLD"; done; }
# A forged record that links to line N (a correct "prev").
forged_after() {
  jq -c --arg p "$(line_hash "$1")" '.vm = "forged" | .prev = $p' <(sed -n "${1}p" "$LOG")
}

verify_kind() {
  run --separate-stderr ceso-audit verify
  assert_status 4
  assert_eq "$(jq -r .break.kind <<<"$output")" "$1"
  [ -z "${2:-}" ] || assert_eq "$(jq -r .break.line <<<"$output")" "$2"
  assert_contains "$stderr" "is broken"
}

@test "the real log has the records of every change, refused ones too" {
  assert_eq "$(wc -l <"$GOLD")" 7
  assert_eq "$(jq -r .result "$GOLD" | sort | uniq -c | tr -s ' ' | tr '\n' ,)" " 6 ok, 1 refused,"
}

@test "verify: an intact log is exit 0 with its line count, last hash and anchor" {
  run --separate-stderr ceso-audit verify
  assert_status 0
  assert_eq "$(jq -c '[.ok, .lines, .anchored, .unanchored_lines]' <<<"$output")" '[true,7,true,0]'
  assert_eq "$(jq -r .last_hash <<<"$output")" "$(line_hash 7)"
  assert_eq "$stderr" ""
  # --log names another log; the environment's is not read then.
  CESO_AUDIT_LOG=/nonexistent/x run ceso-audit --log "$LOG" verify
  assert_status 0
  run ceso-audit verify --log "$LOG"
  assert_status 0
}

@test "verify: the anchor holds the size, line count and last hash" {
  assert_eq "$(jq -c '[.size, .lines, .sha256]' "$LOG.head")" "[$(stat -c %s "$LOG"),7,\"$(line_hash 7)\"]"
}

@test "verify: an edited line is found at the next line, as edited" {
  edit_line 2 's/"a2"/"a9"/' # same length, still JSON
  verify_kind edited 3
  assert_contains "$output" "line 2 was edited"
}

@test "verify: an edit that breaks the JSON is found at that line" {
  edit_line 4 's/^{/[/'
  verify_kind not-json 4
}

@test "verify: a deleted middle line is found, as deleted" {
  edit_line 3 d
  verify_kind deleted 3
  assert_contains "$output" "1 line(s) were deleted before line 3"
}

@test "verify: two swapped lines are found, as reordered" {
  pick 1 3 2 4 5 6 7 >"$LOG"
  verify_kind reordered 2
  # non-adjacent: lines 2 and 5 swapped
  pick 1 5 3 4 2 6 7 >"$LOG"
  verify_kind reordered 2
}

@test "verify: the last line removed is truncation, found through the anchor" {
  sed -i '$d' "$LOG"
  verify_kind truncated null
  assert_contains "$output" "6 lines"
  assert_contains "$output" "(7 lines)"
}

@test "verify: the last line cut mid-way is an incomplete line" {
  truncate -s -40 "$LOG"
  verify_kind incomplete 7
}

@test "verify: a forged line inserted in the middle with a recomputed hash is found, as inserted" {
  forged=$(forged_after 3)
  sed -i "3a\\$(sed 's/[\\&]/\\&/g' <<<"$forged")" "$LOG"
  assert_eq "$(sed -n 4p "$LOG" | jq -r .vm)" forged
  verify_kind inserted 5
  assert_contains "$output" "line 4 was inserted"
  # without a correct "prev" it is found at itself
  pick 1 2 3 >"$LOG"
  sed -n 6p "$GOLD" | jq -c '.vm = "forged" | .prev = ("1" * 64)' >>"$LOG"
  pick 4 5 6 7 >>"$LOG"
  verify_kind inserted 4
  assert_contains "$output" "line 4 was inserted"
}

@test "verify: a forged line appended at the end with a recomputed hash is not a break, but is reported as beyond the anchor" {
  forged_after 7 >>"$LOG"
  run --separate-stderr ceso-audit verify
  assert_status 0
  assert_eq "$(jq -c '[.ok, .lines, .unanchored_lines]' <<<"$output")" '[true,8,1]'
  assert_contains "$stderr" "1 line(s) at the end"
  assert_contains "$stderr" "cannot vouch for them"
}

@test "verify: an emptied log with its anchor is truncation; an empty log without one is intact" {
  : >"$LOG"
  verify_kind truncated
  rm "$LOG.head"
  run ceso-audit verify
  assert_status 0
  assert_eq "$(jq -c '[.ok, .lines]' <<<"$output")" '[true,0]'
}

@test "verify: a non-JSON line and a huge line are found where they are" {
  sed -i '5i this is not json' "$LOG"
  verify_kind not-json 5
  cp "$GOLD" "$LOG"
  { head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' x; echo; } >>"$LOG"
  verify_kind too-long 8
}

@test "verify: a missing log is exit 1 without an anchor, and 4 (missing) with one" {
  rm "$LOG"
  verify_kind missing
  rm "$LOG.head"
  run ceso-audit verify
  assert_status 1
  assert_contains "$output" "cannot open audit log"
  assert_contains "$output" "No such file"
  # unreadable
  cp "$GOLD" "$LOG"
  chmod 000 "$LOG"
  if [ "$(id -u)" -ne 0 ]; then
    run ceso-audit verify
    assert_status 1
  fi
}

@test "append onto a truncated log: the tool warns, marks its record, and verify still reports the cut" {
  sed -i '$d' "$LOG"
  run --separate-stderr ceso-snap create --name later a1
  assert_status 0
  assert_contains "$stderr" "its tail was truncated"
  assert_contains "$stderr" "tail_unverified"
  assert_eq "$(tail -1 "$LOG" | jq -r .tail_unverified.kind)" truncated
  assert_eq "$(tail -1 "$LOG" | jq -r .prev)" "$(line_hash 6)" # chained on all the same
  run --separate-stderr ceso-audit verify
  assert_status 4
  assert_eq "$(jq -r .break.kind <<<"$output")" truncated
  assert_contains "$output" "line 7, the first record appended since"
  assert_eq "$(jq -c .tail_unverified_lines <<<"$output")" '[7]'
}

@test "append onto a log whose last line was rewritten warns too" {
  edit_line 7 's/"b1"/"b9"/'
  run --separate-stderr ceso-power off a1
  assert_status 0
  assert_contains "$stderr" "the log was rewritten"
  assert_eq "$(tail -1 "$LOG" | jq -r .tail_unverified.kind)" rewritten
}

@test "anchor --reset: dry-run plans, reset is audited and verify passes again" {
  sed -i '$d' "$LOG"
  before=$(cat "$LOG.head")
  run ceso-audit anchor --reset --dry-run
  assert_status 0
  assert_eq "$(jq -r .type <<<"$output")" plan
  assert_eq "$(cat "$LOG.head")" "$before"
  assert_eq "$(wc -l <"$LOG")" 6
  CESO_MODE=restricted run ceso-audit anchor --reset
  assert_status 5
  assert_eq "$(cat "$LOG.head")" "$before"
  # the refusal itself is recorded (marked: the tail is still cut)
  assert_eq "$(tail -1 "$LOG" | jq -c '[.operation, .result, .tail_unverified.kind]')" \
    '["ResetAuditAnchor","refused","truncated"]'

  run ceso-audit anchor --reset --reason 'rotated by hand'
  assert_status 0
  assert_eq "$(jq -r .changed <<<"$output")" true
  assert_eq "$(jq -c '[.operation, .params.reason, .params.before.lines, .params.after.lines, .tool]' < <(tail -1 "$LOG"))" \
    '["ResetAuditAnchor","rotated by hand",7,7,"ceso-audit"]'
  run ceso-audit verify
  assert_status 0
  assert_eq "$(jq -r .lines <<<"$output")" 8
  run ceso-audit anchor
  assert_status 0
  assert_eq "$(jq -r .anchor.lines <<<"$output")" 8
  # appends after the reset are not marked
  ceso-snap create --name after-reset a1 >/dev/null
  assert_eq "$(tail -1 "$LOG" | jq -r .tail_unverified)" null
  run ceso-audit anchor --reason x
  assert_status 2
}

@test "ls: every record, as the log has it" {
  run --separate-stderr ceso-audit ls
  assert_status 0
  assert_eq "$output" "$(jq -c . "$LOG")"
}

@test "ls: filters by tool, vm, actor, correlation, failed and time" {
  count() { run --separate-stderr ceso-audit ls "$@" && assert_status 0 && wc -l <<<"${output:+$output}"; }
  n() { ceso-audit ls "$@" | grep -c . || true; }
  assert_eq "$(n --tool ceso-power)" 1
  assert_eq "$(n --tool 'ceso-s*')" 6
  assert_eq "$(n --vm a2)" 2
  assert_eq "$(n --vm 'a*' --tool ceso-snap)" 5
  assert_eq "$(n --correlation pipe-1)" 3
  assert_eq "$(n -c pipe-1 --vm a3)" 1
  assert_eq "$(n --failed)" 1
  assert_eq "$(ceso-audit ls --failed | jq -r .result)" refused
  assert_eq "$(n --actor "$(id -un)")" 7
  assert_eq "$(n --actor nobody-here)" 0
  assert_eq "$(n --since 1h)" 7
  assert_eq "$(n --since "$(date -u -d tomorrow +%F)")" 0
  assert_eq "$(n --until 2001-01-01)" 0
  assert_eq "$(n --until "$(date -u -d tomorrow +%FT%H:%M)Z")" 7
  assert_eq "$(n --since 2001-01-01T00:00:00+01:00 --until 1y)" 0
  first=$(head -1 "$LOG" | jq -r .time)
  assert_eq "$(n --until "$first")" 0
  assert_eq "$(n --since "$first" --tool ceso-snap -c pipe-1)" 3
}

@test "ls: bad --since/--until values are usage errors naming the option" {
  for bad in yesterday 2026-13-01 2026-11-22T25:00 5 10m 2026-11-22Tx '2026-11-22 +01'; do
    run ceso-audit ls --since "$bad"
    assert_status 2
    assert_contains "$output" "--since"
  done
  run ceso-audit ls --until 'soon'
  assert_status 2
  assert_contains "$output" "--until"
  run ceso-audit ls --since 1h --until 2h
  assert_status 2
  assert_contains "$output" "is not after --since"
}

@test "ls: -o fields; a line that is no record is skipped, named, and makes exit 4" {
  run --separate-stderr ceso-audit ls -o tool,vm -c pipe-1
  assert_status 0
  assert_eq "$(head -1 <<<"$output")" '{"tool":"ceso-snap","vm":"a1"}'
  sed -i '2i garbage' "$LOG"
  { head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' y; echo; } >>"$LOG"
  run --separate-stderr ceso-audit ls
  assert_status 4
  assert_eq "$(grep -c . <<<"$output")" 7
  assert_contains "$stderr" "line 2 is not a JSON object; skipped"
  assert_contains "$stderr" "line 9 is too long for an audit record; skipped"
}

@test "show: one pipeline's records in order; an unknown id is exit 1" {
  run --separate-stderr ceso-audit show pipe-1
  assert_status 0
  assert_eq "$(jq -r .vm <<<"$output" | tr '\n' ,)" "a1,a2,a3,"
  run ceso-audit show no-such-pipeline
  assert_status 1
  assert_contains "$output" "no records with correlation id"
  run ceso-audit show
  assert_status 2
  run ceso-audit show a b
  assert_status 2
}

@test "export ndjson: the log's lines byte for byte, filtered" {
  run ceso-audit export --format ndjson
  assert_status 0
  cmp <(ceso-audit export --format ndjson) "$LOG"
  assert_eq "$(ceso-audit export --format ndjson --tool ceso-power)" "$(sed -n 4p "$LOG")"
}

@test "export csv: RFC 4180 with the fixed columns, quoting and formula-safe cells" {
  ceso-audit export --format csv >"$BATS_TEST_TMPDIR/a.csv"
  assert_eq "$(head -1 "$BATS_TEST_TMPDIR/a.csv")" \
    $'line,time,user,tool,endpoint,vm,vm_id,operation,result,error,duration_ms,correlation_id,pid,params,tail_unverified,prev\r'
  # Every row ends with CRLF and parses to 16 columns; the id with = , and "
  # is quoted, its quotes doubled, and prefixed with ' so it is not a formula.
  python3 - "$BATS_TEST_TMPDIR/a.csv" <<'PY'
import csv, sys
raw = open(sys.argv[1], newline='').read()
assert raw.count('\r\n') == 8 and raw.replace('\r\n', '').count('\n') == 0, repr(raw[:200])
rows = list(csv.reader(open(sys.argv[1], newline='')))
assert len(rows) == 8 and all(len(r) == 16 for r in rows), rows
ids = [r[11] for r in rows[1:]]
assert ids[5] == "'=cmd|x,\"y\"", ids
assert rows[5][8] == 'refused' and rows[5][9] != '', rows[5]
assert rows[4][5] == 'a1' and rows[4][7] == 'PowerOnVM_Task', rows[4]
PY
  grep -qF "\"'=cmd|x,\"\"y\"\"\"" "$BATS_TEST_TMPDIR/a.csv"
}

@test "export: an unknown or missing --format is a usage error" {
  run ceso-audit export --format xml
  assert_status 2
  assert_contains "$output" "xml"
  run ceso-audit export
  assert_status 2
  assert_contains "$output" "--format"
}

@test "secrets: the password and guestinfo values never reach the log, ls or export" {
  [ -n "$CESO_PASSWORD" ]
  ! grep -qF "$CESO_PASSWORD" "$LOG"
  ! grep -qF TOPSECRET-0001 "$LOG"
  for out in "$(ceso-audit ls)" "$(ceso-audit export --format csv)" \
    "$(ceso-audit export --format ndjson)" "$(ceso-audit show pipe-5)" "$(ceso-audit tail --lines 100)"; do
    [[ "$out" != *TOPSECRET-0001* && "$out" != *"$CESO_PASSWORD"* ]]
  done
  assert_contains "$(ceso-audit show pipe-5)" "[redacted]"
}

@test "tail: the last N records" {
  run ceso-audit tail --lines 2
  assert_status 0
  assert_eq "$output" "$(tail -2 "$LOG" | jq -c .)"
  assert_eq "$(ceso-audit tail | grep -c .)" 7
  assert_eq "$(ceso-audit tail --lines 0 | grep -c .)" 0
  run ceso-audit tail --lines x
  assert_status 2
}

@test "tail -f: follows appends by real tools, survives a replaced log, stops on SIGINT with 130" {
  out="$BATS_TEST_TMPDIR/out" err="$BATS_TEST_TMPDIR/err"
  ceso-audit tail -f --lines 1 >"$out" 2>"$err" &
  pid=$!
  wait_lines() { for _ in $(seq 100); do [ "$(grep -c . "$out")" -ge "$1" ] && return 0; sleep 0.1; done; return 1; }
  wait_lines 1
  ceso-snap create --name followed a2 >/dev/null
  wait_lines 2
  assert_eq "$(tail -1 "$out" | jq -r '.params.name')" followed
  # the log replaced (rotation): followed from the new file's start
  mv "$LOG" "$LOG.1"
  mv "$LOG.head" "$LOG.1.head"
  ceso-snap create --name rotated a3 >/dev/null
  wait_lines 3
  assert_eq "$(tail -1 "$out" | jq -r .params.name)" rotated
  kill -INT "$pid"
  rc=0
  wait "$pid" || rc=$?
  assert_eq "$rc" 130
  assert_contains "$(cat "$err")" "was replaced or truncated"
}

@test "bad command lines: unknown verb, no verb, stray operand, another verb's option" {
  run ceso-audit frobnicate
  assert_status 2
  assert_contains "$output" "frobnicate"
  run ceso-audit
  assert_status 2
  run ceso-audit verify extra
  assert_status 2
  run ceso-audit verify --since 1h
  assert_status 2
  run ceso-audit ls --format csv
  assert_status 2
}
