#include "base/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "base/cancel.hpp"
#include "base/error.hpp"

extern char** environ;

namespace ceso {

// ------------------------------------------------------------- splitting

std::optional<std::vector<std::string>> split_command(std::string_view text, std::string* why) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;  // a word has started (possibly empty: '')
  auto end_word = [&] {
    if (in_word) words.push_back(std::move(word));
    word.clear();
    in_word = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      end_word();
    } else if (c == '\'') {
      size_t close = text.find('\'', i + 1);
      if (close == std::string_view::npos) {
        *why = "unterminated single quote (')";
        return std::nullopt;
      }
      word.append(text.substr(i + 1, close - i - 1));
      in_word = true;
      i = close;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < text.size() && text[j] != '"'; ++j) {
        if (text[j] == '\\' && j + 1 < text.size() && (text[j + 1] == '"' || text[j + 1] == '\\'))
          ++j;
        word += text[j];
      }
      if (j >= text.size()) {
        *why = "unterminated double quote (\")";
        return std::nullopt;
      }
      in_word = true;
      i = j;
    } else if (c == '\\') {
      if (i + 1 >= text.size()) {
        *why = "a backslash at the end escapes nothing";
        return std::nullopt;
      }
      word += text[++i];
      in_word = true;
    } else if (std::strchr("|&;<>()$`", c) != nullptr) {
      *why = std::string("'") + c +
             "' is shell syntax, but the command runs without a shell; quote it to pass it "
             "on, or run a shell explicitly: sh -c '…'";
      return std::nullopt;
    } else {
      word += c;
      in_word = true;
    }
  }
  end_word();
  if (words.empty()) {
    *why = "no command";
    return std::nullopt;
  }
  if (words.front().empty()) {
    *why = "the program name is empty";
    return std::nullopt;
  }
  return words;
}

// ------------------------------------------------------------- environment

namespace {

// Whether a URL value carries a password: "user:password@" before the host,
// with the last '@' ending the user information (as the URL parser reads it).
bool url_has_password(std::string_view url) {
  if (size_t sep = url.find("://"); sep != std::string_view::npos) url.remove_prefix(sep + 3);
  size_t at = url.rfind('@');
  return at != std::string_view::npos && url.substr(0, at).find(':') != std::string_view::npos;
}

}  // namespace

bool is_secret_variable(std::string_view name, std::string_view value) {
  if (name == "CESO_PASSWORD" || name == "GOVC_PASSWORD") return true;
  if (name == "CESO_URL" || name == "GOVC_URL") return url_has_password(value);
  return false;
}

std::vector<std::string> without_secrets(const std::vector<std::string>& environment) {
  std::vector<std::string> out;
  for (const auto& entry : environment) {
    size_t eq = entry.find('=');
    std::string_view name = std::string_view(entry).substr(0, eq);
    std::string_view value =
        eq == std::string::npos ? std::string_view() : std::string_view(entry).substr(eq + 1);
    if (!is_secret_variable(name, value)) out.push_back(entry);
  }
  return out;
}

std::vector<std::string> child_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  return without_secrets(env);
}

// ------------------------------------------------------------- running

namespace {

using Clock = std::chrono::steady_clock;

std::string quoted(std::string_view s) { return quote(s); }

// A started child: killed (if still running) and always reaped.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) stop();
  }

  // Exit status as waitpid reports it, once the child has ended before
  // `deadline`; nullopt if it is still running then.
  std::optional<int> wait_until(Clock::time_point deadline) {
    for (;;) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return status;
      }
      if (r < 0 && errno != EINTR) {  // ECHILD: someone else reaped it
        pid_ = -1;
        return 0;
      }
      if (Clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // SIGTERM, then after 2 s SIGKILL; reaped either way.
  void stop() {
    ::kill(pid_, SIGTERM);
    if (wait_until(Clock::now() + std::chrono::seconds(2))) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

 private:
  pid_t pid_;
};

// Owns a file descriptor.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

// posix_spawn attributes and file actions, destroyed on every path.
struct SpawnSetup {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  SpawnSetup() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

std::string status_text(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
           ::strsignal(WTERMSIG(status)) + ")";
  return "ended abnormally";
}

}  // namespace

std::string run_capture(const std::vector<std::string>& argv, const CaptureOptions& options) {
  if (argv.empty() || argv.front().empty()) fail("no command to run");
  const std::string program = quoted(argv[0]);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
    fail("cannot run " + program + ": pipe: " + std::strerror(errno));
  Fd out_read(pipe_fds[0]), out_write(pipe_fds[1]);

  SpawnSetup setup;
  // stdin /dev/null, stdout the pipe, stderr inherited. dup2 clears
  // close-on-exec on the copy, so only fds 0-2 reach the program.
  posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&setup.actions, out_write.fd, 1);
  // ceso ignores SIGPIPE and may block signals: the program gets defaults.
  sigset_t all, none;
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&setup.attr, &all);
  posix_spawnattr_setsigmask(&setup.attr, &none);
  posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : options.environment) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, args[0], &setup.actions, &setup.attr, args.data(), envp.data());
  if (rc != 0) {
    std::string reason = rc == ENOENT ? "no such program (looked up in PATH)" : std::strerror(rc);
    fail("cannot run " + program + ": " + reason);
  }
  Child child(pid);
  out_write.reset();  // EOF once the program (and whatever it started) closes it

  const auto deadline = Clock::now() + std::chrono::milliseconds(options.timeout_ms);
  const std::string timeout_text = options.timeout_ms % 1000 == 0
                                       ? std::to_string(options.timeout_ms / 1000) + " s"
                                       : std::to_string(options.timeout_ms) + " ms";
  std::string output;
  char buf[4096];
  for (;;) {
    if (interrupt_requested()) {
      child.stop();
      throw Error("interrupted while " + program + " ran", Exit::interrupted);
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      child.stop();
      fail(program + " did not finish within " + timeout_text + "; it was stopped");
    }
    pollfd p{out_read.fd, POLLIN, 0};
    // Short slices, so an interrupt is noticed promptly.
    int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 200)));
    if (n < 0 && errno != EINTR) fail("cannot run " + program + ": poll: " + std::strerror(errno));
    if (n <= 0) continue;
    ssize_t got = ::read(out_read.fd, buf, sizeof buf);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got < 0) fail("cannot read the output of " + program + ": " + std::strerror(errno));
    if (got == 0) break;
    output.append(buf, static_cast<size_t>(got));
    if (output.size() > options.max_output) {
      child.stop();
      fail(program + " wrote more than " + std::to_string(options.max_output / 1024) +
           " KiB to standard output; it was stopped");
    }
  }
  out_read.reset();
  // Output ended; the program itself may still be running (it may have
  // closed its standard output early): wait for it within the same deadline.
  auto status = child.wait_until(deadline);
  if (!status) {
    child.stop();
    fail(program + " did not finish within " + timeout_text + "; it was stopped");
  }
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) fail(program + " " + status_text(*status));
  return output;
}

}  // namespace ceso
