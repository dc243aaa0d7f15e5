#include "transport/relay.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "base/error.hpp"

namespace {

TEST(BytePipe, CarriesEveryByteInOrderThroughASmallBuffer) {
  ceso::BytePipe pipe(7);  // smaller than every write: wraps around many times
  std::string sent;
  for (int i = 0; i < 5000; ++i) sent += static_cast<char>('a' + i % 26);
  std::thread writer([&] {
    pipe.set_length(sent.size());
    for (size_t off = 0; off < sent.size(); off += 13)
      pipe.write(sent.data() + off, std::min<size_t>(13, sent.size() - off));
    pipe.close();
  });
  EXPECT_EQ(pipe.wait_length(), sent.size());
  std::string got;
  char buf[5];
  for (size_t n; (n = pipe.read(buf, sizeof buf)) > 0;) got.append(buf, n);
  writer.join();
  EXPECT_EQ(got, sent);
  EXPECT_EQ(pipe.read(buf, sizeof buf), 0u);
}

TEST(BytePipe, AWriterErrorReachesABlockedReader) {
  ceso::BytePipe pipe(4);
  pipe.write("ab", 2);
  char buf[8];
  EXPECT_EQ(pipe.read(buf, 2), 2u);
  // The reader blocks on the empty pipe until the writer fails it.
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    pipe.fail(std::make_exception_ptr(ceso::Error("source cut", ceso::Exit::connection)));
  });
  try {
    pipe.read(buf, 2);
    ADD_FAILURE() << "no error";
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::connection);
    EXPECT_STREQ(e.what(), "source cut");
  }
  writer.join();
}

TEST(BytePipe, AReaderErrorStopsABlockedWriter) {
  ceso::BytePipe pipe(4);
  std::thread reader([&] {
    char c;
    pipe.read(&c, 1);
    pipe.fail(std::make_exception_ptr(std::runtime_error("target full")));
  });
  EXPECT_THROW(
      {
        std::string big(1000, 'x');
        pipe.write(big.data(), big.size());
      },
      std::runtime_error);
  reader.join();
}

TEST(BytePipe, WaitLengthAfterAnErrorThrowsIt) {
  ceso::BytePipe pipe(4);
  pipe.fail(std::make_exception_ptr(ceso::Error("404")));
  EXPECT_THROW(pipe.wait_length(), ceso::Error);
  ceso::BytePipe closed(4);
  closed.close();
  EXPECT_EQ(closed.wait_length(), std::nullopt);
}

TEST(HashBytes, IsSha256) {
  EXPECT_EQ(ceso::hash_bytes("").sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ceso::hash_bytes("abc").bytes, 3u);
  EXPECT_EQ(ceso::hash_bytes("abc").segments.size(), 1u);
  EXPECT_TRUE(ceso::hash_bytes("").segments.empty());
}

TEST(VerifySegment, AnEighthInWholeMiBBetween1And64) {
  constexpr uint64_t MiB = uint64_t{1} << 20;
  EXPECT_EQ(ceso::verify_segment(0), MiB);
  EXPECT_EQ(ceso::verify_segment(4 * MiB), MiB);
  EXPECT_EQ(ceso::verify_segment(8 * MiB + 1), 2 * MiB);
  EXPECT_EQ(ceso::verify_segment(1024 * MiB), 64 * MiB);
  EXPECT_EQ(ceso::verify_segment(uint64_t{1} << 40), 64 * MiB);
}

TEST(StreamHash, PiecesHashAsTheWhole) {
  std::string data(300000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + 3);
  ceso::StreamHash h;
  h.add(data.data(), 1);
  h.add(data.data() + 1, 0);
  h.add(data.data() + 1, 65535);
  h.add(data.data() + 65536, data.size() - 65536);
  ceso::RelayResult got = h.result();
  EXPECT_EQ(got.bytes, data.size());
  EXPECT_EQ(got.sha256, ceso::hash_bytes(data).sha256);
  ceso::StreamHash empty;
  EXPECT_EQ(empty.result().sha256, ceso::hash_bytes("").sha256);
}

}  // namespace
