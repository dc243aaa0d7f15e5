#include "base/codec.hpp"

#include <libdeflate.h>
#include <openssl/evp.h>
#include <zlib.h>

#include <algorithm>
#include <vector>

#include "base/error.hpp"

namespace ceso {

std::string base64_encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string base64_decode(std::string_view text) {
  std::string clean;
  clean.reserve(text.size());
  for (char c : text)
    if (c != '\n' && c != '\r' && c != ' ' && c != '\t') clean += c;
  if (clean.size() % 4 != 0) bad_input("malformed base64: length is not a multiple of 4");
  std::string out(3 * clean.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(clean.data()),
                          static_cast<int>(clean.size()));
  if (n < 0) bad_input("malformed base64");
  // EVP_DecodeBlock keeps the padding bytes as zeros: drop them.
  size_t pad = 0;
  if (!clean.empty() && clean.back() == '=') ++pad;
  if (clean.size() > 1 && clean[clean.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

namespace {

// A fleet run compresses three small documents per VM, so the per-call cost
// matters more than the stream speed: libdeflate compresses a whole buffer
// at once, without zlib's stream state, in about half of zlib's instructions
// for a 1 KiB document. Its compressors (one per level used; large at level
// 12) are kept per thread and reused.
class GzipCompressor {
 public:
  ~GzipCompressor() {
    for (auto* c : compressors_)
      if (c) libdeflate_free_compressor(c);
  }
  std::string compress(std::string_view data, GzipLevel level) {
    libdeflate_compressor*& c = compressors_[level == GzipLevel::fast ? 0 : 1];
    if (!c) c = libdeflate_alloc_compressor(level == GzipLevel::fast ? 1 : 12);
    if (!c) fail("libdeflate: cannot allocate a compressor");
    std::string out(libdeflate_gzip_compress_bound(c, data.size()), '\0');
    size_t n = libdeflate_gzip_compress(c, data.data(), data.size(), out.data(), out.size());
    if (n == 0) fail("libdeflate: compression failed");
    out.resize(n);
    return out;
  }

 private:
  libdeflate_compressor* compressors_[2] = {nullptr, nullptr};
};

}  // namespace

std::string gzip_compress(std::string_view data, GzipLevel level) {
  static thread_local GzipCompressor compressor;
  return compressor.compress(data, level);
}

std::string gzip_decompress(std::string_view data) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) throw Error("zlib: inflateInit2 failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  std::vector<char> buf(64 * 1024);
  int rc;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(buf.data());
    zs.avail_out = static_cast<uInt>(buf.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      bad_input("malformed gzip data");
    }
    out.append(buf.data(), buf.size() - zs.avail_out);
  } while (rc != Z_STREAM_END && (zs.avail_in > 0 || zs.avail_out == 0));
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) bad_input("truncated gzip data");
  return out;
}

std::string decode_guestinfo_value(std::string_view value, std::string_view encoding) {
  if (encoding == "base64" || encoding == "b64") return base64_decode(value);
  if (encoding == "gzip+base64" || encoding == "gz+b64")
    return gzip_decompress(base64_decode(value));
  return std::string(value);
}

}  // namespace ceso
