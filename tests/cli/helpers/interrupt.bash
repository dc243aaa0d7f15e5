# Interrupting a tool while the simulator holds one of its calls.
#
#   interrupt_during CreateVM_Task TERM ceso-mkvm --from golden x --no-power-on
#   assert_eq "$rc" 130; nothing_left x
#
# The call METHOD is stalled 2 s (tests/sim/README.md); SIG is sent once the
# simulator has received it, so it arrives while the call is in flight.
# Sets rc (exit status), err (stderr) and calls (how many METHOD calls arrived).
# start_stalled METHOD MS CMD...: holds METHOD for MS ms in the simulator,
# starts CMD in the background (stderr to $BATS_TEST_TMPDIR/err) and waits
# (10 s at most) until the simulator has received the call. Sets pid.
start_stalled() {
  local method=$1 ms=$2
  shift 2
  sim_reset
  sim_fail "{\"method\":\"$method\",\"stall_ms\":$ms}"
  "$@" >/dev/null 2>"$BATS_TEST_TMPDIR/err" &
  pid=$!
  for _ in $(seq 200); do
    [ "$(sim_count "$method")" -ge 1 ] && break
    sleep 0.05
  done
}

interrupt_during() {
  local method=$1 sig=$2 pid
  shift 2
  start_stalled "$method" 2000 "$@"
  calls=$(sim_count "$method")
  kill "-$sig" "$pid"
  rc=0
  wait "$pid" || rc=$?
  err=$(cat "$BATS_TEST_TMPDIR/err")
  sim_fail '{}'
  [ "$calls" -ge 1 ] || { echo "$method was never called; stderr: $err" >&2; return 1; }
}

# NAME: no VM of that name and no folder of that name on the datastore.
nothing_left() {
  local left
  left=$(ceso-ls --name "$1")
  [ -z "$left" ] || { echo "VM $1 left: $left; stderr: $err" >&2; return 1; }
  local dir
  dir="$(sim_datastore_dir)/$1"
  [ ! -e "$dir" ] || { echo "folder $1 left: $(ls "$dir"); stderr: $err" >&2; return 1; }
}

# Sends SIGINT to a tool while its METHOD call is held for 60 s (a host that
# stopped answering); it must end long before (a 10 s guard, no finer
# timing): read-only tools and phases cut the call. Sets rc and err.
interrupt_read() {
  local method=$1 pid
  shift
  ceso-ls >/dev/null  # a warm session: the stalled call is the tool's own
  start_stalled "$method" 60000 "$@"
  [ "$(sim_count "$method")" -ge 1 ] || { kill -9 "$pid"; echo "$method never called" >&2; return 1; }
  kill -INT "$pid"
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"
    wait "$pid" || true
    echo "$* still running 10 s after SIGINT" >&2
    return 1
  fi
  rc=0
  wait "$pid" || rc=$?
  err=$(cat "$BATS_TEST_TMPDIR/err")
  sim_fail '{}'
}
