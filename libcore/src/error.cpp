#include "ceso/error.hpp"

#include <cstdio>

namespace ceso {

std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string quote(std::string_view s) { return '\'' + printable(s) + '\''; }

}  // namespace ceso
