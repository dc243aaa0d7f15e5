// Errors and exit codes shared by every ceso tool.
//
// libcore never prints: it throws ceso::Error carrying the exit code that the
// failure maps to (docs/design.md "Exit status"). The tool's main wrapper
// (run_tool) prints the message once, prefixed with the tool's name, and
// exits with the code.
#pragma once

#include <stdexcept>
#include <string>

namespace ceso {

// Exit codes are interface: documented in ceso(7) and every man page.
enum class Exit : int {
  ok = 0,
  failure = 1,      // the operation failed
  usage = 2,        // bad command line
  bad_input = 3,    // malformed record or spec (message names the line/field)
  partial = 4,      // some records failed, the others were done
  policy = 5,       // refused: restricted mode, protected VM, confirmation declined
  connection = 6,   // connection, TLS or authentication failure
  interrupted = 130 // SIGINT/SIGTERM; cleanup done
};

class Error : public std::runtime_error {
 public:
  explicit Error(std::string message, Exit code = Exit::failure)
      : std::runtime_error(std::move(message)), code_(code) {}
  Exit code() const noexcept { return code_; }

 private:
  Exit code_;
};

// Shorthands so call sites read as what went wrong.
[[noreturn]] inline void fail(std::string message) { throw Error(std::move(message), Exit::failure); }
[[noreturn]] inline void usage_error(std::string message) {
  throw Error(std::move(message), Exit::usage);
}
[[noreturn]] inline void bad_input(std::string message) {
  throw Error(std::move(message), Exit::bad_input);
}

// Quote a user-supplied string for a message: 'web 01'. Control characters
// are shown escaped so a hostile name cannot mess up the terminal.
std::string quote(std::string_view s);
// The same escaping without the quotes, for text a message takes from
// elsewhere (a parser's reason, a host's fault string) so it stays one line.
std::string printable(std::string_view s);

}  // namespace ceso
