// Command-line handling shared by every tool.
//
// Each tool declares ONE table (ToolSpec). The same table drives argument
// parsing, --help, the shell completions (scripts/gen-completions reads
// `TOOL --dump-options`) and the man-page check (tests/cli/docs.bats checks
// every option appears in man/TOOL.1.scd).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ceso {

enum OptionFlags : unsigned {
  kRepeatable = 1u << 0,  // may be given several times; all values kept
  kHidden = 1u << 1,      // not in --help nor completions
};

// How a shell should complete an option's argument.
enum class Complete { none, file, dir, vm, host, choices };

struct Option {
  std::string_view name;     // long name without dashes: "dry-run"
  char short_name = 0;       // 'o', or 0
  std::string_view arg;      // metavariable ("FIELDS"); empty: a flag
  std::string_view help;     // one line
  unsigned flags = 0;
  Complete complete = Complete::none;
  std::string_view choices;  // space-separated; validated when non-empty
};

struct Verb {
  std::string_view name;
  std::string_view help;
};

// Groups of options many tools share; a tool picks the ones it needs.
enum CommonOptions : unsigned {
  kConnection = 1u << 0,  // --url, -H/--host
  kOutput = 1u << 1,      // --json, -o/--output
  kDryRun = 1u << 2,      // --dry-run
  kJobs = 1u << 3,        // -j/--jobs
};

struct ToolSpec {
  std::string_view name;     // "ceso-ls"
  std::string_view summary;  // "list VMs as records"
  std::string_view usage;    // "[OPTION]... [VM]..."
  std::vector<Option> options;
  unsigned common = 0;
  std::vector<Verb> verbs;       // subcommands, if any
  Complete operands = Complete::none;  // what positional arguments are
};

// The parsed command line.
class Args {
 public:
  bool has(std::string_view name) const;
  // Last value given (options given once), or `fallback`.
  std::string get(std::string_view name, std::string fallback = {}) const;
  std::optional<std::string> maybe(std::string_view name) const;
  // Every value, in order (repeatable options).
  const std::vector<std::string>& all(std::string_view name) const;
  // Integer value with range check; usage error names the option.
  long get_int(std::string_view name, long fallback, long min, long max) const;

  std::vector<std::string> operands;
  std::string verb;  // first operand when the tool has verbs and it names one

  void add(std::string_view name, std::string value);

 private:
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
};

// All options of a tool: its own table plus the common groups and the
// always-present --help/--version/--quiet.
std::vector<Option> effective_options(const ToolSpec& spec);

// Parse argv (without argv[0]). Throws Error(Exit::usage) naming the problem.
Args parse_args(const ToolSpec& spec, int argc, const char* const* argv);

std::string help_text(const ToolSpec& spec);
// JSON description of the table, for completion generators and doc checks.
std::string dump_options(const ToolSpec& spec);

// Version of the whole suite.
std::string_view version();

}  // namespace ceso
