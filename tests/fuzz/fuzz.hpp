// Shared by the libFuzzer targets: what counts as a finding.
//
// A target feeds hostile bytes to one libcore entry point. Rejecting the input
// with ceso::Error (the documented way libcore says "bad input") is the
// expected outcome, never a finding; a crash, a sanitizer report, another
// exception type escaping, a hang or an invariant that CESO_FUZZ_CHECK states
// is one. libFuzzer reports an escaping exception as a crash (abort).
#pragma once

#include <errno.h>  // program_invocation_short_name

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.hpp"
#include "base/records.hpp"

// An invariant of the code under test; a violation aborts with the message so
// libFuzzer saves the input.
#define CESO_FUZZ_CHECK(cond, what)                                                          \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "fuzz invariant broken: %s (%s:%d)\n", what, __FILE__, __LINE__); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

namespace ceso_fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The first record of `text` as a tool reads it from its stdin
// (NdjsonReader); nullopt when there is none. Throws ceso::Error as the
// reader does (not JSON, not an object).
inline std::optional<ceso::ordered_json> first_record(std::string_view text) {
  if (text.empty()) return std::nullopt;  // fmemopen refuses a size of 0
  std::string copy(text);
  std::unique_ptr<FILE, int (*)(FILE*)> f(fmemopen(copy.data(), copy.size(), "r"), &std::fclose);
  if (!f) return std::nullopt;
  ceso::NdjsonReader reader(f.get(), "<stdin>");
  auto rec = reader.next();
  if (!rec) return std::nullopt;
  return std::move(rec->value);
}

// Whether the named invariant is checked. CESO_FUZZ_SKIP="a,manifest:b"
// turns checks off (b only in fuzz_manifest), to fuzz on past a known finding
// that another change fixes.
inline bool checked(std::string_view name) {
  const char* skip = std::getenv("CESO_FUZZ_SKIP");
  if (!skip) return true;
  std::string_view self(program_invocation_short_name);  // "fuzz_manifest"
  std::string_view list(skip);
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view entry = list.substr(0, comma);
    if (size_t colon = entry.find(':'); colon != std::string_view::npos) {
      if (self.substr(0, 5) != "fuzz_" || self.substr(5) != entry.substr(0, colon))
        entry = {};
      else
        entry.remove_prefix(colon + 1);
    }
    if (entry == name) return false;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return true;
}

// docs/design.md: an error is one line. A message carrying a control character
// (a newline, an escape sequence from a hostile host or file) breaks that and
// reaches the user's terminal raw. Check name: "messages".
inline void check_message(const ceso::Error& e) {
  static const bool on = checked("messages");
  if (!on) return;
  for (unsigned char c : std::string_view(e.what()))
    if (c < 0x20 || c == 0x7f) {
      std::fprintf(stderr,
                   "fuzz invariant broken: control character 0x%02x in an error message: %s\n", c,
                   e.what());
      std::abort();
    }
}

// Runs fn; ceso::Error (a rejected input) is expected and only its message
// is checked; any other exception escapes and is a finding.
template <typename Fn>
void expect_ok_or_error(Fn&& fn) {
  try {
    fn();
  } catch (const ceso::Error& e) {
    check_message(e);
  }
}

}  // namespace ceso_fuzz
