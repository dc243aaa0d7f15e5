#include "transport/ssh.hpp"

#include <fcntl.h>
#include <libssh2.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/cancel.hpp"
#include "base/codec.hpp"
#include "base/error.hpp"
#include "base/util.hpp"
#include "config/config.hpp"

namespace ceso {

std::string SshResult::ending() const {
  std::string_view first = err;
  first = first.substr(0, first.find('\n'));
  return (exit_signal.empty() ? " (exit status " + std::to_string(exit_status) + ")"
                              : " (signal " + exit_signal + ")") +
         (first.empty() ? "" : ": " + host_text(first));
}

namespace {

using Clock = std::chrono::steady_clock;

std::once_flag g_ssh_init;

// The next UTF-8 character of `s` at `i`: its code point and length, or
// length 0 for a byte that does not start a valid sequence (overlong forms,
// surrogates and values above U+10FFFF included).
size_t utf8_next(std::string_view s, size_t i, uint32_t* cp) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
  if (len == 0 || c > 0xf4 || i + len > s.size()) return 0;
  uint32_t v = c & (0x7f >> len);
  for (size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    v = (v << 6) | (b(i + k) & 0x3f);
  }
  static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < kMin[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  *cp = v;
  return len;
}

std::string sha256_raw(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

// An SSH wire-format string (uint32 length + bytes) at `pos`; false when
// the data is too short.
bool wire_string(std::string_view data, size_t* pos, std::string_view* out) {
  if (data.size() - *pos < 4 || *pos > data.size()) return false;
  auto u = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(data[k])); };
  uint32_t len = u(*pos) << 24 | u(*pos + 1) << 16 | u(*pos + 2) << 8 | u(*pos + 3);
  *pos += 4;
  if (len > data.size() - *pos) return false;
  *out = data.substr(*pos, len);
  *pos += len;
  return true;
}

// The key type named at the start of a public key blob ("ssh-ed25519").
std::string blob_key_type(std::string_view blob) {
  size_t pos = 0;
  std::string_view type;
  if (!wire_string(blob, &pos, &type)) return "unknown";
  return printable(type);
}

int knownhost_key_bits(int hostkey_type) {
  switch (hostkey_type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA:
      return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS:
      return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
      return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
      return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
      return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case LIBSSH2_HOSTKEY_TYPE_ED25519:
      return LIBSSH2_KNOWNHOST_KEY_ED25519;
    default:
      return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
  }
}

// A known_hosts file, small enough to hold (OpenSSH's are a few KiB);
// nullopt when it does not exist.
std::optional<std::string> read_text_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    fail("cannot read " + quote(path) + ": " + std::strerror(errno));
  }
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > (16u << 20)) {
      ::close(fd);
      fail(quote(path) + " is larger than 16 MiB");
    }
  }
  ::close(fd);
  return text;
}

// Whether `word` is one of the blank-separated words of `line`.
bool has_word(std::string_view line, std::string_view word) {
  size_t pos = 0;
  while (pos < line.size()) {
    size_t start = line.find_first_not_of(" \t", pos);
    if (start == std::string_view::npos) break;
    size_t end = line.find_first_of(" \t", start);
    if (line.substr(start, end == std::string_view::npos ? end : end - start) == word) return true;
    pos = end;
  }
  return false;
}

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    out.push_back(line);
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------- quoting

std::string shell_quote(std::string_view arg, std::string_view what) {
  for (size_t i = 0; i < arg.size();) {
    uint32_t cp = 0;
    size_t len = utf8_next(arg, i, &cp);
    if (len == 0)
      bad_input(std::string(what) + " " + quote(arg) +
                " is not UTF-8 text: refusing to send it to the host's shell");
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
      bad_input(std::string(what) + " " + quote(arg) +
                " has a control character: refusing to send it to the host's shell");
    i += len;
  }
  return sh_single_quote(arg);
}

std::string shell_command(const std::vector<std::string>& argv) {
  if (argv.empty()) bad_input("no command to run over SSH");
  std::string out;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (i) out += ' ';
    out += shell_quote(argv[i], i == 0 ? "the command" : "argument " + std::to_string(i));
  }
  return out;
}

// ---------------------------------------------------------------- keys

std::string host_key_fingerprint(std::string_view key_blob) {
  std::string b64 = base64_encode(sha256_raw(key_blob));
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  return "SHA256:" + b64;
}

PrivateKeyInfo private_key_info(std::string_view text) {
  PrivateKeyInfo info;
  constexpr std::string_view kOpenSsh = "-----BEGIN OPENSSH PRIVATE KEY-----";
  if (size_t begin = text.find(kOpenSsh); begin != std::string_view::npos) {
    size_t body = begin + kOpenSsh.size();
    size_t end = text.find("-----END", body);
    std::string raw;
    try {
      raw = base64_decode(text.substr(body, end == std::string_view::npos ? end : end - body));
    } catch (const Error&) {
      return info;
    }
    constexpr std::string_view kMagic("openssh-key-v1\0", 15);
    if (raw.compare(0, kMagic.size(), kMagic) != 0) return info;
    size_t pos = kMagic.size();
    std::string_view cipher, kdf, kdf_options, pub, type;
    if (!wire_string(raw, &pos, &cipher) || !wire_string(raw, &pos, &kdf) ||
        !wire_string(raw, &pos, &kdf_options) || raw.size() - pos < 4)
      return info;
    pos += 4;  // the number of keys
    if (!wire_string(raw, &pos, &pub)) return info;
    size_t ppos = 0;
    if (!wire_string(pub, &ppos, &type)) return info;
    info.type = printable(type);
    info.encrypted = cipher != "none";
    return info;
  }
  if (text.find("-----BEGIN RSA PRIVATE KEY-----") != std::string_view::npos)
    info.type = "ssh-rsa";
  else if (text.find("-----BEGIN DSA PRIVATE KEY-----") != std::string_view::npos)
    info.type = "ssh-dss";
  else if (text.find("-----BEGIN EC PRIVATE KEY-----") != std::string_view::npos)
    info.type = "ecdsa";
  if (!info.type.empty()) {
    info.encrypted = text.find("ENCRYPTED") != std::string_view::npos;
    return info;
  }
  if (text.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string_view::npos) {
    info.encrypted = true;
    return info;
  }
  // PKCS#8: ask OpenSSL (no passphrase: an unencrypted key only).
  if (text.find("-----BEGIN PRIVATE KEY-----") != std::string_view::npos) {
    BIO* bio = BIO_new_mem_buf(text.data(), static_cast<int>(text.size()));
    EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
    if (key) {
      int id = EVP_PKEY_get_base_id(key);
      info.type = id == EVP_PKEY_RSA       ? "ssh-rsa"
                  : id == EVP_PKEY_EC      ? "ecdsa"
                  : id == EVP_PKEY_ED25519 ? "ssh-ed25519"
                  : id == EVP_PKEY_DSA     ? "ssh-dss"
                                           : "";
      EVP_PKEY_free(key);
    }
    if (bio) BIO_free(bio);
  }
  return info;
}

// ---------------------------------------------------------------- connection

struct SshConnection::Impl {
  SshSettings s;
  SshLimits limits;
  std::string name;     // root@host:port, for messages
  std::string kh_name;  // "host" or "[host]:port", as OpenSSH writes it
  int fd = -1;
  LIBSSH2_SESSION* session = nullptr;
  bool broken = false;
  std::string fingerprint, key_type;
  std::atomic<uint64_t> commands{0};
  std::mutex mutex;  // one command or stream at a time
  std::atomic<std::thread::id> stream_owner{};

  // The operation waited for: its limits and what it is, for messages.
  Clock::time_point last_activity, call_start;
  bool call_limited = false;
  bool abort_on_interrupt = true;
  std::string doing;
  // run_input: asked while waiting; once it said yes, `cancelled` is set and
  // wait() returns at once (once) so the caller can stop sending.
  std::function<bool()> cancel;
  bool cancelled = false;

  Impl(SshSettings settings, SshLimits l) : s(std::move(settings)), limits(l) {
    std::string host = s.host.find(':') != std::string::npos ? "[" + s.host + "]" : s.host;
    name = s.user + "@" + host + ":" + std::to_string(s.port);
    kh_name = s.port == 22 ? s.host : "[" + s.host + "]:" + std::to_string(s.port);
  }
  ~Impl() { close(); }

  void close() {
    if (session) {
      if (!broken) {
        // Best effort, never waiting: the host may be gone.
        libssh2_session_set_blocking(session, 0);
        libssh2_session_disconnect(session, "bye");
      }
      libssh2_session_free(session);
      session = nullptr;
    }
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  std::string last_error() const {
    char* msg = nullptr;
    if (!session) return "out of memory";
    libssh2_session_last_error(session, &msg, nullptr, 0);
    return msg && *msg ? printable(msg) : "unknown error";
  }

  [[noreturn]] void lost(const std::string& what) {
    broken = true;
    throw Error("ssh " + name + ": " + what, Exit::connection);
  }

  void begin(std::string what, bool call_timeout, bool abort) {
    doing = std::move(what);
    last_activity = call_start = Clock::now();
    call_limited = call_timeout;
    abort_on_interrupt = abort;
  }

  // Waits until the socket is ready in the directions libssh2 is blocked on
  // (its last call) or `more` (poll events: POLLOUT for a write that could
  // not be sent before the reads that followed it), checking the limits and
  // interruption ten times a second.
  void wait(short more = 0) {
    for (;;) {
      if (cancel && !cancelled && cancel()) {
        cancelled = true;
        return;
      }
      if (abort_on_interrupt && interrupted()) {
        broken = true;
        throw Error("ssh " + name + ": " + doing + ": interrupted", Exit::interrupted);
      }
      auto now = Clock::now();
      if (limits.idle_timeout_s > 0 &&
          now - last_activity > std::chrono::seconds(limits.idle_timeout_s)) {
        broken = true;
        throw LimitExceeded("ssh " + name + ": " + doing + ": nothing received for " +
                            std::to_string(limits.idle_timeout_s) +
                            " s (the idle timeout, CESO_IDLE_TIMEOUT)");
      }
      if (call_limited && limits.call_timeout_s > 0 &&
          now - call_start > std::chrono::seconds(limits.call_timeout_s)) {
        broken = true;
        throw LimitExceeded("ssh " + name + ": " + doing + ": not done after " +
                            std::to_string(limits.call_timeout_s) +
                            " s (the call timeout, CESO_CALL_TIMEOUT)");
      }
      pollfd p{fd, more, 0};
      int dir = session ? libssh2_session_block_directions(session) : 0;
      if (dir & LIBSSH2_SESSION_BLOCK_INBOUND) p.events |= POLLIN;
      if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND) p.events |= POLLOUT;
      if (!p.events) p.events = POLLIN;
      int rc = ::poll(&p, 1, 100);
      if (rc > 0) {
        last_activity = Clock::now();
        return;
      }
      if (rc < 0 && errno != EINTR) lost(doing + ": " + std::strerror(errno));
      // A quiet socket: libssh2 is called again all the same, as it may
      // hold received bytes it has not handed out (the idle timeout still
      // counts from the last byte that moved).
      if (rc == 0) return;
    }
  }

  // Calls f until it stops saying EAGAIN.
  template <class F>
  auto retry(F f) {
    for (;;) {
      auto rc = f();
      if constexpr (std::is_pointer_v<decltype(rc)>) {
        if (rc || libssh2_session_last_errno(session) != LIBSSH2_ERROR_EAGAIN) return rc;
      } else {
        if (rc != LIBSSH2_ERROR_EAGAIN) return rc;
      }
      wait();
    }
  }

  void connect_tcp() {
    begin("connecting", false, true);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::string port = std::to_string(s.port);
    if (int rc = getaddrinfo(s.host.c_str(), port.c_str(), &hints, &res); rc != 0)
      throw Error("ssh " + name + ": cannot resolve " + quote(s.host) + ": " + gai_strerror(rc),
                  Exit::connection);
    std::string why = "no address";
    for (addrinfo* a = res; a && fd < 0; a = a->ai_next) {
      fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
      if (fd < 0) continue;
      int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
      if (rc != 0 && errno == EINPROGRESS) {
        for (;;) {
          pollfd p{fd, POLLOUT, 0};
          int prc = ::poll(&p, 1, 100);
          if (prc > 0) break;
          try {
            if (prc == 0) wait_tick();
          } catch (...) {
            freeaddrinfo(res);
            throw;
          }
        }
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err ? -1 : 0;
        errno = err;
      }
      if (rc != 0) {
        why = std::strerror(errno);
        ::close(fd);
        fd = -1;
      }
    }
    freeaddrinfo(res);
    if (fd < 0) throw Error("ssh " + name + ": cannot connect: " + why, Exit::connection);
  }

  // The limit and interruption checks of wait(), without a socket.
  void wait_tick() {
    if (interrupted()) throw Error("ssh " + name + ": interrupted", Exit::interrupted);
    if (limits.idle_timeout_s > 0 &&
        Clock::now() - last_activity > std::chrono::seconds(limits.idle_timeout_s))
      throw LimitExceeded("ssh " + name + ": no answer to the connection for " +
                          std::to_string(limits.idle_timeout_s) +
                          " s (the idle timeout, CESO_IDLE_TIMEOUT)");
  }

  void handshake() {
    std::call_once(g_ssh_init, [] { libssh2_init(0); });
    session = libssh2_session_init();
    if (!session) throw Error("ssh: cannot initialise libssh2");
    libssh2_session_set_blocking(session, 0);
    // As OpenSSH does: the key types known for this host first, then
    // OpenSSH's own order, so the host offers the key that was recorded
    // (ESXi has ECDSA P-256 and RSA: ECDSA either way).
    std::string pref;
    std::vector<std::string> order =
        s.host_key_pin.empty() ? known_key_types() : std::vector<std::string>{};
    for (const char* t : {"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                          "ecdsa-sha2-nistp521", "ssh-rsa"})
      if (std::find(order.begin(), order.end(), t) == order.end()) order.push_back(t);
    for (const auto& t : order) {
      if (t != "ssh-ed25519" && t.rfind("ecdsa-sha2-nistp", 0) != 0 && t != "ssh-rsa") continue;
      pref += (pref.empty() ? "" : ",") + t;
    }
    libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY, pref.c_str());
    begin("SSH handshake", false, true);
    if (retry([&] { return libssh2_session_handshake(session, fd); }) != 0)
      lost("SSH handshake failed: " + last_error());
  }

  // The key types the known_hosts files have for this host, in file order
  // (plain names and hashed ones: |1|salt|HMAC-SHA1(salt, name)).
  std::vector<std::string> known_key_types() const {
    std::vector<std::string> types;
    for (const auto& file : s.known_hosts_files) {
      std::optional<std::string> text;
      try {
        text = read_text_file(file);
      } catch (const Error&) {
        continue;  // reported by the check itself
      }
      if (!text) continue;
      for (std::string_view line : lines_of(*text)) {
        if (line.empty() || line.front() == '#' || line.front() == '@') continue;
        size_t sp = line.find_first_of(" \t");
        if (sp == std::string_view::npos) continue;
        std::string_view hosts = line.substr(0, sp);
        std::string_view rest = line.substr(sp);
        size_t t0 = rest.find_first_not_of(" \t");
        if (t0 == std::string_view::npos) continue;
        size_t t1 = rest.find_first_of(" \t", t0);
        std::string type(rest.substr(t0, t1 == std::string_view::npos ? t1 : t1 - t0));
        if (names_host(hosts) && std::find(types.begin(), types.end(), type) == types.end())
          types.push_back(type);
      }
    }
    return types;
  }
  bool names_host(std::string_view hosts) const {
    if (hosts.substr(0, 3) == "|1|") {
      size_t bar = hosts.find('|', 3);
      if (bar == std::string_view::npos) return false;
      try {
        std::string salt = base64_decode(hosts.substr(3, bar - 3));
        std::string hash = base64_decode(hosts.substr(bar + 1));
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        HMAC(EVP_sha1(), salt.data(), static_cast<int>(salt.size()),
             reinterpret_cast<const unsigned char*>(kh_name.data()), kh_name.size(), md, &len);
        return hash == std::string(reinterpret_cast<char*>(md), len);
      } catch (const Error&) {
        return false;
      }
    }
    size_t pos = 0;
    while (pos <= hosts.size()) {
      size_t comma = hosts.find(',', pos);
      if (hosts.substr(pos, comma == std::string_view::npos ? comma : comma - pos) == kh_name)
        return true;
      if (comma == std::string_view::npos) break;
      pos = comma + 1;
    }
    return false;
  }

  void check_host_key();
  void authenticate();
  bool auth_file(const std::string& file, bool named, std::string* why);
  bool auth_agent(std::string* why);
};

namespace {

struct HostKey {
  std::string fingerprint, type;
};

// The host key check (see check_ssh_host_key); `prefix` starts every
// message ("ssh root@h:22: ", "sftp: ").
HostKey check_key(LIBSSH2_SESSION* session, const SshSettings& s, const std::string& prefix,
                  std::string_view pin_advice) {
  auto lost = [&](const std::string& what) { throw Error(prefix + what, Exit::connection); };
  const std::string kh_name = s.port == 22 ? s.host : "[" + s.host + "]:" + std::to_string(s.port);
  HostKey result;
  std::string& fingerprint = result.fingerprint;
  std::string& key_type = result.type;
  size_t len = 0;
  int type = 0;
  const char* key = libssh2_session_hostkey(session, &len, &type);
  if (!key || len == 0) lost("the host sent no host key");
  std::string_view blob(key, len);
  fingerprint = ceso::host_key_fingerprint(blob);
  key_type = blob_key_type(blob);
  const std::string offered = key_type + " " + fingerprint;

  if (!s.host_key_pin.empty()) {
    if (fingerprint == s.host_key_pin) return result;
    lost("the host key is " + offered + ", not the pinned " + s.host_key_pin +
         ": refusing to connect (if the host's key was changed on purpose, pin the new one: "
         "ssh_host_key: " +
         fingerprint + ")");
  }

  // Every known_hosts file: a key that matches any line for this host is
  // accepted; lines for this host with other keys (of any type: an attacker
  // must not get around a known key by offering another type) and none that
  // matches make a changed key. Lines libssh2 cannot read (certificate
  // authorities, key types it lacks) are skipped one by one, not the rest
  // of the file after them as libssh2_knownhost_readfile does.
  std::string old_keys, old_file;
  const std::string b64_offered = base64_encode(blob);
  for (const auto& file : s.known_hosts_files) {
    auto text = read_text_file(file);
    if (!text) continue;
    std::unique_ptr<LIBSSH2_KNOWNHOSTS, decltype(&libssh2_knownhost_free)> kh(
        libssh2_knownhost_init(session), libssh2_knownhost_free);
    if (!kh) lost("out of memory");
    for (std::string_view line : lines_of(*text)) {
      if (line.empty() || line.front() == '#') continue;
      if (line.front() == '@') {
        // "@revoked PATTERNS TYPE KEY": refuse a revoked key whatever the host.
        if (line.substr(0, 9) == "@revoked " && has_word(line, b64_offered))
          lost("the host key " + offered + " is marked @revoked in " + file +
               ": refusing to connect");
        continue;
      }
      std::string copy(line);
      copy += '\n';
      libssh2_knownhost_readline(kh.get(), copy.c_str(), copy.size(),
                                 LIBSSH2_KNOWNHOST_FILE_OPENSSH);
    }
    libssh2_knownhost* found = nullptr;
    int rc = libssh2_knownhost_checkp(kh.get(), kh_name.c_str(), -1, key, len,
                                      LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW,
                                      &found);
    if (rc == LIBSSH2_KNOWNHOST_CHECK_MATCH) return result;
    if (rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH && found && found->key && old_keys.empty()) {
      std::string old_blob;
      try {
        old_blob = base64_decode(found->key);
      } catch (const Error&) {
      }
      old_keys = blob_key_type(old_blob) + " " + ceso::host_key_fingerprint(old_blob);
      old_file = file;
    }
  }
  if (!old_keys.empty())
    lost("the host key of " + kh_name + " has CHANGED, it differs from the known one: " + old_file +
         " has " + old_keys + ", the host now offers " + offered +
         "; refusing to connect (someone may be intercepting the connection; if the key was "
         "changed on purpose, remove the old one with: ssh-keygen -R '" +
         kh_name + "' -f " + old_file + ")");

  std::string files;
  for (const auto& f : s.known_hosts_files) files += (files.empty() ? "" : ", ") + f;
  if (!s.accept_new_host_key)
    lost("the host key of " + kh_name + " is not known: it is not in " +
         (files.empty() ? "any known_hosts file" : files) + " (" + offered +
         "); compare it with the host's own (ssh-keygen -lf /etc/ssh/ssh_host_ecdsa_key.pub on "
         "its console), then " +
         (pin_advice.empty() ? std::string()
                             : "pin it with ssh_host_key: " + fingerprint + " " +
                                   std::string(pin_advice) + ", or ") +
         "accept it once with --accept-new-host-key");
  if (s.record_file.empty()) return result;  // accepted for this run only

  // Recorded as one appended line, so the file's other lines stay as they are.
  std::unique_ptr<LIBSSH2_KNOWNHOSTS, decltype(&libssh2_knownhost_free)> kh(
      libssh2_knownhost_init(session), libssh2_knownhost_free);
  libssh2_knownhost* node = nullptr;
  int mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | knownhost_key_bits(type);
  char line[4096];
  size_t line_len = 0;
  if (!kh ||
      libssh2_knownhost_addc(kh.get(), kh_name.c_str(), nullptr, key, len, nullptr, 0, mask,
                             &node) != 0 ||
      libssh2_knownhost_writeline(kh.get(), node, line, sizeof line, &line_len,
                                  LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0)
    fail(prefix + "cannot record the host key");
  int kfd = open_private_file(s.record_file, O_WRONLY | O_APPEND);
  if (kfd < 0)
    fail("cannot record the host key in " + quote(s.record_file) + ": " + strerror(errno));
  ssize_t n = ::write(kfd, line, line_len);
  int err = errno;
  bool ok = n == static_cast<ssize_t>(line_len) && ::fsync(kfd) == 0;
  ::close(kfd);
  if (!ok)
    fail("cannot record the host key in " + quote(s.record_file) + ": " + std::strerror(err));
  return result;
}

}  // namespace

void check_ssh_host_key(void* session, const SshSettings& settings, const std::string& prefix,
                        std::string_view pin_advice) {
  check_key(static_cast<LIBSSH2_SESSION*>(session), settings, prefix, pin_advice);
}

void SshConnection::Impl::check_host_key() {
  try {
    HostKey k =
        check_key(session, s, "ssh " + name + ": ", "in the config entry (or CESO_SSH_HOST_KEY)");
    fingerprint = k.fingerprint;
    key_type = k.type;
  } catch (const Error&) {
    broken = true;
    throw;
  }
}

namespace {

constexpr std::string_view kRsaWhy =
    "libssh2 1.10 (Debian 12) signs with RSA keys only as ssh-rsa (SHA-1), which OpenSSH 8.8 and "
    "later and ESXi 8 refuse; use an ed25519 or ECDSA key (ssh-keygen -t ed25519) and add its "
    ".pub to /etc/ssh/keys-root/authorized_keys on the host";

}  // namespace

// True when the host accepted the key in `file`; false with `why` set when
// it refused it. Throws for a key that cannot be used at all (RSA, DSA,
// encrypted) when the user named it.
bool SshConnection::Impl::auth_file(const std::string& file, bool named, std::string* why) {
  std::string text;
  try {
    auto t = read_text_file(file);
    if (!t) {
      if (named) lost("identity file " + quote(file) + " does not exist");
      return false;
    }
    text = std::move(*t);
  } catch (const Error& e) {
    lost(std::string("identity file: ") + e.what());
  }
  PrivateKeyInfo info = private_key_info(text);
  std::string refuse;
  if (info.type == "ssh-rsa")
    refuse = "identity " + quote(file) + " is an RSA key: " + std::string(kRsaWhy);
  else if (info.type == "ssh-dss")
    refuse = "identity " + quote(file) +
             " is a DSA key, which OpenSSH and ESXi refuse; use an ed25519 or ECDSA key";
  else if (info.encrypted)
    refuse = "identity " + quote(file) +
             " is protected by a passphrase: load it into the SSH agent (ssh-add " + file +
             ") and use ssh_identity: agent (CESO_SSH_IDENTITY=agent)";
  if (!refuse.empty()) {
    if (named) lost(refuse);
    *why += (why->empty() ? "" : "; ") + refuse;
    return false;
  }
  int rc = retry([&] {
    return libssh2_userauth_publickey_fromfile_ex(session, s.user.c_str(),
                                                  static_cast<unsigned>(s.user.size()), nullptr,
                                                  file.c_str(), nullptr);
  });
  if (rc == 0) return true;
  if (rc != LIBSSH2_ERROR_AUTHENTICATION_FAILED && rc != LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED &&
      rc != LIBSSH2_ERROR_FILE)
    lost("login failed: " + last_error());
  *why += (why->empty() ? "" : "; ") + std::string("the host refused ") +
          (info.type.empty() ? "the key" : info.type + " key") + " " + quote(file) +
          (rc == LIBSSH2_ERROR_FILE ? " (" + last_error() + ")" : "");
  return false;
}

bool SshConnection::Impl::auth_agent(std::string* why) {
  if (!std::getenv("SSH_AUTH_SOCK")) {
    *why += (why->empty() ? "" : "; ") + std::string("SSH_AUTH_SOCK is not set (no SSH agent)");
    return false;
  }
  std::unique_ptr<LIBSSH2_AGENT, decltype(&libssh2_agent_free)> agent(libssh2_agent_init(session),
                                                                      libssh2_agent_free);
  if (!agent || libssh2_agent_connect(agent.get()) != 0) {
    *why += (why->empty() ? "" : "; ") + std::string("cannot reach the SSH agent");
    return false;
  }
  // The agent's socket is local and answers at once: its calls block even
  // on our non-blocking session, except the signature exchange with the host.
  bool ok = false;
  int tried = 0, rsa = 0;
  if (libssh2_agent_list_identities(agent.get()) == 0) {
    libssh2_agent_publickey *id = nullptr, *prev = nullptr;
    while (!ok && libssh2_agent_get_identity(agent.get(), &id, prev) == 0) {
      prev = id;
      std::string type =
          blob_key_type(std::string_view(reinterpret_cast<const char*>(id->blob), id->blob_len));
      if (type == "ssh-rsa" || type == "ssh-dss") {
        ++rsa;
        continue;
      }
      ++tried;
      int rc = retry([&] { return libssh2_agent_userauth(agent.get(), s.user.c_str(), id); });
      if (rc == 0)
        ok = true;
      else if (rc != LIBSSH2_ERROR_AUTHENTICATION_FAILED &&
               rc != LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED && rc != LIBSSH2_ERROR_AGENT_PROTOCOL)
        lost("login with the SSH agent failed: " + last_error());
    }
  }
  libssh2_agent_disconnect(agent.get());
  if (ok) return true;
  std::string msg = "the host refused the SSH agent's keys (" + std::to_string(tried) + " tried";
  if (rsa) msg += ", " + std::to_string(rsa) + " RSA/DSA skipped: " + std::string(kRsaWhy);
  *why += (why->empty() ? "" : "; ") + msg + ")";
  return false;
}

void SshConnection::Impl::authenticate() {
  begin("login", false, true);
  std::string why;
  bool ok = false;
  if (s.identity == "agent") {
    ok = auth_agent(&why);
  } else if (!s.identity.empty()) {
    ok = auth_file(s.identity, true, &why);
  } else {
    ok = std::getenv("SSH_AUTH_SOCK") && auth_agent(&why);
    for (const char* f : {"~/.ssh/id_ed25519", "~/.ssh/id_ecdsa"})
      if (!ok) ok = auth_file(expand_home(f), false, &why);
    if (!ok && why.empty()) why = "no SSH agent, no ~/.ssh/id_ed25519 or ~/.ssh/id_ecdsa";
  }
  if (!ok)
    lost("login as " + quote(s.user) + " refused: " + why +
         " (the host's authorized keys for root are in /etc/ssh/keys-root/authorized_keys)");
}

// ---------------------------------------------------------------- channels

namespace {

// One command's channel on the connection. Closed and freed by finish() or
// the destructor (which gives up on a broken connection).
struct Channel {
  SshConnection::Impl& c;
  LIBSSH2_CHANNEL* ch = nullptr;

  Channel(SshConnection::Impl& conn, const std::string& command) : c(conn) {
    ch = c.retry([&] { return libssh2_channel_open_session(c.session); });
    if (!ch) c.lost(c.doing + ": cannot open a channel: " + c.last_error());
    if (c.retry([&] { return libssh2_channel_exec(ch, command.c_str()); }) != 0)
      c.lost(c.doing + ": cannot start the command: " + c.last_error());
    ++c.commands;
  }
  ~Channel() {
    if (!ch) return;
    if (!c.broken) {
      try {
        c.retry([&] { return libssh2_channel_free(ch); });
        return;
      } catch (...) {
        c.broken = true;
      }
    }
    // A broken connection: the session frees its channels when it goes.
  }

  // Reads what is there of stdout (into `out`, at most `size`) and stderr
  // (appended to `err`, keeping the first `err_keep` bytes). Returns the
  // stdout bytes read; `moved` is set when either had data, `waiting` when
  // both would block (libssh2 may return 0 without either: call again).
  size_t pump(char* out, size_t size, std::string& err, size_t err_keep, bool* moved,
              bool* waiting) {
    ssize_t n = libssh2_channel_read(ch, out, size);
    char ebuf[16384];
    ssize_t e = libssh2_channel_read_stderr(ch, ebuf, sizeof ebuf);
    if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) c.lost(c.doing + ": " + c.last_error());
    if (e < 0 && e != LIBSSH2_ERROR_EAGAIN) c.lost(c.doing + ": " + c.last_error());
    if (e > 0 && err.size() < err_keep)
      err.append(ebuf, std::min(static_cast<size_t>(e), err_keep - err.size()));
    *waiting = n == LIBSSH2_ERROR_EAGAIN && e == LIBSSH2_ERROR_EAGAIN;
    *moved = n > 0 || e > 0;
    if (*moved) c.last_activity = Clock::now();
    return n > 0 ? static_cast<size_t>(n) : 0;
  }

  bool eof() { return libssh2_channel_eof(ch) != 0; }

  // After a write said EAGAIN: the socket's send buffer is full (not the
  // host's window), so the wait that follows the reads must also wake when
  // the socket can take more (the reads leave libssh2 blocked inbound only).
  bool out_blocked() {
    return (libssh2_session_block_directions(c.session) & LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0;
  }

  void finish(SshResult& r) {
    if (c.retry([&] { return libssh2_channel_close(ch); }) != 0 ||
        c.retry([&] { return libssh2_channel_wait_closed(ch); }) != 0)
      c.lost(c.doing + ": " + c.last_error());
    r.exit_status = libssh2_channel_get_exit_status(ch);
    char* sig = nullptr;
    size_t sig_len = 0;
    libssh2_channel_get_exit_signal(ch, &sig, &sig_len, nullptr, nullptr, nullptr, nullptr);
    if (sig) {
      r.exit_signal = printable(std::string_view(sig, sig_len));
      libssh2_free(c.session, sig);
    }
    libssh2_channel_free(ch);
    ch = nullptr;
  }
};

std::string command_name(const std::vector<std::string>& argv) {
  std::string what = argv.empty() ? "" : argv[0];
  if (argv.size() > 1 && argv[1].size() < 40) what += " " + argv[1];
  return quote(what);
}

}  // namespace

SshConnection::SshConnection(SshSettings settings, SshLimits limits)
    : impl_(std::make_unique<Impl>(std::move(settings), limits)) {
  if (impl_->s.host.empty()) usage_error("ssh: no host");
  impl_->connect_tcp();
  impl_->handshake();
  impl_->check_host_key();
  impl_->authenticate();
}

SshConnection::~SshConnection() = default;

const std::string& SshConnection::host_key_fingerprint() const { return impl_->fingerprint; }
const std::string& SshConnection::host_key_type() const { return impl_->key_type; }
uint64_t SshConnection::commands() const { return impl_->commands; }
const std::string& SshConnection::name() const { return impl_->name; }
bool SshConnection::lost() const { return impl_->broken || !impl_->session; }

namespace {

std::unique_lock<std::mutex> take(SshConnection::Impl& c) {
  if (c.stream_owner.load() == std::this_thread::get_id())
    throw Error("ssh " + c.name + ": a command's output stream is still open on this connection");
  std::unique_lock lock(c.mutex);
  if (c.broken || !c.session)
    throw Error("ssh " + c.name + ": the connection was lost earlier", Exit::connection);
  return lock;
}

}  // namespace

SshResult SshConnection::run(const std::vector<std::string>& argv, std::string_view input) {
  const std::string command = shell_command(argv);  // refuses before anything is sent
  auto lock = take(*impl_);
  Impl& c = *impl_;
  c.begin(command_name(argv), true, calls_abort_on_interrupt());
  Channel channel(c, command);
  SshResult r;
  size_t sent = 0;
  bool eof_sent = false;
  char buf[65536];
  for (;;) {
    bool progress = false, out_blocked = false;
    if (!eof_sent) {
      // A command that exits without reading all its input closes the
      // channel: the rest is not sent.
      auto closed = [](long rc) {
        return rc == LIBSSH2_ERROR_CHANNEL_CLOSED || rc == LIBSSH2_ERROR_CHANNEL_EOF_SENT;
      };
      if (sent < input.size()) {
        ssize_t n = libssh2_channel_write(channel.ch, input.data() + sent, input.size() - sent);
        out_blocked = n == LIBSSH2_ERROR_EAGAIN && channel.out_blocked();
        if (closed(n)) {
          eof_sent = true;
        } else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
          c.lost(c.doing + ": " + c.last_error());
        } else if (n > 0) {
          sent += static_cast<size_t>(n);
          progress = true;
        }
      }
      if (!eof_sent && sent == input.size()) {
        int rc = libssh2_channel_send_eof(channel.ch);
        if (rc < 0 && rc != LIBSSH2_ERROR_EAGAIN && !closed(rc))
          c.lost(c.doing + ": " + c.last_error());
        if (rc != LIBSSH2_ERROR_EAGAIN) eof_sent = progress = true;
      }
    }
    bool moved = false, waiting = false;
    size_t n = channel.pump(buf, sizeof buf, r.err, SIZE_MAX, &moved, &waiting);
    r.out.append(buf, n);
    if (c.limits.max_output_bytes && r.out.size() + r.err.size() > c.limits.max_output_bytes) {
      c.broken = true;
      throw LimitExceeded("ssh " + c.name + ": the output of " + c.doing + " is larger than " +
                          size_text(c.limits.max_output_bytes) + " (CESO_MAX_ANSWER_MIB)");
    }
    if (progress || moved) continue;
    if (channel.eof()) break;
    if (waiting) c.wait(out_blocked ? POLLOUT : 0);
  }
  channel.finish(r);
  return r;
}

SshResult SshConnection::run_input(const std::vector<std::string>& argv, const InputFn& input,
                                   const std::function<bool()>& cancel) {
  const std::string command = shell_command(argv);  // refuses before anything is sent
  auto lock = take(*impl_);
  Impl& c = *impl_;
  c.begin(command_name(argv), false, false);
  struct Reset {
    Impl& c;
    ~Reset() {
      c.cancel = nullptr;
      c.cancelled = false;
    }
  } reset{c};
  c.cancel = cancel;
  c.cancelled = false;
  Channel channel(c, command);
  SshResult r;
  std::vector<char> in(size_t{256} << 10);
  size_t have = 0, off = 0;
  uint64_t total = 0;
  bool input_done = false, eof_sent = false, ended_early = false;
  std::exception_ptr abort;
  auto closed = [](long rc) {
    return rc == LIBSSH2_ERROR_CHANNEL_CLOSED || rc == LIBSSH2_ERROR_CHANNEL_EOF_SENT;
  };
  char buf[65536];
  for (;;) {
    bool progress = false, out_blocked = false;
    if (!eof_sent) {
      if (!abort && (c.cancelled || (cancel && off == have && cancel())))
        abort = std::make_exception_ptr(
            Error("ssh " + c.name + ": " + c.doing + ": interrupted", Exit::interrupted));
      if (!abort && off == have && !input_done) {
        try {
          have = input(in.data(), in.size());
          off = 0;
          total += have;
          input_done = have == 0;
        } catch (...) {
          abort = std::current_exception();
        }
        progress = true;
      }
      if (!abort && off < have) {
        ssize_t n = libssh2_channel_write(channel.ch, in.data() + off, have - off);
        out_blocked = n == LIBSSH2_ERROR_EAGAIN && channel.out_blocked();
        if (closed(n)) {
          eof_sent = ended_early = true;
        } else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
          c.lost(c.doing + ": " + c.last_error());
        } else if (n > 0) {
          off += static_cast<size_t>(n);
          progress = true;
        }
      }
      // The end, or an abort: the command's stdin ends here.
      if (!eof_sent && (abort || (input_done && off == have))) {
        int rc = libssh2_channel_send_eof(channel.ch);
        if (rc < 0 && rc != LIBSSH2_ERROR_EAGAIN && !closed(rc))
          c.lost(c.doing + ": " + c.last_error());
        if (closed(rc) && !abort) ended_early = true;
        if (rc != LIBSSH2_ERROR_EAGAIN) eof_sent = progress = true;
      }
    }
    bool moved = false, waiting = false;
    size_t n = channel.pump(buf, sizeof buf, r.err, 64 * 1024, &moved, &waiting);
    if (r.out.size() < (64u << 10))
      r.out.append(buf, std::min<size_t>(n, (64u << 10) - r.out.size()));
    if (progress || moved) continue;
    if (channel.eof()) {
      // The command ended (stdout closed) before we ended its input.
      if (!eof_sent) eof_sent = ended_early = true;
      break;
    }
    if (waiting) c.wait(out_blocked ? POLLOUT : 0);
  }
  channel.finish(r);
  if (abort) std::rethrow_exception(abort);
  if (ended_early) {
    fail("ssh " + c.name + ": " + c.doing + " ended after " + std::to_string(total - (have - off)) +
         " bytes of its input, before the end" + r.ending());
  }
  return r;
}

struct SshStream::Impl {
  SshConnection::Impl& c;
  std::unique_lock<std::mutex> lock;
  Channel channel;
  std::string err;
  bool at_end = false;
  Impl(SshConnection::Impl& conn, std::unique_lock<std::mutex> l, const std::string& command)
      : c(conn), lock(std::move(l)), channel(conn, command) {}
};

SshStream::SshStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SshStream::~SshStream() {
  if (!impl_) return;
  if (!impl_->at_end && impl_->channel.ch) impl_->c.broken = true;  // output left unread
  impl_->c.stream_owner = std::thread::id{};
}

size_t SshStream::read(char* data, size_t size) {
  Impl& s = *impl_;
  if (s.at_end || size == 0) return 0;
  s.c.abort_on_interrupt = true;
  for (;;) {
    bool moved = false, waiting = false;
    size_t n = s.channel.pump(data, size, s.err, 64 * 1024, &moved, &waiting);
    if (n > 0) return n;
    if (moved) continue;
    if (s.channel.eof()) {
      s.at_end = true;
      return 0;
    }
    if (waiting) s.c.wait();
  }
}

SshResult SshStream::finish() {
  Impl& s = *impl_;
  char buf[16384];
  while (read(buf, sizeof buf) > 0) {
  }
  SshResult r;
  s.channel.finish(r);
  r.err = std::move(s.err);
  return r;
}

std::unique_ptr<SshStream> SshConnection::stream(const std::vector<std::string>& argv) {
  const std::string command = shell_command(argv);
  auto lock = take(*impl_);
  Impl& c = *impl_;
  c.begin(command_name(argv), false, true);
  auto impl = std::make_unique<SshStream::Impl>(c, std::move(lock), command);
  c.stream_owner = std::this_thread::get_id();
  return std::unique_ptr<SshStream>(new SshStream(std::move(impl)));
}

}  // namespace ceso
