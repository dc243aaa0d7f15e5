#!/usr/bin/env bats
# Batched lookups (issue 15; docs/architecture.md "Round trips"): a stage that
# reads records finds their VMs many at once (cli/tool for_each_vm,
# VmLocator::locate_batch) and still hands records on as they come.
# 250 generated VMs; the simulator pages RetrievePropertiesEx at 100 objects.

bats_require_minimum_version 1.5.0
load helpers/common

setup_file() {
  sim_start -vms 250
  ceso-ls >"$BATS_FILE_TMPDIR/all.ndjson" # warms the session cache
}

teardown_file() { sim_stop; }

soap_total() { sim_stats | jq .soap_total; }

@test "ceso-ls | ceso-info over 250 VMs: ceil(250/100) + 2 calls at most, every record out" {
  sim_reset
  run --separate-stderr ceso-info <"$BATS_FILE_TMPDIR/all.ndjson"
  assert_status 0
  assert_eq "$(echo "$output" | jq -s 'length')" 250
  echo "$output" | jq -s -e 'all(.[]; .type == "vm" and (.hardware | type) == "object" and (.disks | length) >= 1)'
  # one RetrievePropertiesEx per batch of up to 100 records, nothing else
  # (before: 2 per record, 500)
  assert_eq "$(sim_count RetrievePropertiesEx)" 3
  assert_eq "$(soap_total)" 3
  sim_reset
  run --separate-stderr bash -o pipefail -c 'ceso-ls | ceso-info'
  assert_status 0
  assert_eq "$(echo "$output" | jq -s '[.[].name] | unique | length')" 250
  # ceso-ls: 1 + its 2 pages here (the simulator pages at 100; bench/pipeline
  # has one page); ceso-info: 3
  assert_eq "$(sim_count RetrievePropertiesEx)" 4
  assert_eq "$(sim_count ContinueRetrievePropertiesEx)" 2
  assert_eq "$(soap_total)" 6
}

@test "names as operands: one listing and one check for all of them" {
  sim_reset
  run --separate-stderr ceso-info ha-host_VM0 ha-host_VM1 ha-host_VM2
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .name | tr '\n' ,)" "ha-host_VM0,ha-host_VM1,ha-host_VM2,"
  # the listing pages (3 pages for 250 VMs), then one check of the three
  assert_eq "$(sim_count RetrievePropertiesEx)" 2
  assert_eq "$(sim_count ContinueRetrievePropertiesEx)" 2
}

@test "a record that matches no VM fails alone; the rest of its batch is printed" {
  good=$(head -3 "$BATS_FILE_TMPDIR/all.ndjson")
  bad=$(head -1 "$BATS_FILE_TMPDIR/all.ndjson" | jq -c '.uuid = "00000000-0000-0000-0000-000000000000"')
  gone=$(head -1 "$BATS_FILE_TMPDIR/all.ndjson" | jq -c '.id = "vm-999999" | .uuid = "x" | .name = "nosuch"')
  sim_reset
  run --separate-stderr ceso-info <<<"$good
$bad
$gone"
  assert_status 4
  assert_eq "$(echo "$output" | jq -s 'length')" 3
  assert_contains "$stderr" "<stdin>:4"
  assert_contains "$stderr" "<stdin>:5"
  # one read of the five ids, one listing (3 pages) for the two that did not match
  assert_eq "$(sim_count RetrievePropertiesEx)" 2
}

@test "a burst of 250 records: three batches in flight at once, output in input order, a bad record fails alone" {
  # record 150 (in the second batch) names no VM
  jq -c 'if input_line_number == 150 then .id = "vm-999999" | .uuid = "x" | .name = "nosuch" else . end' \
    "$BATS_FILE_TMPDIR/all.ndjson" >"$BATS_TEST_TMPDIR/in.ndjson"
  sim_reset
  run --separate-stderr ceso-info <"$BATS_TEST_TMPDIR/in.ndjson"
  assert_status 4
  assert_contains "$stderr" "<stdin>:150"
  assert_eq "$(echo "$stderr" | grep -c error)" 1
  assert_eq "$(echo "$output" | jq -r .id)" "$(jq -r 'select(.name != "nosuch") | .id' "$BATS_TEST_TMPDIR/in.ndjson")"
  # one read per batch of 100, and for the second batch one listing (3 pages)
  assert_eq "$(sim_count RetrievePropertiesEx)" 4
  assert_eq "$(sim_count ContinueRetrievePropertiesEx)" 2
}

@test "records still flow: the first output comes before the end of a slow producer's input" {
  first=$(sed -n 1p "$BATS_FILE_TMPDIR/all.ndjson")
  second=$(sed -n 2p "$BATS_FILE_TMPDIR/all.ndjson")
  flag="$BATS_TEST_TMPDIR/got-first"
  verdict="$BATS_TEST_TMPDIR/verdict"
  # The producer holds back its second record until the first result is out
  # (or gives up after 20 s and says so): a stage that waited for the end of
  # its input would never print before it.
  producer() {
    echo "$first"
    for _ in $(seq 400); do
      [ -e "$flag" ] && break
      sleep 0.05
    done
    if [ -e "$flag" ]; then echo early >"$verdict"; else echo late >"$verdict"; fi
    echo "$second"
  }
  run --separate-stderr bash -c "$(declare -f producer); first='$first' second='$second' \
    flag='$flag' verdict='$verdict'; producer | ceso-info | { read -r line; touch '$flag'; echo \"\$line\"; cat; }"
  assert_status 0
  assert_eq "$(cat "$verdict")" early
  assert_eq "$(echo "$output" | jq -s 'length')" 2
}

@test "every lookup tool batches: ceso-wait, ceso-snap ls, ceso-template check with -j 1 and -j 4" {
  sim_reset
  run --separate-stderr bash -o pipefail -c 'head -150 "$0" | ceso-wait --for on' "$BATS_FILE_TMPDIR/all.ndjson"
  assert_status 0
  assert_eq "$(echo "$output" | jq -s 'length')" 150
  # two lookups (100 + 50), one poll per VM (before: one lookup per VM too)
  assert_eq "$(sim_count RetrievePropertiesEx)" 152
  sim_reset
  run --separate-stderr bash -o pipefail -c 'head -150 "$0" | ceso-wait -j 4 --for on' "$BATS_FILE_TMPDIR/all.ndjson"
  assert_status 0
  assert_eq "$(echo "$output" | jq -r .name | sort | tr '\n' ,)" "$(head -150 "$BATS_FILE_TMPDIR/all.ndjson" | jq -r .name | sort | tr '\n' ,)"
  assert_eq "$(sim_count RetrievePropertiesEx)" 152
  sim_reset
  run --separate-stderr bash -o pipefail -c 'head -120 "$0" | ceso-snap ls' "$BATS_FILE_TMPDIR/all.ndjson"
  assert_status 0
  assert_eq "$(sim_count RetrievePropertiesEx)" 122
  sim_reset
  run --separate-stderr bash -c 'head -120 "$0" | ceso-template check' "$BATS_FILE_TMPDIR/all.ndjson"
  # the details come with the lookup: no call per VM at all
  assert_eq "$(sim_count RetrievePropertiesEx)" 2
  assert_eq "$(echo "$output" | jq -s '[.[].vm] | unique | length')" 120
}
