// Diagnostics on stderr, prefixed with the tool's name ("ceso-ls: …").
//
// The frame (cli/tool.hpp, run_tool) sets the name and --quiet once at start;
// every layer may then warn or note without knowing the command line.
#pragma once

#include <string>
#include <string_view>

namespace ceso {

// Diagnostics on stderr, prefixed with the tool's name.
void warn(std::string_view message);
// Informational message, silenced by --quiet.
void note(std::string_view message);
bool quiet();
std::string_view tool_name();
// Version of the whole suite (--version; recorded in manifests).
std::string_view version();

// Set by the frame before the tool runs (not thread-safe: call before any
// worker starts).
void set_tool_name(std::string name);
void set_quiet(bool quiet);

}  // namespace ceso
