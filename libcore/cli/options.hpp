// Command-line handling shared by every tool.
//
// Each tool declares ONE table (ToolSpec). The same table drives argument
// parsing, --help, the shell completions (scripts/gen-completions reads
// `TOOL --dump-options`) and the man-page check (tests/cli/docs.bats checks
// every option appears in man/TOOL.1.scd). A tool with verbs may give each
// verb its own table (ToolSpec::per_verb_options): then the verb is found
// first and only its table parses; --help, the dump, the completions and the
// man-page check (each verb's item names its options) follow the verb.
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
  std::string_view name;  // long name without dashes: "dry-run"
  char short_name = 0;    // 'o', or 0
  std::string_view arg;   // metavariable ("FIELDS"); empty: a flag
  std::string_view help;  // one line
  unsigned flags = 0;
  Complete complete = Complete::none;
  std::string_view choices;  // space-separated; validated when non-empty
};

// A subcommand. In a tool with per-verb tables (ToolSpec::per_verb_options)
// `options` and `common` are this verb's own: with the tool's shared table
// they are everything the verb accepts; an option only another verb takes
// is a usage error naming the option and the verb.
struct Verb {
  std::string_view name;
  std::string_view help;
  std::vector<Option> options = {};
  unsigned common = 0;          // CommonOptions only this verb takes
  std::string_view usage = {};  // after "TOOL VERB ": "[OPTION]... [VM]..."
};

// Groups of options many tools share; a tool picks the ones it needs.
enum CommonOptions : unsigned {
  kConnection = 1u << 0,  // --url, -H/--host
  kOutput = 1u << 1,      // --json, -o/--output
  kDryRun = 1u << 2,      // --dry-run, --promotion
  kJobs = 1u << 3,        // -j/--jobs
  kTransport = 1u << 4,   // --transport, --accept-new-host-key (cli/endpoint.hpp vm_writers)
  kHosts = 1u << 5,       // with kConnection: -H repeatable, and `-H all` (cli/fanout.hpp)
};

struct ToolSpec {
  std::string_view name;     // "ceso-ls"
  std::string_view summary;  // "list VMs as records"
  std::string_view usage;    // "[OPTION]... [VM]..."
  std::vector<Option> options;
  unsigned common = 0;
  std::vector<Verb> verbs;             // subcommands, if any
  Complete operands = Complete::none;  // what positional arguments are
  // Each verb has its own table; `options`/`common` above are shared by all.
  bool per_verb_options = false;
  // The verb used when the first operand names none ("create"); empty: none.
  // Without a verb and without a default, every verb's options parse and the
  // tool itself must refuse the missing verb.
  std::string_view default_verb = {};
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
  // The last value of an option whose text goes to the host inside a SOAP
  // request (an annotation, a snapshot's name): a usage error naming the
  // option when XML cannot carry it (xml::escape: control characters, bytes
  // that are not UTF-8), before anything is done.
  std::optional<std::string> maybe_xml_text(std::string_view name) const;
  // The same check of one value of option `name` (a repeatable option's).
  static void check_xml_text(std::string_view name, std::string_view value);

  std::vector<std::string> operands;
  std::string verb;  // first operand when the tool has verbs and it names one
                     // (empty when the default verb applies)

  void add(std::string_view name, std::string value);

 private:
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
};

// All options of a tool: its own table plus the common groups and the
// always-present --help/--version/--quiet.
// With per-verb tables: the options of `verb` (its own, the shared ones and
// the fixed ones); an empty verb is the default verb, or, without one, the
// shared options only. Without per-verb tables `verb` is ignored.
std::vector<Option> effective_options(const ToolSpec& spec, std::string_view verb = {});
// Every option any verb accepts, each once (the table that fixes arity).
// Throws Error(failure) when the tables disagree: one long name with two
// arities or short names, or one short name for two long names.
std::vector<Option> all_options(const ToolSpec& spec);

// Parse argv (without argv[0]). Throws Error(Exit::usage) naming the problem.
Args parse_args(const ToolSpec& spec, int argc, const char* const* argv);

// `verb` empty: the overview (verbs, then the default verb's or the shared
// options); else that verb's usage and only its options.
std::string help_text(const ToolSpec& spec, std::string_view verb = {});
// JSON description of the table, for completion generators and doc checks.
std::string dump_options(const ToolSpec& spec);

}  // namespace ceso
