# A real OpenSSH server on 127.0.0.1 for sftp tests (Debian's openssh-server).
#
#   load helpers/sshd
#   sshd_start            # exports SSHD_PORT; authorizes $HOME/.ssh/id_ed25519
#   sshd_stop             # (teardown_file) stops it if it runs
#
# It runs with its own config, host key and authorized_keys under
# $BATS_FILE_TMPDIR/sshd, listens on loopback only and allows public keys only.

sshd_dir() { echo "$BATS_FILE_TMPDIR/sshd"; }

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

sshd_start() {
  local dir port
  dir=$(sshd_dir)
  mkdir -p "$dir" "$HOME/.ssh"
  chmod 700 "$HOME/.ssh"
  [ -f "$dir/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
  [ -f "$HOME/.ssh/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$HOME/.ssh/id_ed25519"
  cp "$HOME/.ssh/id_ed25519.pub" "$dir/authorized_keys"
  port=$(free_port)
  cat >"$dir/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_key
PidFile $dir/pid
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
LogLevel ERROR
CONF
  # sshd insists on its privilege separation directory.
  [ -d /run/sshd ] || mkdir -p /run/sshd
  /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/log"
  local i
  for i in $(seq 100); do
    /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
    sleep 0.1
  done
  export SSHD_PORT=$port
}

sshd_stop() {
  local pidfile
  pidfile="$(sshd_dir)/pid"
  [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  rm -f "$pidfile"
  return 0
}
