#include "vm/names.hpp"

#include <cstdio>
#include <functional>
#include <optional>

#include "base/util.hpp"

namespace ceso {

namespace {

// Why a code point may not be in a VM name, or nullptr.
const char* forbidden(char32_t c) {
  if (c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f)) return "a control character";
  if (c == 0x2028 || c == 0x2029) return "a line separator";
  if (c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069))
    return "a bidirectional formatting character";
  if (c == '/' || c == '\\')
    return "not allowed (vSphere stores it escaped; write %2f for '/', %5c for '\\')";
  return nullptr;
}

// The escape %2f, %5c or %25 (either case) at s[i], if there is one.
std::optional<char> escape_at(std::string_view s, size_t i) {
  if (i + 3 > s.size() || s[i] != '%') return std::nullopt;
  char hi = s[i + 1], lo = static_cast<char>(s[i + 2] | 0x20);
  if (hi == '2' && lo == 'f') return '/';
  if (hi == '5' && lo == 'c') return '\\';
  if (hi == '2' && s[i + 2] == '5') return '%';
  return std::nullopt;
}

std::string code_text(char32_t c) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(c));
  return buf;
}

// The name for a message: quoted, with invalid bytes and forbidden code
// points shown as \xNN and \u{XXXX}, so a hostile name cannot reach the
// terminal raw (quote() escapes only C0 and DEL; C1 U+009B is a CSI).
std::string shown(std::string_view s) {  // see quote_name()
  std::string out = "'";
  size_t count = 0;
  for (size_t i = 0; i < s.size(); ++count) {
    if (count == kMaxVmNameChars + 8) return out + "'...";  // enough to recognise it
    auto cp = next_code_point(s, i);
    char buf[16];
    if (!cp) {
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(s[i]));
      out += buf;
      ++i;
      continue;
    }
    if (cp->value != '/' && cp->value != '\\' && forbidden(cp->value)) {
      std::snprintf(buf, sizeof buf, "\\u{%04X}", static_cast<unsigned>(cp->value));
      out += buf;
    } else {
      out.append(s.substr(i, cp->length));
    }
    i += cp->length;
  }
  return out + "'";
}

}  // namespace

namespace {

// Where check_code_points found a character to refuse: its code point and
// position, with the reason.
std::string refused_at(char32_t c, size_t chars, const char* why) {
  return " has " + code_text(c) + " at character " + std::to_string(chars) + ": " + why;
}

// Walks `name` code point by code point: refuses invalid UTF-8, and each
// character `refuse` returns a message for (what follows `head`; "" to
// accept). Returns the number of characters.
size_t check_code_points(
    std::string_view name, const std::string& head, Exit code,
    const std::function<std::string(std::string_view, size_t, char32_t, size_t)>& refuse) {
  size_t chars = 0;
  for (size_t i = 0; i < name.size();) {
    ++chars;
    auto cp = next_code_point(name, i);
    if (!cp) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned char>(name[i]));
      throw Error(
          head + " is not valid UTF-8 (byte " + buf + " at byte " + std::to_string(i + 1) + ")",
          code);
    }
    if (std::string why = refuse(name, i, cp->value, chars); !why.empty())
      throw Error(head + why, code);
    i += cp->length;
  }
  return chars;
}

}  // namespace

void check_vm_name(std::string_view name, std::string_view field, Exit code) {
  const std::string head = std::string(field) + ": VM name " + shown(name);
  if (name.empty()) throw Error(std::string(field) + ": VM name is empty", code);
  size_t chars = check_code_points(
      name, head, code, [](std::string_view n, size_t i, char32_t c, size_t at) -> std::string {
        if (const char* why = forbidden(c)) return refused_at(c, at, why);
        if (c == '%' && !escape_at(n, i))
          return " has '%' at character " + std::to_string(at) +
                 " not starting %2f, %5c or %25 (vSphere would store it as %25; write %25)";
        return {};
      });
  if (chars > kMaxVmNameChars)
    throw Error(head + " has " + std::to_string(chars) + " characters; vSphere allows at most " +
                    std::to_string(kMaxVmNameChars),
                code);
}

void check_object_label(std::string_view name, std::string_view field, std::string_view what,
                        size_t max_bytes, Exit code) {
  const std::string head = std::string(field) + ": " + std::string(what) + " " + shown(name);
  if (name.empty()) throw Error(std::string(field) + ": " + std::string(what) + " is empty", code);
  // '/' and '\\' are fine in a label; the other characters a VM name may not have are not.
  check_code_points(name, head, code,
                    [](std::string_view, size_t, char32_t c, size_t at) -> std::string {
                      const char* why = forbidden(c);
                      if (!why || c == '/' || c == '\\') return {};
                      return refused_at(c, at, why);
                    });
  if (name.front() == ' ' || name.back() == ' ')
    throw Error(head + " starts or ends with a space", code);
  if (name.size() > max_bytes)
    throw Error(head + " has " + std::to_string(name.size()) + " bytes; at most " +
                    std::to_string(max_bytes) + " are allowed",
                code);
}

std::string decoded_vm_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (size_t i = 0; i < name.size(); ++i) {
    if (auto c = escape_at(name, i)) {
      out += *c;
      i += 2;
    } else {
      out += name[i];
    }
  }
  return out;
}

std::string quote_name(std::string_view name) { return shown(name); }

bool same_vm_name(std::string_view a, std::string_view b) {
  return a == b || decoded_vm_name(a) == decoded_vm_name(b);
}

}  // namespace ceso
