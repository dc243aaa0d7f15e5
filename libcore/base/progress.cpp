#include "base/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "base/cancel.hpp"
#include "base/log.hpp"

namespace ceso {

namespace {

using Clock = std::chrono::steady_clock;

std::string eta_text(double seconds) {
  if (seconds < 0 || seconds > 359999) return "--:--";
  auto s = static_cast<long>(seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

std::string line(const std::string& label, uint64_t done, uint64_t total, double secs) {
  double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  std::string s = label + "  " + human_bytes(static_cast<double>(done));
  if (total) {
    s += " / " + human_bytes(static_cast<double>(total)) + " (" +
         std::to_string(done * 100 / total) + "%)";
  }
  s += "  " + human_bytes(rate) + "/s";
  if (total && rate > 0)
    s += "  ETA " + eta_text(static_cast<double>(total - std::min(done, total)) / rate);
  return s;
}

}  // namespace

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
  return buf;
}

Progress::Progress(bool enabled) : enabled_(enabled), begun_(Clock::now()) {}

Progress::~Progress() {
  if (!enabled_) return;
  std::lock_guard lock(mutex_);
  for (int i = 0; i < drawn_lines_; ++i) std::fputs("\033[1A\033[2K", stderr);
  std::fflush(stderr);
}

bool Progress::wanted() { return isatty(STDERR_FILENO) && !quiet(); }

int Progress::start(std::string label, uint64_t total) {
  if (!enabled_) return 0;
  std::lock_guard lock(mutex_);
  int id = next_++;
  tasks_[id] = {std::move(label), total, 0, Clock::now()};
  all_total_ += total;
  draw(true);
  return id;
}

void Progress::advance(int task, uint64_t bytes) {
  if (!enabled_) return;
  std::lock_guard lock(mutex_);
  auto it = tasks_.find(task);
  if (it == tasks_.end()) return;
  it->second.done += bytes;
  all_done_ += bytes;
  draw(false);
}

void Progress::finish(int task) {
  if (!enabled_) return;
  std::lock_guard lock(mutex_);
  auto it = tasks_.find(task);
  if (it == tasks_.end()) return;
  // An unknown or overestimated total must not leave the overall ETA wrong.
  if (it->second.total > it->second.done) all_total_ -= it->second.total - it->second.done;
  tasks_.erase(it);
  draw(true);
}

void Progress::percent(const std::string& label, int pct) {
  if (!enabled_) return;
  std::lock_guard lock(mutex_);
  auto it = std::find_if(tasks_.begin(), tasks_.end(), [&](const auto& t) {
    return t.second.pct >= 0 && t.second.label == label;
  });
  if (pct >= 100) {
    if (it != tasks_.end()) tasks_.erase(it);
    draw(true);
    return;
  }
  if (it == tasks_.end()) it = tasks_.emplace(next_++, Task{label, 0, 0, Clock::now()}).first;
  it->second.pct = std::max(pct, 0);
  draw(false);
}

void Progress::draw(bool force) {
  auto now = Clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(200)) return;
  last_draw_ = now;
  std::string out;
  for (int i = 0; i < drawn_lines_; ++i) out += "\033[1A\033[2K";
  drawn_lines_ = 0;
  auto secs = [&](Clock::time_point t) { return std::chrono::duration<double>(now - t).count(); };
  bool bytes = false;
  for (const auto& [id, t] : tasks_) {
    if (t.pct >= 0) {
      out += t.label + " " + std::to_string(t.pct) + "%\n";
    } else {
      out += line(t.label, t.done, t.total, secs(t.started)) + "\n";
      bytes = true;
    }
    ++drawn_lines_;
  }
  if (bytes) {
    out += line("total", all_done_, all_total_, secs(begun_)) + "\n";
    ++drawn_lines_;
  }
  std::fputs(out.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace ceso
