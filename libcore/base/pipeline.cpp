#include "base/pipeline.hpp"

#include <algorithm>
#include <thread>

namespace ceso {

int pipeline_workers(int min, int max) {
  int cpus = static_cast<int>(std::thread::hardware_concurrency());  // 0: unknown
  return std::clamp(cpus, min, std::max(min, max));
}

}  // namespace ceso
