# Checks that a secret never shows up in a file (audit log, captured plans),
# in clear or encoded as guestinfo carries it.
#
#   load helpers/secrets
#   assert_no_secret "$CESO_AUDIT_LOG" "$MARKER"

# A marker unlikely to occur by chance, unique per call.
new_marker() { echo "CesoSecret$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')Marker"; }

# The base64 of MARKER wherever it sits in a longer text: one string per byte
# alignment, without the characters that depend on the neighbouring bytes.
marker_base64_forms() {
  local marker=$1 pad b skip
  for pad in "" x xx; do
    b=$(printf '%s%s' "$pad" "$marker" | base64 -w0)
    skip=$(((8 * ${#pad} + 5) / 6))
    b=${b:$skip}
    echo "${b:0:$((${#b} - 4))}"
  done
}

# Fails, naming what was found, when FILE holds MARKER: in clear, in base64 at
# any alignment, or inside any base64 run that decodes (and gunzips) to it.
assert_no_secret() {
  local file=$1 marker=$2 form tok dir
  if grep -aqF -- "$marker" "$file"; then
    echo "the secret $marker is in $file in clear:" >&2
    grep -aF -- "$marker" "$file" | cut -c1-400 >&2
    return 1
  fi
  while read -r form; do
    if grep -aqF -- "$form" "$file"; then
      echo "the secret $marker is in $file as base64 ($form)" >&2
      return 1
    fi
  done < <(marker_base64_forms "$marker")
  dir=$(mktemp -d)
  local n=0
  while read -r tok; do
    n=$((n + 1))
    printf '%s' "$tok" | base64 -d >"$dir/raw" 2>/dev/null || true
    gzip -dc <"$dir/raw" >"$dir/gunzipped" 2>/dev/null || true
    if grep -aqF -- "$marker" "$dir/raw" "$dir/gunzipped"; then
      echo "the secret $marker is in $file inside an encoded value (${tok:0:40}…)" >&2
      rm -rf "$dir"
      return 1
    fi
  done < <(grep -aoE '[A-Za-z0-9+/]{16,}={0,2}' "$file" || true)
  rm -rf "$dir"
}

# The checks above must be able to fail: a self-test on known encodings.
assert_secret_check_works() {
  local marker f
  marker=$(new_marker)
  f=$(mktemp)
  for enc in clear b64 b64off gz; do
    case $enc in
      clear) echo "x $marker y" >"$f" ;;
      b64) printf '%s' "$marker" | base64 -w0 >"$f" ;;
      b64off) printf 'ab%s' "$marker" | base64 -w0 >"$f" ;;
      gz) printf '#cloud-config\nwrite_files: [{content: %s}]\n' "$marker" | gzip | base64 -w0 >"$f" ;;
    esac
    if assert_no_secret "$f" "$marker" 2>/dev/null; then
      echo "assert_no_secret missed the $enc form" >&2
      rm -f "$f"
      return 1
    fi
  done
  rm -f "$f"
}
