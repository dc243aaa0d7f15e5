#!/usr/bin/env bats
# Restricted mode with signed, expiring promotions (docs/audit.md
# "Promotions"): real tools against the simulator, with tokens made by
# ceso-audit promote, by hand with the OpenSSL command line, tampered with
# and forged.

bats_require_minimum_version 1.5.0
load helpers/common

setup_file() {
  local spec="$BATS_FILE_TMPDIR/vms.json"
  cat >"$spec" <<'JSON'
[{"name":"web01","power":"off"},{"name":"web02","power":"off"},{"name":"db01","power":"off"}]
JSON
  sim_start -vms 0 -vm-spec "$spec"
  OPDIR="$BATS_FILE_TMPDIR/operator"
  mkdir -p "$OPDIR" "$XDG_CONFIG_HOME/ceso"
  ceso-audit keygen --out "$OPDIR/key" >/dev/null
  KEY="$OPDIR/key"
  REVOKED="$BATS_FILE_TMPDIR/revoked-promotions"
  printf 'promotion:\n  key: %s\n  revoked: %s\n' "$KEY.pub" "$REVOKED" \
    >"$XDG_CONFIG_HOME/ceso/config"
  EP=$(ceso-ls --name web01 | jq -r .endpoint)
  export KEY EP REVOKED
}

teardown_file() { sim_stop; }

setup() {
  export CESO_AUDIT_LOG="$BATS_TEST_TMPDIR/audit.log"
  rm -f "$REVOKED"
  ceso-power off web01 web02 db01 >/dev/null 2>&1 || true
}

# promote NAME [ceso-audit promote options…]: a token at $BATS_TEST_TMPDIR/NAME.
promote() {
  local name=$1
  shift
  ceso-audit promote --key "$KEY" --endpoint "$EP" --reason "test $name" \
    --out "$BATS_TEST_TMPDIR/$name" "$@" >/dev/null
}

power_of() { ceso-ls --name "$1" | jq -r .power; }
token_id() { ceso-audit inspect "$1" | jq -r .id; }
last_record() { tail -n 1 "$CESO_AUDIT_LOG"; }

# The token's payload (decoded) and a token over PAYLOAD signed by KEYFILE
# with the OpenSSL command line: how a buggy or hostile issuer could sign.
payload_of() { cut -d. -f2 "$1" | base64 -d; }
openssl_token() {  # PAYLOAD KEYFILE
  local msg="$BATS_TEST_TMPDIR/msg" sig
  printf 'ceso-promotion-1\n%s' "$1" >"$msg"
  sig=$(openssl pkeyutl -sign -rawin -inkey "$2" -in "$msg" | base64 -w0)
  printf 'ceso-promotion-1.%s.%s\n' "$(printf '%s' "$1" | base64 -w0)" "$sig"
}

@test "without a promotion restricted mode refuses, audited, exit 5" {
  CESO_MODE=restricted run --separate-stderr ceso-power on web01
  assert_status 5
  assert_contains "$stderr" "restricted mode (CESO_MODE=restricted) makes no changes"
  assert_eq "$(power_of web01)" off
  assert_eq "$(last_record | jq -r .result)" refused
}

@test "a promotion allows its verb on its VMs; each use is audited with the token id" {
  promote t --for 10min --allow 'power:web*'
  id=$(token_id "$BATS_TEST_TMPDIR/t")
  [[ $id =~ ^[0-9a-f]{32}$ ]]
  CESO_MODE=restricted run --separate-stderr ceso-power on web01 --promotion "$BATS_TEST_TMPDIR/t"
  assert_status 0
  assert_eq "$(power_of web01)" on
  assert_eq "$(last_record | jq -c '[.vm, .operation, .result, .promotion]')" \
    "[\"web01\",\"PowerOnVM_Task\",\"ok\",\"$id\"]"
  # The environment variable names the file just as well.
  CESO_MODE=restricted CESO_PROMOTION="$BATS_TEST_TMPDIR/t" run ceso-power on web02
  assert_status 0
  assert_eq "$(power_of web02)" on
  assert_eq "$(last_record | jq -r .promotion)" "$id"
  # The grant itself is in the log (ceso-audit promote is audited).
  assert_eq "$(jq -r 'select(.operation == "IssuePromotion") | .params.id' "$CESO_AUDIT_LOG")" "$id"
  run ceso-audit verify
  assert_status 0
}

@test "wrong VM and wrong verb: refused, exit 5, naming what the token lacks" {
  promote t --for 10min --allow 'power:web*'
  id=$(token_id "$BATS_TEST_TMPDIR/t")
  export CESO_MODE=restricted CESO_PROMOTION="$BATS_TEST_TMPDIR/t"
  run --separate-stderr ceso-power on db01
  assert_status 5
  assert_contains "$stderr" "promotion $id"
  assert_contains "$stderr" "does not allow power on 'db01' (it allows power on 'web*')"
  assert_eq "$(power_of db01)" off
  assert_eq "$(last_record | jq -c '[.vm, .result, .promotion]')" "[\"db01\",\"refused\",\"$id\"]"
  run --separate-stderr ceso-snap create --name s1 web01
  assert_status 5
  assert_contains "$stderr" "does not allow snap on 'web01'"
  unset CESO_MODE
  assert_eq "$(ceso-info web01 | jq -c '[.snapshots[]?.name]')" "[]"
}

@test "a dry run under a promotion plans the covered change and marks the other refused" {
  promote t --for 10min --allow 'power:web01'
  CESO_MODE=restricted CESO_PROMOTION="$BATS_TEST_TMPDIR/t" run ceso-power on web01 db01 --dry-run
  assert_status 0
  assert_eq "$(jq -sc '[.[] | [.vm, has("refused")]]' <<<"$output")" '[["web01",false],["db01",true]]'
  [ ! -s "$CESO_AUDIT_LOG" ] || [ "$(jq -s 'map(select(.tool == "ceso-power")) | length' "$CESO_AUDIT_LOG")" = 0 ]
}

@test "wrong endpoint: a token for another host is refused" {
  ceso-audit promote --key "$KEY" --endpoint esxi9.lab --reason x --for 10min \
    --allow 'power:*' --out "$BATS_TEST_TMPDIR/t" >/dev/null
  port=${EP##*:}
  ceso-audit promote --key "$KEY" --endpoint "127.0.0.1:$((port == 65535 ? 1 : port + 1))" \
    --reason x --for 10min --allow 'power:*' --out "$BATS_TEST_TMPDIR/p" >/dev/null
  CESO_MODE=restricted run --separate-stderr ceso-power on web01 --promotion "$BATS_TEST_TMPDIR/t"
  assert_status 5
  assert_contains "$stderr" "is for endpoint 'esxi9.lab', not '$EP'"
  CESO_MODE=restricted run --separate-stderr ceso-power on web01 --promotion "$BATS_TEST_TMPDIR/p"
  assert_status 5
  assert_contains "$stderr" "is for endpoint"
  assert_eq "$(power_of web01)" off
}

@test "expired and not-yet-valid tokens are refused" {
  promote old --not-before -2h --for 1h --allow 'power:*'
  promote later --not-before 1h --for 1h --allow 'power:*'
  CESO_MODE=restricted run --separate-stderr ceso-power on web01 --promotion "$BATS_TEST_TMPDIR/old"
  assert_status 5
  assert_contains "$stderr" "is not valid now: it expired at"
  CESO_MODE=restricted run --separate-stderr ceso-power on web01 --promotion "$BATS_TEST_TMPDIR/later"
  assert_status 5
  assert_contains "$stderr" "is not valid now: it is not valid before"
  assert_eq "$(power_of web01)" off
  run ceso-audit inspect "$BATS_TEST_TMPDIR/old"
  assert_status 0
  assert_eq "$(jq -r .status <<<"$output")" expired
}

@test "over-used: max_uses is counted from the audit log, refusals do not count" {
  promote t --for 10min --allow 'power:web*' --max-uses 2
  export CESO_MODE=restricted CESO_PROMOTION="$BATS_TEST_TMPDIR/t"
  run ceso-power on db01   # refused: not a use
  assert_status 5
  run ceso-power on web01
  assert_status 0
  run ceso-power off web01
  assert_status 0
  run --separate-stderr ceso-power on web02
  assert_status 5
  assert_contains "$stderr" "has been used 2 of the 2 time(s) it allows"
  assert_eq "$(power_of web02)" off
  # Cutting the uses off the log's end does not hand them back.
  head -n 2 "$CESO_AUDIT_LOG" >"$CESO_AUDIT_LOG.cut" && mv "$CESO_AUDIT_LOG.cut" "$CESO_AUDIT_LOG"
  run --separate-stderr ceso-power on web02
  assert_status 5
  assert_contains "$stderr" "cannot be counted: the audit log"
  assert_eq "$(power_of web02)" off
}

@test "tampered token: the signature fails and nothing of it is trusted" {
  promote t --for 10min --allow 'power:web01'
  wide=$(payload_of "$BATS_TEST_TMPDIR/t" | sed 's/"vm":"web01"/"vm":"*"/')
  sig=$(cut -d. -f3 "$BATS_TEST_TMPDIR/t")
  printf 'ceso-promotion-1.%s.%s\n' "$(printf '%s' "$wide" | base64 -w0)" "$sig" >"$BATS_TEST_TMPDIR/bad"
  CESO_MODE=restricted run --separate-stderr ceso-power on db01 --promotion "$BATS_TEST_TMPDIR/bad"
  assert_status 5
  assert_contains "$stderr" "is not accepted: its signature does not verify"
  assert_eq "$(power_of db01)" off
  assert_eq "$(last_record | jq -r 'has("promotion")')" false
  run --separate-stderr ceso-audit inspect "$BATS_TEST_TMPDIR/bad"
  assert_status 4
  assert_eq "$(jq -c '[.verified, has("allow"), has("id")]' <<<"$output")" '[false,false,false]'
}

@test "forged token: signed with another (the agent's own) key" {
  ceso-audit keygen --out "$BATS_TEST_TMPDIR/agent.key" >/dev/null
  ceso-audit promote --key "$BATS_TEST_TMPDIR/agent.key" --endpoint "$EP" --reason mine \
    --for 10min --allow 'power:*' --out "$BATS_TEST_TMPDIR/forged" >/dev/null
  CESO_MODE=restricted run --separate-stderr ceso-power on db01 --promotion "$BATS_TEST_TMPDIR/forged"
  assert_status 5
  assert_contains "$stderr" "signature does not verify with the operator's public key"
  assert_eq "$(power_of db01)" off
}

@test "unknown field or version, even when signed by the operator's key, is refused" {
  promote t --for 10min --allow 'power:*'
  extra=$(payload_of "$BATS_TEST_TMPDIR/t" | jq -cS '. + {"alg":"none"}')
  openssl_token "$extra" "$KEY" >"$BATS_TEST_TMPDIR/extra"
  CESO_MODE=restricted run --separate-stderr ceso-power on web01 --promotion "$BATS_TEST_TMPDIR/extra"
  assert_status 5
  assert_contains "$stderr" "unknown field 'alg'"
  v2=$(payload_of "$BATS_TEST_TMPDIR/t" | jq -cS '.v = 2')
  openssl_token "$v2" "$KEY" >"$BATS_TEST_TMPDIR/v2"
  CESO_MODE=restricted run --separate-stderr ceso-power on web01 --promotion "$BATS_TEST_TMPDIR/v2"
  assert_status 5
  assert_contains "$stderr" "version 2 is not supported"
  # The same payload as the real token, signed by OpenSSL: accepted (the
  # format is plain Ed25519 over documented bytes).
  openssl_token "$(payload_of "$BATS_TEST_TMPDIR/t")" "$KEY" >"$BATS_TEST_TMPDIR/same"
  CESO_MODE=restricted run ceso-power on web01 --promotion "$BATS_TEST_TMPDIR/same"
  assert_status 0
  assert_eq "$(power_of web01)" on
}

@test "revoked: ceso-audit revoke lists the id and the next use is refused" {
  promote t --for 10min --allow 'power:web*'
  id=$(token_id "$BATS_TEST_TMPDIR/t")
  run ceso-audit revoke "$BATS_TEST_TMPDIR/t" --reason 'done early'
  assert_status 0
  grep -q "^$id  .*  done early$" "$REVOKED"
  assert_eq "$(last_record | jq -c '[.operation, .params.id]')" "[\"RevokePromotion\",\"$id\"]"
  CESO_MODE=restricted run --separate-stderr ceso-power on web01 --promotion "$BATS_TEST_TMPDIR/t"
  assert_status 5
  assert_contains "$stderr" "was revoked (listed in '$REVOKED')"
  assert_eq "$(power_of web01)" off
  assert_eq "$(ceso-audit inspect "$BATS_TEST_TMPDIR/t" | jq -r .status)" revoked
  # A damaged revocation file revokes everything rather than nothing.
  promote u --for 10min --allow 'power:web*'
  echo 'not an id' >"$REVOKED"
  CESO_MODE=restricted run --separate-stderr ceso-power on web01 --promotion "$BATS_TEST_TMPDIR/u"
  assert_status 5
  assert_contains "$stderr" "cannot be checked against revocations"
}

@test "keys: a private key others can read is refused; OpenSSL's Ed25519 PEM is accepted; RSA is not" {
  cp "$KEY" "$BATS_TEST_TMPDIR/k"
  chmod 644 "$BATS_TEST_TMPDIR/k"
  run --separate-stderr ceso-audit promote --key "$BATS_TEST_TMPDIR/k" --endpoint "$EP" \
    --reason x --for 10min --allow 'power:*' --out "$BATS_TEST_TMPDIR/t"
  assert_status 5
  assert_contains "$stderr" "has mode 0644"
  [ ! -e "$BATS_TEST_TMPDIR/t" ]
  openssl genpkey -algorithm ed25519 -out "$BATS_TEST_TMPDIR/o.key"
  chmod 600 "$BATS_TEST_TMPDIR/o.key"
  run ceso-audit promote --key "$BATS_TEST_TMPDIR/o.key" --endpoint "$EP" --reason x \
    --for 10min --allow 'power:*' --out "$BATS_TEST_TMPDIR/o"
  assert_status 0
  openssl pkey -in "$BATS_TEST_TMPDIR/o.key" -pubout -out "$BATS_TEST_TMPDIR/o.pub"
  run ceso-audit inspect --key "$BATS_TEST_TMPDIR/o.pub" "$BATS_TEST_TMPDIR/o"
  assert_status 0
  assert_eq "$(jq -r .verified <<<"$output")" true
  openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 -out "$BATS_TEST_TMPDIR/r.key" 2>/dev/null
  chmod 600 "$BATS_TEST_TMPDIR/r.key"
  run --separate-stderr ceso-audit promote --key "$BATS_TEST_TMPDIR/r.key" --endpoint "$EP" \
    --reason x --for 10min --allow 'power:*' --out "$BATS_TEST_TMPDIR/r"
  assert_status 3
  assert_contains "$stderr" "is not an Ed25519 key"
}

@test "the token is never an argument; bad promote options are usage errors" {
  promote t --for 10min --allow 'power:*'
  CESO_MODE=restricted run --separate-stderr ceso-power on web01 --promotion "$(cat "$BATS_TEST_TMPDIR/t")"
  assert_status 2
  assert_contains "$stderr" "not the token itself"
  CESO_MODE=restricted CESO_PROMOTION="$(cat "$BATS_TEST_TMPDIR/t")" run --separate-stderr ceso-power on web01
  assert_status 2
  assert_contains "$stderr" "CESO_PROMOTION takes the name of a file"
  run --separate-stderr ceso-audit promote --key "$KEY" --endpoint "$EP" --reason x --for 25h \
    --allow 'power:*' --out "$BATS_TEST_TMPDIR/x"
  assert_status 2
  assert_contains "$stderr" "24h cap"
  run --separate-stderr ceso-audit promote --key "$KEY" --endpoint "$EP" --reason x --for 1h \
    --allow 'power' --out "$BATS_TEST_TMPDIR/x"
  assert_status 2
  assert_contains "$stderr" "no VM glob"
  run --separate-stderr ceso-audit promote --key "$KEY" --endpoint "$EP" --reason x --for 1h \
    --allow 'shell:*' --out "$BATS_TEST_TMPDIR/x"
  assert_status 2
  assert_contains "$stderr" "unknown verb 'shell'"
  run --separate-stderr ceso-audit promote --key "$KEY" --endpoint 'https://esxi1/sdk' --reason x \
    --for 1h --allow 'power:*' --out "$BATS_TEST_TMPDIR/x"
  assert_status 2
  assert_contains "$stderr" "expected HOST or HOST:PORT"
  run --separate-stderr ceso-audit promote --key "$KEY" --endpoint "$EP" --reason x --for 30m \
    --allow 'power:*' --out "$BATS_TEST_TMPDIR/x"
  assert_status 2
  assert_contains "$stderr" "--for"
  run --separate-stderr ceso-audit revoke ../not-an-id --reason x
  assert_status 1
  run --separate-stderr ceso-audit revoke not-an-id --reason x
  assert_status 2
  assert_contains "$stderr" "neither a token file nor a promotion id"
  [ ! -e "$BATS_TEST_TMPDIR/x" ]
  # An existing token file is not overwritten.
  run --separate-stderr ceso-audit promote --key "$KEY" --endpoint "$EP" --reason x --for 1h \
    --allow 'power:*' --out "$BATS_TEST_TMPDIR/t"
  assert_status 1
  assert_contains "$stderr" "not overwritten"
  # A missing token file is a refusal naming it.
  CESO_MODE=restricted run --separate-stderr ceso-power on web01 --promotion "$BATS_TEST_TMPDIR/none"
  assert_status 5
  assert_contains "$stderr" "is not accepted"
  assert_contains "$stderr" "none"
}

@test "restricted mode refuses granting and revoking; a promotion does not change that" {
  promote t --for 10min --allow 'power:*'
  CESO_MODE=restricted run --separate-stderr ceso-audit promote --key "$KEY" --endpoint "$EP" \
    --reason x --for 10min --allow 'power:*' --out "$BATS_TEST_TMPDIR/x" --promotion "$BATS_TEST_TMPDIR/t"
  assert_status 5
  assert_contains "$stderr" "IssuePromotion"
  [ ! -e "$BATS_TEST_TMPDIR/x" ]
  CESO_MODE=restricted run ceso-audit revoke "$BATS_TEST_TMPDIR/t" --reason x
  assert_status 5
  [ ! -e "$REVOKED" ]
}

@test "the issue's example: 'power,snap:web*' covers both tools on web VMs only" {
  promote t --for 30min --allow 'power,snap:web*'
  export CESO_MODE=restricted CESO_PROMOTION="$BATS_TEST_TMPDIR/t"
  run ceso-snap create --name s1 web02
  assert_status 0
  run ceso-power on web02
  assert_status 0
  run --separate-stderr ceso-snap create --name s1 db01
  assert_status 5
  assert_contains "$stderr" "does not allow snap on 'db01' (it allows power on 'web*', snap on 'web*')"
  unset CESO_MODE CESO_PROMOTION
  assert_eq "$(ceso-info web02 | jq -c '[.snapshots[]?.name]')" '["s1"]'
  assert_eq "$(ceso-info db01 | jq -c '[.snapshots[]?.name]')" '[]'
  ceso-snap rm --name s1 web02 >/dev/null
}

@test "max_uses holds with parallel jobs: the last use is taken once" {
  promote t --for 10min --allow 'power:web*' --max-uses 1
  CESO_MODE=restricted run --separate-stderr ceso-power on web01 web02 -j 2 \
    --promotion "$BATS_TEST_TMPDIR/t"
  assert_status 4
  assert_contains "$stderr" "has been used 1 of the 1 time(s) it allows"
  assert_eq "$( (power_of web01; power_of web02) | sort | tr '\n' ' ')" "off on "
  assert_eq "$(jq -s 'map(select(.promotion)) | map(.result) | sort | join(",")' -r "$CESO_AUDIT_LOG")" "ok,refused"
}
