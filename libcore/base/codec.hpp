// Encodings used by guestinfo and backups: base64 (OpenSSL EVP) and gzip
// (compression by libdeflate, decompression by zlib). No hand-written codecs.
#pragma once

#include <string>
#include <string_view>

namespace ceso {

std::string base64_encode(std::string_view data);
// Throws Error(bad_input) on malformed base64. Whitespace is ignored.
std::string base64_decode(std::string_view text);

// How hard gzip_compress tries: `fast` is libdeflate's level 1 (on guestinfo
// documents of 0.4-1 KiB within 1% of zlib -9's size, at under half its
// instructions), `best` its level 12 (smaller than zlib -9, several times
// slower).
enum class GzipLevel { fast, best };
// gzip member (RFC 1952), as cloud-init's gzip+base64 guestinfo expects; the
// same bytes for the same input and level (mtime 0). Throws Error(failure) if
// libdeflate fails.
std::string gzip_compress(std::string_view data, GzipLevel level = GzipLevel::best);
// Accepts gzip or zlib streams. Throws Error(bad_input) when corrupt.
std::string gzip_decompress(std::string_view data);

// Decode a guestinfo value by its `.encoding` ("base64"/"b64",
// "gzip+base64"/"gz+b64"; anything else is plain text, as cloud-init does).
std::string decode_guestinfo_value(std::string_view value, std::string_view encoding);

}  // namespace ceso
