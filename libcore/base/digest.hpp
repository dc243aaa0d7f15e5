// Streaming digests with one home each: SHA-256 (OpenSSL EVP, SHA-NI where
// the CPU has it) for identities, XXH3-128 (libxxhash) where a cheap check
// of bytes against bytes is all that is needed, and XXH3-128 per fixed
// segment, which lets a file be checked in pieces and in parallel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ceso {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  std::string hex();  // lowercase; once, at the end

 private:
  void* ctx_;
};

// In xxhsum -H2's notation (32 lowercase hex digits).
class Xxh128 {
 public:
  Xxh128();
  ~Xxh128();
  Xxh128(const Xxh128&) = delete;
  Xxh128& operator=(const Xxh128&) = delete;
  void update(const void* data, size_t size);
  std::string hex() const;
  void reset();

 private:
  void* state_;
};

// XXH3-128 of each `segment`-byte piece of a stream (the last may be
// shorter; an empty stream has none).
class SegmentHashes {
 public:
  explicit SegmentHashes(uint64_t segment);
  void update(const void* data, size_t size);
  // The hashes, the open last piece's included; once, at the end.
  std::vector<std::string> finish();
  uint64_t segment() const { return segment_; }

 private:
  uint64_t segment_, filled_ = 0;
  Xxh128 current_;
  std::vector<std::string> done_;
};

}  // namespace ceso
