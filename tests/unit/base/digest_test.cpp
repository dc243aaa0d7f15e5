#include "base/digest.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.hpp"

namespace {

std::string xxh(const std::string& s) {
  ceso::Xxh128 h;
  h.update(s.data(), s.size());
  return h.hex();
}

TEST(Sha256, KnownVectorsInPieces) {
  ceso::Sha256 h;
  h.update("a", 1);
  h.update("bc", 2);
  EXPECT_EQ(h.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  ceso::Sha256 empty;
  EXPECT_EQ(empty.hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Xxh128, MatchesXxhsumAndResets) {
  // `printf abc | xxhsum -H2` (xxhash 0.8.1)
  EXPECT_EQ(xxh("abc"), "06b05ab6733a618578af5f94892f3950");
  EXPECT_EQ(xxh(""), "99aa06d3014798d86001c324468d497f");
  ceso::Xxh128 h;
  h.update("zzz", 3);
  h.reset();
  h.update("abc", 3);
  EXPECT_EQ(h.hex(), xxh("abc"));
}

TEST(SegmentHashes, CutsAtSegmentBoundariesWhateverTheWrites) {
  std::string data(10, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i);
  std::vector<std::string> want = {xxh(data.substr(0, 4)), xxh(data.substr(4, 4)),
                                   xxh(data.substr(8))};
  for (size_t step : {1u, 3u, 4u, 10u}) {
    ceso::SegmentHashes s(4);
    for (size_t i = 0; i < data.size(); i += step)
      s.update(data.data() + i, std::min(step, data.size() - i));
    EXPECT_EQ(s.finish(), want) << "writes of " << step;
  }
  ceso::SegmentHashes exact(5);
  exact.update(data.data(), data.size());
  EXPECT_EQ(exact.finish(),
            (std::vector<std::string>{xxh(data.substr(0, 5)), xxh(data.substr(5))}));
  ceso::SegmentHashes none(4);
  EXPECT_TRUE(none.finish().empty());
  EXPECT_THROW(ceso::SegmentHashes(0), ceso::Error);
}

}  // namespace
