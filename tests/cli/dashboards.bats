#!/usr/bin/env bats
# The Grafana dashboards and alert rules (dashboards/, docs/metrics.md):
# every panel query is extracted by scripts/dashboard-rules, parsed by
# `promtool check rules` and evaluated by `promtool test rules` against
# synthetic series (tests/dashboards/*.test.yml); the JSON is linted.

REPO_ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
EXTRACT="$REPO_ROOT/scripts/dashboard-rules"
FAMILIES="$REPO_ROOT/libcore/base/metrics.cpp"
OPS="$REPO_ROOT/dashboards/ceso-operations.json"
AGENTS="$REPO_ROOT/dashboards/ceso-agents.json"

setup() {
  cp "$REPO_ROOT"/tests/dashboards/*.test.yml "$BATS_TEST_TMPDIR/"
}

extract() { "$EXTRACT" --families "$FAMILIES" "$@"; }

@test "every panel query parses and returns what the panel claims (promtool)" {
  extract --tested "$BATS_TEST_TMPDIR/panels.test.yml" "$OPS" "$AGENTS" \
    >"$BATS_TEST_TMPDIR/panels.rules.yml"
  # Both dashboards, every panel: 15 + 7 panels, 23 queries.
  [ "$(grep -c '^  - record: dashboard:' "$BATS_TEST_TMPDIR/panels.rules.yml")" -eq 23 ]
  run promtool check rules "$BATS_TEST_TMPDIR/panels.rules.yml"
  [ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
  run promtool test rules "$BATS_TEST_TMPDIR/panels.test.yml"
  [ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
}

@test "a panel whose query returns something else fails the test" {
  # The same dashboards with one query's grouping changed: promtool must notice.
  jq '(.panels[] | select(.id == 9) | .targets[0].expr) |= sub("by \\(kind\\)"; "by (tool)")' \
    "$OPS" >"$BATS_TEST_TMPDIR/ops.json"
  extract "$BATS_TEST_TMPDIR/ops.json" "$AGENTS" >"$BATS_TEST_TMPDIR/panels.rules.yml"
  run promtool test rules "$BATS_TEST_TMPDIR/panels.test.yml"
  [ "$status" -ne 0 ]
  [[ "$output" == *"dashboard:ceso_operations:p9_A"* ]]
}

@test "the alert rules check and pass their tests (stale backups, failure bursts)" {
  cp "$REPO_ROOT/dashboards/ceso-alerts.rules.yml" "$BATS_TEST_TMPDIR/"
  run promtool check rules "$BATS_TEST_TMPDIR/ceso-alerts.rules.yml"
  [ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
  run promtool test rules "$BATS_TEST_TMPDIR/alerts.test.yml"
  [ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
  # A stale-backup rule that fired a day early would fail them.
  sed 's/> 26 \* 3600/> 24 * 3600/' "$REPO_ROOT/dashboards/ceso-alerts.rules.yml" \
    >"$BATS_TEST_TMPDIR/ceso-alerts.rules.yml"
  run promtool test rules "$BATS_TEST_TMPDIR/alerts.test.yml"
  [ "$status" -ne 0 ]
}

@test "the lint refuses a fixed data source, a missing unit, a raw counter, an unknown family" {
  jq '.panels[0].fieldConfig.defaults.unit = ""
      | .panels[1].targets[0].expr = "sum(ceso_runs_total)"
      | .panels[2].datasource = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}
      | .panels[3].targets[0].expr = "sum(rate(ceso_no_such_total[5m]))"
      | .panels[4].targets[0].expr = "ceso_operation_duration_seconds_sum / 2"
      | .templating.list |= map(select(.name != "datasource"))' "$OPS" >"$BATS_TEST_TMPDIR/bad.json"
  run extract "$BATS_TEST_TMPDIR/bad.json"
  [ "$status" -eq 1 ]
  [[ "$output" == *"panel 1 'Runs per second by tool and result': no unit"* ]]
  [[ "$output" == *"panel 2 'Failed runs per second' query A: counter ceso_runs_total outside rate()"* ]]
  [[ "$output" == *"panel 3 'Run duration (p50, p95)': data source is not \${datasource}"* ]]
  [[ "$output" == *"ceso_no_such_total: no such family"* ]]
  [[ "$output" == *"counter ceso_operation_duration_seconds_sum outside rate()"* ]]
  [[ "$output" == *"no template variable 'datasource'"* ]]
}

@test "a panel no promtool test evaluates is refused" {
  jq '.panels += [.panels[0] | .id = 99]' "$AGENTS" >"$BATS_TEST_TMPDIR/agents.json"
  run extract --tested "$BATS_TEST_TMPDIR/panels.test.yml" "$OPS" "$BATS_TEST_TMPDIR/agents.json"
  [ "$status" -eq 1 ]
  [[ "$output" == *"dashboard:ceso_agents:p99_A: no promtool test evaluates it"* ]]
}
