// Small helpers every unit needs, with one home each (hex, SHA-256, lower-case).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ceso {

// Bytes as hex, two digits each: lower-case by default, upper-case when
// `upper`; `sep` (when not '\0') goes between bytes, e.g. ':' for the
// "AB:CD:..." thumbprints vSphere prints.
std::string hex_encode(const unsigned char* data, size_t size, bool upper = false, char sep = '\0');

// SHA-256 of a string as lower-case hex (OpenSSL EVP). Throws ceso::Error
// (Exit::failure) if libcrypto fails.
std::string sha256_hex(std::string_view data);

// The value of a hex digit (0-9, a-f, A-F), or -1 for any other byte.
int hex_value(char c);

// One UTF-8 sequence at s[i] (i < s.size()): its code point and length, or
// nullopt when the bytes there are not well-formed UTF-8 (overlong forms,
// surrogates and code points above U+10FFFF included).
struct CodePoint {
  char32_t value;
  size_t length;
};
std::optional<CodePoint> next_code_point(std::string_view s, size_t i);

// ASCII letters A-Z to a-z; every other byte (UTF-8 included) unchanged,
// whatever the C locale.
std::string ascii_lower(std::string_view s);

// `s` in single quotes for a POSIX shell (sh, bash, BusyBox ash): each ' as
// '\'' and nothing else changed. Callers refuse what must not reach a shell.
std::string sh_single_quote(std::string_view s);

}  // namespace ceso
