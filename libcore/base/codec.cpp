#include "base/codec.hpp"

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

// A fleet run compresses three small documents per VM. A fresh deflate
// state costs ~400 KiB of allocation and a 128 KiB hash clear each time, more
// than the compression itself, so streams are kept and reset. The window is
// sized to the input (a window larger than the input cannot find more
// matches), which keeps the reset cheap for small documents.
class GzipCompressor {
 public:
  ~GzipCompressor() {
    for (auto& s : streams_)
      if (s.ready) deflateEnd(&s.z);
  }
  std::string compress(std::string_view data) {
    int bits = 9;  // zlib's smallest window; matches reach back wsize - 262 bytes
    while (bits < 15 && (size_t(1) << bits) < data.size() + 262) ++bits;
    Stream& s = streams_[bits - 9];
    if (!s.ready) {
      // memLevel follows the window: hash table about the window's size.
      if (deflateInit2(&s.z, Z_BEST_COMPRESSION, Z_DEFLATED, bits + 16, std::max(1, bits - 6),
                       Z_DEFAULT_STRATEGY) != Z_OK)
        fail("zlib: cannot start compression");
      s.ready = true;
    } else if (deflateReset(&s.z) != Z_OK) {
      fail("zlib: cannot reset compression");
    }
    std::string out(deflateBound(&s.z, data.size()), '\0');
    s.z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    s.z.avail_in = static_cast<uInt>(data.size());
    s.z.next_out = reinterpret_cast<Bytef*>(out.data());
    s.z.avail_out = static_cast<uInt>(out.size());
    if (deflate(&s.z, Z_FINISH) != Z_STREAM_END) fail("zlib: compression failed");
    out.resize(s.z.total_out);
    return out;
  }

 private:
  struct Stream {
    z_stream z{};
    bool ready = false;
  };
  Stream streams_[7];  // window bits 9..15
};

}  // namespace

std::string gzip_compress(std::string_view data) {
  static thread_local GzipCompressor compressor;
  return compressor.compress(data);
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
