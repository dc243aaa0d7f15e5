// Errors and exit codes shared by every ceso tool.
//
// libcore never prints: it throws ceso::Error carrying the exit code that the
// failure maps to (docs/design.md "Exit status"). The tool's main wrapper
// (run_tool) prints the message once, prefixed with the tool's name, and
// exits with the code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ceso {

// Exit codes are interface: documented in ceso(7) and every man page.
enum class Exit : int {
  ok = 0,
  failure = 1,       // the operation failed
  usage = 2,         // bad command line
  bad_input = 3,     // malformed record or spec (message names the line/field)
  partial = 4,       // some records failed, the others were done
  policy = 5,        // refused: restricted mode, protected VM, confirmation declined
  connection = 6,    // connection, TLS or authentication failure
  interrupted = 130  // SIGINT/SIGTERM; cleanup done
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
[[noreturn]] inline void fail(std::string message) {
  throw Error(std::move(message), Exit::failure);
}
[[noreturn]] inline void usage_error(std::string message) {
  throw Error(std::move(message), Exit::usage);
}
[[noreturn]] inline void bad_input(std::string message) {
  throw Error(std::move(message), Exit::bad_input);
}

// The host broke one of the limits on what ceso takes from it: an answer
// nested too deep or too large, a host that sends nothing for the idle
// timeout, a SOAP call that takes longer than the call timeout (ceso(7)
// LIMITS). Always exit 6; the SOAP layer prefixes the call it happened in.
class LimitExceeded : public Error {
 public:
  explicit LimitExceeded(std::string message) : Error(std::move(message), Exit::connection) {}
};

// "64 MiB" for whole MiB, else "1000 bytes": sizes in limit messages.
std::string size_text(uint64_t bytes);

// Text that came from a host (fault strings, HTTP bodies, header values, task
// messages, names), made safe to print: control characters (C0, DEL, C1, so
// also ESC of ANSI sequences and newlines) and bytes that are not UTF-8 are
// shown as visible escapes (\n, \t, \x1b, \xff), and text longer than
// `max_chars` characters is cut there and ends in "…". Every message or
// record error field that carries host text goes through this (or quote()).
inline constexpr size_t kHostTextMax = 300;
std::string host_text(std::string_view text, size_t max_chars = kHostTextMax);

// Quote a user- or host-supplied string for a message: 'web 01', escaped
// and shortened like host_text(), so a hostile name cannot mess up the
// terminal.
std::string quote(std::string_view s);
// The same escaping without the quotes, for text a message takes from
// elsewhere (a parser's reason, a host's fault string) so it stays one line.
std::string printable(std::string_view s);

}  // namespace ceso
