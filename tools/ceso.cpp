// ceso — the umbrella: `ceso ls …` runs `ceso-ls …`; `ceso help` lists the
// installed tools.
//
// A tool is looked up first beside this executable (so a build tree or a
// relocated install works without PATH changes), then on PATH.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/records.hpp"
#include "cli/tool.hpp"

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

// Tool names: ceso-[a-z0-9-]+. Nothing else on PATH is run, so neither a
// backup file (ceso-ls~, ceso-ls.orig) nor a name with shell characters.
bool valid_command(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
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
  if (!valid_command(command)) return {};
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
      if (name.rfind("ceso-", 0) != 0 || !valid_command(name.substr(5))) continue;
      std::string path = d + "/" + name;
      if (executable(path) && !tools.count(name.substr(5))) tools[name.substr(5)] = path;
    }
    closedir(dir);
  }
  return tools;
}

// The summary line a tool reports in its option table, from
// `TOOL --dump-options`, run without a shell (argv only: no file or directory
// name is ever parsed as a command), in its own process group, with stdin and
// stderr on /dev/null, at most kSummaryTimeout and 1 MiB of output; anything
// else found on PATH under a tool's name gets an empty summary.
constexpr int kSummaryTimeoutMs = 3000;
constexpr size_t kMaxDumpBytes = 1 << 20;

std::string summary_of(const std::string& path) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return {};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);  // a new group: a timeout kills its children too
  short flags = POSIX_SPAWN_SETPGROUP;
  posix_spawnattr_setflags(&attr, flags);
  std::string argv0 = path.substr(path.rfind('/') + 1);
  std::string option = "--dump-options";
  char* argv[] = {argv0.data(), option.data(), nullptr};
  pid_t pid = -1;
  int rc = posix_spawn(&pid, path.c_str(), &actions, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return {};
  }
  std::string text;
  bool complete = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kSummaryTimeoutMs);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) break;
    pollfd p{fds[0], POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    char buf[4096];
    ssize_t r = read(fds[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      complete = r == 0;
      break;
    }
    text.append(buf, static_cast<size_t>(r));
    if (text.size() > kMaxDumpBytes) break;
  }
  close(fds[0]);
  kill(-pid, SIGKILL);  // whatever is left of its group (nothing, for a ceso tool)
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!complete || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return {};
  try {
    std::string summary = ceso::ordered_json::parse(text).value("summary", "");
    // Printed to a terminal: no control characters (escape sequences).
    std::string clean;
    for (unsigned char c : summary)
      if (c >= 0x20 && c != 0x7f) clean += static_cast<char>(c);
    return clean.substr(0, 200);
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
      if (path.empty())
        ceso::usage_error("no tool " + ceso::quote("ceso-" + args.operands.front()));
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
    std::printf(
        "\n'ceso help TOOL' shows a tool's options; man ceso-TOOL and man 7 ceso say more.\n");
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
