#include "base/digest.hpp"

#include <openssl/evp.h>
#include <xxhash.h>

#include <algorithm>

#include "base/error.hpp"
#include "base/util.hpp"

namespace ceso {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  auto* c = static_cast<EVP_MD_CTX*>(ctx_);
  if (!c || EVP_DigestInit_ex(c, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(c);
    fail("cannot set up SHA-256");
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::update(const void* data, size_t size) {
  if (size && EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, size) != 1)
    fail("SHA-256 failed");
}

std::string Sha256::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len) != 1) fail("SHA-256 failed");
  return hex_encode(md, len);
}

Xxh128::Xxh128() : state_(XXH3_createState()) {
  if (!state_ || XXH3_128bits_reset(static_cast<XXH3_state_t*>(state_)) != XXH_OK) {
    XXH3_freeState(static_cast<XXH3_state_t*>(state_));
    fail("cannot set up XXH3");
  }
}

Xxh128::~Xxh128() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

void Xxh128::update(const void* data, size_t size) {
  XXH3_128bits_update(static_cast<XXH3_state_t*>(state_), data, size);
}

std::string Xxh128::hex() const {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits_digest(static_cast<XXH3_state_t*>(state_)));
  return hex_encode(c.digest, sizeof c.digest);
}

void Xxh128::reset() { XXH3_128bits_reset(static_cast<XXH3_state_t*>(state_)); }

SegmentHashes::SegmentHashes(uint64_t segment) : segment_(segment) {
  if (segment_ == 0) fail("a segment of 0 bytes");
}

void SegmentHashes::update(const void* data, size_t size) {
  const auto* p = static_cast<const char*>(data);
  while (size) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(size, segment_ - filled_));
    current_.update(p, n);
    filled_ += n;
    p += n;
    size -= n;
    if (filled_ == segment_) {
      done_.push_back(current_.hex());
      current_.reset();
      filled_ = 0;
    }
  }
}

std::vector<std::string> SegmentHashes::finish() {
  if (filled_) done_.push_back(current_.hex());
  filled_ = 0;
  return std::move(done_);
}

}  // namespace ceso
