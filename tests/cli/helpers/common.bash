# Shared set-up for the bats tests of the tools.
#
#   load helpers/common
#   setup_file() { sim_start -vms 3; }
#   teardown_file() { sim_stop; }
#
# Binaries come from $CESO_BUILD/tools (make check sets it). Every test runs
# with its own HOME/XDG dirs so the session cache, audit log and config of
# the person running the tests are never touched.

REPO_ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
: "${CESO_BUILD:=$REPO_ROOT/build}"
export CESO_BUILD
export PATH="$CESO_BUILD/tools:$PATH"
SIMCTL="$REPO_ROOT/tests/sim/simctl"
export CESO_SIM_BUILD="$CESO_BUILD/sim"

# Private XDG dirs per test file (setup_file) — tests that need a cold
# session cache call fresh_cache.
use_private_dirs() {
  local base="${BATS_FILE_TMPDIR:-$BATS_TMPDIR}/home"
  mkdir -p "$base"
  export HOME="$base"
  export XDG_CACHE_HOME="$base/cache" XDG_STATE_HOME="$base/state" XDG_CONFIG_HOME="$base/config"
  unset CESO_URL CESO_USER CESO_PASSWORD CESO_PASSWORD_FILE CESO_INSECURE CESO_THUMBPRINT
  unset GOVC_URL GOVC_USERNAME GOVC_PASSWORD GOVC_INSECURE GOVC_TLS_KNOWN_HOSTS CESO_MODE
  unset CESO_CORRELATION_ID CESO_AUDIT_LOG CESO_METRICS_DIR CESO_METRICS_VM_LABELS
  unset CESO_SSH CESO_SSH_IDENTITY CESO_SSH_HOST_KEY CESO_TRANSPORT
}

fresh_cache() { rm -rf "$XDG_CACHE_HOME/ceso"; }

# The host model a suite runs against, from CESO_TEST_HOST_MODEL:
#   esx      a licensed standalone ESXi host: the API for everything (default)
#   vcenter  vCenter (cesosim -model vpx)
#   free     a free-licensed ESXi host: reads over the API, writes over SSH
#            (simctl --license free --ssh; CESO_SSH, CESO_SSH_IDENTITY and
#            CESO_SSH_HOST_KEY name its sshd, its client key and its pinned key)
# `make check` runs the suites of the tools that write (CESO_MODEL_SUITES in
# the Makefile) in all three; a suite that needs one model passes -model or
# --license to sim_start itself, and the setting is then ignored.
host_model() { echo "${CESO_TEST_HOST_MODEL:-esx}"; }
is_free_model() { [ "$(host_model)" = free ]; }

# Start the simulator with cesosim flags; exports CESO_URL/USER/PASSWORD and
# CESO_SIM_STATE for this file's tests (and in the free model the SSH access).
sim_start() {
  use_private_dirs
  export CESO_SIM_STATE="$BATS_FILE_TMPDIR/sim"
  mkdir -p "$CESO_SIM_STATE"
  local model=() arg own=
  for arg in "$@"; do
    case $arg in -model | --model | -license | --license | -free | --free) own=1 ;; esac
  done
  if [ -z "$own" ]; then
    case "$(host_model)" in
      esx) ;;
      vcenter) model=(-model vpx) ;;
      free) model=(--license free --ssh) ;;
      *)
        echo "CESO_TEST_HOST_MODEL: unknown model '$(host_model)' (esx, vcenter or free)" >&2
        return 1
        ;;
    esac
  fi
  eval "$("$SIMCTL" start "${model[@]}" "$@")"
  export CESO_URL CESO_USER CESO_PASSWORD CESO_SIM_STATE
  [ -n "${CESO_SIM_THUMBPRINT:-}" ] && export CESO_SIM_THUMBPRINT
  if [ -n "${CESO_SIM_SSH_PORT:-}" ]; then
    export CESO_SIM_SSH_PORT CESO_SIM_SSH_USER CESO_SIM_SSH_KEY CESO_SIM_SSH_KNOWN_HOSTS
    export CESO_SIM_SSH_FINGERPRINT
  fi
  if [ -z "$own" ] && is_free_model; then
    export CESO_SSH="$CESO_SIM_SSH_USER@127.0.0.1:$CESO_SIM_SSH_PORT"
    export CESO_SSH_IDENTITY="$CESO_SIM_SSH_KEY" CESO_SSH_HOST_KEY="$CESO_SIM_SSH_FINGERPRINT"
  fi
  return 0
}

sim_stop() { [ -n "${CESO_SIM_STATE:-}" ] && "$SIMCTL" stop || true; }
sim_stats() { "$SIMCTL" stats; }
sim_reset() { "$SIMCTL" reset >/dev/null; }
sim_fail() { "$SIMCTL" fail "$1" >/dev/null; }
# The simulator's datastores. ds_file "[ds] dir/file" → its local path.
sim_datastore_dir() { "$SIMCTL" datastore | jq -r 'to_entries[0].value'; }
ds_file() {
  local ds=${1#[} path
  path=${ds#*] }
  ds=${ds%%]*}
  echo "$("$SIMCTL" datastore | jq -r --arg d "$ds" '.[$d]')/$path"
}
# Another host for "SSH access that leads to the wrong host" tests: a second
# free-licensed simulator with SSH in DIR (`other_start DIR [FLAGS…]`, its
# `simctl start` exports kept in DIR/exports). `on_other DIR CMD…` runs CMD
# against it (its CESO_URL, CESO_SIM_STATE… in a subshell); `other_ssh DIR`
# prints the CESO_SSH… assignments that lead to its sshd, for `env`/export;
# `other_stop DIR` stops it (nothing if it is not running).
other_start() {
  local dir=$1
  shift
  mkdir -p "$dir"
  CESO_SIM_STATE="$dir" "$SIMCTL" start --license free --ssh "$@" >"$dir/exports"
}
on_other() { (
  # shellcheck disable=SC1091
  . "$1/exports"
  "${@:2}"
); }
other_ssh() { (
  # shellcheck disable=SC1091
  . "$1/exports"
  echo "CESO_SSH=$CESO_SIM_SSH_USER@127.0.0.1:$CESO_SIM_SSH_PORT" \
    "CESO_SSH_IDENTITY=$CESO_SIM_SSH_KEY CESO_SSH_HOST_KEY=$CESO_SIM_SSH_FINGERPRINT"
); }
other_stop() { [ ! -f "$1/exports" ] || CESO_SIM_STATE="$1" "$SIMCTL" stop >/dev/null 2>&1 || true; }
# What ran over SSH on a simulator (its sshd's forced command logs each), one
# line per command (without the blank the log ends each with), after its
# first N lines: `ssh_commands_of STATE [N]`.
ssh_commands_of() { tail -n +"$((${2:-0} + 1))" "$1/ssh/commands.log" 2>/dev/null | sed 's/ $//' || true; }
# Local path of a VM's disk N (0-based) data file: the extent its descriptor names.
flat_of() {
  local desc
  desc=$(ds_file "$(ceso-info "$1" | jq -r ".disks[$2].file")")
  echo "$(dirname "$desc")/$(sed -n 's/^RW [0-9]* [A-Z]* "\(.*\)"$/\1/p' "$desc" | head -1)"
}
# Number of SOAP calls of one method since the last reset (0 if none). In
# the free model a change (a *_Task or *Guest method, UpdatePassthruConfig, a
# portgroup change) is made by the host's
# own clients over SSH, counted apart as local_soap: those count as the
# method's calls, so the suites assert the same numbers in every model.
sim_count() {
  local free=false
  is_free_model && free=true
  "$SIMCTL" stats | jq -r --arg m "$1" --argjson free "$free" \
    '(.soap[$m] // 0) + (if $free and ($m | test("_Task$|Guest$|^UpdatePassthruConfig$|PortGroup$")) then (.local_soap[$m] // 0) else 0 end)'
}
# For a test whose set-up copies a VM with ceso-mkvm or ceso-clone: in the
# free model that needs them to work over SSH (--transport); skipped until
# they do.
needs_copy_tools() {
  if is_free_model && ! ceso-mkvm --dump-options | grep -q '"transport"'; then
    skip "free model: ceso-mkvm does not work over SSH yet"
  fi
}

# Assertions with useful failure output.
assert_status() {
  if [ "$status" -ne "$1" ]; then
    echo "expected exit status $1, got $status; output:" >&2
    echo "$output" >&2
    return 1
  fi
}
assert_contains() {
  if [[ "$1" != *"$2"* ]]; then
    printf 'expected to find:\n  %s\nin:\n%s\n' "$2" "$1" >&2
    return 1
  fi
}
assert_eq() {
  if [ "$1" != "$2" ]; then
    printf 'expected: %s\n     got: %s\n' "$2" "$1" >&2
    return 1
  fi
}

# A change made behind ceso's back, as another client (the host UI, govc)
# would: plain SOAP over curl against the simulator, with its own session.
#   raw_login; raw_soap '<Rename_Task xmlns="urn:vim25">…</Rename_Task>'
# In the free model the API refuses writes, so the change is made as the
# host's own local clients (vim-cmd) make it there: with the simulator's
# local ticket (tests/sim README, "The SSH side"). ceso never sends it.
raw_soap() {
  local ticket=()
  if is_free_model && [ -r "$CESO_SIM_STATE/local-ticket" ]; then
    ticket=(-H "X-Ceso-Local-Ticket: $(cat "$CESO_SIM_STATE/local-ticket")")
  fi
  curl -sf -c "$BATS_TEST_TMPDIR/raw-jar" -b "$BATS_TEST_TMPDIR/raw-jar" -H 'Content-Type: text/xml' \
    -H 'SOAPAction: urn:vim25/6.5' "${ticket[@]}" --data-binary @- "$CESO_URL" <<XML
<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>$1</soapenv:Body></soapenv:Envelope>
XML
}
# The managed objects raw SOAP calls start from, in this host model.
raw_ref() {
  case "$1:$(host_model)" in
    session:vcenter) echo SessionManager ;;
    session:*) echo ha-sessionmgr ;;
    pc:vcenter) echo propertyCollector ;;
    pc:*) echo ha-property-collector ;;
  esac
}
raw_login() {
  rm -f "$BATS_TEST_TMPDIR/raw-jar" # a second Login on a session is a fault
  raw_soap "<Login xmlns=\"urn:vim25\"><_this type=\"SessionManager\">$(raw_ref session)</_this><userName>$CESO_USER</userName><password>$CESO_PASSWORD</password></Login>" >/dev/null
}
