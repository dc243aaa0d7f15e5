# The S3 test bed for bats files: a real S3 server on 127.0.0.1 (moto 5.2.1
# with signature checks on, tests/s3/s3server.py). Never skipped: without
# moto and botocore it does not start and every test fails
# (scripts/install-deps installs them).

# Starts the server; exports its endpoint, the credentials of an IAM user
# with s3:* (the server checks every signature) and
# CESO_BACKUP_TARGET=s3://ceso-test/PREFIX (default "backups/site%20a").
s3_start() {
  local dir="$BATS_FILE_TMPDIR/s3"
  mkdir -p "$dir"
  python3 "$REPO_ROOT/tests/s3/s3server.py" "$dir/port" "$dir/credentials" \
    >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 300); do [ -s "$dir/port" ] && break; sleep 0.1; done
  [ -s "$dir/port" ] || { cat "$dir/log" >&2; return 1; }
  chmod 600 "$dir/credentials"
  S3_PORT=$(cat "$dir/port")
  export AWS_ENDPOINT_URL="http://127.0.0.1:$S3_PORT"
  export AWS_SHARED_CREDENTIALS_FILE="$dir/credentials" AWS_PROFILE=ceso-test AWS_REGION=us-east-1
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
  export CESO_BACKUP_TARGET="s3://ceso-test/${1:-backups/site%20a}"
  export CESO_S3_PART_MIB=5
}
s3_stop() {
  local pid
  pid=$(cat "$BATS_FILE_TMPDIR/s3/pid" 2>/dev/null) && kill "$pid" 2>/dev/null || true
}
s3_fault() { curl -sf -X POST --data "$1" "$AWS_ENDPOINT_URL/__fault" >/dev/null; }
s3_stats() { curl -sf "$AWS_ENDPOINT_URL/__stats"; }
# botocore (not ceso) looks at the bucket: s3py 'python code using s3'.
s3py() { python3 -c "import boto3; s3 = boto3.client('s3')
$1"; }
