#include "safety/audit.hpp"

#include <expat.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "base/codec.hpp"
#include "base/error.hpp"
#include "base/file.hpp"
#include "base/util.hpp"
#include "base/xml.hpp"
#include "config/config.hpp"

namespace ceso {

namespace {

const std::string kNoPrevious(64, '0');
// A line longer than this is not one of ours: refuse rather than buffer it.
constexpr size_t kMaxLine = 16u << 20;

std::string errno_text(int err) { return std::strerror(err); }

[[noreturn]] void fail_on(std::string_view what, const std::string& path, int err) {
  fail("cannot " + std::string(what) + " " + quote(path) + ": " + errno_text(err));
}

bool is_sha256_hex(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// flock(2), retried when a signal (SIGINT with run_tool's handler) interrupts
// the wait: the record of a mutation that already happened must still be written.
void lock(int fd, int how, const std::string& path) {
  while (::flock(fd, how) != 0) {
    if (errno != EINTR) fail_on("lock", path, errno);
  }
}

// Reads exactly n bytes at offset (the file only grows, so a short read is an error).
void read_at(int fd, char* buf, size_t n, off_t offset, const std::string& path) {
  while (n > 0) {
    ssize_t r = ::pread(fd, buf, n, offset);
    if (r < 0) {
      if (errno == EINTR) continue;
      fail_on("read", path, errno);
    }
    if (r == 0) fail("cannot read " + quote(path) + ": unexpected end of file");
    buf += r;
    n -= static_cast<size_t>(r);
    offset += r;
  }
}

struct Tail {
  std::string line;      // without its newline
  bool complete = true;  // ends with a newline (false: a torn write)
};

// The line that ends at `end` (exclusive), found by reading backwards in
// blocks so appending never reads the whole log.
Tail line_ending_at(int fd, off_t end, const std::string& path) {
  Tail tail;
  if (end <= 0) return tail;
  char last = 0;
  read_at(fd, &last, 1, end - 1, path);
  off_t pos = end;
  if (last == '\n') {
    --pos;
  } else {
    tail.complete = false;
  }
  std::vector<std::string> blocks;  // last block first
  size_t total = 0;
  constexpr off_t kBlock = 8192;
  while (pos > 0) {
    off_t start = pos > kBlock ? pos - kBlock : 0;
    std::string block(static_cast<size_t>(pos - start), '\0');
    read_at(fd, block.data(), block.size(), start, path);
    size_t nl = block.rfind('\n');
    if (nl != std::string::npos) {
      blocks.push_back(block.substr(nl + 1));
      total += block.size() - nl - 1;
      break;
    }
    total += block.size();
    blocks.push_back(std::move(block));
    if (total > kMaxLine) fail(quote(path) + " is not an audit log: its last line is too long");
    pos = start;
  }
  tail.line.reserve(total);
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) tail.line += *it;
  return tail;
}

Fd open_log_for_append(const std::string& path) {
  // New directories 0700, a new log 0600, whatever the umask.
  int fd = open_private_file(path, O_RDWR | O_APPEND);
  if (fd < 0) fail_on("open audit log", path, errno);
  Fd file(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail_on("stat", path, errno);
  if (!S_ISREG(st.st_mode)) fail("audit log " + quote(path) + " is not a regular file");
  return file;
}

// The anchor <log>.head: {"size":N,"lines":N,"sha256":"…"} — the log's size,
// its number of lines and the hash of the line that ends there. Writers
// update it under the log's lock after each append, in place with one
// pwrite(2) of a fixed length (the numbers are padded with blanks), which is
// much cheaper than write-and-rename on ext4; readers take the lock's shared
// side to read it, so they never see half an update. Anchors written before
// "lines" existed are read with the count unknown.
struct Checkpoint {
  enum class State { absent, valid, invalid } state = State::absent;
  off_t size = 0;
  std::optional<uint64_t> lines;
  std::string sha256;
  std::string problem;  // for invalid
};

// An empty file counts as absent: a writer created it and died.
Checkpoint parse_checkpoint(std::string_view text) {
  Checkpoint c;
  if (text.empty()) return c;
  c.state = Checkpoint::State::invalid;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    c.problem = "not JSON";
    return c;
  }
  auto size = j.find("size");
  auto hash = j.find("sha256");
  auto lines = j.find("lines");
  if (size == j.end() || !size->is_number_unsigned() || hash == j.end() || !hash->is_string() ||
      !is_sha256_hex(hash->get<std::string>()) ||
      (lines != j.end() && !lines->is_number_unsigned())) {
    c.problem = "fields \"size\", \"lines\" and \"sha256\" missing or malformed";
    return c;
  }
  c.state = Checkpoint::State::valid;
  c.size = static_cast<off_t>(size->get<uint64_t>());
  if (lines != j.end()) c.lines = lines->get<uint64_t>();
  c.sha256 = hash->get<std::string>();
  return c;
}

ordered_json checkpoint_json(const Checkpoint& c) {
  switch (c.state) {
    case Checkpoint::State::absent:
      return nullptr;
    case Checkpoint::State::invalid:
      return {{"problem", c.problem}};
    case Checkpoint::State::valid:
      break;
  }
  ordered_json j = {{"size", static_cast<uint64_t>(c.size)}};
  j["lines"] = c.lines ? ordered_json(*c.lines) : ordered_json();
  j["sha256"] = c.sha256;
  return j;
}

std::string read_fd_text(int fd, const std::string& path) {
  std::string text;
  char buf[512];
  for (off_t off = 0;;) {
    ssize_t r = ::pread(fd, buf, sizeof buf, off);
    if (r < 0) {
      if (errno == EINTR) continue;
      fail_on("read", path, errno);
    }
    if (r == 0 || text.size() > 4096) return text;
    text.append(buf, static_cast<size_t>(r));
    off += r;
  }
}

Checkpoint read_checkpoint(const std::string& head_path) {
  Fd fd(::open(head_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    Checkpoint c;
    if (errno != ENOENT) {
      c.state = Checkpoint::State::invalid;
      c.problem = errno_text(errno);
    }
    return c;
  }
  return parse_checkpoint(read_fd_text(fd.get(), head_path));
}

std::string checkpoint_text(off_t size, uint64_t lines, const std::string& sha256) {
  // JSON allows blanks: every anchor has the same length.
  auto padded = [](uint64_t n) {
    std::string s = std::to_string(n);
    s.resize(20, ' ');
    return s;
  };
  return "{\"size\":" + padded(static_cast<uint64_t>(size)) + ",\"lines\":" + padded(lines) +
         ",\"sha256\":\"" + sha256 + "\"}\n";
}

// Newlines in [from, to) of the log.
uint64_t count_newlines(int fd, off_t from, off_t to, const std::string& path) {
  uint64_t n = 0;
  std::string buf(1 << 16, '\0');
  for (off_t pos = from; pos < to;) {
    size_t want = std::min(static_cast<size_t>(to - pos), buf.size());
    read_at(fd, buf.data(), want, pos, path);
    n +=
        static_cast<uint64_t>(std::count(buf.begin(), buf.begin() + static_cast<long>(want), '\n'));
    pos += static_cast<off_t>(want);
  }
  return n;
}

// Why an anchor does not vouch for a log's tail; empty kind when it does.
struct TailProblem {
  std::string kind;  // "no-anchor", "anchor-unreadable", "truncated", "rewritten"
  std::string text;
  bool empty() const { return kind.empty(); }
  ordered_json json() const { return {{"kind", kind}, {"problem", text}}; }
};

// Does the anchor still describe a prefix of the log whose last line hashes
// to `last_hash` and ends at `size`? An anchor that does not is evidence (the
// tail was cut, the log replaced) and must not be overwritten.
TailProblem checkpoint_disagreement(const Checkpoint& c, int fd, off_t size,
                                    const std::string& last_hash, const std::string& path) {
  const std::string head = quote(path + ".head");
  switch (c.state) {
    case Checkpoint::State::absent:
      if (size == 0) return {};
      return {"no-anchor", "the log has no anchor " + head + ", so its tail cannot be verified"};
    case Checkpoint::State::invalid:
      return {"anchor-unreadable", "its anchor " + head + " cannot be read: " + c.problem};
    case Checkpoint::State::valid:
      break;
  }
  if (c.size > size)
    return {"truncated", "the log has " + std::to_string(size) + " bytes but its anchor " + head +
                             " records " + std::to_string(c.size) +
                             ": its tail was truncated, or the log was replaced"};
  bool agrees;
  if (c.size == size) {
    agrees = c.sha256 == last_hash;
  } else if (c.size == 0) {
    agrees = c.sha256 == kNoPrevious;
  } else {
    // Older than the log: a writer died between its line and the anchor.
    Tail t = line_ending_at(fd, c.size, path);
    agrees = t.complete && sha256_hex(t.line) == c.sha256;
  }
  if (agrees) return {};
  return {"rewritten", "the line that ends where its anchor " + head + " says (byte " +
                           std::to_string(c.size) +
                           ") is not the one it records: the log was rewritten"};
}

// The number of lines of a log of `size` bytes that `c` agrees with (an
// incomplete last line counts as one).
uint64_t lines_in_log(const Checkpoint& c, int fd, off_t size, bool tail_complete,
                      const std::string& path) {
  bool usable = c.state == Checkpoint::State::valid && c.lines && c.size <= size;
  uint64_t n = usable ? *c.lines + count_newlines(fd, c.size, size, path)
                      : count_newlines(fd, 0, size, path);
  return n + (tail_complete ? 0 : 1);
}

// Writes the anchor in place; called with the log locked.
void write_checkpoint(int head_fd, const std::string& head_path, const std::string& current,
                      off_t size, uint64_t lines, const std::string& sha256) {
  const std::string what = "update the audit log's anchor";
  std::string text = checkpoint_text(size, lines, sha256);
  ssize_t w;
  do {
    w = ::pwrite(head_fd, text.data(), text.size(), 0);
  } while (w < 0 && errno == EINTR);
  if (w != static_cast<ssize_t>(text.size())) fail_on(what, head_path, w < 0 ? errno : ENOSPC);
  if (current.size() > text.size() && ::ftruncate(head_fd, static_cast<off_t>(text.size())) != 0)
    fail_on(what, head_path, errno);
}

std::string os_user_name() {
  uid_t uid = ::getuid();
  long max = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(max > 0 ? static_cast<size_t>(max) : 16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found && found->pw_name)
    return found->pw_name;
  return std::to_string(uid);
}

// The first line of a small file, or "" if it cannot be read.
std::string read_small_file(const char* path) {
  std::optional<std::string> text;
  try {
    text = read_file(path);
  } catch (const Error&) {
    return {};
  }
  return text->substr(0, text->find('\n'));
}

// Field 22 (starttime, clock ticks since boot) of /proc/PID/stat, or "0".
std::string process_start_time(pid_t pid) {
  std::string stat = read_small_file(("/proc/" + std::to_string(pid) + "/stat").c_str());
  size_t paren = stat.rfind(')');  // the command name may contain spaces and ')'
  if (paren == std::string::npos) return "0";
  size_t pos = paren + 1;
  // Fields after the name start at 3 (state); starttime is field 22.
  for (int field = 3; field <= 22; ++field) {
    pos = stat.find_first_not_of(' ', pos);
    if (pos == std::string::npos) return "0";
    size_t end = stat.find(' ', pos);
    if (field == 22) return stat.substr(pos, end - pos);
    if (end == std::string::npos) return "0";
    pos = end;
  }
  return "0";
}

std::string lower_alnum(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (unsigned char c : key)
    if (std::isalnum(c)) out += static_cast<char>(std::tolower(c));
  return out;
}

bool looks_like_private_key(std::string_view s) {
  return s.find("-----BEGIN") != std::string::npos && s.find("PRIVATE KEY") != std::string::npos;
}

// ------------------------------------------------------------- redaction

// Below this length a digest is not written: a short secret (a password, a
// token) could be found again by hashing guesses.
constexpr size_t kDigestMinBytes = 64;
// Decoded guestinfo larger than this is not examined (and so counts as secret).
constexpr size_t kMaxInflated = 8u << 20;

// gunzip with a limit on the output; nullopt when `data` is not a complete
// gzip/zlib stream or inflates beyond the limit.
std::optional<std::string> inflate_bounded(std::string_view data, bool* too_large) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return std::nullopt;
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[16384];
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    int rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) return std::nullopt;
    out.append(buf, sizeof buf - zs.avail_out);
    if (out.size() > kMaxInflated) {
      *too_large = true;
      return std::nullopt;
    }
    if (rc == Z_STREAM_END) return out;
    if (zs.avail_in == 0 && zs.avail_out != 0) return std::nullopt;  // truncated
  }
}

// Does free text (decoded cloud-init metadata, say) name a secret? Its words
// (runs of letters, digits, '_', '-', '.') are checked like keys, so
// "password:" in a netplan document counts; so does a PEM private key.
bool mentions_secret(std::string_view text) {
  if (looks_like_private_key(text)) return true;
  auto word_char = [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == '.';
  };
  for (size_t i = 0; i < text.size();) {
    while (i < text.size() && !word_char(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && word_char(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start && is_secret_key(text.substr(start, i - start))) return true;
  }
  return false;
}

// guestinfo.metadata is kept (host name, instance-id, network, public keys)
// unless what it decodes to names a secret: a netplan "password" (802.1x,
// Wi-Fi), a private key, or anything that cannot be examined.
bool metadata_holds_secret(std::string_view value) {
  std::string decoded;
  try {
    decoded = base64_decode(value);
  } catch (const Error&) {
    return mentions_secret(value);  // not base64: plain text (encoding "none")
  }
  bool too_large = false;
  if (auto inflated = inflate_bounded(decoded, &too_large)) return mentions_secret(*inflated);
  if (too_large) return true;
  return mentions_secret(decoded);
}

// ---- secrets inside XML text (the ConfigSpec of a ReconfigVM_Task, say)

struct XmlElement {
  std::string name;  // without a namespace prefix
  size_t tag_begin = 0;
  size_t content_begin = 0;
  size_t content_end = 0;
  bool empty = true;  // <x/> or <x></x>: nothing to hide
  std::string text;   // character data directly inside
  std::vector<size_t> children;
};

// Parses `text` as an XML fragment (wrapped in one element, so several
// siblings or leading text are fine) and keeps each element's byte range.
class XmlRanges {
 public:
  static constexpr std::string_view kOpen = "<r>";
  static constexpr std::string_view kClose = "</r>";

  bool parse(std::string_view text) {
    doc_ = std::string(kOpen) + std::string(text) + std::string(kClose);
    std::unique_ptr<XML_ParserStruct, decltype(&XML_ParserFree)> parser(XML_ParserCreate("UTF-8"),
                                                                        XML_ParserFree);
    if (!parser) return false;
    parser_ = parser.get();
    XML_SetUserData(parser_, this);
    XML_SetElementHandler(parser_, start, end);
    XML_SetCharacterDataHandler(parser_, chars);
    return XML_Parse(parser_, doc_.data(), static_cast<int>(doc_.size()), 1) == XML_STATUS_OK &&
           !elements_.empty();
  }

  const std::string& doc() const { return doc_; }
  const XmlElement& at(size_t i) const { return elements_[i]; }

 private:
  static void start(void* self, const XML_Char* name, const XML_Char**) {
    auto* x = static_cast<XmlRanges*>(self);
    XmlElement e;
    std::string_view n(name);
    e.name = std::string(n.substr(n.find(':') == std::string_view::npos ? 0 : n.find(':') + 1));
    e.tag_begin = static_cast<size_t>(XML_GetCurrentByteIndex(x->parser_));
    e.content_begin = e.tag_begin + static_cast<size_t>(XML_GetCurrentByteCount(x->parser_));
    size_t index = x->elements_.size();
    if (!x->open_.empty()) x->elements_[x->open_.back()].children.push_back(index);
    x->elements_.push_back(std::move(e));
    x->open_.push_back(index);
  }
  static void end(void* self, const XML_Char*) {
    auto* x = static_cast<XmlRanges*>(self);
    XmlElement& e = x->elements_[x->open_.back()];
    x->open_.pop_back();
    size_t at = static_cast<size_t>(XML_GetCurrentByteIndex(x->parser_));
    e.empty = at == e.tag_begin || at <= e.content_begin;  // <x/> ends where it began
    e.content_end = e.empty ? e.content_begin : at;
  }
  static void chars(void* self, const XML_Char* s, int len) {
    auto* x = static_cast<XmlRanges*>(self);
    x->elements_[x->open_.back()].text.append(s, static_cast<size_t>(len));
  }

  std::string doc_;
  XML_Parser parser_ = nullptr;
  std::vector<XmlElement> elements_;
  std::vector<size_t> open_;
};

struct Replacement {
  size_t begin, end;
  std::string text;
};

void find_xml_secrets(const XmlRanges& x, size_t index, std::vector<Replacement>& out) {
  const XmlElement& e = x.at(index);
  auto hide = [&](const XmlElement& el, std::string_view value) {
    if (!el.empty)
      out.push_back({el.content_begin, el.content_end, xml::escape(redacted_value(value))});
  };
  if (index != 0 && is_secret_key(e.name)) {  // <password>…</password>: all of it
    hide(e, std::string_view(x.doc()).substr(e.content_begin, e.content_end - e.content_begin));
    return;
  }
  // OptionValue, vApp property: <key>guestinfo.userdata</key><value>…</value>
  // (a vApp property has both <key>1</key> and <id>db_password</id>).
  const XmlElement* value = nullptr;
  for (size_t c : e.children)
    if (!value && x.at(c).name == "value") value = &x.at(c);
  bool hide_value = false;
  for (size_t c : e.children) {
    const XmlElement& label = x.at(c);
    if (value && (label.name == "key" || label.name == "id" || label.name == "name") &&
        is_secret_option(label.text, value->text))
      hide_value = true;
  }
  if (hide_value) hide(*value, value->text);
  if (e.children.empty() && looks_like_private_key(e.text)) hide(e, e.text);
  for (size_t c : e.children)
    if (!(hide_value && &x.at(c) == value)) find_xml_secrets(x, c, out);
}

// `text` with the secrets of the XML in it replaced; nullopt when it is not
// well-formed XML.
std::optional<std::string> redact_xml(std::string_view text) {
  XmlRanges x;
  if (!x.parse(text)) return std::nullopt;
  std::vector<Replacement> found;
  find_xml_secrets(x, 0, found);
  std::sort(found.begin(), found.end(),
            [](const Replacement& a, const Replacement& b) { return a.begin > b.begin; });
  std::string doc = x.doc();
  for (const auto& r : found) doc.replace(r.begin, r.end - r.begin, r.text);
  return doc.substr(XmlRanges::kOpen.size(),
                    doc.size() - XmlRanges::kOpen.size() - XmlRanges::kClose.size());
}

// A string value: secrets in the XML it may carry, a PEM private key.
std::string redact_string(const std::string& s) {
  std::string out = s;
  if (s.find('<') != std::string::npos) {
    if (auto x = redact_xml(s)) {
      out = std::move(*x);
    } else if (mentions_secret(s) || ascii_lower(s).find("guestinfo.") != std::string::npos) {
      return redacted_value(s);  // XML-like but unreadable: cannot tell what is inside
    }
  }
  if (looks_like_private_key(out)) return redacted_value(s);
  return out;
}

}  // namespace

std::string_view to_string(AuditResult result) {
  switch (result) {
    case AuditResult::ok:
      return "ok";
    case AuditResult::error:
      return "error";
    case AuditResult::refused:
      return "refused";
  }
  return "error";
}

AuditLog::AuditLog(std::string path) : path_(std::move(path)) {
  if (path_.empty()) usage_error("the audit log path is empty");
}

void AuditLog::check_writable() const { open_log_for_append(path_); }

namespace {

// The log locked for writing, with what its tail and anchor say.
struct LockedLog {
  Fd fd;
  off_t size = 0;
  Tail tail;
  std::string last_hash;  // of the last line (64 zeros for an empty log)
  Fd head;                // -1 when the anchor cannot be opened
  std::string head_text;
  Checkpoint checkpoint;
};

LockedLog lock_log(const std::string& path) {
  LockedLog l;
  l.fd = open_log_for_append(path);
  lock(l.fd.get(), LOCK_EX, path);
  struct stat st {};
  if (::fstat(l.fd.get(), &st) != 0) fail_on("stat", path, errno);
  l.size = st.st_size;
  l.tail = line_ending_at(l.fd.get(), l.size, path);
  l.last_hash = l.size == 0 ? kNoPrevious : sha256_hex(l.tail.line);
  const std::string head_path = path + ".head";
  l.head = Fd(open_private_file(head_path, O_RDWR));
  if (l.head) {
    l.head_text = read_fd_text(l.head.get(), head_path);
    l.checkpoint = parse_checkpoint(l.head_text);
  } else {
    l.checkpoint.state = Checkpoint::State::invalid;
    l.checkpoint.problem = errno_text(errno);
  }
  return l;
}

void write_anchor(LockedLog& l, const std::string& path, off_t size, uint64_t lines,
                  const std::string& sha256) {
  if (!l.head)
    fail("cannot update the audit log's anchor " + quote(path + ".head") + ": " +
         l.checkpoint.problem);
  write_checkpoint(l.head.get(), path + ".head", l.head_text, size, lines, sha256);
}

}  // namespace

std::string AuditLog::append(const AuditRecord& record) {
  auto or_null = [](const std::string& s) { return s.empty() ? ordered_json() : ordered_json(s); };
  ordered_json j = ordered_json::object();
  j["type"] = "audit";
  j["time"] = record.time.empty() ? utc_timestamp(std::chrono::system_clock::now()) : record.time;
  j["user"] = record.user.empty() ? os_user_name() : record.user;
  j["tool"] = record.tool;
  j["endpoint"] = or_null(record.endpoint);
  j["vm"] = or_null(record.vm);
  j["vm_id"] = or_null(record.vm_id);
  j["operation"] = record.operation;
  if (!record.transport.empty()) j["transport"] = record.transport;
  j["params"] = redact(record.params);
  j["result"] = to_string(record.result);
  // A host's fault message may quote what was sent.
  if (record.result != AuditResult::ok) j["error"] = redact(ordered_json(record.error));
  j["duration_ms"] = record.duration_ms;
  j["correlation_id"] = record.correlation_id.empty() ? correlation_id() : record.correlation_id;
  if (!record.promotion.empty()) j["promotion"] = record.promotion;
  j["pid"] = static_cast<int64_t>(record.pid == 0 ? ::getpid() : record.pid);

  // Each append opens its own file description: flock(2) then serializes
  // threads of this process as well as other processes.
  LockedLog l = lock_log(path_);
  const TailProblem problem =
      checkpoint_disagreement(l.checkpoint, l.fd.get(), l.size, l.last_hash, path_);
  // Chain on (a record is never dropped), but say so in the record itself:
  // the chain then shows which records were written onto an unverified tail,
  // and verify can name what the first of them found.
  if (!problem.empty()) j["tail_unverified"] = problem.json();
  j["prev"] = l.last_hash;
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);

  std::string out;
  out.reserve(line.size() + 2);
  // After a torn write (a crash) start on a fresh line; verify reports the fragment.
  if (!l.tail.complete) out += '\n';
  out += line;
  out += '\n';
  ssize_t w;
  do {
    w = ::write(l.fd.get(), out.data(), out.size());  // one write(2): one whole line
  } while (w < 0 && errno == EINTR);
  if (w != static_cast<ssize_t>(out.size())) {
    int err = w < 0 ? errno : ENOSPC;
    if (w > 0 && ::ftruncate(l.fd.get(), l.size) != 0) {
      fail("cannot write audit log " + quote(path_) + ": " + errno_text(err) +
           "; the partial line could not be removed either: " + errno_text(errno));
    }
    fail_on("write audit log", path_, err);
  }

  // An anchor that disagrees stays as it is, as evidence for verify; a
  // missing one is started here (the record says the tail before it was not
  // vouched for).
  if (problem.empty() || l.checkpoint.state == Checkpoint::State::absent) {
    uint64_t lines = lines_in_log(l.checkpoint, l.fd.get(), l.size, l.tail.complete, path_) + 1;
    write_anchor(l, path_, l.size + static_cast<off_t>(out.size()), lines, sha256_hex(line));
  }
  if (problem.empty()) return {};
  return "audit log " + quote(path_) + ": " + problem.text +
         "; the record was appended all the same, marked \"tail_unverified\" (see ceso-audit "
         "verify)";
  // The lock is released when l.fd is closed.
}

AuditLog::AnchorChange AuditLog::anchor_status() const {
  Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) fail_on("open audit log", path_, errno);
  lock(fd.get(), LOCK_SH, path_);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail_on("stat", path_, errno);
  Checkpoint c = read_checkpoint(head_path());
  Tail tail = line_ending_at(fd.get(), st.st_size, path_);
  AnchorChange change;
  change.before = checkpoint_json(c);
  Checkpoint none;  // counted from the start, as reset_anchor does: c may be wrong
  change.after = {{"size", static_cast<uint64_t>(st.st_size)},
                  {"lines", lines_in_log(none, fd.get(), st.st_size, tail.complete, path_)},
                  {"sha256", st.st_size == 0 ? kNoPrevious : sha256_hex(tail.line)}};
  return change;
}

AuditLog::AnchorChange AuditLog::reset_anchor() const {
  // open_log_for_append would create a missing log: a reset names a log that exists.
  if (::access(path_.c_str(), F_OK) != 0) fail_on("open audit log", path_, errno);
  LockedLog l = lock_log(path_);
  AnchorChange change;
  change.before = checkpoint_json(l.checkpoint);
  // Lines are counted from the start: the old anchor is not trusted here.
  Checkpoint none;
  uint64_t lines = lines_in_log(none, l.fd.get(), l.size, l.tail.complete, path_);
  write_anchor(l, path_, l.size, lines, l.last_hash);
  change.after = {
      {"size", static_cast<uint64_t>(l.size)}, {"lines", lines}, {"sha256", l.last_hash}};
  return change;
}

std::string default_audit_log_path() {
  if (const char* p = std::getenv("CESO_AUDIT_LOG"); p && *p) return p;
  // XDG: a relative XDG_STATE_HOME is invalid and ignored.
  if (const char* s = std::getenv("XDG_STATE_HOME"); s && s[0] == '/')
    return std::string(s) + "/ceso/audit.log";
  std::string home;
  if (const char* h = std::getenv("HOME"); h && *h) {
    home = h;
  } else {
    long max = ::sysconf(_SC_GETPW_R_SIZE_MAX);
    std::vector<char> buf(max > 0 ? static_cast<size_t>(max) : 16384);
    struct passwd pw {};
    struct passwd* found = nullptr;
    if (::getpwuid_r(::getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found &&
        found->pw_dir)
      home = found->pw_dir;
  }
  if (home.empty()) fail("cannot place the audit log: set CESO_AUDIT_LOG, XDG_STATE_HOME or HOME");
  return home + "/.local/state/ceso/audit.log";
}

namespace {

// After the first broken link (line k's "prev" is not the hash of line k-1),
// the rest of the log is read to tell what was done there.
struct BreakAnalysis {
  size_t line = 0;     // k
  std::string prev;    // line k's "prev"
  std::string hash_1;  // hash of line k-1
  std::string hash_2;  // hash of line k-2 (64 zeros for k = 2)
  struct Later {
    std::string prev, hash;
  };
  std::vector<Later> later;  // lines k+1 … (at most kMaxLater)
  static constexpr size_t kMaxLater = 1u << 20;
};

// Sets r's kind and problem for the break `b`; `total` lines in the log.
void classify_break(AuditVerification& r, const BreakAnalysis& b, size_t total,
                    const Checkpoint& anchor) {
  const size_t k = b.line;
  auto n = [](size_t i) { return "line " + std::to_string(i); };
  r.ok = false;
  r.bad_line = k;
  for (size_t i = 0; i < b.later.size(); ++i) {
    if (b.later[i].hash == b.prev) {
      r.kind = "reordered";
      r.problem = n(k) + " is out of order: it links to " + n(k + 1 + i) +
                  ", which comes after it (lines were swapped or moved)";
      return;
    }
  }
  if (!b.later.empty() && b.later[0].prev == b.hash_1) {
    r.kind = "inserted";
    r.problem =
        n(k) + " was inserted: it does not link to " + n(k - 1) + ", and " + n(k + 1) + " does";
    return;
  }
  if (b.prev == b.hash_2) {
    r.kind = "inserted";
    r.problem = n(k - 1) + " was inserted (with a recomputed \"prev\"): " + n(k) +
                " links past it to " + (k == 2 ? std::string("the start") : n(k - 2));
    return;
  }
  const std::string base =
      n(k) + "'s \"prev\" is not the SHA-256 of " + n(k - 1) + " nor of any line: ";
  if (anchor.state == Checkpoint::State::valid && anchor.lines) {
    if (total < *anchor.lines) {
      r.kind = "deleted";
      r.problem = base + std::to_string(*anchor.lines - total) + " line(s) were deleted before " +
                  n(k) + " (the log has " + std::to_string(total) + " lines, its anchor records " +
                  std::to_string(*anchor.lines) + ")";
      return;
    }
    if (total == *anchor.lines) {
      r.kind = "edited";
      r.problem = base + n(k - 1) + " was edited (the log still has the " + std::to_string(total) +
                  " lines its anchor records)";
      return;
    }
  }
  r.kind = "changed";
  r.problem = base + n(k - 1) + " was edited, or lines after it were deleted";
}

}  // namespace

AuditVerification verify_audit_log(const std::string& path) {
  AuditVerification r;
  r.last_hash = kNoPrevious;
  const std::string head_path = path + ".head";
  const std::string head = "its anchor " + quote(head_path);
  // Records the first problem; returns false so a check can `return bad(…)`.
  auto bad = [&r](size_t line, std::string kind, std::string text) {
    r.ok = false;
    r.bad_line = line;
    r.kind = std::move(kind);
    r.problem = std::move(text);
    return false;
  };

  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    Checkpoint c = read_checkpoint(head_path);
    if (err == ENOENT && c.state == Checkpoint::State::valid && c.size > 0) {
      bad(0, "missing",
          "the log is missing but " + head + " records " + std::to_string(c.size) +
              " bytes: it was deleted or moved");
      return r;
    }
    fail_on("open audit log", path, err);
  }
  // Under the shared lock no append is half done: take the size and the
  // anchor together. The bytes before `size` never change (append-only),
  // so the reading itself need not hold writers up.
  lock(fd.get(), LOCK_SH, path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail_on("stat", path, errno);
  const off_t size = st.st_size;
  const Checkpoint checkpoint = read_checkpoint(head_path);
  lock(fd.get(), LOCK_UN, path);

  const bool has_checkpoint = checkpoint.state == Checkpoint::State::valid;
  bool checkpoint_seen = has_checkpoint && checkpoint.size == 0 && checkpoint.sha256 == kNoPrevious;
  size_t anchored_lines = 0;
  std::string expected = kNoPrevious, hash_before = kNoPrevious;
  size_t line_no = 0;
  std::optional<BreakAnalysis> broken;
  nlohmann::json first_mark;  // "tail_unverified" of the first record appended onto a break

  // Checks the line that ends (exclusive of its newline) at byte `end`.
  auto check = [&](std::string_view line, bool complete, off_t end) {
    ++line_no;
    const std::string n = "line " + std::to_string(line_no);
    auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
    auto prev = j.is_object() ? j.find("prev") : j.end();
    const bool has_prev = j.is_object() && prev != j.end() && prev->is_string() &&
                          is_sha256_hex(prev->get<std::string>());
    if (broken) {  // reading on only to tell what happened at the break
      if (broken->later.size() < BreakAnalysis::kMaxLater)
        broken->later.push_back({has_prev ? prev->get<std::string>() : "", sha256_hex(line)});
      return true;
    }
    if (!complete)
      return bad(line_no, "incomplete",
                 n + " is incomplete (no newline at the end): a write was cut short, or the log "
                     "was truncated");
    if (j.is_discarded() || !j.is_object())
      return bad(line_no, "not-json", n + " is not a JSON object: it was edited, or added by hand");
    if (!has_prev) return bad(line_no, "edited", n + " has no \"prev\" hash: it was edited");
    if (prev->get<std::string>() != expected) {
      if (line_no == 1)
        return bad(1, "start",
                   "line 1 does not start a chain (its \"prev\" is not 64 zeros): lines were "
                   "removed from the beginning of the log");
      broken = BreakAnalysis{line_no, prev->get<std::string>(), expected, hash_before, {}};
      return true;
    }
    if (auto mark = j.find("tail_unverified"); mark != j.end()) {
      if (r.marked.empty() && mark->is_object()) first_mark = *mark;
      r.marked.push_back(line_no);
    }
    hash_before = expected;
    expected = sha256_hex(line);
    r.lines = line_no;
    r.last_hash = expected;
    if (checkpoint_seen) ++r.unanchored;
    if (has_checkpoint && end == checkpoint.size) {
      if (expected != checkpoint.sha256)
        return bad(0, "rewritten",
                   head + " does not match " + n +
                       ", which ends where it says the log ended: the log was rewritten");
      checkpoint_seen = true;
      anchored_lines = line_no;
    }
    return true;
  };

  std::string pending;  // bytes read but not yet checked: the start of a line
  off_t offset = 0;     // of pending[0] in the file
  std::string buf(1 << 16, '\0');
  for (off_t read_pos = 0; read_pos < size;) {
    size_t want = std::min(static_cast<size_t>(size - read_pos), buf.size());
    read_at(fd.get(), buf.data(), want, read_pos, path);
    read_pos += static_cast<off_t>(want);
    pending.append(buf.data(), want);
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      off_t end = offset + static_cast<off_t>(nl + 1);
      if (!check(std::string_view(pending).substr(start, nl - start), true, end)) return r;
    }
    pending.erase(0, start);
    offset += static_cast<off_t>(start);
    if (pending.size() > kMaxLine) {
      if (broken) break;  // enough to tell what happened at the break
      bad(line_no + 1, "too-long",
          "line " + std::to_string(line_no + 1) + " is too long for an audit record (over " +
              std::to_string(kMaxLine >> 20) + " MiB)");
      return r;
    }
  }
  if (!pending.empty() && !check(pending, false, size)) return r;
  if (broken) {
    classify_break(r, *broken, line_no, checkpoint);
    return r;
  }

  switch (checkpoint.state) {
    case Checkpoint::State::absent:
      break;
    case Checkpoint::State::invalid:
      bad(0, "anchor", "cannot read " + head + ": " + checkpoint.problem);
      break;
    case Checkpoint::State::valid:
      if (checkpoint.size > size)
        bad(0, "truncated",
            "the log has " + std::to_string(size) + " bytes (" + std::to_string(line_no) +
                " lines) but " + head + " records " + std::to_string(checkpoint.size) +
                (checkpoint.lines ? " (" + std::to_string(*checkpoint.lines) + " lines)" : "") +
                ": its tail was truncated, or the log was replaced");
      else if (!checkpoint_seen)
        bad(0, "rewritten",
            head + " does not match the log (no line ends at byte " +
                std::to_string(checkpoint.size) +
                " with the hash it records): the log was "
                "rewritten");
      else if (checkpoint.lines && *checkpoint.lines != anchored_lines)
        bad(0, "rewritten",
            head + " records " + std::to_string(*checkpoint.lines) + " lines up to byte " +
                std::to_string(checkpoint.size) + ", the log has " +
                std::to_string(anchored_lines) + ": the log was rewritten");
      else
        r.checkpoint = true;
      break;
  }
  // Records appended after the break said what they found then: the
  // original break (a cut tail), which later appends may have grown past.
  if (!r.ok && r.bad_line == 0 && !r.marked.empty() && first_mark.is_object()) {
    auto kind = first_mark.find("kind");
    auto text = first_mark.find("problem");
    if (kind != first_mark.end() && kind->is_string() && text != first_mark.end() &&
        text->is_string()) {
      r.kind = kind->get<std::string>();
      r.problem += "; line " + std::to_string(r.marked.front()) +
                   ", the first record appended since, found: " + text->get<std::string>();
    }
  }
  return r;
}

std::string audit_user_name() { return os_user_name(); }

std::string correlation_id() {
  if (const char* env = std::getenv("CESO_CORRELATION_ID"); env && *env) {
    std::string_view id(env);
    bool printable = id.size() <= 128;
    for (unsigned char c : id) printable = printable && c >= 0x20 && c < 0x7f;
    if (!printable)
      usage_error("CESO_CORRELATION_ID must be 1 to 128 printable ASCII characters, not " +
                  quote(id.substr(0, 160)));
    return std::string(id);
  }
  // Every member of a shell pipeline is in the same process group; the group
  // leader's start time tells this group from a later one that reuses its id,
  // and the boot id tells boots apart.
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) std::strcpy(host, "localhost");
  std::string boot = lower_alnum(read_small_file("/proc/sys/kernel/random/boot_id")).substr(0, 8);
  if (boot.empty()) boot = "0";
  pid_t pgid = ::getpgrp();
  // 0: the group leader is outside our pid namespace (a container); this
  // process alone is all we can name.
  if (pgid <= 0) pgid = ::getpid();
  return std::string(host) + ":" + boot + ":" + std::to_string(pgid) + ":" +
         process_start_time(pgid);
}

bool is_secret_key(std::string_view key) {
  // Compared without case and separators: "user-data", "userData" and
  // "guestinfo.userdata" all contain "userdata".
  static constexpr std::string_view kSecretParts[] = {
      "password",   "passwd",     "passphrase",    "pwd",           "secret",      "token",
      "private",    "credential", "authorization", "cookie",        "session",     "userdata",
      "vendordata", "apikey",     "accesskey",     "encryptionkey", "keymaterial",
  };
  std::string k = lower_alnum(key);
  for (auto part : kSecretParts)
    if (k.find(part) != std::string::npos) return true;
  return false;
}

std::string redacted_value(std::string_view secret) {
  if (secret.size() < kDigestMinBytes) return std::string(kRedacted);
  return "[redacted sha256:" + sha256_hex(secret) + " bytes:" + std::to_string(secret.size()) + "]";
}

bool is_secret_option(std::string_view key, std::string_view value) {
  if (is_secret_key(key)) return true;
  if (lower_alnum(key).find("key") != std::string::npos) return true;
  std::string k = ascii_lower(key);
  if (k.rfind("guestinfo.", 0) != 0) return false;
  // Every guestinfo value is the user's data, of unknown nature, except the
  // cloud-init metadata, which ceso writes (host name, network) and checks.
  if (k == "guestinfo.metadata.encoding") return false;
  if (k == "guestinfo.metadata") return metadata_holds_secret(value);
  return true;
}

namespace {

ordered_json hidden(const ordered_json& value) {
  if (value.is_string()) return redacted_value(value.get_ref<const std::string&>());
  return kRedacted;
}

std::string_view text_of(const ordered_json& value) {
  return value.is_string() ? std::string_view(value.get_ref<const std::string&>())
                           : std::string_view();
}

}  // namespace

ordered_json redact(const ordered_json& value) {
  if (value.is_object()) {
    // vSphere option values and vApp properties name the secret in a field
    // and carry it in "value": {"key":"guestinfo.userdata","value":"…"}.
    bool secret_value = false;
    if (auto v = value.find("value"); v != value.end()) {
      for (const char* label : {"key", "name", "id"}) {
        auto it = value.find(label);
        if (it != value.end() && it->is_string() &&
            is_secret_option(it->get_ref<const std::string&>(), text_of(*v)))
          secret_value = true;
      }
    }
    ordered_json out = ordered_json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      const std::string& k = it.key();
      bool secret =
          is_secret_key(k) || (secret_value && k == "value") ||
          (ascii_lower(k).rfind("guestinfo.", 0) == 0 && is_secret_option(k, text_of(it.value())));
      out[k] = secret ? hidden(it.value()) : redact(it.value());
    }
    return out;
  }
  if (value.is_array()) {
    ordered_json out = ordered_json::array();
    for (const auto& v : value) out.push_back(redact(v));
    return out;
  }
  if (value.is_string()) return redact_string(value.get_ref<const std::string&>());
  return value;
}

}  // namespace ceso
