// Child processes: the one way ceso starts a program (today the password
// command, docs/configuration.md "Password from a command"; later ssh or
// zstd children).
//
// No shell is involved: a command line is split into words by split_command
// and run with posix_spawnp, so nothing in it is expanded or interpreted.
// Every child gets child_environment(): ceso's environment without the
// variables that hold a password, so no child can read a password that was
// given to ceso (/proc/PID/environ of the child is readable by the same
// user, and a child may pass its environment on further).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ceso {

// Splits a command line into words, like a POSIX shell without expansions:
//   - unquoted spaces, tabs and newlines separate words;
//   - '…' keeps everything inside literally;
//   - "…" keeps everything literally except \" and \\ (a backslash before
//     any other character stays);
//   - outside quotes a backslash makes the next character literal;
//   - quotes may join parts of one word (a'b'"c" is abc); '' is an empty word.
// Unquoted shell syntax (| & ; < > ( ) $ `) is refused rather than passed on
// as a word, since nothing would interpret it: the user meant a shell. nullopt
// with `why` set for that, an unterminated quote, a trailing backslash, no
// word at all or an empty first word.
std::optional<std::vector<std::string>> split_command(std::string_view text, std::string* why);

// The variables no child may see: the passwords ceso may have been given.
// CESO_PASSWORD, GOVC_PASSWORD, and CESO_URL / GOVC_URL when they carry a
// password (user:password@host).
bool is_secret_variable(std::string_view name, std::string_view value);

// `environment` ("NAME=value" strings, as in environ) without the secret
// variables above.
std::vector<std::string> without_secrets(const std::vector<std::string>& environment);

// The environment for every child ceso starts: the process environment
// without the secret variables.
std::vector<std::string> child_environment();

struct CaptureOptions {
  size_t max_output = 64 * 1024;  // more standard output than this is an error
  int timeout_ms = 60 * 1000;     // then SIGTERM, after 2 s SIGKILL
  std::vector<std::string> environment = child_environment();
};

// Runs argv (argv[0] looked up in PATH) and returns what it wrote to standard
// output. Standard input is /dev/null (ceso's own standard input carries
// records, which the child must not consume); standard error is ceso's, so
// the child's prompts and messages reach the user's terminal; the child
// stays in ceso's process group so it may read the terminal (/dev/tty).
// Signals ceso ignores or blocks are reset to their defaults in the child.
// Throws Error(failure) when the program cannot be started, exits with a
// status other than 0, is killed by a signal, runs longer than the timeout or
// writes more than max_output (the child is then killed); Error(interrupted)
// on SIGINT/SIGTERM (the child gets SIGTERM). Messages name argv[0], never
// the output. The child is always waited for.
std::string run_capture(const std::vector<std::string>& argv, const CaptureOptions& options = {});

}  // namespace ceso
