#include "config/config.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <type_traits>

#include "base/codec.hpp"
#include "base/error.hpp"
#include "base/file.hpp"
#include "base/process.hpp"
#include "base/url.hpp"
#include "base/util.hpp"
#include "config/allowlist.hpp"

namespace ceso {

namespace {

// ---------------------------------------------------------------- helpers

std::optional<std::string> getenv_nonempty(const Environment& env, std::string_view name) {
  auto v = env(name);
  if (!v || v->empty()) return std::nullopt;
  return v;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += sep;
    out += i;
  }
  return out;
}

std::string errno_text(int err) { return std::strerror(err); }

std::string mode_text(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// Reads a whole (small) file. nullopt when it does not exist and
// `missing_ok`; other failures throw Error(failure) prefixed with `what`.
// `st` receives the file's status.
std::optional<std::string> read_small_file(const std::string& path, std::string_view what,
                                           bool missing_ok, struct stat* st) {
  constexpr size_t kMaxSize = 1 << 20;  // a config or password file, not a data set
  return read_file(path, {.what = what, .max_bytes = kMaxSize, .missing_ok = missing_ok}, st);
}

void check_readable(const std::string& path, const std::string& what) {
  if (::access(path.c_str(), R_OK) == 0) return;
  int err = errno;
  fail(what + ": cannot read " + quote(path) + ": " + errno_text(err));
}

// Secrets must not be readable by anyone else. Only regular files are
// checked: a pipe such as CESO_PASSWORD_FILE=<(pass show esxi1) is private.
void check_private(const std::string& path, const struct stat& st, std::string_view what,
                   std::string_view hint = {}) {
  if (!S_ISREG(st.st_mode) || (st.st_mode & 077) == 0) return;
  throw Error(std::string(what) + ": " + quote(path) + " has mode " + mode_text(st.st_mode) +
                  ", so other users can read the password; run: chmod 600 " + quote(path) +
                  std::string(hint),
              Exit::policy);
}

// Password file contents: one trailing newline (as `echo` writes) is not part
// of the password.
std::string read_password_file(const std::string& path, std::string_view what) {
  struct stat st {};
  std::string text = *read_small_file(path, what, false, &st);
  check_private(path, st, what);
  if (!text.empty() && text.back() == '\n') {
    text.pop_back();
    if (!text.empty() && text.back() == '\r') text.pop_back();
  }
  return text;
}

std::string home_dir(const Environment& env) {
  if (auto home = getenv_nonempty(env, "HOME")) return *home;
  // HOME unset (daemons, `env -i`): ask the password database.
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* result = nullptr;
  if (::getpwuid_r(::getuid(), &pw, buf.data(), buf.size(), &result) == 0 && result &&
      result->pw_dir && *result->pw_dir)
    return result->pw_dir;
  fail("HOME is not set and the home directory is unknown");
}

// XDG base directory: the variable if it holds an absolute path, else the
// fallback under HOME (the spec says relative values are to be ignored).
std::string xdg_dir(const Environment& env, std::string_view var, std::string_view fallback) {
  if (auto v = getenv_nonempty(env, var); v && v->front() == '/') return *v;
  return home_dir(env) + "/" + std::string(fallback);
}

// ------------------------------------------------------------- thumbprints

// Hex digits with optional colons between bytes → "AB:CD:…" and the byte
// count; nullopt when malformed.
std::optional<std::string> parse_hex_fingerprint(std::string_view text, size_t* bytes) {
  std::string digits;
  if (text.find(':') != std::string_view::npos) {
    // Colons, if any, must separate every byte: "AB:CD", not "A:BCD".
    size_t start = 0;
    for (;;) {
      size_t colon = text.find(':', start);
      std::string_view part = text.substr(
          start, colon == std::string_view::npos ? std::string_view::npos : colon - start);
      if (part.size() != 2) return std::nullopt;
      digits += part;
      if (colon == std::string_view::npos) break;
      start = colon + 1;
    }
  } else {
    digits = text;
  }
  if (digits.empty() || digits.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < digits.size(); i += 2) {
    if (hex_value(digits[i]) < 0 || hex_value(digits[i + 1]) < 0) return std::nullopt;
    if (!out.empty()) out += ':';
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(digits[i])));
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(digits[i + 1])));
  }
  *bytes = digits.size() / 2;
  return out;
}

// ---------------------------------------------------------------- URLs

bool is_loopback(const std::string& host) {
  if (host == "localhost" || host == "localhost." || host == "::1") return true;
  unsigned char v4[4];
  return ::inet_pton(AF_INET, host.c_str(), v4) == 1 && v4[0] == 127;
}

// Parsed URL plus whether a password was embedded (even an empty one).
struct ParsedUrl {
  Endpoint ep;
  bool has_user = false;
  bool has_password = false;
};

// Every endpoint URL form ("host", "host:port", "[v6]:port", "v6",
// "user@host", "https://user:pass@host:port/path") through the one URL
// parser (base/url.hpp, libcurl's curl_url); this adds the endpoint's
// defaults: https, port 443 (80 for http), the path /sdk.
ParsedUrl parse_url(std::string_view text) {
  static const UrlSyntax kSyntax{{"https", "http"}, "https", true};
  std::string why;
  auto parts = parse_url_parts(text, kSyntax, &why);
  if (!parts) throw Error("bad URL " + quote(redact_url(text)) + ": " + why, Exit::usage);

  ParsedUrl out;
  Endpoint& ep = out.ep;
  ep.scheme = parts->scheme;
  ep.host = parts->host;
  ep.user = parts->user.value_or("");
  out.has_user = !ep.user.empty();
  if (parts->password) {
    ep.password = *parts->password;
    out.has_password = true;
  }
  const int default_port = ep.scheme == "https" ? 443 : 80;
  ep.port = parts->port ? parts->port : default_port;
  std::string path = parts->path == "/" ? "/sdk" : parts->path;
  ep.id = (parts->ipv6 ? "[" + ep.host + "]" : ep.host) + ":" + std::to_string(ep.port);
  ep.url = ep.scheme + "://" + parts->host_ref() +
           (ep.port == default_port ? "" : ":" + std::to_string(ep.port)) + path;
  return out;
}

// ---------------------------------------------------------------- limits

// A limit setting: idle_timeout / call_timeout in whole seconds, 0 (off) to a
// week; max_answer_mib in MiB, 1 to 4096. nullopt with `why` set otherwise.
std::optional<uint64_t> parse_limit(std::string_view key, const std::string& text,
                                    std::string* why) {
  const bool size = key.find("mib") != std::string_view::npos;
  const uint64_t lo = size ? 1 : 0, hi = size ? 4096 : 7 * 86400;
  uint64_t n = 0;
  bool ok = !text.empty() && text.size() <= 10 &&
            text.find_first_not_of("0123456789") == std::string::npos;
  if (ok) n = std::stoull(text);
  if (!ok || n < lo || n > hi) {
    *why = quote(text) + " is not a whole number " +
           (size ? "of MiB from 1 to 4096" : "of seconds from 0 (no limit) to 604800");
    return std::nullopt;
  }
  return n;
}

// ---------------------------------------------------------------- config file

const char* const kTopKeys[] = {"default",     "hosts",     "backup",
                                "allow_hosts", "promotion", "metrics"};
const char* const kHostKeys[] = {
    "url",        "user",         "password",     "password_file",   "insecure",
    "thumbprint", "ca_file",      "idle_timeout", "call_timeout",    "max_answer_mib",
    "ssh",        "ssh_identity", "ssh_host_key", "password_command"};
const char* const kBackupKeys[] = {"target", "s3_endpoint", "s3_region", "s3_profile",
                                   "s3_credentials_file"};
const char* const kPromotionKeys[] = {"key", "revoked"};
const char* const kMetricsKeys[] = {"dir", "vm_labels"};

template <size_t N>
bool known_key(const char* const (&keys)[N], const std::string& key) {
  return std::find(std::begin(keys), std::end(keys), key) != std::end(keys);
}

template <size_t N>
std::string key_list(const char* const (&keys)[N]) {
  std::vector<std::string> v(std::begin(keys), std::end(keys));
  return join(v, ", ");
}

struct HostEntry {
  std::string name;
  int line = 0;
  ParsedUrl url;
  std::optional<std::string> user;
  std::optional<std::string> password;
  std::optional<std::string> password_file;                  // already ~-expanded and absolute
  std::optional<std::vector<std::string>> password_command;  // argv
  std::optional<bool> insecure;
  std::optional<std::string> thumbprint;  // normalized
  std::optional<std::string> ca_file;     // already ~-expanded and absolute
  std::optional<int> idle_timeout_s, call_timeout_s;
  std::optional<uint64_t> max_answer_mib;
  std::optional<SshAccess> ssh;             // ssh: user@host[:port]
  std::optional<std::string> ssh_identity;  // a path (absolute) or "agent"
  std::optional<std::string> ssh_host_key;  // normalized pin

  // The user this entry's password is for.
  std::string effective_user() const {
    if (user) return *user;
    if (url.has_user) return url.ep.user;
    return "root";
  }
};

struct ConfigFile {
  std::string path;
  bool exists = false;
  std::optional<std::string> default_name;
  std::vector<HostEntry> hosts;
  std::optional<std::string> backup_target;
  std::optional<std::string> promotion_key;      // already ~-expanded and absolute
  std::optional<std::string> promotion_revoked;  // likewise
  std::optional<std::string> metrics_dir;        // already ~-expanded and absolute
  std::optional<bool> metrics_vm_labels;
  S3Config s3;
  std::optional<std::vector<AllowEntry>> allow_hosts;  // set: only these hosts
  int allow_hosts_line = 0;

  const HostEntry* find(std::string_view name) const {
    for (const auto& h : hosts)
      if (h.name == name) return &h;
    return nullptr;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& h : hosts) out.push_back(h.name);
    return out;
  }
};

class ConfigParser {
 public:
  ConfigParser(ConfigFile& cfg, const Environment& env) : cfg_(cfg), env_(env) {
    dir_ = cfg.path.substr(0, cfg.path.rfind('/'));
  }

  void parse(const std::string& text) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      throw error(e.mark, e.msg);
    }
    if (root.IsNull()) return;
    if (!root.IsMap())
      throw error(root.Mark(), "expected a mapping with keys " + key_list(kTopKeys));
    std::vector<std::string> seen;
    YAML::Node default_key;
    for (const auto& kv : root) {
      std::string key = key_name(kv.first, "", seen);
      if (!known_key(kTopKeys, key))
        throw error(kv.first.Mark(),
                    "unknown key " + quote(key) + " (expected " + key_list(kTopKeys) + ")");
      if (key == "default") {
        cfg_.default_name = scalar(kv.second, "default");
        default_key = kv.first;
      } else if (key == "hosts") {
        parse_hosts(kv.second);
      } else if (key == "backup") {
        parse_backup(kv.second);
      } else if (key == "allow_hosts") {
        parse_allow_hosts(kv.first, kv.second);
      } else if (key == "promotion") {
        parse_promotion(kv.second);
      } else if (key == "metrics") {
        parse_metrics(kv.second);
      }
    }
    if (cfg_.default_name && !cfg_.find(*cfg_.default_name)) {
      auto names = cfg_.names();
      throw error(default_key.Mark(), "default: " + quote(*cfg_.default_name) +
                                          " is not a host under hosts (" +
                                          (names.empty() ? "none" : join(names, ", ")) + ")");
    }
  }

  bool has_password() const { return has_password_; }

 private:
  ConfigFile& cfg_;
  const Environment& env_;
  std::string dir_;
  bool has_password_ = false;

  Error error(const YAML::Mark& mark, const std::string& what) const {
    std::string where = "config file " + quote(cfg_.path);
    if (!mark.is_null()) where += ", line " + std::to_string(mark.line + 1);
    // `what` carries the file's own text (key names, yaml-cpp's reason, which
    // quotes the offending byte raw): keep the message one line.
    return Error(where + ": " + printable(what), Exit::bad_input);
  }

  // The key of a mapping entry as a string, refusing duplicates (yaml-cpp
  // silently keeps both, and the second would be ignored).
  std::string key_name(const YAML::Node& key, const std::string& prefix,
                       std::vector<std::string>& seen) const {
    if (!key.IsScalar()) throw error(key.Mark(), prefix + "keys must be plain strings");
    std::string name = key.Scalar();
    if (std::find(seen.begin(), seen.end(), name) != seen.end())
      throw error(key.Mark(), "duplicate key " + quote(prefix + name));
    seen.push_back(name);
    return name;
  }

  std::string scalar(const YAML::Node& node, const std::string& key) const {
    if (node.IsNull()) throw error(node.Mark(), key + ": missing value");
    if (!node.IsScalar()) throw error(node.Mark(), key + ": expected a single value");
    return node.Scalar();
  }

  // A path from the file: "~" is HOME, relative paths are relative to the
  // config file's directory.
  std::string path_value(const YAML::Node& node, const std::string& key) const {
    std::string p = expand_home(scalar(node, key), env_);
    if (p.empty()) throw error(node.Mark(), key + ": empty path");
    if (p.front() != '/') p = dir_ + "/" + p;
    return p;
  }

  void parse_hosts(const YAML::Node& hosts) {
    if (hosts.IsNull()) return;
    if (!hosts.IsMap()) throw error(hosts.Mark(), "hosts: expected a mapping of host names");
    std::vector<std::string> seen;
    for (const auto& kv : hosts) {
      HostEntry h;
      h.name = key_name(kv.first, "hosts.", seen);
      h.line = kv.first.Mark().line + 1;
      if (h.name.empty()) throw error(kv.first.Mark(), "hosts: empty host name");
      parse_host(h, kv.first, kv.second);
      cfg_.hosts.push_back(std::move(h));
    }
  }

  void parse_host(HostEntry& h, const YAML::Node& name_node, const YAML::Node& body) {
    const std::string prefix = "hosts." + h.name;
    if (!body.IsMap())
      throw error(body.IsNull() ? name_node.Mark() : body.Mark(),
                  prefix + ": expected a mapping with at least url");
    std::vector<std::string> seen;
    bool has_url = false;
    YAML::Mark password_mark;
    for (const auto& kv : body) {
      std::string key = key_name(kv.first, prefix + ".", seen);
      std::string full = prefix + "." + key;
      const YAML::Node& v = kv.second;
      if (!known_key(kHostKeys, key))
        throw error(kv.first.Mark(), prefix + ": unknown key " + quote(key) + " (expected " +
                                         key_list(kHostKeys) + ")");
      if (key == "url") {
        std::string text = scalar(v, full);
        try {
          h.url = parse_url(text);
        } catch (const Error& e) {
          throw error(v.Mark(), full + ": " + e.what());
        }
        has_url = true;
        if (h.url.has_password) has_password_ = true;
      } else if (key == "user") {
        h.user = scalar(v, full);
        if (h.user->empty()) throw error(v.Mark(), full + ": empty user name");
      } else if (key == "password") {
        // An explicitly empty password ("") is allowed: a fresh ESXi has one.
        if (v.IsNull()) throw error(v.Mark(), full + ": missing value (use \"\" for empty)");
        h.password = scalar(v, full);
        password_mark = kv.first.Mark();
        has_password_ = true;
      } else if (key == "password_file") {
        h.password_file = path_value(v, full);
        password_mark = kv.first.Mark();
      } else if (key == "password_command") {
        h.password_command = command_value(v, full);
        password_mark = kv.first.Mark();
      } else if (key == "insecure") {
        bool b = false;
        if (!v.IsScalar() || !YAML::convert<bool>::decode(v, b))
          throw error(v.Mark(), full + ": expected true or false");
        h.insecure = b;
      } else if (key == "thumbprint") {
        try {
          h.thumbprint = normalize_thumbprint(scalar(v, full));
        } catch (const Error& e) {
          throw error(v.Mark(), full + ": " + e.what());
        }
      } else if (key == "ca_file") {
        h.ca_file = path_value(v, full);
      } else if (key == "ssh") {
        try {
          h.ssh = parse_ssh_access(scalar(v, full));
        } catch (const Error& e) {
          throw error(v.Mark(), full + ": " + e.what());
        }
      } else if (key == "ssh_identity") {
        h.ssh_identity = scalar(v, full) == "agent" ? "agent" : path_value(v, full);
      } else if (key == "ssh_host_key") {
        try {
          h.ssh_host_key = normalize_host_key_pin(scalar(v, full));
        } catch (const Error& e) {
          throw error(v.Mark(), full + ": " + e.what());
        }
      } else if (key == "idle_timeout" || key == "call_timeout" || key == "max_answer_mib") {
        std::string why;
        auto n = parse_limit(key, scalar(v, full), &why);
        if (!n) throw error(v.Mark(), full + ": " + why);
        if (key == "idle_timeout") h.idle_timeout_s = static_cast<int>(*n);
        if (key == "call_timeout") h.call_timeout_s = static_cast<int>(*n);
        if (key == "max_answer_mib") h.max_answer_mib = *n;
      }
    }
    if (!has_url) throw error(name_node.Mark(), prefix + ": missing url");
    if (!h.ssh && (h.ssh_identity || h.ssh_host_key))
      throw error(name_node.Mark(), prefix + ": " +
                                        (h.ssh_identity ? "ssh_identity" : "ssh_host_key") +
                                        " without ssh (add ssh: root@HOST)");
    if (int{h.password.has_value()} + h.password_file.has_value() + h.password_command.has_value() >
        1)
      throw error(password_mark,
                  prefix + ": give one of password, password_file and password_command");
  }

  // password_command: a command line (split by split_command) or a list of
  // words (taken as they are).
  std::vector<std::string> command_value(const YAML::Node& node, const std::string& key) const {
    if (node.IsSequence()) {
      std::vector<std::string> argv;
      for (const auto& word : node) argv.push_back(scalar(word, key));
      if (argv.empty() || argv.front().empty()) throw error(node.Mark(), key + ": empty command");
      return argv;
    }
    std::string why;
    auto argv = split_command(scalar(node, key), &why);
    if (!argv) throw error(node.Mark(), key + ": " + why);
    return *argv;
  }

  void parse_allow_hosts(const YAML::Node& key, const YAML::Node& list) {
    if (!list.IsSequence())
      throw error(
          list.IsNull() ? key.Mark() : list.Mark(),
          "allow_hosts: expected a list of host names, addresses and networks (ADDRESS/BITS); "
          "[] allows no host");
    std::vector<AllowEntry> entries;
    for (const auto& item : list) {
      std::string text = scalar(item, "allow_hosts");
      std::string why;
      auto entry = parse_allow_entry(text, &why);
      if (!entry) throw error(item.Mark(), "allow_hosts: " + quote(text) + ": " + why);
      entries.push_back(std::move(*entry));
    }
    cfg_.allow_hosts = std::move(entries);
    cfg_.allow_hosts_line = key.Mark().line + 1;
  }

  void parse_backup(const YAML::Node& backup) {
    if (backup.IsNull()) return;
    if (!backup.IsMap()) throw error(backup.Mark(), "backup: expected a mapping");
    std::vector<std::string> seen;
    for (const auto& kv : backup) {
      std::string key = key_name(kv.first, "backup.", seen);
      if (!known_key(kBackupKeys, key))
        throw error(kv.first.Mark(), "backup: unknown key " + quote(key) + " (expected " +
                                         key_list(kBackupKeys) + ")");
      if (key == "target") cfg_.backup_target = scalar(kv.second, "backup.target");
      if (key == "s3_endpoint") cfg_.s3.endpoint = scalar(kv.second, "backup.s3_endpoint");
      if (key == "s3_region") cfg_.s3.region = scalar(kv.second, "backup.s3_region");
      if (key == "s3_profile") cfg_.s3.profile = scalar(kv.second, "backup.s3_profile");
      if (key == "s3_credentials_file")
        cfg_.s3.credentials_file = path_value(kv.second, "backup.s3_credentials_file");
    }
  }

  void parse_promotion(const YAML::Node& promotion) {
    if (promotion.IsNull()) return;
    if (!promotion.IsMap()) throw error(promotion.Mark(), "promotion: expected a mapping");
    std::vector<std::string> seen;
    for (const auto& kv : promotion) {
      std::string key = key_name(kv.first, "promotion.", seen);
      if (!known_key(kPromotionKeys, key))
        throw error(kv.first.Mark(), "promotion: unknown key " + quote(key) + " (expected " +
                                         key_list(kPromotionKeys) + ")");
      if (key == "key") cfg_.promotion_key = path_value(kv.second, "promotion.key");
      if (key == "revoked") cfg_.promotion_revoked = path_value(kv.second, "promotion.revoked");
    }
  }

  void parse_metrics(const YAML::Node& metrics) {
    if (metrics.IsNull()) return;
    if (!metrics.IsMap()) throw error(metrics.Mark(), "metrics: expected a mapping");
    std::vector<std::string> seen;
    for (const auto& kv : metrics) {
      std::string key = key_name(kv.first, "metrics.", seen);
      if (!known_key(kMetricsKeys, key))
        throw error(kv.first.Mark(), "metrics: unknown key " + quote(key) + " (expected " +
                                         key_list(kMetricsKeys) + ")");
      if (key == "dir") {
        cfg_.metrics_dir = path_value(kv.second, "metrics.dir");
      } else {
        bool b = false;
        if (!kv.second.IsScalar() || !YAML::convert<bool>::decode(kv.second, b))
          throw error(kv.second.Mark(), "metrics.vm_labels: expected true or false");
        cfg_.metrics_vm_labels = b;
      }
    }
  }
};

// The last config parsed: a run reads the file more than once (-H all: the
// names, then each host's entry), and the same text with the same HOME (the
// one variable parsing reads, for ~) parses the same way. The file is still
// read, and its mode checked, on every call.
struct ParsedConfig {
  std::string path, text;
  std::optional<std::string> home;
  ConfigFile cfg;
  bool has_password = false;
};

ConfigFile load_config(const Environment& env) {
  ConfigFile cfg;
  cfg.path = config_path(env);
  struct stat st {};
  auto text = read_small_file(cfg.path, "config file", true, &st);
  if (!text) return cfg;
  cfg.exists = true;
  static std::mutex mutex;
  static std::optional<ParsedConfig> last;
  std::optional<std::string> home = getenv_nonempty(env, "HOME");
  bool has_password = false;
  bool parsed = false;
  {
    std::lock_guard lock(mutex);
    if (last && last->path == cfg.path && last->text == *text && last->home == home) {
      cfg = last->cfg;
      has_password = last->has_password;
      parsed = true;
    }
  }
  if (!parsed) {
    ConfigParser parser(cfg, env);
    parser.parse(*text);
    has_password = parser.has_password();
    std::lock_guard lock(mutex);
    last = ParsedConfig{cfg.path, *text, home, cfg, has_password};
  }
  if (has_password)
    check_private(cfg.path, st, "config file", " (or move the password to a password_file)");
  return cfg;
}

// ---------------------------------------------------------------- resolution

// One family of environment variables (CESO_* or GOVC_*). They describe the
// host of their URL variable; with no URL variable they apply to any host.
struct EnvFamily {
  std::optional<std::string> url_text;
  std::optional<ParsedUrl> url;  // parsed url_text (nullopt if unset or unparsable)
  std::optional<std::string> url_error;

  // Whether the family's settings may be used for endpoint `id`.
  bool applies_to(const std::string& id) const { return !url_text || (url && url->ep.id == id); }
};

EnvFamily read_family(const Environment& env, const char* url_var, bool strict) {
  EnvFamily f{getenv_nonempty(env, url_var), std::nullopt, std::nullopt};
  if (!f.url_text) return f;
  try {
    f.url = parse_url(*f.url_text);
  } catch (const Error& e) {
    if (strict) throw Error(std::string(url_var) + ": " + e.what(), Exit::usage);
    f.url_error = e.what();
  }
  return f;
}

std::optional<bool> parse_flag(const Environment& env, const char* var) {
  auto v = getenv_nonempty(env, var);
  if (!v) return std::nullopt;
  std::string s = ascii_lower(*v);
  if (s == "1" || s == "true" || s == "yes" || s == "on") return true;
  if (s == "0" || s == "false" || s == "no" || s == "off") return false;
  usage_error(std::string(var) + ": " + quote(*v) +
              " is not 1 or 0 (or true/false, yes/no, on/off)");
}

// govc's rule for GOVC_INSECURE: "1" or "true" (any case) is true, anything
// else false.
std::optional<bool> parse_govc_flag(const Environment& env, const char* var) {
  auto v = getenv_nonempty(env, var);
  if (!v) return std::nullopt;
  std::string s = ascii_lower(*v);
  return s == "1" || s == "true";
}

// Thumbprint for `id` from GOVC_TLS_KNOWN_HOSTS: a list of files (':'
// separated), lines "host thumbprint" as `govc about.cert -thumbprint`
// writes them; the last matching line wins, as in govc. govc writes SHA-1
// thumbprints; SHA-256 ones are accepted too.
struct KnownHost {
  std::string sha256, sha1;
};

std::optional<KnownHost> known_hosts_lookup(const Environment& env, const std::string& id) {
  auto list = getenv_nonempty(env, "GOVC_TLS_KNOWN_HOSTS");
  if (!list) return std::nullopt;
  std::optional<KnownHost> found;
  size_t start = 0;
  while (start <= list->size()) {
    size_t colon = list->find(':', start);
    std::string file = list->substr(start, colon == std::string::npos ? colon : colon - start);
    start = colon == std::string::npos ? list->size() + 1 : colon + 1;
    if (file.empty()) continue;
    file = expand_home(file, env);
    struct stat st {};
    auto text = read_small_file(file, "GOVC_TLS_KNOWN_HOSTS", true, &st);
    if (!text) continue;  // govc ignores a missing file too
    size_t line_no = 0, pos = 0;
    while (pos < text->size()) {
      size_t nl = text->find('\n', pos);
      std::string line = text->substr(pos, nl == std::string::npos ? nl : nl - pos);
      pos = nl == std::string::npos ? text->size() : nl + 1;
      ++line_no;
      size_t a = line.find_first_not_of(" \t\r");
      if (a == std::string::npos || line[a] == '#') continue;
      size_t b = line.find_first_of(" \t", a);
      if (b == std::string::npos) continue;
      size_t c = line.find_first_not_of(" \t", b);
      if (c == std::string::npos) continue;
      size_t d = line.find_last_not_of(" \t\r");
      std::string host = line.substr(a, b - a), print = line.substr(c, d + 1 - c);
      std::string host_id;
      try {
        host_id = parse_url(host).ep.id;
      } catch (const Error&) {
        continue;  // not ours to judge
      }
      if (host_id != id) continue;
      size_t bytes = 0;
      auto normalized = parse_hex_fingerprint(print, &bytes);
      if (!normalized || (bytes != 32 && bytes != 20))
        bad_input("GOVC_TLS_KNOWN_HOSTS: " + quote(file) + ", line " + std::to_string(line_no) +
                  ": " + quote(print) + " is not a SHA-1 or SHA-256 thumbprint");
      found = KnownHost{bytes == 32 ? *normalized : "", bytes == 20 ? *normalized : ""};
    }
  }
  return found;
}

// SSH access: CESO_SSH, CESO_SSH_IDENTITY, CESO_SSH_HOST_KEY (when the
// CESO_* family applies to this endpoint) before the entry's ssh,
// ssh_identity, ssh_host_key. No address anywhere: no SSH access (the
// identity and pin alone do not make one).
void resolve_ssh(Endpoint& ep, const HostEntry* entry, const Environment& env, bool ceso_applies) {
  auto var = [&](const char* name) {
    return ceso_applies ? getenv_nonempty(env, name) : std::nullopt;
  };
  if (auto v = var("CESO_SSH")) {
    try {
      ep.ssh = parse_ssh_access(*v);
    } catch (const Error& e) {
      usage_error(std::string("CESO_SSH: ") + e.what());
    }
    ep.ssh->source = "CESO_SSH";
  } else if (entry && entry->ssh) {
    ep.ssh = *entry->ssh;
    ep.ssh->source = "config " + quote(entry->name);
  }
  if (!ep.ssh) return;
  if (auto v = var("CESO_SSH_IDENTITY")) {
    ep.ssh->identity = *v == "agent" ? "agent" : expand_home(*v, env);
    if (ep.ssh->identity.front() != '/')
      usage_error("CESO_SSH_IDENTITY: " + quote(*v) + " is not an absolute path or \"agent\"");
  } else if (entry && entry->ssh_identity) {
    ep.ssh->identity = *entry->ssh_identity;
  }
  if (auto v = var("CESO_SSH_HOST_KEY")) {
    try {
      ep.ssh->host_key = normalize_host_key_pin(*v);
    } catch (const Error& e) {
      usage_error(std::string("CESO_SSH_HOST_KEY: ") + e.what());
    }
  } else if (entry && entry->ssh_host_key) {
    ep.ssh->host_key = *entry->ssh_host_key;
  }
}

// ---------------------------------------------------------------- allow_hosts

// Refuses (exit 5) a host the config file's allow_hosts does not allow,
// before anything resolves or connects to it. `what` says where the host came
// from ("--url", "config 'lab'", "backup target").
void enforce_allowlist(const ConfigFile& cfg, std::string_view host, std::string_view what) {
  if (!cfg.allow_hosts || host_allowed(*cfg.allow_hosts, host)) return;
  throw Error(std::string(what) + ": host " + quote(host) + " is not in allow_hosts (config file " +
                  quote(cfg.path) + ", line " + std::to_string(cfg.allow_hosts_line) +
                  "); not connecting",
              Exit::policy);
}

// ---------------------------------------------------------------- password command

// The password a command prints (docs/configuration.md "Password from a
// command"): its first line without trailing white space. `what` names the
// setting for messages, which never show the output.
std::string password_from_command(const std::vector<std::string>& argv, const std::string& what) {
  std::string out;
  try {
    out = run_capture(argv);
  } catch (const Error& e) {
    throw Error(what + ": " + e.what(), e.code());
  }
  out.erase(std::min(out.find('\n'), out.size()));
  while (!out.empty() && (out.back() == ' ' || out.back() == '\t' || out.back() == '\r'))
    out.pop_back();
  if (out.empty()) fail(what + ": " + quote(argv.front()) + " printed no password");
  return out;
}

// How the host was chosen.
struct Choice {
  ParsedUrl url;
  const HostEntry* entry = nullptr;  // chosen by name (-H, default)
  std::string source;
  bool from_command_line = false;  // --url: its user is a command-line setting
};

Endpoint finish(const Choice& choice, const ConfigFile& cfg, const Environment& env,
                const EnvFamily& ceso, const EnvFamily& govc) {
  enforce_allowlist(cfg, choice.url.ep.host, choice.source);
  // The password is about to be in this process's memory.
  forbid_core_dumps();
  Endpoint ep = choice.url.ep;
  ep.user.clear();
  ep.password.clear();
  ep.source = choice.source;
  const bool ceso_applies = ceso.applies_to(ep.id);
  const bool govc_applies = govc.applies_to(ep.id);
  auto ceso_var = [&](const char* var) {
    return ceso_applies ? getenv_nonempty(env, var) : std::nullopt;
  };
  auto govc_var = [&](const char* var) {
    return govc_applies ? getenv_nonempty(env, var) : std::nullopt;
  };
  // Credentials embedded in the environment's URL, when it is this host.
  const ParsedUrl* ceso_url = ceso_applies && ceso.url ? &*ceso.url : nullptr;
  const ParsedUrl* govc_url = govc_applies && govc.url ? &*govc.url : nullptr;

  // User from the command line or the environment, if any.
  std::optional<std::string> user;
  if (choice.from_command_line && choice.url.has_user) user = choice.url.ep.user;
  if (!user) user = ceso_var("CESO_USER");
  if (!user && ceso_url && ceso_url->has_user) user = ceso_url->ep.user;
  if (!user) user = govc_var("GOVC_USERNAME");
  if (!user && govc_url && govc_url->has_user) user = govc_url->ep.user;

  // The config entry: the one named, else the first whose url is this
  // endpoint (preferring one for the same user).
  const HostEntry* entry = choice.entry;
  if (!entry) {
    for (const auto& h : cfg.hosts) {
      if (h.url.ep.id != ep.id) continue;
      if (!user || h.effective_user() == *user) {
        entry = &h;
        break;
      }
      if (!entry) entry = &h;
    }
  }
  // Its user and password only go together: a password configured for root
  // is not sent for another user.
  const bool entry_credentials = entry && (!user || entry->effective_user() == *user);
  if (entry) ep.config_name = entry->name;

  ep.user = user ? *user : entry_credentials ? entry->effective_user() : "root";

  // Password: environment, else the entry's.
  auto ceso_password = ceso_var("CESO_PASSWORD");
  auto ceso_password_file = ceso_var("CESO_PASSWORD_FILE");
  auto ceso_password_command = ceso_var("CESO_PASSWORD_COMMAND");
  {
    std::vector<std::string> set;
    if (ceso_password) set.emplace_back("CESO_PASSWORD");
    if (ceso_password_file) set.emplace_back("CESO_PASSWORD_FILE");
    if (ceso_password_command) set.emplace_back("CESO_PASSWORD_COMMAND");
    if (set.size() == 2) usage_error(set[0] + " and " + set[1] + " are both set; unset one");
    if (set.size() == 3)
      usage_error(set[0] + ", " + set[1] + " and " + set[2] + " are all set; unset all but one");
  }
  if (ceso_password) {
    ep.password = *ceso_password;
  } else if (ceso_password_file) {
    ep.password = read_password_file(expand_home(*ceso_password_file, env), "CESO_PASSWORD_FILE");
  } else if (ceso_password_command) {
    std::string why;
    auto argv = split_command(*ceso_password_command, &why);
    if (!argv) usage_error("CESO_PASSWORD_COMMAND: " + why);
    ep.password = password_from_command(*argv, "CESO_PASSWORD_COMMAND");
  } else if (ceso_url && ceso_url->has_password) {
    ep.password = ceso_url->ep.password;
  } else if (auto p = govc_var("GOVC_PASSWORD")) {
    ep.password = *p;
  } else if (govc_url && govc_url->has_password) {
    ep.password = govc_url->ep.password;
  } else if (entry_credentials) {
    if (entry->password)
      ep.password = *entry->password;
    else if (entry->password_file)
      ep.password = read_password_file(*entry->password_file,
                                       "config " + quote(entry->name) + " password_file");
    else if (entry->password_command)
      ep.password = password_from_command(*entry->password_command,
                                          "config " + quote(entry->name) + " password_command");
    else if (entry->url.has_password)
      ep.password = entry->url.ep.password;
  }

  // Certificate checks.
  if (auto v = ceso_applies ? parse_flag(env, "CESO_INSECURE") : std::nullopt)
    ep.insecure = *v;
  else if (auto g = govc_applies ? parse_govc_flag(env, "GOVC_INSECURE") : std::nullopt)
    ep.insecure = *g;
  else if (entry && entry->insecure)
    ep.insecure = *entry->insecure;

  if (auto t = ceso_var("CESO_THUMBPRINT")) {
    try {
      ep.thumbprint = normalize_thumbprint(*t);
    } catch (const Error& e) {
      usage_error(std::string("CESO_THUMBPRINT: ") + e.what());
    }
  } else if (entry && entry->thumbprint) {
    ep.thumbprint = *entry->thumbprint;
  } else if (!ep.insecure && ep.scheme == "https") {
    if (auto known = known_hosts_lookup(env, ep.id)) {
      ep.thumbprint = known->sha256;
      ep.thumbprint_sha1 = known->sha1;
    }
  }

  if (auto ca = ceso_var("CESO_CA_FILE")) {
    ep.ca_file = expand_home(*ca, env);
    check_readable(ep.ca_file, "CESO_CA_FILE");
  } else if (entry && entry->ca_file) {
    ep.ca_file = *entry->ca_file;
    check_readable(ep.ca_file, "config " + quote(entry->name) + " ca_file");
  }

  // Limits: the environment's apply to any host (they carry no secret and
  // name no host), then the entry's, then the defaults.
  auto limit = [&](const char* var, auto from_entry, auto& field) {
    if (auto v = getenv_nonempty(env, var)) {
      std::string why;
      auto n = parse_limit(ascii_lower(var), *v, &why);
      if (!n) usage_error(std::string(var) + ": " + why);
      field = static_cast<std::decay_t<decltype(field)>>(*n);
    } else if (entry && from_entry(*entry)) {
      field = static_cast<std::decay_t<decltype(field)>>(*from_entry(*entry));
    }
  };
  limit(
      "CESO_IDLE_TIMEOUT", [](const HostEntry& h) { return h.idle_timeout_s; }, ep.idle_timeout_s);
  limit(
      "CESO_CALL_TIMEOUT", [](const HostEntry& h) { return h.call_timeout_s; }, ep.call_timeout_s);
  uint64_t mib = Endpoint::kDefaultMaxAnswerMiB;
  limit(
      "CESO_MAX_ANSWER_MIB", [](const HostEntry& h) { return h.max_answer_mib; }, mib);
  ep.max_answer_bytes = mib * 1024 * 1024;

  resolve_ssh(ep, entry, env, ceso_applies);

  // Plain http sends the password in clear: only to this machine (the
  // simulator) unless certificate checks are off anyway.
  if (ep.scheme == "http" && !is_loopback(ep.host) && !ep.insecure)
    throw Error(ep.source + ": plain http:// to " + quote(ep.host) +
                    " would send the password unencrypted; use https://, or set CESO_INSECURE=1 "
                    "(insecure: true in the config) if you really mean it",
                Exit::policy);
  return ep;
}

std::string no_host_message(const ConfigFile& cfg) {
  std::string msg = "no host given: use --url, -H NAME";
  auto names = cfg.names();
  if (!names.empty()) msg += " (" + printable(join(names, ", ")) + ")";
  msg += ", CESO_URL, or a default in " + cfg.path;
  return msg;
}

std::optional<Endpoint> resolve(const HostSelection& given, const Environment& env, bool required) {
  const auto& url_option = given.url;
  const auto& host_option = given.name;
  if (url_option && host_option) usage_error("use either --url or -H/--host, not both");

  Choice choice;
  if (url_option) {
    try {
      choice.url = parse_url(*url_option);
    } catch (const Error& e) {
      usage_error(std::string("--url: ") + e.what());
    }
    if (choice.url.has_password)
      usage_error(
          "--url: the URL contains a password; passwords are not accepted on the command line "
          "(other users can read them with ps). Use CESO_PASSWORD_FILE, CESO_PASSWORD or a "
          "password_file in the config file");
    choice.source = "--url";
    choice.from_command_line = true;
  }

  ConfigFile cfg = load_config(env);
  EnvFamily ceso = read_family(env, "CESO_URL", true);
  EnvFamily govc = read_family(env, "GOVC_URL", false);

  if (url_option) {
    // chosen above
  } else if (host_option) {
    choice.entry = cfg.find(*host_option);
    if (!choice.entry) {
      std::string msg = "-H: no host " + quote(*host_option) + " in ";
      if (!cfg.exists) {
        msg += cfg.path + " (no such file)";
      } else {
        auto names = cfg.names();
        msg +=
            cfg.path + " (known: " + (names.empty() ? "none" : printable(join(names, ", "))) + ")";
      }
      usage_error(msg + "; use --url for a host that is not in the config file");
    }
  } else if (ceso.url) {
    choice.url = *ceso.url;
    choice.source = "CESO_URL";
  } else if (govc.url_text) {
    if (!govc.url) usage_error("GOVC_URL: " + *govc.url_error);
    choice.url = *govc.url;
    choice.source = "GOVC_URL";
  } else if (cfg.default_name) {
    choice.entry = cfg.find(*cfg.default_name);
  } else {
    if (!required) return std::nullopt;
    usage_error(no_host_message(cfg));
  }
  if (choice.entry) {
    choice.url = choice.entry->url;
    choice.source = "config " + quote(choice.entry->name);
  }
  return finish(choice, cfg, env, ceso, govc);
}

}  // namespace

// ---------------------------------------------------------------- public API

Environment process_environment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

void forbid_core_dumps() {
  // Not dumpable: no core file, not even through a core_pattern pipe
  // (systemd-coredump), which ignores RLIMIT_CORE; and no ptrace attach or
  // /proc/PID/mem by other processes of the same user.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  struct rlimit none {
    0, 0
  };
  ::setrlimit(RLIMIT_CORE, &none);
}

Endpoint parse_endpoint_url(std::string_view text) { return parse_url(text).ep; }

std::string redact_url(std::string_view text) {
  size_t start = 0;
  if (size_t sep = text.find("://"); sep != std::string_view::npos && sep > 0) {
    std::string_view scheme = text.substr(0, sep);
    bool valid = std::all_of(scheme.begin(), scheme.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '+' || c == '-' || c == '.';
    });
    if (valid) start = sep + 3;
  }
  std::string_view rest = text.substr(start);
  // user[:password]@host: the last '@' anywhere ends the user information,
  // since an unescaped '/', '?' or '#' in a password would otherwise end
  // the authority early and leave the password in what is printed.
  if (size_t at = rest.rfind('@'); at != std::string_view::npos)
    return std::string(text.substr(0, start)) + "***" + std::string(rest.substr(at));
  // No '@': "user:password" with the host forgotten looks like host:port.
  // A port is digits; anything else after the one colon may be a password.
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  size_t colon = authority.find(':');
  if (colon == std::string_view::npos || authority.front() == '[' ||
      authority.find(':', colon + 1) != std::string_view::npos)
    return std::string(text);
  std::string_view port = authority.substr(colon + 1);
  std::string_view after = rest.substr(authority.size());  // "", "/sdk", "?…", "#…"
  bool digits =
      std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); });
  if (digits && (after.empty() || after.front() == '/')) return std::string(text);
  return std::string(text.substr(0, start + colon + 1)) + "***";
}

void make_private_dirs(const std::string& dir) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) == 0) {
      // mkdir's mode passes through the umask (022 is harmless, but 0277
      // would leave a directory we cannot write): set it outright.
      if (::chmod(part.c_str(), 0700) != 0)
        fail("cannot set the mode of directory " + quote(part) + ": " + errno_text(errno));
    } else if (errno != EEXIST) {
      fail("cannot create directory " + quote(part) + ": " + errno_text(errno));
    }
  }
}

int open_private_file(const std::string& path, int flags) {
  flags |= O_CLOEXEC;
  flags &= ~(O_CREAT | O_EXCL);
  for (int attempt = 0; attempt < 8; ++attempt) {
    int fd = ::open(path.c_str(), flags | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) {
      if (::fchmod(fd, 0600) != 0) {
        int err = errno;
        ::close(fd);
        errno = err;
        return -1;
      }
      return fd;
    }
    if (errno == EEXIST) {
      fd = ::open(path.c_str(), flags);
      if (fd >= 0 || errno != ENOENT) return fd;
      continue;  // removed in between: create it after all
    }
    if (errno != ENOENT) return -1;
    size_t slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) return -1;
    make_private_dirs(path.substr(0, slash));
  }
  errno = EAGAIN;
  return -1;
}

std::string normalize_thumbprint(std::string_view text) {
  size_t bytes = 0;
  auto normalized = parse_hex_fingerprint(text, &bytes);
  std::string why;
  if (!normalized)
    why = "expected 64 hex digits, colons between bytes optional";
  else if (bytes == 20)
    why =
        "that is a SHA-1 thumbprint; ceso pins SHA-256 (openssl x509 -noout -fingerprint "
        "-sha256)";
  else if (bytes != 32)
    why = std::to_string(bytes) + " bytes, a SHA-256 thumbprint has 32";
  if (!why.empty()) usage_error(quote(text) + " is not a SHA-256 certificate thumbprint: " + why);
  return *normalized;
}

std::string normalize_host_key_pin(std::string_view text) {
  auto bad = [&](const std::string& why) {
    usage_error(quote(text) + " is not a SHA-256 host key fingerprint: " + why +
                " (ssh-keygen -lf /etc/ssh/ssh_host_ecdsa_key.pub on the host prints it)");
  };
  if (ascii_lower(text.substr(0, 4)) == "md5:" || (text.size() > 2 && text[2] == ':'))
    bad("that looks like an MD5 fingerprint; ceso pins SHA256:… ones");
  if (text.size() < 7 || ascii_lower(text.substr(0, 7)) != "sha256:")
    bad("expected SHA256: and 43 base64 characters");
  std::string b64(text.substr(7));
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  if (b64.size() != 43) bad(std::to_string(b64.size()) + " base64 characters, expected 43");
  for (char c : b64)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/')
      bad("a character that is not base64");
  // 43 characters carry 258 bits: the last one must leave the spare 2 zero.
  std::string decoded = base64_decode(b64 + "=");
  if (decoded.size() != 32 || base64_encode(decoded) != b64 + "=")
    bad("not the base64 of 32 bytes");
  return "SHA256:" + b64;
}

namespace {

// The host part of `ssh:` (parse_ssh_access).
bool valid_hostname(std::string_view host) {
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
  });
}

bool valid_ipv6(const std::string& host) {
  std::string addr = host.substr(0, host.find('%'));  // without a zone id
  unsigned char buf[16];
  return ::inet_pton(AF_INET6, addr.c_str(), buf) == 1;
}

}  // namespace

SshAccess parse_ssh_access(std::string_view text) {
  auto bad = [&](const std::string& why) {
    usage_error("bad SSH address " + quote(text) + ": " + why + " (use [USER@]HOST[:PORT])");
  };
  for (char c : text)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      bad("it contains a space or control character");
  SshAccess a;
  std::string_view rest = text;
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    a.user = std::string(rest.substr(0, at));
    rest = rest.substr(at + 1);
    if (a.user.empty()) bad("empty user name");
    if (a.user.find_first_of(":/") != std::string::npos)
      bad("no password or path in it: use a key or the SSH agent");
  }
  std::string_view port_text;
  bool has_port = false;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) bad("missing ']' after the IPv6 address");
    a.host = ascii_lower(rest.substr(1, close - 1));
    if (!valid_ipv6(a.host)) bad(quote(a.host) + " is not an IPv6 address");
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad("unexpected text after ']'");
      port_text = after.substr(1);
      has_port = true;
    }
  } else if (std::count(rest.begin(), rest.end(), ':') >= 2) {
    a.host = ascii_lower(rest);
    if (!valid_ipv6(a.host)) bad("an IPv6 address needs brackets: [ADDRESS]:PORT");
  } else {
    size_t colon = rest.find(':');
    a.host = ascii_lower(rest.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = rest.substr(colon + 1);
      has_port = true;
    }
    if (!valid_hostname(a.host))
      bad("the host has characters other than letters, digits, '.', '-'");
  }
  if (a.host.empty()) bad("no host");
  if (has_port) {
    bool digits = !port_text.empty() && port_text.size() <= 5 &&
                  std::all_of(port_text.begin(), port_text.end(),
                              [](unsigned char c) { return std::isdigit(c) != 0; });
    int port = digits ? std::atoi(std::string(port_text).c_str()) : 0;
    if (port < 1 || port > 65535) bad("the port is not a number from 1 to 65535");
    a.port = port;
  }
  return a;
}

std::vector<std::string> ssh_known_hosts_files(const Environment& env) {
  return {home_dir(env) + "/.ssh/known_hosts", ssh_record_file(env)};
}

std::string ssh_record_file(const Environment& env) { return state_dir(env) + "/known_hosts"; }

std::string expand_home(std::string_view path, const Environment& env) {
  if (path == "~") return home_dir(env);
  if (path.substr(0, 2) == "~/") return home_dir(env) + std::string(path.substr(1));
  return std::string(path);
}

std::string config_path(const Environment& env) {
  return xdg_dir(env, "XDG_CONFIG_HOME", ".config") + "/ceso/config";
}

std::string cache_dir(const Environment& env) {
  return xdg_dir(env, "XDG_CACHE_HOME", ".cache") + "/ceso";
}

std::string state_dir(const Environment& env) {
  return xdg_dir(env, "XDG_STATE_HOME", ".local/state") + "/ceso";
}

Endpoint resolve_endpoint(const HostSelection& given, const Environment& env) {
  return *resolve(given, env, true);
}

std::optional<Endpoint> resolve_endpoint_if_given(const HostSelection& given,
                                                  const Environment& env) {
  return resolve(given, env, false);
}

Endpoint endpoint_for_record(const std::string& endpoint_id,
                             const std::optional<Endpoint>& default_ep, const Environment& env) {
  std::string id;
  try {
    id = parse_url(endpoint_id).ep.id;
  } catch (const Error&) {
    bad_input("endpoint " + quote(endpoint_id) + " is not HOST:PORT");
  }
  if (default_ep && default_ep->id == id) return *default_ep;

  // Only hosts the user configured get credentials: a record naming some
  // other host must not make us send a password there.
  ConfigFile cfg = load_config(env);
  enforce_allowlist(cfg, parse_url(endpoint_id).ep.host, "record endpoint " + quote(endpoint_id));
  EnvFamily ceso = read_family(env, "CESO_URL", true);
  EnvFamily govc = read_family(env, "GOVC_URL", false);
  Choice choice;
  if (ceso.url && ceso.url->ep.id == id) {
    choice.url = *ceso.url;
    choice.source = "CESO_URL";
  } else if (govc.url && govc.url->ep.id == id) {
    choice.url = *govc.url;
    choice.source = "GOVC_URL";
  } else {
    for (const auto& h : cfg.hosts) {
      if (h.url.ep.id == id) {
        choice.entry = &h;
        choice.url = h.url;
        choice.source = "config " + quote(h.name);
        break;
      }
    }
  }
  if (choice.source.empty())
    fail("record is from host " + quote(endpoint_id) +
         " but no credentials for it are configured; add it to " + cfg.path + " or set CESO_URL");
  return finish(choice, cfg, env, ceso, govc);
}

void check_host_allowed(std::string_view host, std::string_view what, const Environment& env) {
  enforce_allowlist(load_config(env), host, what);
}

std::vector<std::string> config_host_names(const Environment& env) {
  return load_config(env).names();
}

std::optional<std::string> config_backup_target(const Environment& env) {
  return load_config(env).backup_target;
}

S3Config config_backup_s3(const Environment& env) { return load_config(env).s3; }

PromotionFiles promotion_files(const Environment& env) {
  ConfigFile cfg = load_config(env);
  std::string dir = config_path(env);
  dir = dir.substr(0, dir.rfind('/'));
  PromotionFiles files;
  files.key = cfg.promotion_key.value_or(dir + "/promotion.pub");
  files.key_source = cfg.promotion_key ? "config file " + quote(cfg.path) + " promotion.key"
                                       : std::string("the default promotion.key");
  files.revoked = cfg.promotion_revoked.value_or(dir + "/revoked-promotions");
  return files;
}

MetricsSettings metrics_settings(const Environment& env) {
  MetricsSettings m;
  auto dir = getenv_nonempty(env, "CESO_METRICS_DIR");
  auto labels = parse_flag(env, "CESO_METRICS_VM_LABELS");
  if (dir) {
    m.dir = expand_home(*dir, env);
    if (m.dir.front() != '/')
      usage_error("CESO_METRICS_DIR: " + quote(*dir) + " is not an absolute path");
    m.source = "CESO_METRICS_DIR";
  }
  if (!dir || !labels) {
    ConfigFile cfg = load_config(env);
    if (!dir && cfg.metrics_dir) {
      m.dir = *cfg.metrics_dir;
      m.source = "config file " + quote(cfg.path) + " metrics.dir";
    }
    if (!labels) labels = cfg.metrics_vm_labels;
  }
  m.vm_labels = labels.value_or(false);
  return m;
}

}  // namespace ceso
