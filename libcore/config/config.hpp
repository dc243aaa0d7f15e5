// Connection settings: which host to talk to and how (docs/design.md "Connection").
//
// The host comes from, in this order: --url, -H NAME (an entry of the config
// file), CESO_URL, GOVC_URL, the config file's `default`. Every other setting
// (user, password, insecure, thumbprint, CA file) is resolved per setting:
// command line > environment (CESO_* before GOVC_*) > the config entry for
// that host > built-in default. Environment variables describe the host of
// their own URL variable: when CESO_URL (GOVC_URL) is set and the host was
// chosen elsewhere (--url, -H) and is a different endpoint, the CESO_*
// (GOVC_*) settings are not used for it, so a password is never sent to a host
// it was not given for. docs/configuration.md has the full table.
//
// Passwords never come from the command line: a password inside a --url value
// is refused (other users can read command lines with ps). Password files and
// config files holding passwords must not be readable by group or others.
//
// Nothing here prints; every problem is a ceso::Error naming its source
// (the variable, or the config file and line).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ceso {

// SSH access to a host's shell: the way to write on a free-licensed ESXi
// host, whose API is read-only (transport/ssh). From the config entry's
// `ssh`, `ssh_identity`, `ssh_host_key` or CESO_SSH, CESO_SSH_IDENTITY,
// CESO_SSH_HOST_KEY (docs/configuration.md "SSH access").
struct SshAccess {
  std::string user = "root";
  std::string host;  // lower case; an IPv6 literal without brackets
  int port = 22;
  std::string identity;  // private key file (absolute), "agent", or "" for the
                         // agent, then ~/.ssh/id_ed25519, ~/.ssh/id_ecdsa
  std::string host_key;  // pinned "SHA256:…" (normalize_host_key_pin) or ""
  std::string source;    // "CESO_SSH", "config 'esxi1'", for messages
};

// One vSphere endpoint (ESXi host or vCenter) and how to log in to it.
struct Endpoint {
  std::string url;              // normalized SDK URL without credentials:
                                // "https://esxi1.lab/sdk", "http://127.0.0.1:8989/sdk"
  std::string scheme;           // "https" or "http"
  std::string host;             // lower case; an IPv6 literal without brackets
  int port = 443;               // explicit or the scheme's default (443, 80)
  std::string id;               // "esxi1.lab:443", "[2001:db8::1]:443": the records'
                                // `endpoint` field and the session cache key
  std::string user;             // never empty ("root" by default)
  std::string password;         // may be empty; never log or print it
  bool insecure = false;        // skip all certificate checks (thumbprint unused)
  std::string thumbprint;       // pinned SHA-256 "AB:CD:…" (upper case); empty = none
  std::string thumbprint_sha1;  // SHA-1 pin from GOVC_TLS_KNOWN_HOSTS (govc
                                // writes SHA-1); empty = none
  std::string ca_file;          // PEM CA bundle to verify against; empty = system CAs
  std::string config_name;      // config entry used (-H NAME, default, or the
                                // entry whose url matches); empty = none
  std::string source;           // where the URL came from, for messages: "--url",
                                // "CESO_URL", "GOVC_URL", "config 'esxi1'"
  // Limits on the host (ceso(7) LIMITS, docs/configuration.md "Limits");
  // from CESO_IDLE_TIMEOUT, CESO_CALL_TIMEOUT, CESO_MAX_ANSWER_MIB or the
  // entry's idle_timeout, call_timeout, max_answer_mib. 0 turns a timeout off.
  int idle_timeout_s = kDefaultIdleTimeout;  // every connection: nothing received this long
  int call_timeout_s = kDefaultCallTimeout;  // one SOAP call, start to end
  uint64_t max_answer_bytes = kDefaultMaxAnswerMiB * 1024 * 1024;  // one SOAP answer

  // SSH access to the host, when configured (free-licensed ESXi).
  std::optional<SshAccess> ssh;

  static constexpr int kDefaultIdleTimeout = 60;
  static constexpr int kDefaultCallTimeout = 300;
  static constexpr uint64_t kDefaultMaxAnswerMiB = 64;
};

// getenv-like lookup; injectable so tests need not touch the real environment.
// An empty value counts as unset.
using Environment = std::function<std::optional<std::string>(std::string_view)>;

// The process environment (getenv).
Environment process_environment();

// The host a user named on the command line, if any (cli/endpoint.hpp fills
// it from --url and -H/--host; messages name those options).
struct HostSelection {
  std::optional<std::string> url;   // --url URL
  std::optional<std::string> name;  // -H NAME: an entry of the config file
};

// Resolve the endpoint for a tool run from the host the user named, the
// environment and the config file. Throws Error:
//   usage      no host anywhere, unknown -H name, --url with -H, password in
//              --url, malformed CESO_* / GOVC_* values
//   bad_input  malformed config file (message names file, line and key)
//   policy     password file or config file with a password readable by
//              group/others; plain http to a non-loopback host without insecure;
//              a host the config file's allow_hosts does not allow (checked
//              first, before any password is read or command run)
//   failure    a named file cannot be read; the password command fails
Endpoint resolve_endpoint(const HostSelection& given,
                          const Environment& env = process_environment());

// Like resolve_endpoint, but nullopt (instead of the usage error) when no
// host is given anywhere: for tools that may get every host from their input
// records' `endpoint` fields.
std::optional<Endpoint> resolve_endpoint_if_given(const HostSelection& given,
                                                  const Environment& env = process_environment());

// The endpoint for a record's `endpoint` field ("host:port"; multi-host
// pipelines): `default_ep` if it is the same endpoint; else CESO_URL's or
// GOVC_URL's host if it is; else the first config entry whose url is that
// endpoint (settings resolved as for -H NAME). A host configured nowhere gets
// nothing — a record must not make us send credentials to a host the user did
// not name: Error(failure) "record is from host X but no credentials for it
// are configured; …". A malformed id throws Error(bad_input); otherwise the
// errors of resolve_endpoint. Reads the config file on each call that does
// not match `default_ep`.
Endpoint endpoint_for_record(const std::string& endpoint_id,
                             const std::optional<Endpoint>& default_ep,
                             const Environment& env = process_environment());

// Parse one URL in any accepted form — "host", "host:port", "[v6]:port",
// "user@host", "https://user:pass@host:port/path", "http://127.0.0.1:8989/sdk"
// — into url/scheme/host/port/id, plus user/password when embedded
// (percent-decoded). No other field is set. Throws Error(usage) "bad URL …"
// (an embedded password is never repeated in the message).
Endpoint parse_endpoint_url(std::string_view text);

// A SHA-256 certificate thumbprint: 64 hex digits in any case, colons between
// bytes optional → "AB:CD:…" (upper case, colons). Throws Error(usage) saying
// what is wrong (a SHA-1 thumbprint is named as such).
std::string normalize_thumbprint(std::string_view text);

// An SSH address "[user@]host[:port]", "[user@][v6addr]:port" (user root,
// port 22 by default) → user/host/port of SshAccess. Throws Error(usage)
// "bad SSH address …: why".
SshAccess parse_ssh_access(std::string_view text);

// A pinned SSH host key as written in the config: "SHA256:" (any case) + 43
// base64 characters (padding '=' optional), as ssh-keygen -lf prints it →
// "SHA256:…" without padding. Throws Error(usage) saying what is wrong (an
// MD5 "aa:bb:…" fingerprint is named as such).
std::string normalize_host_key_pin(std::string_view text);

// The OpenSSH known_hosts files ceso checks SSH host keys against: the
// user's ~/.ssh/known_hosts (hosts met with ssh) and ceso's own
// ${XDG_STATE_HOME}/ceso/known_hosts, where --accept-new-host-key records
// new keys (ssh_record_file), so the user's file is never rewritten.
std::vector<std::string> ssh_known_hosts_files(const Environment& env = process_environment());
std::string ssh_record_file(const Environment& env = process_environment());

// XDG locations (relative XDG_* values are ignored, as the spec says; "~" is
// HOME). config_path: ${XDG_CONFIG_HOME:-~/.config}/ceso/config;
// cache_dir: ${XDG_CACHE_HOME:-~/.cache}/ceso;
// state_dir: ${XDG_STATE_HOME:-~/.local/state}/ceso. Nothing is created.
std::string config_path(const Environment& env = process_environment());
std::string cache_dir(const Environment& env = process_environment());
std::string state_dir(const Environment& env = process_environment());

// Once a password or session cookie is in memory: no core dumps (prctl
// PR_SET_DUMPABLE 0, RLIMIT_CORE 0). Called by endpoint resolution and when
// a cached session is loaded; lasts until the process execs.
void forbid_core_dumps();

// `url` for a message: any user information (user:password@, user@) becomes
// "***", and so does what follows the colon of "user:password" (a URL whose
// host was forgotten) unless it is a port number. Every message that shows a
// URL given by the user goes through here.
std::string redact_url(std::string_view url);

// ceso's private files: every directory and file ceso keeps for itself (the
// state, cache and config directories; the audit log and its checkpoint, the
// session cache and its lock, the backup catalog and its SQLite companions,
// lock files) is made through these two, so its mode does not depend on the
// umask or on which tool ran first.
//
// mkdir -p: each directory it creates gets mode 0700 (set with chmod after
// mkdir, so no umask can widen or narrow it). Existing directories keep
// their mode. Throws Error naming the directory it cannot create.
void make_private_dirs(const std::string& dir);
// open(2) of `path` with `flags` (O_CREAT and O_CLOEXEC are added). A file it
// creates gets mode 0600 whatever the umask, and missing parent directories
// are made with make_private_dirs; an existing file keeps its mode. Returns
// the descriptor, or -1 with errno set.
int open_private_file(const std::string& path, int flags);

// "~" or "~/x" → HOME-based path; anything else unchanged.
std::string expand_home(std::string_view path, const Environment& env = process_environment());

// Host names in the config file, in file order (for completions and
// messages); empty when there is no config file. Throws like
// resolve_endpoint for a malformed or unsafe config file.
std::vector<std::string> config_host_names(const Environment& env = process_environment());

// The endpoint allowlist (config key allow_hosts, docs/configuration.md
// "Allowed hosts"; matching in config/allowlist.hpp). When the config file
// sets it, throws Error(policy) "WHAT: host 'H' is not in allow_hosts
// (config file …, line N); not connecting" unless `host` is allowed; without
// it, any host is. Every transport calls this before it resolves or connects
// to a host: resolve_endpoint and endpoint_for_record do for vSphere
// endpoints, open_sftp_target for backup targets, and the SSH transport must
// for its hosts. `what` says where the host came from ("backup target").
// Throws like config_host_names for a malformed config file.
void check_host_allowed(std::string_view host, std::string_view what,
                        const Environment& env = process_environment());

// `backup: target:` from the config file, if set. Throws like
// config_host_names.
std::optional<std::string> config_backup_target(const Environment& env = process_environment());

// `backup: s3_*` from the config file (docs/configuration.md): what an
// s3:// target uses when the environment does not say (transport/s3.cpp).
struct S3Config {
  std::optional<std::string> endpoint, region, profile, credentials_file;
};
S3Config config_backup_s3(const Environment& env = process_environment());

// Where restricted mode finds what checks a promotion (docs/audit.md
// "Promotions"): the config file's `promotion: key:` (the operator's Ed25519
// public key, PEM) and `promotion: revoked:` (revoked token ids), by default
// promotion.pub and revoked-promotions next to the config file. Never from
// the environment: whoever sets it could name a key of their own. Throws like
// config_host_names.
struct PromotionFiles {
  std::string key;
  std::string key_source;  // "config file '…' promotion.key", for messages
  std::string revoked;
};
PromotionFiles promotion_files(const Environment& env = process_environment());

// Where a run writes its Prometheus metrics (base/metrics.hpp, docs/metrics.md):
// CESO_METRICS_DIR (an absolute path, "~" allowed) or the config file's
// `metrics: dir:`; `vm_labels` from CESO_METRICS_VM_LABELS (1/0, true/false …)
// or `metrics: vm_labels:`. An empty `dir`: no metrics. Throws Error(usage)
// for a bad variable and like config_host_names for a malformed config file.
struct MetricsSettings {
  std::string dir;
  bool vm_labels = false;
  std::string source;  // "CESO_METRICS_DIR", "config file '…' metrics.dir", for messages
};
MetricsSettings metrics_settings(const Environment& env = process_environment());

}  // namespace ceso
