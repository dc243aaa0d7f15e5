#pragma once
// Building blocks of the threaded data paths (backup, restore, chunk
// store): a hand-over queue between threads and the size of a worker pool.

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

namespace ceso {

// A hand-over between threads. close() wakes both sides: push() then drops
// the item, pop() returns what is left, then nothing. The queue itself is
// not bounded: the bound is the number of items there are (a free list of
// buffers is one of these queues, and a producer takes a buffer from it
// before it pushes one on).
template <class T>
class HandOver {
 public:
  void push(T item) {
    {
      std::lock_guard<std::mutex> l(m_);
      if (closed_) return;
      q_.push_back(std::move(item));
    }
    cv_.notify_one();
  }
  std::optional<T> pop() {
    std::unique_lock<std::mutex> l(m_);
    cv_.wait(l, [&] { return closed_ || !q_.empty(); });
    if (q_.empty()) return std::nullopt;
    T item = std::move(q_.front());
    q_.pop_front();
    return item;
  }
  void close() {
    {
      std::lock_guard<std::mutex> l(m_);
      closed_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<T> q_;
  bool closed_ = false;
};

// Worker threads for CPU-bound work that splits into independent pieces
// (hashing and compressing chunks): one per CPU, at least `min` (work that
// also waits for a target overlaps with work that computes), at most `max`
// (each worker holds buffers: memory).
int pipeline_workers(int min, int max);

}  // namespace ceso
