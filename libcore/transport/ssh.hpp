// Commands on a host's shell over SSH (libssh2): the way to a free-licensed
// ESXi host, whose API is read-only (docs/esxi.md "SSH").
//
// One SshConnection is one TCP connection and one SSH session, made once per
// tool run and reused for every command: each command is a channel of its own
// on that session (a handshake and a login per run, not per command).
//
// Before anything is signed with the user's key the host's key is checked:
// against a pinned SHA-256 fingerprint ("SHA256:base64", as `ssh-keygen -lf`
// prints it) when one is given, else against OpenSSH known_hosts files. An
// unknown host is refused unless accept_new_host_key (then its key is
// recorded); a changed key is always refused, naming the old and the new
// fingerprint.
//
// Every argument is single-quoted for the host's shell (BusyBox ash on ESXi:
// POSIX sh, no $'…'), and arguments with control characters or bytes that
// are not UTF-8 never get there (Error bad_input naming the argument).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace ceso {

// What a host may do before a command is given up (ceso(7) LIMITS, the same
// settings as HttpLimits: CESO_IDLE_TIMEOUT, CESO_CALL_TIMEOUT,
// CESO_MAX_ANSWER_MIB), each a LimitExceeded (exit 6). 0 turns a timeout off.
struct SshLimits {
  int idle_timeout_s = 60;   // nothing received or sent for this long: connect, login,
                             // every command and stream
  int call_timeout_s = 300;  // run() only: one command, start to end
  uint64_t max_output_bytes = 64ull << 20;  // run(): stdout + stderr held
};

struct SshSettings {
  std::string user = "root";
  std::string host;  // a name, an IPv4 address or an IPv6 literal without brackets
  int port = 22;
  // The private key file (ed25519 or ECDSA, unencrypted); "agent" for the SSH
  // agent only (SSH_AUTH_SOCK); empty: the agent, then ~/.ssh/id_ed25519 and
  // ~/.ssh/id_ecdsa.
  std::string identity;
  // A pinned host key, "SHA256:base64" (normalize_host_key_pin in
  // config/); when set,
  // known_hosts files are not consulted.
  std::string host_key_pin;
  // OpenSSH known_hosts files to check the host key against, in order;
  // missing files are fine (default_known_hosts_files in config/ names
  // ~/.ssh/known_hosts and ceso's own). A new key accepted with
  // accept_new_host_key is appended to `record_file`.
  std::vector<std::string> known_hosts_files;
  std::string record_file;
  bool accept_new_host_key = false;
};

struct SshResult {
  int exit_status = 0;
  std::string exit_signal;  // "KILL" when the command died of a signal, else ""
  std::string out;          // stdout
  std::string err;          // stderr
  bool ok() const { return exit_status == 0 && exit_signal.empty(); }
  // How it ended, for a message: " (exit status N)" or " (signal S)", then
  // ": " and the first line of stderr (host_text) when there is one.
  std::string ending() const;
};

// One argument for the host's shell: 'text' with every ' written '\''.
// Throws Error(bad_input) for control characters (C0 incl. NUL and newline,
// DEL, C1) and for bytes that are not UTF-8; `what` names the argument in
// the message ("argument 2").
std::string shell_quote(std::string_view arg, std::string_view what = "argument");
// The command line for argv: every element shell_quote()d, joined by spaces.
// An empty argv is refused (Error bad_input).
std::string shell_command(const std::vector<std::string>& argv);

// "SHA256:" + base64 without padding of SHA-256(key blob), as OpenSSH prints.
std::string host_key_fingerprint(std::string_view key_blob);

// What a private key file holds, told without its passphrase: the key type
// ("ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa", "ssh-dss"; "ecdsa" for a
// PEM EC key; "" when it cannot be told) and whether it is encrypted.
// Exposed for tests.
struct PrivateKeyInfo {
  std::string type;
  bool encrypted = false;
};
PrivateKeyInfo private_key_info(std::string_view file_text);

// The host key check of SshConnection for another libssh2 session, after
// its handshake (the sftp backup target's): `session` is a LIBSSH2_SESSION*;
// the pin or settings.known_hosts_files, settings.accept_new_host_key and
// settings.record_file as for SshConnection. Every message starts with
// `prefix`; an unknown key's message advises "ssh_host_key: FINGERPRINT"
// followed by `pin_advice` ("in the config entry"), or no pin when it is "".
// Throws Error(connection) for an unknown, changed, revoked or wrongly
// pinned key.
void check_ssh_host_key(void* session, const SshSettings& settings, const std::string& prefix,
                        std::string_view pin_advice);

class SshConnection;

// The output of one command, read as it arrives (disk images and other large
// output): read() until it returns 0, then finish() for the exit status.
// Only the idle timeout applies (no call timeout); SIGINT/SIGTERM stop it.
// Its connection runs nothing else until it is destroyed (run() on the same
// thread meanwhile throws); a stream destroyed before its end closes the
// connection, since the rest of the output cannot be skipped cheaply.
class SshStream {
 public:
  ~SshStream();
  SshStream(const SshStream&) = delete;
  SshStream& operator=(const SshStream&) = delete;
  // Up to `size` bytes of stdout; 0 at its end.
  size_t read(char* data, size_t size);
  // After read() returned 0: the exit status and the first 64 KiB of stderr.
  // Throws like SshConnection::run for a dropped connection.
  SshResult finish();

 private:
  friend class SshConnection;
  struct Impl;
  explicit SshStream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class SshConnection {
 public:
  // Connects, checks the host key, logs in. Throws Error(connection) for
  // every failure (unreachable host, unknown or changed key, login refused,
  // an RSA key), LimitExceeded for the idle timeout, Error(interrupted) for
  // SIGINT/SIGTERM.
  SshConnection(SshSettings settings, SshLimits limits = {});
  ~SshConnection();
  SshConnection(const SshConnection&) = delete;
  SshConnection& operator=(const SshConnection&) = delete;

  // Runs argv (every element single-quoted) with `input` on its stdin, and
  // returns its exit status and output, whatever the status. Throws
  // Error(bad_input) for an argument refused by shell_quote (nothing is
  // sent), Error(connection) when the connection fails, LimitExceeded for
  // a broken limit. A command the host received runs to its end after
  // SIGINT/SIGTERM (its result is needed to undo it) unless
  // calls_abort_on_interrupt() (base/cancel.hpp): then Error(interrupted).
  // After a failure or an abort the connection is closed and later calls
  // throw Error(connection).
  SshResult run(const std::vector<std::string>& argv, std::string_view input = {});

  // Runs argv with what `input` produces on its stdin, sent as it comes (a
  // disk image: never the whole input in memory, at most 256 KiB held).
  // input(data, size) fills up to `size` bytes and returns how many, 0 at
  // the end; it may throw. Only the idle timeout applies (no call timeout);
  // `cancel` (SIGINT/SIGTERM: interrupt_requested) is asked between chunks
  // and while the host is not taking data. When `input` throws or `cancel`
  // says so (Error interrupted), the command's stdin is ended without the
  // rest, the command is waited for and the error is thrown: the command
  // saw a short input (write to a temporary name, rename after success).
  // The connection stays usable for a rollback. A command that ends before
  // reading all of its input is Error(failure), naming its exit status and
  // the first line of its stderr. Else its exit status and output, as run().
  using InputFn = std::function<size_t(char* data, size_t size)>;
  SshResult run_input(const std::vector<std::string>& argv, const InputFn& input,
                      const std::function<bool()>& cancel = {});

  // Starts argv and returns its stdout as a stream (see SshStream).
  std::unique_ptr<SshStream> stream(const std::vector<std::string>& argv);

  // The host key's fingerprint ("SHA256:…") and type ("ecdsa-sha2-nistp256").
  const std::string& host_key_fingerprint() const;
  const std::string& host_key_type() const;
  // Commands started on this connection (run and stream), for round-trip
  // accounting.
  uint64_t commands() const;
  // "root@esxi1.lab:22", for messages.
  const std::string& name() const;
  // The connection failed or was given up (every later command throws
  // Error(connection)): a caller that must still act (a rollback) opens a
  // new one.
  bool lost() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ceso
