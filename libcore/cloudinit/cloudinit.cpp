#include "cloudinit/cloudinit.hpp"

#include <openssl/rand.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "base/error.hpp"
#include "base/file.hpp"
#include "base/time.hpp"
#include "base/util.hpp"
#include "cloudinit/fields.hpp"

namespace ceso {

// A node of the user's YAML as it will be written: each scalar's text is
// worked out (quoting, escapes) once, when the file is loaded, and not again
// for each of the thousands of specs it is merged into.
struct UserNode {
  enum Kind { null, scalar, map, seq };
  Kind kind = null;
  bool flow = false;     // a collection in flow style: `text` is all of it, on one line
  bool literal = false;  // a scalar written as a literal block of `value`
  std::string value;     // a scalar's value as parsed
  std::string text;      // how it is written (as a key, for a mapping's keys)
  struct Entry;
  std::vector<Entry> entries;   // map
  std::vector<UserNode> items;  // seq
  // A map's value for a scalar key, or nullptr.
  const UserNode* get(std::string_view key) const;
};

struct UserNode::Entry {
  UserNode key, value;
};

const UserNode* UserNode::get(std::string_view key) const {
  for (const auto& e : entries)
    if (e.key.kind == scalar && e.key.value == key) return &e.value;
  return nullptr;
}

struct UserDataFile {
  std::string text;
  bool cloud_config = false;
  UserNode config;  // the #cloud-config mapping; never modified once loaded
};

struct NetworkConfigFile {
  std::string text;
  YAML::Node config;  // the document as written; never modified once loaded
};

namespace {

constexpr size_t kMaxInputFile = 8u << 20;  // larger inputs cannot fit in 64 KiB anyway
constexpr std::string_view kDefaultUser = "ubuntu";
constexpr std::string_view kDefaultSudo = "ALL=(ALL) NOPASSWD:ALL";
constexpr std::string_view kDefaultNicGlob = "en*";

bool is_utf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

bool has_control(std::string_view s, bool allow_newline = false) {
  for (unsigned char c : s) {
    if (c == '\n' && allow_newline) continue;
    if (c == '\t' && allow_newline) continue;
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// ------------------------------------------------------------ local files

struct LocalFile {
  std::string content;
  unsigned mode = 0644;
};

LocalFile read_local_file(const std::string& path) {
  struct stat st {};
  LocalFile f;
  f.content = *read_file(path, {.max_bytes = kMaxInputFile, .exit = Exit::bad_input}, &st);
  f.mode = st.st_mode & 07777;
  return f;
}

// ------------------------------------------------------------ YAML output
//
// yaml-cpp decides quoting by YAML syntax only, and its parser forgets that a
// scalar was quoted: '0644' would come back out as 0644, which cloud-init's
// YAML 1.1 loader reads as the integer 420. So scalars that are strings (tag
// "!": quoted in the user's file, or made by us) are double-quoted whenever
// their plain form could read as a YAML 1.1 number, boolean, null or date.

constexpr size_t kPlainMax = 16;  // longer strings go double-quoted (see put_string)

bool ambiguous_as_plain(std::string_view s) {
  if (s.empty()) return true;
  char c = s.front();
  if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == '~' || c == '=' ||
      c == '<')
    return true;
  static const char* const kWords[] = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"};
  if (s.size() <= 5) {
    std::string l = ascii_lower(s);
    for (const char* w : kWords)
      if (l == w) return true;
  }
  return false;
}

// Characters cloud-init's YAML loader (PyYAML, YAML 1.1) reads as a line
// break although they are not '\n': NEL (U+0085), LS (U+2028), PS (U+2029)
// at s[i], as UTF-8. Written raw in a plain scalar or a literal block they
// would split it; they go double-quoted and escaped.
bool yaml11_break_at(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return k < s.size() ? static_cast<unsigned char>(s[k]) : 0u; };
  return (b(i) == 0xc2 && b(i + 1) == 0x85) ||
         (b(i) == 0xe2 && b(i + 1) == 0x80 && (b(i + 2) == 0xa8 || b(i + 2) == 0xa9));
}

// Literal blocks are written with plain "|", so only texts that survive that
// unchanged go as blocks (a file's content is easier to review so).
bool literal_block_ok(std::string_view s) {
  if (s.size() < 2 || s.back() != '\n' || s[s.size() - 2] == '\n') return false;
  if (s.front() == ' ' || s.front() == '\t' || s.front() == '\n') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f || yaml11_break_at(s, i)) return false;
  }
  return true;
}

// The writer. Documents are written in yaml-cpp's block layout (what
// earlier versions emitted with YAML::Emitter, byte for byte, except that
// characters cloud-init's loader refuses raw or reads as line breaks are now
// escaped), but by a small writer of our own: yaml-cpp's emitter checks every plain scalar with
// several regular expressions per character, which cost more than all the
// other work of a fleet run. Parsing stays with yaml-cpp.
//
// The layout: a mapping's entries and a sequence's items each start a line at
// their indent (two spaces deeper than their parent's); a mapping that is a
// sequence item starts on the dash's line ("- key: v"), a sequence that is a
// sequence item on the next line; an empty block collection as a value goes
// on the next line ("key:\n  []"). Lines are separated, not terminated: a
// literal block ends with its own newline, so the next line leaves a blank
// one, as yaml-cpp does; yaml_done() adds the final newline.

// Where a value starts: the document's start, after "key:", or after "-".
enum class At { top, key, dash };

class YamlOut {
 public:
  // A new line at `indent` (no newline before the document's first line).
  void line(int indent) {
    if (!out_.empty()) out_ += '\n';
    out_.append(size_t(indent), ' ');
  }
  void put(std::string_view s) { out_ += s; }
  void put(char c) { out_ += c; }
  // A one-line value (scalar or flow collection) where `at` says.
  void value(std::string_view text, At at) {
    if (at != At::top) out_ += ' ';
    out_ += text;
  }
  // "|" and the text, every line indented by `indent` (blank lines stay empty).
  void literal(std::string_view text, int indent, At at) {
    out_ += at == At::top ? "|\n" : " |\n";
    bool line_start = true;
    for (char c : text) {
      if (c == '\n') {
        out_ += '\n';
        line_start = true;
        continue;
      }
      if (line_start) out_.append(size_t(indent), ' ');
      line_start = false;
      out_ += c;
    }
  }
  const std::string& text() const { return out_; }

 private:
  std::string out_;
};

std::string yaml_done(const YamlOut& out) { return out.text() + '\n'; }

// The UTF-8 code point at s[i] (advancing i); an invalid byte is returned as
// itself (a negative value), to be escaped.
long next_code_point(std::string_view s, size_t& i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) {
    ++i;
    return -long(c);
  }
  long cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
  for (size_t k = 1; k < n; ++k) {
    unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xc0) != 0x80) {
      ++i;
      return -long(c);
    }
    cp = (cp << 6) | (d & 0x3f);
  }
  i += n;
  return cp;
}

// yaml-cpp's rules for a plain scalar (its IsValidPlainScalar), with the
// regular expressions written out: no "null" look-alike, a safe first
// character, no trailing blank, and nothing inside that ends a plain scalar
// (": ", " #", a line break, a tab, a control character, a byte order mark;
// in flow context also ",?[]{}" and ":" before ",]}"), and besides yaml-cpp's
// rules no NEL, LS or PS, which cloud-init's YAML 1.1 loader reads as breaks.
bool valid_plain(std::string_view s, bool flow) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return false;
  auto blank_or_break = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  auto after = [&](size_t i) { return i + 1 < s.size() ? s[i + 1] : '\0'; };
  char c0 = s[0];
  if (blank_or_break(c0)) return false;
  if (std::string_view(flow ? "?,[]{}#&*!|>'\"%@`" : ",[]{}#&*!|>'\"%@`").find(c0) !=
      std::string_view::npos)
    return false;
  if (std::string_view(flow ? "-:" : "-?:").find(c0) != std::string_view::npos) {
    char n = after(0);
    if (n == '\0' || blank_or_break(n)) return false;
  }
  if (s.back() == ' ') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    // Letters, digits and most punctuation are fine anywhere: skip them.
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '/' || c == '=' || c == '@' || c == '+')
      continue;
    char n = after(i);
    if (c == ':' &&
        (n == '\0' || blank_or_break(n) || (flow && (n == ',' || n == ']' || n == '}'))))
      return false;
    if (flow && std::string_view(",?[]{}").find(char(c)) != std::string_view::npos) return false;
    if (blank_or_break(char(c)) && n == '#') return false;
    if (c == '\n' || c == '\r' || c == '\t' || c < 0x20 || c == 0x7f) return false;
    // C1 control characters, NEL among them, and LS, PS: line breaks to YAML 1.1.
    if (c == 0xc2 && static_cast<unsigned char>(n) >= 0x80 && static_cast<unsigned char>(n) <= 0x9f)
      return false;
    if (yaml11_break_at(s, i)) return false;
    if (c == 0xef && n == '\xbb' && i + 2 < s.size() && s[i + 2] == '\xbf') return false;  // BOM
  }
  return true;
}

// A double-quoted scalar: the usual escapes, \xNN / \uNNNN for control
// characters, DEL, C1, no-break space, the byte order mark, LS, PS and the
// noncharacters U+FFFE/U+FFFF (cloud-init's loader refuses DEL, C1 and those
// raw, and reads NEL, LS and PS as line breaks); other UTF-8 as is.
void put_double_quoted(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < s.size();) {
    // Printable ASCII other than '"' and '\\' goes as it is, a run at a time.
    size_t j = i;
    while (j < s.size() && s[j] >= 0x20 && s[j] < 0x7f && s[j] != '"' && s[j] != '\\') ++j;
    out.append(s.data() + i, j - i);
    i = j;
    if (i == s.size()) break;
    long cp = next_code_point(s, i);
    if (cp < 0) cp = 0xfffd;  // as yaml-cpp: an invalid byte becomes U+FFFD
    switch (cp) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0xa0) || cp == 0xfeff || cp == 0x2028 ||
        cp == 0x2029 || cp == 0xfffe || cp == 0xffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      int digits = cp <= 0xff ? 2 : 4;
      out += digits == 2 ? "\\x" : "\\u";
      for (int d = digits - 1; d >= 0; --d) out += kHex[(cp >> (4 * d)) & 0xf];
      continue;
    }
    // Write the code point back as UTF-8.
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xc0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += char(0xe0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3f));
      out += char(0x80 | (cp & 0x3f));
    } else {
      out += char(0xf0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3f));
      out += char(0x80 | ((cp >> 6) & 0x3f));
      out += char(0x80 | (cp & 0x3f));
    }
  }
  out += '"';
}

// One scalar's text: plain when asked and valid, else double-quoted; `tag`
// (not "?" or "!") goes first as a verbatim tag.
std::string scalar_text(std::string_view v, bool quoted, bool flow, std::string_view tag = {}) {
  std::string t;
  if (!tag.empty()) {
    t += "!<";
    t += tag;
    t += "> ";
  }
  if (!quoted && valid_plain(v, flow))
    t += v;
  else
    put_double_quoted(t, v);
  return t;
}

// A string: of ours, or quoted in the user's file. Long values go
// double-quoted (keys stay plain for the reader); a multi-line text that
// survives it goes as a literal block (a file's content is easier to review
// so), except inside a flow collection.
void put_string(YamlOut& out, std::string_view v, int indent, At at, bool flow) {
  if (!flow && v.find('\n') != std::string_view::npos && literal_block_ok(v))
    out.literal(v, indent, at);
  else
    out.value(scalar_text(v, v.size() > kPlainMax || ambiguous_as_plain(v), flow), at);
}

std::string key_text(std::string_view k, bool flow) {
  return scalar_text(k, ambiguous_as_plain(k), flow);
}

// A scalar of the user's file: a string (tag "!": it was quoted) is written as
// one of ours; a plain scalar stays plain where it can (a long one that YAML
// 1.1 reads as a string goes quoted); other tags are kept.
std::string user_scalar_text(const YAML::Node& n, bool key, bool flow) {
  const std::string& tag = n.Tag();
  const std::string& v = n.Scalar();
  std::string_view verbatim;
  if (!tag.empty() && tag != "?" && tag != "!") verbatim = tag;
  bool quoted = tag == "!" ? ((!key && v.size() > kPlainMax) || ambiguous_as_plain(v))
                           : (!key && v.size() > kPlainMax && !ambiguous_as_plain(v));
  return scalar_text(v, quoted, flow, verbatim);
}

// A flow collection of the user's file, on one line.
void put_flow(std::string& out, const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      out += '{';
      bool first = true;
      for (const auto& kv : n) {
        if (!first) out += ", ";
        first = false;
        if (kv.first.IsScalar())
          out += user_scalar_text(kv.first, true, true);
        else
          put_flow(out, kv.first);
        out += ": ";
        put_flow(out, kv.second);
      }
      out += '}';
      break;
    }
    case YAML::NodeType::Sequence: {
      out += '[';
      bool first = true;
      for (const auto& item : n) {
        if (!first) out += ", ";
        first = false;
        put_flow(out, item);
      }
      out += ']';
      break;
    }
    case YAML::NodeType::Scalar:
      out += user_scalar_text(n, false, true);
      break;
    default:
      out += '~';
      break;
  }
}

// A block collection's members. A mapping's first entry shares the dash's
// line when the mapping is a sequence item; a sequence's items always start
// their own lines. An empty one is written "{}" / "[]" where a value goes.
class Members {
 public:
  Members(YamlOut& out, int indent, At at) : out_(out), indent_(indent), at_(at) {}
  // Positions for the next entry's key, and writes it with its ':'.
  void key(std::string_view text) {
    if (first_ && at_ == At::dash)
      out_.put(' ');
    else
      out_.line(indent_);
    first_ = false;
    out_.put(text);
    out_.put(':');
  }
  // Positions for the next item, and writes its dash.
  void dash() {
    out_.line(indent_);
    first_ = false;
    out_.put('-');
  }
  // For an empty collection: its flow form where the value goes.
  void empty(std::string_view text) {
    if (at_ == At::top || (at_ == At::dash && text == "{}")) {
      out_.value(text, at_);
    } else {
      out_.line(indent_);
      out_.put(text);
    }
  }
  int child() const { return indent_ + 2; }
  bool any() const { return !first_; }

 private:
  YamlOut& out_;
  int indent_;
  At at_;
  bool first_ = true;
};

// The user's node as it will be written; `key`: it is a mapping's key.
UserNode user_node(const YAML::Node& n, bool key = false) {
  UserNode u;
  bool flow_style = n.Style() == YAML::EmitterStyle::Flow;
  switch (n.Type()) {
    case YAML::NodeType::Map:
    case YAML::NodeType::Sequence:
      if (n.IsMap()) {
        u.kind = UserNode::map;
        for (const auto& kv : n)
          u.entries.push_back({user_node(kv.first, true), user_node(kv.second)});
      } else {
        u.kind = UserNode::seq;
        for (const auto& item : n) u.items.push_back(user_node(item));
      }
      // A collection as key is written in flow form (YAML allows it on one line).
      if (flow_style || key) {
        u.flow = true;
        put_flow(u.text, n);
      }
      break;
    case YAML::NodeType::Scalar:
      u.kind = UserNode::scalar;
      u.value = n.Scalar();
      if (key) {
        u.text = user_scalar_text(n, true, false);
      } else if (n.Tag() == "!" && u.value.find('\n') != std::string::npos &&
                 literal_block_ok(u.value)) {
        u.literal = true;
      } else {
        u.text = user_scalar_text(n, false, false);
      }
      break;
    default:
      u.text = "~";
      break;
  }
  return u;
}

void put_user(YamlOut& out, const UserNode& n, int indent, At at) {
  switch (n.kind) {
    case UserNode::map:
    case UserNode::seq: {
      if (n.flow) {
        out.value(n.text, at);
        break;
      }
      Members m(out, indent, at);
      if (n.kind == UserNode::map) {
        for (const auto& e : n.entries) {
          m.key(e.key.text);
          put_user(out, e.value, m.child(), At::key);
        }
        if (!m.any()) m.empty("{}");
      } else {
        for (const auto& item : n.items) {
          m.dash();
          put_user(out, item, m.child(), At::dash);
        }
        if (!m.any()) m.empty("[]");
      }
      break;
    }
    case UserNode::scalar:
      if (n.literal)
        out.literal(n.value, indent, at);
      else
        out.value(n.text, at);
      break;
    case UserNode::null:
      out.value(n.text, at);
      break;
  }
}

void put_user_key(Members& m, const YAML::Node& k) { m.key(user_node(k, true).text); }

void put_node(YamlOut& out, const YAML::Node& n, int indent, At at) {
  put_user(out, user_node(n), indent, at);
}

std::string yaml_text(const YAML::Node& n) {
  YamlOut out;
  put_node(out, n, 0, At::top);
  return yaml_done(out);
}

// The value of `key` in a map, or an invalid node. Never modifies `map`.
YAML::Node lookup(const YAML::Node& map, std::string_view key) {
  if (!map.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  for (const auto& kv : map)
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second;
  return YAML::Node(YAML::NodeType::Undefined);
}

YAML::Node parse_yaml(const std::string& text, std::string_view origin) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    bad_input(std::string(origin) + ": invalid YAML at line " + std::to_string(e.mark.line + 1) +
              ", column " + std::to_string(e.mark.column + 1) + ": " + printable(e.msg));
  }
}

// ------------------------------------------------------------ merging
//
// The user's #cloud-config is merged with ours while it is written out, so
// the cached (shared) YAML tree is only read: their scalars win, maps merge
// key by key, lists concatenate (ours first), and the "users" entry that
// names our user merges with ours (keys lists concatenated).

bool names_user(const UserNode& entry, std::string_view user) {
  if (entry.kind == UserNode::scalar) return entry.value == user;
  if (entry.kind != UserNode::map) return false;
  const UserNode* name = entry.get("name");
  return name && name->kind == UserNode::scalar && name->value == user;
}

// ------------------------------------------------------------ SSH keys

struct SshWire {
  std::string_view data;
  bool string(std::string_view& out) {
    if (data.size() < 4) return false;
    uint32_t len = (uint32_t(uint8_t(data[0])) << 24) | (uint32_t(uint8_t(data[1])) << 16) |
                   (uint32_t(uint8_t(data[2])) << 8) | uint32_t(uint8_t(data[3]));
    if (data.size() - 4 < len) return false;
    out = data.substr(4, len);
    data.remove_prefix(4 + len);
    return true;
  }
};

const char* const kSshKeyTypes[] = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
};

std::string key_label(std::string_view line) {
  std::string s(line.substr(0, 40));
  if (line.size() > 40) s += "...";
  return quote(s);
}

// Checks the decoded key blob for `type`: the fields each key type carries
// (RFC 4253, RFC 5656, OpenSSH PROTOCOL.u2f) and nothing after them.
bool well_formed_key_blob(std::string_view type, std::string_view blob) {
  SshWire w{blob};
  std::string_view f, g;
  if (!w.string(f) || f != type) return false;
  if (type == "ssh-ed25519") {
    if (!w.string(f) || f.size() != 32) return false;
  } else if (type == "sk-ssh-ed25519@openssh.com") {
    if (!w.string(f) || f.size() != 32 || !w.string(g) || g.empty()) return false;
  } else if (type == "ssh-rsa") {
    if (!w.string(f) || f.empty() || !w.string(g)) return false;
    while (!g.empty() && g.front() == '\0') g.remove_prefix(1);
    if (g.size() < 128) return false;  // modulus below 1024 bits: OpenSSH refuses it
  } else {
    bool sk = starts_with(type, "sk-");
    std::string_view curve = type.substr(type.find("nistp"), 8);  // "nistp256", …
    size_t coord = curve == "nistp256" ? 32 : curve == "nistp384" ? 48 : 66;
    if (!w.string(f) || f != curve || !w.string(g) || g.size() != 1 + 2 * coord || g[0] != 4)
      return false;
    if (sk && (!w.string(f) || f.empty())) return false;
  }
  return w.data.empty();
}

// ------------------------------------------------------------ field access

bool is_user_name(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  if (!(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z'))) return false;
  for (char c : s)
    if (!is_lower_alnum(c) && c != '_' && c != '-') return false;
  return true;
}

bool has_glob(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

// Reads typed fields from a record (or from the flags turned into one) and
// names them in messages the way the user wrote them.
class Fields {
 public:
  Fields(const ordered_json& obj, FieldStyle style, std::string prefix = {})
      : obj_(obj), style_(style), prefix_(std::move(prefix)) {}

  std::string label(std::string_view f) const {
    if (style_ == FieldStyle::flag) {
      std::string s = "--" + std::string(f);
      std::replace(s.begin(), s.end(), '_', '-');
      return s;
    }
    // A record's unknown field name is the record's text: keep it one line.
    return "field \"" + printable(prefix_) + printable(f) + "\"";
  }
  [[noreturn]] void error(std::string_view f, const std::string& msg) const {
    bad_input(label(f) + ": " + msg);
  }
  bool has(std::string_view f) const { return obj_.contains(f); }
  const ordered_json* find(std::string_view f) const {
    auto it = obj_.find(f);
    return it == obj_.end() ? nullptr : &*it;
  }
  std::optional<std::string> string(std::string_view f) const {
    const ordered_json* v = find(f);
    if (!v) return std::nullopt;
    if (!v->is_string()) error(f, "must be a string");
    std::string s = v->get<std::string>();
    check_text(f, s);
    return s;
  }
  // A string, or an array of strings (repeatable options).
  std::vector<std::string> strings(std::string_view f) const {
    std::vector<std::string> out;
    const ordered_json* v = find(f);
    if (!v) return out;
    if (v->is_string()) {
      out.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      for (const auto& e : *v) {
        if (!e.is_string()) error(f, "must be an array of strings");
        out.push_back(e.get<std::string>());
      }
    } else {
      error(f, "must be a string or an array of strings");
    }
    for (const auto& s : out) check_text(f, s);
    return out;
  }
  std::optional<bool> boolean(std::string_view f) const {
    const ordered_json* v = find(f);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) error(f, "must be true or false");
    return v->get<bool>();
  }
  // Runs fn; a bad_input error from it is reported as this field's.
  template <class Fn>
  auto guard(std::string_view f, Fn&& fn) const -> decltype(fn()) {
    try {
      return fn();
    } catch (const Error& e) {
      if (e.code() != Exit::bad_input) throw;
      error(f, e.what());
    }
  }
  const ordered_json& object() const { return obj_; }
  FieldStyle style() const { return style_; }

 private:
  void check_text(std::string_view f, const std::string& s) const {
    if (!is_utf8(s)) error(f, "is not valid UTF-8 text");
  }
  const ordered_json& obj_;
  FieldStyle style_;
  std::string prefix_;
};

// Field lists derived from the one table (cloudinit/fields.hpp), in its order.
std::vector<std::string_view> fields_where(bool (*pred)(const CloudInitField&)) {
  std::vector<std::string_view> out;
  for (const auto& f : cloudinit_fields())
    if (pred(f)) out.push_back(f.field);
  return out;
}
const std::vector<std::string_view> kSpecFields =
    fields_where([](const CloudInitField&) { return true; });
const std::vector<std::string_view> kNicFields =
    fields_where([](const CloudInitField& f) { return f.nic != NicScope::none; });
// NIC fields that describe one NIC; the others (dns, search, mtu) may also be
// defaults for every NIC in "nics".
const std::vector<std::string_view> kNicOwnFields =
    fields_where([](const CloudInitField& f) { return f.nic == NicScope::own; });
const std::vector<std::string_view> kNicSharedFields =
    fields_where([](const CloudInitField& f) { return f.nic == NicScope::shared; });
// Fields rendered into the generated #cloud-config: user-data passed through
// as is cannot carry them.
const std::vector<std::string_view> kCloudConfigFields =
    fields_where([](const CloudInitField& f) { return f.cloud_config; });

bool contains(const std::vector<std::string_view>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// The netplan id (and set-name) of each NIC.
struct NicIdentity {
  std::string id;
  std::string set_name;    // with mac
  std::string match_name;  // a glob
};

NicIdentity nic_identity(const NicSpec& nic, size_t index) {
  NicIdentity r;
  if (!nic.mac.empty()) {
    r.id = nic.name.empty() ? "eth" + std::to_string(index) : nic.name;
    r.set_name = r.id;
  } else if (!nic.name.empty() && !has_glob(nic.name)) {
    r.id = nic.name;
  } else {
    r.id = "nic" + std::to_string(index);
    r.match_name = nic.name.empty() ? std::string(kDefaultNicGlob) : nic.name;
  }
  return r;
}

bool reachable(const NicSpec& nic, const IpAddress& via) {
  if (via.v6 && via.is_link_local()) return true;
  for (const auto& p : nic.addresses)
    if (p.contains(via)) return true;
  return false;
}

std::string subnets_of(const NicSpec& nic, bool v6) {
  std::string s;
  for (const auto& p : nic.addresses) {
    if (p.address.v6 != v6) continue;
    if (!s.empty()) s += ", ";
    s += p.network().text() + "/" + std::to_string(p.length);
  }
  return s;
}

void check_reachable(const Fields& fs, std::string_view field, const NicSpec& nic,
                     const IpAddress& via) {
  if (reachable(nic, via)) return;
  std::string subnets = subnets_of(nic, via.v6);
  if (subnets.empty())
    fs.error(field, quote(via.text()) + " is outside every subnet: the NIC has no static " +
                        (via.v6 ? "IPv6" : "IPv4") + " address");
  fs.error(field, quote(via.text()) + " is outside every subnet of the NIC (" + subnets + ")");
}

int parse_mtu(const Fields& fs, const ordered_json& v) {
  long n = -1;
  if (v.is_number_integer()) {
    n = v.get<long>();
  } else if (v.is_string()) {
    std::string s = v.get<std::string>();
    bool digits = !s.empty() && s.size() < 7 &&
                  std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) n = std::stol(s);
  }
  if (n < 68 || n > 65535) fs.error("mtu", "must be a whole number from 68 to 65535");
  return static_cast<int>(n);
}

RouteSpec parse_route_parts(const Fields& fs, std::string_view to, std::string_view via) {
  RouteSpec r;
  r.via = fs.guard("route", [&] { return parse_ip_address(via); });
  if (to != "default") {
    IpPrefix p = fs.guard("route", [&] { return parse_ip_prefix(to); });
    if (!p.is_network())
      fs.error("route", quote(to) + " has host bits set (did you mean " + p.network().text() + "/" +
                            std::to_string(p.length) + "?)");
    if (p.address.v6 != r.via.v6)
      fs.error("route", "destination " + quote(to) + " and gateway " + quote(via) +
                            " are not the same IP version");
    if (p.length != 0) r.to = p;
  }
  return r;
}

std::vector<RouteSpec> parse_routes(const Fields& fs) {
  std::vector<RouteSpec> routes;
  const ordered_json* v = fs.find("route");
  if (!v) return routes;
  std::vector<ordered_json> items;
  if (v->is_array())
    items.assign(v->begin(), v->end());
  else
    items.push_back(*v);
  for (const auto& item : items) {
    if (item.is_string()) {
      std::string s = item.get<std::string>();
      size_t eq = s.find('=');
      if (eq == std::string::npos)
        fs.error("route", quote(s) + " is not DEST=VIA (e.g. 192.168.0.0/16=10.0.0.254)");
      routes.push_back(parse_route_parts(fs, std::string_view(s).substr(0, eq),
                                         std::string_view(s).substr(eq + 1)));
    } else if (item.is_object()) {
      for (const auto& [k, _] : item.items())
        if (k != "to" && k != "via") fs.error("route", "unknown key \"" + k + "\" (use to, via)");
      auto to = item.find("to");
      auto via = item.find("via");
      if (to == item.end() || via == item.end() || !to->is_string() || !via->is_string())
        fs.error("route", "a route object needs string \"to\" and \"via\"");
      routes.push_back(parse_route_parts(fs, to->get<std::string>(), via->get<std::string>()));
    } else {
      fs.error("route", "must be DEST=VIA strings or {\"to\":…,\"via\":…} objects");
    }
  }
  return routes;
}

// Parses one NIC. `shared` holds the record's top-level fields, which give
// dns/search/mtu defaults to NICs in "nics" (null for the top-level NIC).
NicSpec parse_nic(const Fields& fs, const Fields* shared, bool complete) {
  NicSpec nic;
  if (auto v = fs.string("nic")) {
    if (v->empty() || v->size() > 15 || v->find_first_of("/: \t") != std::string::npos ||
        has_control(*v))
      fs.error("nic", quote(*v) + " is not an interface name or glob (1-15 characters)");
    nic.name = *v;
  }
  if (auto v = fs.string("mac")) {
    nic.mac = fs.guard("mac", [&] { return normalize_mac(*v); });
    if (has_glob(nic.name))
      fs.error("nic", quote(nic.name) +
                          " is a glob; with a MAC address it must be the name to "
                          "give the NIC (set-name)");
  }
  for (const auto& s : fs.strings("ip")) {
    IpPrefix p = fs.guard("ip", [&] { return parse_ip_prefix(s); });
    const IpAddress& a = p.address;
    if (a.is_unspecified() || a.is_loopback() || a.is_multicast())
      fs.error("ip", quote(s) + " cannot be an interface address");
    if (p.length == 0) fs.error("ip", quote(s) + ": a prefix length of 0 is not a subnet");
    if (!a.v6 && p.length < 31 && p.is_network())
      fs.error("ip", quote(s) + " is the subnet's network address, not a host address");
    if (p.is_broadcast()) fs.error("ip", quote(s) + " is the subnet's broadcast address");
    for (const auto& q : nic.addresses)
      if (q.address == a) fs.error("ip", "address " + quote(a.text()) + " is given twice");
    nic.addresses.push_back(p);
  }
  if (auto v = fs.string("gateway")) {
    IpAddress g = fs.guard("gateway", [&] { return parse_ip_address(*v); });
    if (g.v6) fs.error("gateway", quote(*v) + " is IPv6; give it as gateway6");
    nic.gateway4 = g;
  }
  if (auto v = fs.string("gateway6")) {
    IpAddress g = fs.guard("gateway6", [&] { return parse_ip_address(*v); });
    if (!g.v6) fs.error("gateway6", quote(*v) + " is IPv4; give it as gateway");
    nic.gateway6 = g;
  }
  const Fields& dns_fields = fs.has("dns") || !shared ? fs : *shared;
  for (const auto& s : dns_fields.strings("dns"))
    nic.dns.push_back(dns_fields.guard("dns", [&] { return parse_ip_address(s); }));
  const Fields& search_fields = fs.has("search") || !shared ? fs : *shared;
  for (const auto& s : search_fields.strings("search")) {
    if (!is_domain_name(s)) search_fields.error("search", quote(s) + " is not a domain name");
    nic.search.push_back(s);
  }
  const Fields& mtu_fields = fs.has("mtu") || !shared ? fs : *shared;
  if (const ordered_json* v = mtu_fields.find("mtu")) nic.mtu = parse_mtu(mtu_fields, *v);
  nic.routes = parse_routes(fs);
  if (const ordered_json* v = fs.find("dhcp")) {
    std::string mode;
    if (v->is_boolean())
      mode = v->get<bool>() ? "v4" : "";
    else if (v->is_string())
      mode = v->get<std::string>();
    else
      fs.error("dhcp", "must be \"v4\", \"v6\" or \"both\"");
    if (!mode.empty() && mode != "v4" && mode != "v6" && mode != "both")
      fs.error("dhcp", quote(mode) + " is not v4, v6 or both");
    nic.dhcp4 = mode == "v4" || mode == "both";
    nic.dhcp6 = mode == "v6" || mode == "both";
  }
  if (!complete) return nic;

  // Cross-field checks, once the spec is whole.
  if (nic.gateway4) check_reachable(fs, "gateway", nic, *nic.gateway4);
  if (nic.gateway6) check_reachable(fs, "gateway6", nic, *nic.gateway6);
  bool default4 = nic.gateway4.has_value(), default6 = nic.gateway6.has_value();
  for (const auto& r : nic.routes) {
    check_reachable(fs, "route", nic, r.via);
    if (!r.to) {
      bool& seen = r.via.v6 ? default6 : default4;
      if (seen)
        fs.error("route", std::string("a second default ") + (r.via.v6 ? "IPv6" : "IPv4") +
                              " route (" + quote(r.via.text()) + ")");
      seen = true;
    }
  }
  // A NIC with neither addresses nor DHCP would come up unconfigured.
  if (nic.addresses.empty() && !nic.dhcp4 && !nic.dhcp6) nic.dhcp4 = true;
  return nic;
}

std::vector<std::string> split_groups(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string g = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    g.erase(0, g.find_first_not_of(' '));
    g.erase(g.find_last_not_of(' ') + 1);
    out.push_back(g);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

bool is_crypt_hash(std::string_view s) {
  if (s.size() < 13 || s.front() != '$' || std::count(s.begin(), s.end(), '$') < 3) return false;
  for (char c : s)
    if (!is_lower_alnum(c) && !(c >= 'A' && c <= 'Z') && c != '.' && c != '/' && c != '$' &&
        c != '=' && c != ',' && c != '-')
      return false;
  return true;
}

bool is_safe_token(std::string_view s, std::string_view extra) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_lower_alnum(c) && !(c >= 'A' && c <= 'Z') && extra.find(c) == std::string_view::npos)
      return false;
  return true;
}

}  // namespace

// ================================================================ public API

// ---------------------------------------------------------------- quoting

std::string vmx_quote(std::string_view value) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out = "\"";
  out.reserve(value.size() + 2);
  for (unsigned char c : value) {
    if (c == '"' || c == '|' || c == 0x7f || (c < 0x20 && c != '\t')) {
      out += '|';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

std::string shell_quote(std::string_view s) {
  bool safe = !s.empty();
  for (char c : s)
    if (!is_lower_alnum(c) && !(c >= 'A' && c <= 'Z') &&
        std::string_view("_@%+=:,./-").find(c) == std::string_view::npos)
      safe = false;
  if (safe) return std::string(s);
  return sh_single_quote(s);
}

// ---------------------------------------------------------------- SSH keys

void check_ssh_public_key(std::string_view line) {
  if (line.find_first_of("\r\n") != std::string_view::npos)
    bad_input("an SSH public key must be one line");
  if (starts_with(line, "-----BEGIN"))
    bad_input(key_label(line) +
              " is a private key or a PEM file, not an OpenSSH public key "
              "(give the .pub file)");
  size_t sp = line.find_first_of(" \t");
  std::string_view type = line.substr(0, sp);
  bool known = false;
  for (const char* t : kSshKeyTypes) known = known || type == t;
  if (!known)
    bad_input(key_label(line) +
              " does not start with an SSH key type (ssh-ed25519, ssh-rsa, "
              "ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com, "
              "sk-ecdsa-sha2-nistp256@openssh.com)");
  std::string_view rest = sp == std::string_view::npos ? std::string_view{} : line.substr(sp);
  size_t b = rest.find_first_not_of(" \t");
  if (b == std::string_view::npos) bad_input(key_label(line) + " has no key data after the type");
  rest = rest.substr(b);
  std::string_view blob = rest.substr(0, rest.find_first_of(" \t"));
  std::string decoded;
  try {
    decoded = base64_decode(blob);
  } catch (const Error&) {
    bad_input(key_label(line) + ": the key data is not valid base64");
  }
  SshWire w{decoded};
  std::string_view inner;
  if (!w.string(inner)) bad_input(key_label(line) + ": the key data is not an SSH key");
  if (inner != type)
    bad_input(key_label(line) + ": the key data is a " + quote(inner) + " key, not " + quote(type));
  if (!well_formed_key_blob(type, decoded))
    bad_input(key_label(line) + ": the key data is not a well-formed " + std::string(type) +
              " key");
}

std::vector<std::string> ssh_keys_from_text(std::string_view text, std::string_view origin) {
  std::vector<std::string> keys;
  size_t start = 0, line_no = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string_view line =
        text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    start = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    while (!line.empty() && is_space(line.back())) line.remove_suffix(1);
    while (!line.empty() && is_space(line.front())) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    try {
      check_ssh_public_key(line);
    } catch (const Error& e) {
      bad_input(std::string(origin) + " line " + std::to_string(line_no) + ": " + e.what());
    }
    keys.emplace_back(line);
  }
  if (keys.empty()) bad_input(std::string(origin) + " has no SSH public key");
  return keys;
}

// ---------------------------------------------------------------- user files

std::shared_ptr<const UserDataFile> load_user_data(std::string text, std::string_view origin) {
  auto u = std::make_shared<UserDataFile>();
  // cloud-init's own recognition: gzip, MIME (a MIME-Version header in the
  // first 4 KiB), then the longest matching "#…" type prefix.
  bool gzip = text.size() >= 2 && uint8_t(text[0]) == 0x1f && uint8_t(text[1]) == 0x8b;
  bool mime = ascii_lower(std::string_view(text).substr(0, 4096)).find("mime-version:") !=
              std::string::npos;
  static const char* const kPassThrough[] = {"#cloud-config-archive",
                                             "#cloud-config-jsonp",
                                             "## template: jinja",
                                             "#include-once",
                                             "#include",
                                             "#part-handler",
                                             "#cloud-boothook",
                                             "#upstart-job",
                                             "#!"};
  bool other = false;
  for (const char* p : kPassThrough) other = other || starts_with(text, p);
  if (gzip || mime || other) {
    u->text = std::move(text);
    return u;
  }
  if (!starts_with(text, "#cloud-config"))
    bad_input(std::string(origin) +
              " does not start with #cloud-config, #! or another cloud-init user-data header "
              "(or a MIME-Version header for multipart)");
  YAML::Node config = parse_yaml(text, origin);
  if (config.IsNull() || !config.IsDefined()) config = YAML::Node(YAML::NodeType::Map);
  if (!config.IsMap())
    bad_input(std::string(origin) + ": a #cloud-config document must be a mapping");
  if (lookup(config, "network").IsDefined())
    bad_input(std::string(origin) +
              ": cloud-init ignores \"network\" in user-data; give it as network_config "
              "(--network-config)");
  u->cloud_config = true;
  u->config = user_node(config);
  u->text = std::move(text);
  return u;
}

std::shared_ptr<const NetworkConfigFile> load_network_config(std::string text,
                                                             std::string_view origin) {
  auto n = std::make_shared<NetworkConfigFile>();
  n->config = parse_yaml(text, origin);
  if (!n->config.IsMap()) bad_input(std::string(origin) + ": network config must be a mapping");
  YAML::Node body = n->config;
  if (YAML::Node inner = lookup(body, "network"); inner.IsDefined() && inner.IsMap()) body = inner;
  YAML::Node version = lookup(body, "version");
  if (!version.IsDefined() || !version.IsScalar() ||
      (version.Scalar() != "1" && version.Scalar() != "2"))
    bad_input(std::string(origin) + ": network config needs \"version: 2\" (netplan) or 1");
  n->text = std::move(text);
  return n;
}

// ---------------------------------------------------------------- spec records

std::string new_instance_id(std::string_view hostname) {
  // Random bytes are drawn 4 KiB at a time: one RAND_bytes call per id
  // costs more than the rest of the id.
  static thread_local unsigned char pool[4096];
  static thread_local size_t used = sizeof pool;
  if (used + 6 > sizeof pool) {
    if (RAND_bytes(pool, sizeof pool) != 1) fail("cannot get random bytes (OpenSSL RAND_bytes)");
    used = 0;
  }
  const unsigned char* rnd = pool + used;
  used += 6;
  return std::string(hostname) + "-" + format_utc_compact(unix_now()) + "-" + hex_encode(rnd, 6);
}

const std::vector<std::string_view>& spec_field_names() { return kSpecFields; }
const std::vector<std::string_view>& nic_field_names() { return kNicFields; }

struct SpecReader::Impl {
  std::map<std::string, std::shared_ptr<const UserDataFile>, std::less<>> user_data;
  std::map<std::string, std::shared_ptr<const NetworkConfigFile>, std::less<>> network_configs;
  std::map<std::string, std::vector<std::string>, std::less<>> key_files;
  std::map<std::string, std::shared_ptr<const LocalFile>, std::less<>> local_files;

  CloudInitSpec parse(const ordered_json& fields, FieldStyle style, bool complete);
  void parse_network(const Fields& fs, CloudInitSpec& spec, bool complete);
  void parse_user(const Fields& fs, CloudInitSpec& spec);
  void parse_system(const Fields& fs, CloudInitSpec& spec);
};

void SpecReader::Impl::parse_network(const Fields& fs, CloudInitSpec& spec, bool complete) {
  std::string_view own_field, shared_field;
  for (auto f : kNicOwnFields)
    if (own_field.empty() && fs.has(f)) own_field = f;
  for (auto f : kNicSharedFields)
    if (shared_field.empty() && fs.has(f)) shared_field = f;
  bool has_nics = fs.has("nics");

  if (auto path = fs.string("network_config")) {
    if (has_nics) fs.error("nics", "cannot be combined with network_config (used as is)");
    if (!own_field.empty() || !shared_field.empty())
      fs.error(own_field.empty() ? shared_field : own_field,
               "cannot be combined with network_config (used as is)");
    auto it = network_configs.find(*path);
    if (it == network_configs.end()) {
      auto loaded = fs.guard("network_config", [&] {
        return load_network_config(read_local_file(*path).content, quote(*path));
      });
      it = network_configs.emplace(*path, loaded).first;
    }
    spec.network_config = it->second;
    return;
  }
  if (has_nics) {
    if (!own_field.empty())
      fs.error(own_field, "cannot be combined with \"nics\" (give it inside each NIC)");
    const ordered_json& list = *fs.find("nics");
    if (!list.is_array() || list.empty()) fs.error("nics", "must be a non-empty array of objects");
    for (size_t i = 0; i < list.size(); ++i) {
      std::string prefix = "nics[" + std::to_string(i) + "].";
      if (!list[i].is_object())
        fs.error("nics", "entry " + std::to_string(i) + " is not an object");
      Fields nf(list[i], fs.style(), prefix);
      for (const auto& [k, _] : list[i].items())
        if (!contains(kNicFields, k)) nf.error(k, "unknown field");
      spec.nics.push_back(parse_nic(nf, &fs, complete));
    }
  } else if (!own_field.empty() || !shared_field.empty()) {
    spec.nics.push_back(parse_nic(fs, nullptr, complete));
  }
  if (!complete || spec.nics.size() < 2) return;
  std::vector<std::string> ids;
  for (size_t i = 0; i < spec.nics.size(); ++i) {
    const NicSpec& nic = spec.nics[i];
    if (nic.mac.empty() && nic.name.empty())
      fs.error("nics", "NIC " + std::to_string(i) +
                           " needs \"mac\" or \"nic\": with several NICs a default name glob "
                           "would match them all");
    std::string id = nic_identity(nic, i).id;
    if (std::find(ids.begin(), ids.end(), id) != ids.end())
      fs.error("nics", "two NICs are named " + quote(id));
    ids.push_back(id);
  }
}

void SpecReader::Impl::parse_user(const Fields& fs, CloudInitSpec& spec) {
  UserSpec& u = spec.user;
  if (auto v = fs.string("user")) {
    if (!is_user_name(*v))
      fs.error("user", quote(*v) + " is not a user name (lower-case letters, digits, '_', '-')");
    u.name = *v;
  }
  for (const auto& k : fs.strings("ssh_key")) {
    fs.guard("ssh_key", [&] { check_ssh_public_key(k); });
    u.ssh_keys.push_back(k);
  }
  for (const auto& path : fs.strings("ssh_key_file")) {
    auto it = key_files.find(path);
    if (it == key_files.end()) {
      auto keys = fs.guard("ssh_key_file", [&] {
        return ssh_keys_from_text(read_local_file(path).content, quote(path));
      });
      it = key_files.emplace(path, std::move(keys)).first;
    }
    u.ssh_keys.insert(u.ssh_keys.end(), it->second.begin(), it->second.end());
  }
  if (auto v = fs.string("password_hash")) {
    if (!is_crypt_hash(*v))
      fs.error("password_hash",
               "is not a crypt(3) hash (make one with: mkpasswd --method=SHA-512)");
    u.password_hash = *v;
  }
  if (const ordered_json* v = fs.find("sudo")) {
    if (v->is_boolean()) {
      u.sudo = v->get<bool>() ? std::string(kDefaultSudo) : "";
    } else if (v->is_string()) {
      u.sudo = *fs.string("sudo");
      if (u.sudo.empty() || has_control(u.sudo))
        fs.error("sudo", "must be a one-line sudoers rule");
    } else {
      fs.error("sudo", "must be true, false or a sudoers rule");
    }
  }
  if (fs.has("groups")) {
    std::vector<std::string> groups;
    if (fs.find("groups")->is_string())
      groups = split_groups(*fs.string("groups"));
    else
      groups = fs.strings("groups");
    for (const auto& g : groups)
      if (!is_user_name(g)) fs.error("groups", quote(g) + " is not a group name");
    u.groups = groups;
  }
  if (auto v = fs.string("shell")) {
    if (v->empty() || v->front() != '/' || v->find_first_of(" \t") != std::string::npos ||
        has_control(*v))
      fs.error("shell", quote(*v) + " is not an absolute path");
    u.shell = *v;
  }
}

void SpecReader::Impl::parse_system(const Fields& fs, CloudInitSpec& spec) {
  for (const auto& p : fs.strings("package")) {
    if (p.empty() || p.front() == '-' || p.find_first_of(" \t") != std::string::npos ||
        has_control(p))
      fs.error("package", quote(p) + " is not a package name");
    spec.packages.push_back(p);
  }
  for (const auto& c : fs.strings("runcmd")) {
    if (c.find_first_not_of(" \t\n") == std::string::npos) fs.error("runcmd", "empty command");
    spec.runcmd.push_back(c);
  }
  for (const auto& w : fs.strings("write_file")) {
    size_t eq = w.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == w.size())
      fs.error("write_file", quote(w) + " is not PATH=LOCALFILE");
    WriteFileSpec f;
    f.path = w.substr(0, eq);
    if (f.path.front() != '/' || f.path.back() == '/' || has_control(f.path))
      fs.error("write_file", quote(f.path) + " is not an absolute file path in the VM");
    std::string local = w.substr(eq + 1);
    auto it = local_files.find(local);
    if (it == local_files.end()) {
      auto file = fs.guard("write_file", [&] { return read_local_file(local); });
      it = local_files.emplace(local, std::make_shared<const LocalFile>(std::move(file))).first;
    }
    f.content = it->second->content;
    f.mode = it->second->mode;
    spec.write_files.push_back(std::move(f));
  }
  if (auto v = fs.string("timezone")) {
    if (!is_safe_token(*v, "_+-/") || v->front() == '/' || v->find("..") != std::string::npos)
      fs.error("timezone", quote(*v) + " is not a time zone name (e.g. Europe/Paris)");
    spec.timezone = *v;
  }
  if (auto v = fs.string("locale")) {
    if (!is_safe_token(*v, "_.@-"))
      fs.error("locale", quote(*v) + " is not a locale name (e.g. en_US.UTF-8)");
    spec.locale = *v;
  }
}

CloudInitSpec SpecReader::Impl::parse(const ordered_json& fields, FieldStyle style, bool complete) {
  if (!fields.is_object()) bad_input("a spec must be a JSON object");
  Fields fs(fields, style);
  CloudInitSpec spec;
  for (const auto& [k, v] : fields.items()) {
    if (k == "type") {
      if (!v.is_string() || v.get<std::string>() != "spec")
        bad_input("cannot use a record of type " +
                  (v.is_string() ? quote(v.get<std::string>()) : std::string("(not a string)")) +
                  " (expected \"spec\")");
      continue;
    }
    if (!contains(kSpecFields, k)) fs.error(k, "unknown field");
  }

  // Identity.
  if (auto v = fs.string("hostname")) {
    if (!is_host_label(*v)) {
      if (is_domain_name(*v))
        fs.error("hostname", quote(*v) +
                                 " is not a single RFC 1123 label; give the dotted name "
                                 "as fqdn");
      fs.error("hostname", quote(*v) +
                               " is not an RFC 1123 host name (letters, digits and '-', "
                               "1-63 characters, no '-' at either end)");
    }
    spec.hostname = *v;
  }
  if (auto v = fs.string("fqdn")) {
    if (!is_domain_name(*v) || v->find('.') == std::string::npos)
      fs.error("fqdn", quote(*v) + " is not a fully qualified RFC 1123 domain name");
    spec.fqdn = *v;
    if (spec.hostname.empty()) spec.hostname = v->substr(0, v->find('.'));
  }
  if (complete && spec.hostname.empty())
    bad_input(fs.label("hostname") + " is required (or " + fs.label("fqdn") + ")");
  if (auto v = fs.string("instance_id")) {
    if (v->empty() || v->size() > 255 || *v == "." || *v == ".." ||
        v->find_first_of("/ \t") != std::string::npos || has_control(*v))
      fs.error("instance_id", quote(*v) +
                                  " cannot be an instance-id (cloud-init uses it as a directory "
                                  "name: no '/', spaces or control characters)");
    spec.instance_id = *v;
  }
  if (auto v = fs.string("name")) {
    if (v->empty() || has_control(*v)) fs.error("name", "must be a non-empty one-line name");
    spec.name = *v;
  }
  if (spec.name.empty()) spec.name = spec.hostname;

  parse_network(fs, spec, complete);
  parse_user(fs, spec);
  parse_system(fs, spec);

  if (auto v = fs.boolean("cleanup")) spec.cleanup = *v;
  if (auto path = fs.string("user_data")) {
    auto it = user_data.find(*path);
    if (it == user_data.end()) {
      auto loaded = fs.guard("user_data", [&] {
        return load_user_data(read_local_file(*path).content, quote(*path));
      });
      it = user_data.emplace(*path, loaded).first;
    }
    spec.user_data = it->second;
    if (!spec.user_data->cloud_config) {
      // Passed through as is: nothing generated may be lost silently.
      for (auto f : kCloudConfigFields)
        if (fs.has(f))
          fs.error("user_data", quote(*path) +
                                    " is not #cloud-config, so it is passed through as is and "
                                    "cannot be combined with " +
                                    fs.label(f));
    }
  }
  if (complete && spec.instance_id.empty()) spec.instance_id = new_instance_id(spec.hostname);
  return spec;
}

SpecReader::SpecReader() : impl_(std::make_unique<Impl>()) {}
SpecReader::~SpecReader() = default;

CloudInitSpec SpecReader::read(const ordered_json& fields, FieldStyle style) {
  return impl_->parse(fields, style, true);
}

void SpecReader::check(const ordered_json& fields, FieldStyle style) {
  impl_->parse(fields, style, false);
}

ordered_json merge_spec_fields(const ordered_json& defaults, const ordered_json& record) {
  ordered_json merged = defaults.is_object() ? defaults : ordered_json::object();
  auto drop = [&](std::string_view f) { merged.erase(std::string(f)); };
  bool own_network = record.contains("nics") || record.contains("network_config");
  bool top_nic = false;
  for (auto f : kNicOwnFields) top_nic = top_nic || record.contains(f);
  if (own_network) {
    for (auto f : kNicOwnFields) drop(f);
    drop("nics");
    drop("network_config");
    if (record.contains("network_config"))
      for (auto f : kNicSharedFields) drop(f);
  } else if (top_nic) {
    drop("nics");
    drop("network_config");
  }
  for (const auto& [k, v] : record.items()) merged[k] = v;
  return merged;
}

// ---------------------------------------------------------------- guestinfo

std::string_view encoding_name(GuestInfoEncoding e) {
  switch (e) {
    case GuestInfoEncoding::gzip_base64:
      return "gzip+base64";
    case GuestInfoEncoding::base64:
      return "base64";
    case GuestInfoEncoding::none:
      return "none";
  }
  return "none";
}

std::optional<GuestInfoEncoding> parse_encoding(std::string_view name) {
  if (name == "gzip+base64" || name == "gz+b64") return GuestInfoEncoding::gzip_base64;
  if (name == "base64" || name == "b64") return GuestInfoEncoding::base64;
  if (name == "none") return GuestInfoEncoding::none;
  return std::nullopt;
}

const std::string* GuestInfo::find(std::string_view key) const {
  for (const auto& [k, v] : values)
    if (k == key) return &v;
  return nullptr;
}

namespace {

// The documents we generate, as a small tree for the YAML writer.
// (YAML::Node would do, but building and freeing its shared nodes costs more
// than writing the text.)
struct Gen {
  enum Kind { string, boolean, integer, list, map };
  Kind kind = map;
  std::string text;
  bool flag = false;
  long number = 0;
  std::vector<Gen> items;
  // Not std::pair<std::string, Gen>: a pair needs Gen complete, which it is
  // not inside its own definition (g++ lets it pass, clang++ refuses).
  struct Entry;
  std::vector<Entry> entries;

  static Gen str(std::string_view s);
  static Gen yes_no(bool b);
  static Gen whole(long n);
  static Gen strs(const std::vector<std::string>& v);
  Gen& add(std::string key, Gen v);
  const Gen* get(std::string_view key) const;
};

struct Gen::Entry {
  std::string first;
  Gen second;
};

// Defined after Entry: making a Gen needs Entry complete.
Gen Gen::str(std::string_view s) {
  Gen g;
  g.kind = string;
  g.text = s;
  return g;
}

Gen Gen::yes_no(bool b) {
  Gen g;
  g.kind = boolean;
  g.flag = b;
  return g;
}

Gen Gen::whole(long n) {
  Gen g;
  g.kind = integer;
  g.number = n;
  return g;
}

Gen Gen::strs(const std::vector<std::string>& v) {
  Gen g;
  g.kind = list;
  for (const auto& s : v) g.items.push_back(str(s));
  return g;
}

Gen& Gen::add(std::string key, Gen v) {
  entries.push_back({std::move(key), std::move(v)});
  return entries.back().second;
}

const Gen* Gen::get(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}

void put_gen(YamlOut& out, const Gen& g, int indent, At at) {
  switch (g.kind) {
    case Gen::string:
      put_string(out, g.text, indent, at, false);
      break;
    case Gen::boolean:
      out.value(g.flag ? "true" : "false", at);
      break;
    case Gen::integer:
      out.value(std::to_string(g.number), at);
      break;
    case Gen::list: {
      Members m(out, indent, at);
      for (const auto& i : g.items) {
        m.dash();
        put_gen(out, i, m.child(), At::dash);
      }
      if (!m.any()) m.empty("[]");
      break;
    }
    case Gen::map: {
      Members m(out, indent, at);
      for (const auto& [k, v] : g.entries) {
        m.key(key_text(k, false));
        put_gen(out, v, m.child(), At::key);
      }
      if (!m.any()) m.empty("{}");
      break;
    }
  }
}

std::string gen_text(const Gen& g) {
  YamlOut out;
  put_gen(out, g, 0, At::top);
  return yaml_done(out);
}

// Their #cloud-config merged into ours while written (see "merging" above).
void put_merged(YamlOut& out, const Gen& ours, const UserNode& theirs, bool users_list, int indent,
                At at);

void put_merged_users(YamlOut& out, const Gen& ours, const UserNode& theirs, int indent, At at) {
  const Gen& user = ours.items[0];  // {name: U, …}
  const std::string& name = user.get("name")->text;
  const UserNode* match = nullptr;
  for (const auto& e : theirs.items)
    if (names_user(e, name)) {
      match = &e;
      break;
    }
  Members m(out, indent, at);
  m.dash();
  if (match && match->kind == UserNode::map)
    put_merged(out, user, *match, false, m.child(), At::dash);
  else
    put_gen(out, user, m.child(), At::dash);
  for (const auto& e : theirs.items)
    if (!names_user(e, name)) {
      m.dash();
      put_user(out, e, m.child(), At::dash);
    }
}

void put_merged(YamlOut& out, const Gen& ours, const UserNode& theirs, bool users_list, int indent,
                At at) {
  if (ours.kind == Gen::map && theirs.kind == UserNode::map) {
    Members m(out, indent, at);
    for (const auto& [k, v] : ours.entries) {
      const UserNode* t = theirs.get(k);
      m.key(scalar_text(k, false, false));
      if (t)
        put_merged(out, v, *t, k == "users", m.child(), At::key);
      else
        put_gen(out, v, m.child(), At::key);
    }
    for (const auto& e : theirs.entries) {
      if (e.key.kind == UserNode::scalar && ours.get(e.key.value)) continue;
      m.key(e.key.text);
      put_user(out, e.value, m.child(), At::key);
    }
    if (!m.any()) m.empty("{}");
    return;
  }
  if (ours.kind == Gen::list && theirs.kind == UserNode::seq) {
    if (users_list && ours.items.size() == 1 && ours.items[0].kind == Gen::map) {
      put_merged_users(out, ours, theirs, indent, at);
      return;
    }
    Members m(out, indent, at);
    for (const auto& i : ours.items) {
      m.dash();
      put_gen(out, i, m.child(), At::dash);
    }
    for (const auto& e : theirs.items) {
      m.dash();
      put_user(out, e, m.child(), At::dash);
    }
    if (!m.any()) m.empty("[]");
    return;
  }
  put_user(out, theirs, indent, at);  // theirs wins
}

// A compact, unambiguous serialization: the key of the user-data cache.
void serialize(std::string& out, const Gen& g) {
  auto put = [&](std::string_view s) {
    out += std::to_string(s.size());
    out += ':';
    out += s;
  };
  switch (g.kind) {
    case Gen::string:
      out += 's';
      put(g.text);
      break;
    case Gen::boolean:
      out += g.flag ? 'T' : 'F';
      break;
    case Gen::integer:
      out += 'i';
      put(std::to_string(g.number));
      break;
    case Gen::list:
      out += '[';
      for (const auto& i : g.items) serialize(out, i);
      out += ']';
      break;
    case Gen::map:
      out += '{';
      for (const auto& [k, v] : g.entries) {
        put(k);
        serialize(out, v);
      }
      out += '}';
      break;
  }
}

Gen cloud_config(const CloudInitSpec& spec) {
  Gen cc;
  if (!spec.fqdn.empty()) {
    cc.add("hostname", Gen::str(spec.hostname));
    cc.add("fqdn", Gen::str(spec.fqdn));
  }
  const UserSpec& u = spec.user;
  if (u.configured()) {
    Gen user;
    user.add("name", Gen::str(u.name.empty() ? kDefaultUser : u.name));
    if (!u.sudo.empty()) user.add("sudo", Gen::str(u.sudo));
    if (!u.groups.empty()) user.add("groups", Gen::strs(u.groups));
    if (!u.shell.empty()) user.add("shell", Gen::str(u.shell));
    if (!u.password_hash.empty()) {
      user.add("lock_passwd", Gen::yes_no(false));
      user.add("hashed_passwd", Gen::str(u.password_hash));
    }
    if (!u.ssh_keys.empty()) user.add("ssh_authorized_keys", Gen::strs(u.ssh_keys));
    Gen& users = cc.add("users", Gen{Gen::list});
    users.items.push_back(std::move(user));
  }
  if (!spec.packages.empty()) cc.add("packages", Gen::strs(spec.packages));
  if (!spec.write_files.empty()) {
    Gen& files = cc.add("write_files", Gen{Gen::list});
    for (const auto& f : spec.write_files) {
      Gen file;
      file.add("path", Gen::str(f.path));
      if (is_utf8(f.content) && f.content.find('\0') == std::string::npos) {
        file.add("content", Gen::str(f.content));
      } else {
        file.add("encoding", Gen::str("b64"));
        file.add("content", Gen::str(base64_encode(f.content)));
      }
      char mode[8];
      std::snprintf(mode, sizeof mode, "0%o", f.mode & 07777);
      file.add("permissions", Gen::str(mode));
      files.items.push_back(std::move(file));
    }
  }
  if (!spec.runcmd.empty()) cc.add("runcmd", Gen::strs(spec.runcmd));
  if (!spec.timezone.empty()) cc.add("timezone", Gen::str(spec.timezone));
  if (!spec.locale.empty()) cc.add("locale", Gen::str(spec.locale));
  return cc;
}

// The user-data text and its encodings. A fleet usually shares its
// user-data (same keys, packages, --user-data file), so the last few are
// kept: each is written, merged and compressed once.
struct UserDataRender {
  std::string text;
  std::optional<std::string> encoded[3];  // by GuestInfoEncoding
};

class UserDataCache {
 public:
  std::shared_ptr<UserDataRender> get(const CloudInitSpec& spec) {
    Gen ours = cloud_config(spec);
    if (spec.user_data && !spec.user_data->cloud_config) {
      if (!ours.entries.empty())
        bad_input(
            "a user-data that is not #cloud-config is passed through as is and cannot be "
            "combined with generated settings");
    }
    std::string key;
    serialize(key, ours);
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].file == spec.user_data && entries_[i].key == key) {
        std::rotate(entries_.begin(), entries_.begin() + long(i), entries_.begin() + long(i) + 1);
        return entries_.front().render;
      }
    }
    auto render = std::make_shared<UserDataRender>();
    if (spec.user_data && !spec.user_data->cloud_config) {
      render->text = spec.user_data->text;
    } else {
      YamlOut out;
      if (spec.user_data)
        put_merged(out, ours, spec.user_data->config, false, 0, At::top);
      else
        put_gen(out, ours, 0, At::top);
      render->text = "#cloud-config\n" + yaml_done(out);
    }
    if (entries_.size() == kSize) entries_.pop_back();
    entries_.insert(entries_.begin(), Entry{spec.user_data, std::move(key), render});
    return render;
  }

 private:
  static constexpr size_t kSize = 8;
  struct Entry {
    std::shared_ptr<const UserDataFile> file;
    std::string key;
    std::shared_ptr<UserDataRender> render;
  };
  std::vector<Entry> entries_;
};

std::shared_ptr<UserDataRender> user_data_render(const CloudInitSpec& spec) {
  static thread_local UserDataCache cache;
  return cache.get(spec);
}

Gen network_config(const CloudInitSpec& spec) {
  Gen net;
  net.add("version", Gen::whole(2));
  Gen& ethernets = net.add("ethernets", Gen{});
  for (size_t i = 0; i < spec.nics.size(); ++i) {
    const NicSpec& nic = spec.nics[i];
    NicIdentity id = nic_identity(nic, i);
    Gen& n = ethernets.add(id.id, Gen{});
    if (!nic.mac.empty()) {
      n.add("match", Gen{}).add("macaddress", Gen::str(nic.mac));
      n.add("set-name", Gen::str(id.set_name));
    } else if (!id.match_name.empty()) {
      n.add("match", Gen{}).add("name", Gen::str(id.match_name));
    }
    if (nic.dhcp4) n.add("dhcp4", Gen::yes_no(true));
    if (nic.dhcp6) n.add("dhcp6", Gen::yes_no(true));
    if (!nic.addresses.empty()) {
      Gen& addrs = n.add("addresses", Gen{Gen::list});
      for (const auto& p : nic.addresses) addrs.items.push_back(Gen::str(p.text()));
    }
    Gen routes{Gen::list};
    auto add_route = [&](std::string to, const IpAddress& via) {
      Gen r;
      r.add("to", Gen::str(to));
      r.add("via", Gen::str(via.text()));
      routes.items.push_back(std::move(r));
    };
    if (nic.gateway4) add_route("default", *nic.gateway4);
    if (nic.gateway6) add_route("default", *nic.gateway6);
    for (const auto& r : nic.routes) add_route(r.to ? r.to->text() : "default", r.via);
    if (!routes.items.empty()) n.add("routes", std::move(routes));
    if (!nic.dns.empty() || !nic.search.empty()) {
      Gen& ns = n.add("nameservers", Gen{});
      if (!nic.dns.empty()) {
        Gen& addrs = ns.add("addresses", Gen{Gen::list});
        for (const auto& a : nic.dns) addrs.items.push_back(Gen::str(a.text()));
      }
      if (!nic.search.empty()) ns.add("search", Gen::strs(nic.search));
    }
    if (nic.mtu) n.add("mtu", Gen::whole(*nic.mtu));
  }
  return net;
}

Gen metadata(const CloudInitSpec& spec) {
  Gen md;
  md.add("instance-id", Gen::str(spec.instance_id));
  md.add("local-hostname", Gen::str(spec.hostname));
  if (spec.cleanup) md.add("cleanup-guestinfo", Gen::strs({"userdata"}));
  return md;
}

bool is_network_key(const YAML::Node& key) {
  return key.IsScalar() && (key.Scalar() == "network" || key.Scalar() == "network.encoding");
}

// Writes a metadata mapping's entries, without its network keys.
using EntryWriter = std::function<void(YamlOut&, Members&)>;

EntryWriter node_entries(const YAML::Node& md) {
  return [&md](YamlOut& out, Members& m) {
    for (const auto& kv : md) {
      if (is_network_key(kv.first)) continue;
      put_user_key(m, kv.first);
      put_node(out, kv.second, m.child(), At::key);
    }
  };
}

EntryWriter gen_entries(const Gen& md) {
  return [&md](YamlOut& out, Members& m) {
    for (const auto& [k, v] : md.entries) {
      m.key(scalar_text(k, false, false));
      put_gen(out, v, m.child(), At::key);
    }
  };
}

std::string metadata_text(const EntryWriter& entries) {
  YamlOut out;
  Members m(out, 0, At::top);
  entries(out, m);
  if (!m.any()) m.empty("{}");
  return yaml_done(out);
}

std::string metadata_without_network(const YAML::Node& md) {
  return metadata_text(node_entries(md));
}

std::string encode_value(std::string_view key, const std::string& text, GuestInfoEncoding enc) {
  std::string value;
  switch (enc) {
    case GuestInfoEncoding::gzip_base64:
      // The fast level first; only a value that would not fit is compressed
      // again at the best level, so no document that fits is refused.
      value = base64_encode(gzip_compress(text, GzipLevel::fast));
      if (value.size() >= kGuestInfoValueLimit)
        value = base64_encode(gzip_compress(text, GzipLevel::best));
      break;
    case GuestInfoEncoding::base64:
      value = base64_encode(text);
      break;
    case GuestInfoEncoding::none:
      if (!is_utf8(text) || text.find('\0') != std::string::npos)
        bad_input(std::string(key) +
                  ": the document is not UTF-8 text; use --encoding base64 or gzip+base64");
      value = text;
      break;
  }
  if (value.size() >= kGuestInfoValueLimit)
    bad_input(std::string(key) + ": the encoded value is " + std::to_string(value.size()) +
              " bytes; it must stay under 64 KiB (" + std::to_string(kGuestInfoValueLimit) +
              " bytes)");
  return value;
}

// What encode_parts puts together.
struct Parts {
  EntryWriter metadata;                       // metadata entries, without network keys
  const std::string* metadata_doc = nullptr;  // the same as a document, if known
  std::string instance_id, hostname;
  std::string network_text;  // "" = no network config
  // Writes it as the value of "network" (for --encoding none).
  std::function<void(YamlOut&, int indent)> network_tree;
  std::shared_ptr<UserDataRender> userdata;
};

// Metadata = its entries, then the network config (a mapping when not
// encoded, else an encoded string plus network.encoding); then the values.
GuestInfo encode_parts(const Parts& p, GuestInfoEncoding enc) {
  if (p.instance_id.empty() || p.hostname.empty())
    bad_input("metadata must carry instance-id and local-hostname");
  GuestInfo gi;
  gi.documents.network = p.network_text;
  gi.documents.userdata = p.userdata->text;
  gi.instance_id = p.instance_id;
  gi.hostname = p.hostname;

  YamlOut out;
  Members m(out, 0, At::top);
  p.metadata(out, m);
  // The network keys come last, so the metadata document without them is
  // what has been written so far (a block mapping's entries).
  gi.documents.metadata = p.metadata_doc ? *p.metadata_doc : yaml_done(out);
  if (!p.network_text.empty()) {
    m.key("network");
    if (enc == GuestInfoEncoding::none) {
      p.network_tree(out, m.child());
    } else {
      // Quoted, as always before (base64 needs no quoting).
      std::string v;
      put_double_quoted(v, encode_value("guestinfo.metadata network", p.network_text, enc));
      out.value(v, At::key);
      m.key("network.encoding");
      out.value(scalar_text(encoding_name(enc), false, false), At::key);
    }
  }
  if (!m.any()) m.empty("{}");

  auto& userdata = p.userdata->encoded[static_cast<int>(enc)];
  if (!userdata) userdata = encode_value("guestinfo.userdata", p.userdata->text, enc);
  // With --encoding none the .encoding keys are present but empty: setting
  // an empty ExtraConfig value removes a stale encoding from an existing VM.
  std::string enc_value = enc == GuestInfoEncoding::none ? "" : std::string(encoding_name(enc));
  gi.values.emplace_back("guestinfo.metadata",
                         encode_value("guestinfo.metadata", yaml_done(out), enc));
  gi.values.emplace_back("guestinfo.metadata.encoding", enc_value);
  gi.values.emplace_back("guestinfo.userdata", *userdata);
  gi.values.emplace_back("guestinfo.userdata.encoding", enc_value);
  return gi;
}

}  // namespace

GuestInfoDocuments render_documents(const CloudInitSpec& spec) {
  GuestInfoDocuments docs;
  docs.metadata = gen_text(metadata(spec));
  if (spec.network_config)
    docs.network = spec.network_config->text;
  else if (!spec.nics.empty())
    docs.network = gen_text(network_config(spec));
  docs.userdata = user_data_render(spec)->text;
  return docs;
}

GuestInfo build_guestinfo(const CloudInitSpec& spec, GuestInfoEncoding encoding) {
  if (spec.hostname.empty() || spec.instance_id.empty())
    bad_input("a spec needs a hostname and an instance-id");
  Gen md = metadata(spec);
  Parts p;
  p.metadata = gen_entries(md);
  p.instance_id = spec.instance_id;
  p.hostname = spec.hostname;
  p.userdata = user_data_render(spec);
  Gen net;
  if (spec.network_config) {
    p.network_text = spec.network_config->text;
    const YAML::Node& tree = spec.network_config->config;
    p.network_tree = [&tree](YamlOut& out, int indent) { put_node(out, tree, indent, At::key); };
  } else if (!spec.nics.empty()) {
    net = network_config(spec);
    p.network_text = gen_text(net);
    p.network_tree = [&net](YamlOut& out, int indent) { put_gen(out, net, indent, At::key); };
  }
  return encode_parts(p, encoding);
}

GuestInfo encode_guestinfo(const GuestInfoDocuments& docs, GuestInfoEncoding encoding) {
  YAML::Node md = parse_yaml(docs.metadata, "metadata");
  if (!md.IsMap()) bad_input("metadata must be a mapping");
  Parts p;
  p.metadata = node_entries(md);
  p.metadata_doc = &docs.metadata;
  YAML::Node id = lookup(md, "instance-id"), host = lookup(md, "local-hostname");
  if (id.IsDefined() && id.IsScalar()) p.instance_id = id.Scalar();
  if (host.IsDefined() && host.IsScalar()) p.hostname = host.Scalar();
  YAML::Node net;
  if (!docs.network.empty()) {
    p.network_text = docs.network;
    if (encoding == GuestInfoEncoding::none) net = parse_yaml(docs.network, "network config");
    p.network_tree = [&net](YamlOut& out, int indent) { put_node(out, net, indent, At::key); };
  }
  p.userdata = std::make_shared<UserDataRender>();
  p.userdata->text = docs.userdata;
  return encode_parts(p, encoding);
}

GuestInfo decode_guestinfo(const std::map<std::string, std::string, std::less<>>& values) {
  // As cloud-init reads them, "---" (its blanked value after cleanup) and
  // blank values mean absent; other values are kept byte for byte.
  auto get = [&](const std::string& key) -> std::optional<std::string> {
    auto it = values.find(key);
    if (it == values.end()) return std::nullopt;
    std::string_view v = it->second;
    while (!v.empty() && is_space(v.back())) v.remove_suffix(1);
    if (v.empty() || v == "---") return std::nullopt;
    return it->second;
  };
  auto decode = [&](const std::string& key, const std::string& value,
                    const std::optional<std::string>& enc_name) -> std::string {
    GuestInfoEncoding enc = GuestInfoEncoding::none;
    if (enc_name) {
      auto e = parse_encoding(*enc_name);
      if (!e || *e == GuestInfoEncoding::none)
        bad_input(key + ".encoding: " + quote(*enc_name) +
                  " is not an encoding cloud-init knows (gzip+base64, gz+b64, base64, b64); it "
                  "would read the value as plain text");
      enc = *e;
    }
    try {
      if (enc == GuestInfoEncoding::gzip_base64) return gzip_decompress(base64_decode(value));
      if (enc == GuestInfoEncoding::base64) return base64_decode(value);
      return value;
    } catch (const Error& e) {
      bad_input(key + ": " + e.what());
    }
  };

  GuestInfo gi;
  for (const auto& [k, v] : values) gi.values.emplace_back(k, v);
  auto md_value = get("guestinfo.metadata");
  if (!md_value) bad_input("guestinfo.metadata is missing");
  std::string md_text = decode("guestinfo.metadata", *md_value, get("guestinfo.metadata.encoding"));
  YAML::Node md = parse_yaml(md_text, "guestinfo.metadata");
  if (!md.IsMap()) bad_input("guestinfo.metadata: not a mapping");
  gi.documents.metadata = metadata_without_network(md);
  if (YAML::Node net = lookup(md, "network"); net.IsDefined() && !net.IsNull()) {
    if (net.IsScalar()) {
      YAML::Node enc = lookup(md, "network.encoding");
      std::optional<std::string> enc_name;
      if (enc.IsDefined() && enc.IsScalar() && !enc.Scalar().empty()) enc_name = enc.Scalar();
      gi.documents.network = decode("guestinfo.metadata network", net.Scalar(), enc_name);
    } else {
      gi.documents.network = yaml_text(net);
    }
  }
  if (auto v = get("guestinfo.userdata"))
    gi.documents.userdata = decode("guestinfo.userdata", *v, get("guestinfo.userdata.encoding"));
  if (auto v = get("guestinfo.vendordata"))
    gi.documents.vendordata =
        decode("guestinfo.vendordata", *v, get("guestinfo.vendordata.encoding"));
  YAML::Node id = lookup(md, "instance-id");
  YAML::Node host = lookup(md, "local-hostname");
  if (id.IsDefined() && id.IsScalar()) gi.instance_id = id.Scalar();
  if (host.IsDefined() && host.IsScalar()) gi.hostname = host.Scalar();
  return gi;
}

std::vector<std::pair<std::string, std::string>> guestinfo_pairs(const ordered_json& field,
                                                                 const std::string& origin) {
  if (!field.is_object()) bad_input(origin + ": field \"guestinfo\" is not an object");
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [k, v] : field.items()) {
    if (!v.is_string() || k.rfind("guestinfo.", 0) != 0)
      bad_input(origin + ": guestinfo key " + quote(k) +
                " must start with 'guestinfo.' and have a string value");
    out.emplace_back(k, v.get<std::string>());
  }
  return out;
}

}  // namespace ceso
