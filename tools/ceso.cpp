// ceso — the umbrella: `ceso ls …` runs `ceso-ls …`; `ceso help` lists the
// installed tools.
//
// A tool is looked up first beside this executable (so a build tree or a
// relocated install works without PATH changes), then on PATH.
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ceso/records.hpp"
#include "ceso/tool.hpp"

namespace {

const ceso::ToolSpec kSpec{
    "ceso",
    "Run a ceso tool: 'ceso ls' runs ceso-ls. 'ceso help' lists the installed tools.",
    "COMMAND [ARG]...",
    {},
    0,
    {{"help", "list the installed tools, or show one tool's help"}},
};

std::string self_dir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  buf[n] = '\0';
  std::string p(buf);
  return p.substr(0, p.rfind('/'));
}

bool executable(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

std::vector<std::string> search_dirs() {
  std::vector<std::string> dirs;
  if (auto d = self_dir(); !d.empty()) dirs.push_back(d);
  const char* path = getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t colon = p.find(':', start);
    std::string d = p.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    dirs.push_back(d.empty() ? "." : d);
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return dirs;
}

std::string find_tool(const std::string& command) {
  for (const auto& d : search_dirs()) {
    std::string candidate = d + "/ceso-" + command;
    if (executable(candidate)) return candidate;
  }
  return {};
}

// Tool name → path, first found wins (same order as find_tool).
std::map<std::string, std::string> installed_tools() {
  std::map<std::string, std::string> tools;
  for (const auto& d : search_dirs()) {
    DIR* dir = opendir(d.c_str());
    if (!dir) continue;
    while (dirent* e = readdir(dir)) {
      std::string name = e->d_name;
      if (name.rfind("ceso-", 0) != 0 || name.size() <= 5) continue;
      if (name.find('.') != std::string::npos) continue;  // ceso-x.p build dirs, backups
      std::string path = d + "/" + name;
      if (executable(path) && !tools.count(name.substr(5))) tools[name.substr(5)] = path;
    }
    closedir(dir);
  }
  return tools;
}

// The summary line a tool reports in its option table.
std::string summary_of(const std::string& path) {
  std::string cmd = "'" + path + "' --dump-options 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {};
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  pclose(p);
  try {
    return ceso::ordered_json::parse(text).value("summary", "");
  } catch (const std::exception&) {
    return {};
  }
}

[[noreturn]] void exec_tool(const std::string& path, const std::string& name,
                            const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::string argv0 = "ceso-" + name;
  argv.push_back(argv0.data());
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(path.c_str(), argv.data());
  ceso::fail("cannot run " + ceso::quote(path) + ": " + std::strerror(errno));
}

ceso::Exit run(const ceso::Args& args) {
  if (args.verb == "help" || args.operands.empty()) {
    if (args.verb == "help" && !args.operands.empty()) {
      std::string path = find_tool(args.operands.front());
      if (path.empty()) ceso::usage_error("no tool " + ceso::quote("ceso-" + args.operands.front()));
      exec_tool(path, args.operands.front(), {"--help"});
    }
    if (args.operands.empty() && args.verb.empty()) {
      std::fputs(ceso::help_text(kSpec).c_str(), stderr);
      return ceso::Exit::usage;
    }
    std::printf("Installed ceso tools:\n");
    for (const auto& [name, path] : installed_tools()) {
      std::string s = summary_of(path);
      std::printf("  %-12s %s\n", name.c_str(), s.c_str());
    }
    std::printf("\n'ceso help TOOL' shows a tool's options; man ceso-TOOL and man 7 ceso say more.\n");
    return ceso::Exit::ok;
  }
  const std::string& command = args.operands.front();
  std::string path = find_tool(command);
  if (path.empty())
    ceso::usage_error("unknown command " + ceso::quote(command) + " (no ceso-" + command +
                      " installed; 'ceso help' lists them)");
  exec_tool(path, command, {args.operands.begin() + 1, args.operands.end()});
}

}  // namespace

int main(int argc, char** argv) {
  // Everything after the command belongs to the tool, options included, so
  // the umbrella does not parse it: `ceso ls --tag web` execs at once.
  if (argc > 1 && argv[1][0] != '-' && std::strcmp(argv[1], "help") != 0) {
    std::string command = argv[1];
    std::string path = find_tool(command);
    if (path.empty()) {
      std::fprintf(stderr,
                   "ceso: unknown command '%s' (no ceso-%s installed; 'ceso help' lists them)\n",
                   command.c_str(), command.c_str());
      return static_cast<int>(ceso::Exit::usage);
    }
    try {
      exec_tool(path, command, std::vector<std::string>(argv + 2, argv + argc));
    } catch (const ceso::Error& e) {
      std::fprintf(stderr, "ceso: %s\n", e.what());
      return static_cast<int>(ceso::Exit::failure);
    }
  }
  return ceso::run_tool(kSpec, argc, argv, run);
}
