#include "base/log.hpp"

#include <cstdio>
#include <utility>

namespace ceso {

namespace {
std::string g_tool = "ceso";
bool g_quiet = false;
}  // namespace

void warn(std::string_view message) {
  // One fputs of a whole line, so lines of -j workers do not interleave.
  std::string line = g_tool + ": " + std::string(message) + "\n";
  std::fputs(line.c_str(), stderr);
}

void note(std::string_view message) {
  if (!g_quiet) warn(message);
}

bool quiet() { return g_quiet; }
std::string_view tool_name() { return g_tool; }
std::string_view version() { return CESO_VERSION; }

void set_tool_name(std::string name) { g_tool = std::move(name); }
void set_quiet(bool quiet) { g_quiet = quiet; }

}  // namespace ceso
