// The hand-over queue between the threads of the data paths, and the size
// of a worker pool.
#include "base/pipeline.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace {

using ceso::HandOver;

TEST(HandOver, FirstInFirstOutThenNothingOnceClosed) {
  HandOver<int> q;
  q.push(1);
  q.push(2);
  q.close();
  q.push(3);  // dropped: closed
  EXPECT_EQ(q.pop(), 1);
  EXPECT_EQ(q.pop(), 2);
  EXPECT_EQ(q.pop(), std::nullopt);
  EXPECT_EQ(q.pop(), std::nullopt);
}

TEST(HandOver, CloseWakesEveryWaitingConsumer) {
  HandOver<int> q;
  std::atomic<int> woke{0};
  std::vector<std::thread> t;
  for (int i = 0; i < 3; ++i)
    t.emplace_back([&] {
      if (!q.pop()) ++woke;
    });
  q.close();
  for (auto& x : t) x.join();
  EXPECT_EQ(woke, 3);
}

TEST(HandOver, EveryItemReachesExactlyOneOfSeveralConsumers) {
  HandOver<int> q;
  const int n = 20000;
  std::vector<std::atomic<int>> seen(n);
  std::vector<std::thread> consumers;
  for (int i = 0; i < 4; ++i)
    consumers.emplace_back([&] {
      while (auto v = q.pop()) ++seen[*v];
    });
  std::thread producer([&] {
    for (int i = 0; i < n; ++i) q.push(i);
  });
  producer.join();
  q.close();  // what was pushed before is still handed out
  for (auto& c : consumers) c.join();
  for (int i = 0; i < n; ++i) ASSERT_EQ(seen[i], 1) << i;
}

TEST(PipelineWorkers, OnePerCpuWithinTheBounds) {
  int cpus = static_cast<int>(std::thread::hardware_concurrency());
  int n = ceso::pipeline_workers(2, 4);
  EXPECT_GE(n, 2);
  EXPECT_LE(n, 4);
  if (cpus >= 2 && cpus <= 4) {
    EXPECT_EQ(n, cpus);
  }
  EXPECT_EQ(ceso::pipeline_workers(1, 1), 1);
  EXPECT_EQ(ceso::pipeline_workers(5, 3), 5);  // the minimum wins over a smaller maximum
  EXPECT_GE(ceso::pipeline_workers(1, 1000), 1);
}

}  // namespace
