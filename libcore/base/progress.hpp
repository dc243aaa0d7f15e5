// Progress bars on stderr (docs/design.md "Output"): only when stderr is a
// terminal and --quiet is not given. One line per task in flight (a file of
// a VM being copied) plus an overall line: bytes, rate, ETA. Redrawn at most
// a few times per second; thread-safe for -j N. The one progress sink of
// every tool: byte counts (copies) and percentages (vSphere tasks: a clone,
// a disk copy) alike.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace ceso {

class Progress {
 public:
  // `enabled` false: every call is a no-op (pipes, --quiet).
  explicit Progress(bool enabled);
  ~Progress();
  static bool wanted();  // stderr is a terminal and not --quiet

  // A task; `total` 0 when unknown.
  int start(std::string label, uint64_t total);
  void advance(int task, uint64_t bytes);
  void finish(int task);
  // A step known by its label that reports a percentage (a vSphere task's
  // progress): started on its first call, ended at 100.
  void percent(const std::string& label, int pct);

 private:
  struct Task {
    std::string label;
    uint64_t total = 0, done = 0;
    std::chrono::steady_clock::time_point started;
    int pct = -1;  // a percentage step (percent()); -1: a byte count
  };
  bool enabled_;
  std::mutex mutex_;
  std::map<int, Task> tasks_;
  int next_ = 0;
  uint64_t all_total_ = 0, all_done_ = 0;
  std::chrono::steady_clock::time_point begun_, last_draw_;
  int drawn_lines_ = 0;
  void draw(bool force);
};

// "1.5 GiB", "12 MiB", "512 B".
std::string human_bytes(double bytes);

}  // namespace ceso
