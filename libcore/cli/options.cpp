#include "cli/options.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/error.hpp"
#include "base/numbers.hpp"
#include "base/xml.hpp"

#ifndef CESO_VERSION
#define CESO_VERSION "0.0.0"
#endif

namespace ceso {

namespace {

const Option kHelp{"help", 'h', "", "show this help and exit"};
const Option kVersion{"version", 'V', "", "show the version and exit"};
const Option kQuiet{"quiet", 'q', "", "no progress or informational messages"};
const Option kDump{"dump-options", 0, "", "print the option table as JSON", kHidden};

const Option kConnectionOptions[] = {
    {"url", 0, "URL", "host or vCenter to talk to (overrides CESO_URL)", 0, Complete::none},
    {"host", 'H', "NAME", "a host named in the config file", 0, Complete::host},
};
const Option kManyHostsOption{"host",
                              'H',
                              "NAME",
                              "a host named in the config file (repeat: several hosts at once; "
                              "'all': every one)",
                              kRepeatable,
                              Complete::host};
const Option kOutputOptions[] = {
    {"json", 0, "", "print NDJSON records even on a terminal"},
    {"output", 'o', "FIELDS", "only these comma-separated fields/columns"},
};
const Option kDryRunOption{"dry-run", 'n', "", "print plan records; change nothing"};
const Option kPromotionOption{
    "promotion",   0, "FILE", "restricted mode: a promotion token (ceso-audit promote)", 0,
    Complete::file};
const Option kJobsOption{"jobs", 'j', "N", "act on up to N VMs at once (default 1)"};
const Option kTransportOptions[] = {
    {"transport", 0, "api|ssh|auto",
     "how changes are made: the vSphere API, SSH (free ESXi), or auto (default: SSH when the "
     "host's licence forbids API writes and SSH access is configured)"},
    {"accept-new-host-key", 0, "", "SSH: record an unknown host's key instead of refusing"},
};

std::string split_choices_message(std::string_view choices) {
  std::string s(choices);
  std::replace(s.begin(), s.end(), ' ', '|');
  return s;
}

bool in_choices(std::string_view choices, std::string_view value) {
  std::istringstream in{std::string(choices)};
  std::string c;
  while (in >> c)
    if (c == value) return true;
  return false;
}

const char* complete_name(Complete c) {
  switch (c) {
    case Complete::none:
      return "none";
    case Complete::file:
      return "file";
    case Complete::dir:
      return "dir";
    case Complete::vm:
      return "vm";
    case Complete::host:
      return "host";
    case Complete::choices:
      return "choices";
  }
  return "none";
}

}  // namespace

bool Args::has(std::string_view name) const { return values_.find(name) != values_.end(); }

std::string Args::get(std::string_view name, std::string fallback) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return fallback;
  return it->second.back();
}

std::optional<std::string> Args::maybe(std::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

const std::vector<std::string>& Args::all(std::string_view name) const {
  static const std::vector<std::string> kNone;
  auto it = values_.find(name);
  return it == values_.end() ? kNone : it->second;
}

void Args::check_xml_text(std::string_view name, std::string_view value) {
  try {
    xml::escape(value);
  } catch (const Error& e) {
    usage_error("--" + std::string(name) + ": " + e.what());
  }
}

std::optional<std::string> Args::maybe_xml_text(std::string_view name) const {
  auto value = maybe(name);
  if (value) check_xml_text(name, *value);
  return value;
}

long Args::get_int(std::string_view name, long fallback, long min, long max) const {
  auto v = maybe(name);
  if (!v) return fallback;
  return static_cast<long>(parse_count(name, *v, min, max));  // one grammar for every count
}

void Args::add(std::string_view name, std::string value) {
  values_[std::string(name)].push_back(std::move(value));
}

namespace {

void append_common(std::vector<Option>& all, unsigned common) {
  if (common & kConnection) {
    all.push_back(kConnectionOptions[0]);
    all.push_back(common & kHosts ? kManyHostsOption : kConnectionOptions[1]);
  }
  if (common & kOutput) all.insert(all.end(), std::begin(kOutputOptions), std::end(kOutputOptions));
  if (common & kDryRun) {
    all.push_back(kDryRunOption);
    all.push_back(kPromotionOption);
  }
  if (common & kJobs) all.push_back(kJobsOption);
  if (common & kTransport)
    all.insert(all.end(), std::begin(kTransportOptions), std::end(kTransportOptions));
}

void append_fixed(std::vector<Option>& all) {
  all.push_back(kQuiet);
  all.push_back(kHelp);
  all.push_back(kVersion);
  all.push_back(kDump);
}

const Verb* find_verb(const ToolSpec& spec, std::string_view name) {
  for (const auto& v : spec.verbs)
    if (v.name == name) return &v;
  return nullptr;
}

std::string dashed(const Option& o) { return "--" + std::string(o.name); }

}  // namespace

std::vector<Option> effective_options(const ToolSpec& spec, std::string_view verb) {
  const Verb* v = nullptr;
  if (spec.per_verb_options) v = find_verb(spec, verb.empty() ? spec.default_verb : verb);
  std::vector<Option> all;
  if (v) all.insert(all.end(), v->options.begin(), v->options.end());
  all.insert(all.end(), spec.options.begin(), spec.options.end());
  append_common(all, spec.common | (v ? v->common : 0u));
  append_fixed(all);
  return all;
}

std::vector<Option> all_options(const ToolSpec& spec) {
  std::vector<Option> all = effective_options(spec);
  auto add = [&](const Option& o) {
    for (const auto& a : all) {
      bool same_name = a.name == o.name;
      if (same_name && (a.arg.empty() != o.arg.empty() || a.short_name != o.short_name))
        throw Error(std::string(spec.name) + ": option table: " + dashed(o) +
                        " has two arities or short names",
                    Exit::failure);
      if (!same_name && o.short_name && a.short_name == o.short_name)
        throw Error(std::string(spec.name) + ": option table: -" + std::string(1, o.short_name) +
                        " names both " + dashed(a) + " and " + dashed(o),
                    Exit::failure);
      if (same_name) return;
    }
    all.push_back(o);
  };
  if (spec.per_verb_options)
    for (const auto& v : spec.verbs)
      for (const auto& o : effective_options(spec, v.name)) add(o);
  return all;
}

namespace {

// The verb the command line names: its first operand, when that is a verb.
// Options are skipped with the arity of the whole tool's table, so that
// `--as ls` is an option value, not the verb.
std::string_view scan_verb(const ToolSpec& spec, const std::vector<Option>& all, int argc,
                           const char* const* argv) {
  auto takes_value = [&](auto match) {
    for (const auto& o : all)
      if (match(o)) return !o.arg.empty();
    return false;  // unknown: the real parse names it
  };
  bool only_operands = false;
  for (int i = 0; i < argc; ++i) {
    std::string_view a = argv[i];
    if (only_operands || a.size() < 2 || a[0] != '-') {
      const Verb* v = find_verb(spec, a);
      return v ? v->name : std::string_view();
    }
    if (a == "--") {
      only_operands = true;
    } else if (a.substr(0, 2) == "--") {
      std::string_view body = a.substr(2);
      if (body.find('=') == std::string_view::npos &&
          takes_value([&](const Option& o) { return o.name == body; }))
        ++i;
    } else {
      for (size_t k = 1; k < a.size(); ++k) {
        if (takes_value([&](const Option& o) { return o.short_name == a[k]; })) {
          if (k + 1 == a.size()) ++i;
          break;
        }
      }
    }
  }
  return {};
}

// Usage error for an option that exists, but not for `verb`.
[[noreturn]] void not_for_verb(const ToolSpec& spec, std::string_view verb, std::string shown,
                               const Option& o) {
  std::string owners;
  for (const auto& v : spec.verbs)
    for (const auto& vo : effective_options(spec, v.name))
      if (vo.name == o.name) owners += (owners.empty() ? "" : ", ") + std::string(v.name);
  usage_error("option '" + shown + "' is not an option of '" + std::string(spec.name) + " " +
              std::string(verb) + "' (it is an option of: " + owners + ")");
}

}  // namespace

Args parse_args(const ToolSpec& spec, int argc, const char* const* argv) {
  // With per-verb tables the verb is found first; its table is the one
  // that parses. No verb and no default verb: every verb's options parse
  // and the tool refuses the missing verb itself.
  std::vector<Option> options = effective_options(spec);
  std::vector<Option> everything;
  std::string_view verb;
  if (spec.per_verb_options) {
    everything = all_options(spec);
    verb = scan_verb(spec, everything, argc, argv);
    if (verb.empty()) verb = spec.default_verb;
    options = verb.empty() ? everything : effective_options(spec, verb);
  }
  Args args;
  auto lookup = [&](auto match, std::string shown) -> const Option* {
    for (const auto& o : options)
      if (match(o)) return &o;
    for (const auto& o : everything)
      if (match(o)) not_for_verb(spec, verb, std::move(shown), o);
    return nullptr;
  };
  auto find_long = [&](std::string_view name) -> const Option* {
    return lookup([&](const Option& o) { return o.name == name; }, "--" + std::string(name));
  };
  auto find_short = [&](char c) -> const Option* {
    return lookup([&](const Option& o) { return o.short_name == c; }, std::string("-") + c);
  };
  auto store = [&](const Option& o, std::string value) {
    if (o.arg.empty()) value = "1";
    if (!o.choices.empty() && !in_choices(o.choices, value))
      usage_error("--" + std::string(o.name) + ": " + quote(value) + " is not one of " +
                  split_choices_message(o.choices));
    args.add(o.name, std::move(value));
  };

  bool only_operands = false;
  for (int i = 0; i < argc; ++i) {
    std::string_view a = argv[i];
    if (only_operands || a.size() < 2 || a[0] != '-') {
      args.operands.emplace_back(a);
      continue;
    }
    if (a == "--") {
      only_operands = true;
      continue;
    }
    if (a.substr(0, 2) == "--") {
      std::string_view body = a.substr(2);
      std::optional<std::string> inline_value;
      if (auto eq = body.find('='); eq != std::string_view::npos) {
        inline_value = std::string(body.substr(eq + 1));
        body = body.substr(0, eq);
      }
      const Option* o = find_long(body);
      if (!o) usage_error("unrecognized option '--" + std::string(body) + "'");
      if (o->arg.empty()) {
        if (inline_value) usage_error("option '--" + std::string(body) + "' takes no value");
        store(*o, "1");
      } else if (inline_value) {
        store(*o, *inline_value);
      } else {
        if (i + 1 >= argc)
          usage_error("option '--" + std::string(body) + "' needs a value (" + std::string(o->arg) +
                      ")");
        store(*o, argv[++i]);
      }
      continue;
    }
    // Short options, possibly bundled: -qn, -oname,power, -o name.
    for (size_t k = 1; k < a.size(); ++k) {
      const Option* o = find_short(a[k]);
      if (!o) usage_error(std::string("invalid option -- '") + a[k] + "'");
      if (o->arg.empty()) {
        store(*o, "1");
        continue;
      }
      if (k + 1 < a.size()) {
        store(*o, std::string(a.substr(k + 1)));
      } else {
        if (i + 1 >= argc)
          usage_error(std::string("option '-") + a[k] + "' needs a value (" + std::string(o->arg) +
                      ")");
        store(*o, argv[++i]);
      }
      break;
    }
  }
  if (!spec.verbs.empty() && !args.operands.empty()) {
    for (const auto& v : spec.verbs) {
      if (v.name == args.operands.front()) {
        args.verb = args.operands.front();
        args.operands.erase(args.operands.begin());
        break;
      }
    }
  }
  return args;
}

namespace {

std::string padded(std::string left) {
  if (left.size() < 28)
    left.resize(28, ' ');
  else
    left += "\n" + std::string(28, ' ');
  return left;
}

void option_lines(std::ostringstream& out, const std::vector<Option>& options) {
  for (const auto& o : options) {
    if (o.flags & kHidden) continue;
    std::string left = "  ";
    left += o.short_name ? std::string("-") + o.short_name + ", " : "    ";
    left += dashed(o);
    if (!o.arg.empty()) left += " " + std::string(o.arg);
    out << padded(std::move(left)) << o.help;
    if (!o.choices.empty()) out << " (" << split_choices_message(o.choices) << ")";
    if (o.flags & kRepeatable) out << " (repeatable)";
    out << '\n';
  }
}

nlohmann::ordered_json option_json(const std::vector<Option>& options) {
  auto arr = nlohmann::ordered_json::array();
  for (const auto& o : options) {
    if (o.flags & kHidden) continue;
    nlohmann::ordered_json e;
    e["name"] = o.name;
    e["short"] = o.short_name ? std::string(1, o.short_name) : std::string();
    e["arg"] = o.arg;
    e["help"] = o.help;
    e["repeatable"] = (o.flags & kRepeatable) != 0;
    e["complete"] = complete_name(o.complete);
    e["choices"] = o.choices;
    arr.push_back(std::move(e));
  }
  return arr;
}

}  // namespace

std::string help_text(const ToolSpec& spec, std::string_view verb) {
  std::ostringstream out;
  const Verb* v = spec.per_verb_options && !verb.empty() ? find_verb(spec, verb) : nullptr;
  if (v) {
    out << "Usage: " << spec.name << ' ' << v->name << ' ' << v->usage << "\n\n"
        << v->help << "\n\nOptions:\n";
    option_lines(out, effective_options(spec, v->name));
    out << "\nSee " << spec.name << "(1) and ceso(7).\n";
    return out.str();
  }
  out << "Usage: " << spec.name << ' ' << spec.usage << "\n\n" << spec.summary << "\n";
  if (!spec.verbs.empty()) {
    out << "\nCommands:\n";
    for (const auto& c : spec.verbs) {
      std::string left = "  " + std::string(c.name);
      if (left.size() < 28)
        left.resize(28, ' ');
      else
        left += "  ";
      out << left << c.help << '\n';
    }
  }
  if (!spec.per_verb_options)
    out << "\nOptions:\n";
  else if (!spec.default_verb.empty())
    out << "\nOptions of " << spec.default_verb << " (the default command):\n";
  else
    out << "\nOptions of every command:\n";
  option_lines(out, effective_options(spec));
  if (spec.per_verb_options)
    out << "\n'" << spec.name << " COMMAND --help' lists the options of COMMAND.\n";
  out << "\nSee " << spec.name << "(1) and ceso(7).\n";
  return out.str();
}

std::string dump_options(const ToolSpec& spec) {
  nlohmann::ordered_json j;
  j["name"] = spec.name;
  j["summary"] = spec.summary;
  j["operands"] = complete_name(spec.operands);
  if (spec.per_verb_options) {
    // "options" are those valid before (or without) a verb; each verb
    // carries the full table it accepts.
    j["per_verb_options"] = true;
    j["default_verb"] = spec.default_verb;
  }
  j["verbs"] = nlohmann::ordered_json::array();
  for (const auto& v : spec.verbs) {
    nlohmann::ordered_json e = {{"name", v.name}, {"help", v.help}};
    if (spec.per_verb_options) {
      e["usage"] = v.usage;
      e["options"] = option_json(effective_options(spec, v.name));
    }
    j["verbs"].push_back(std::move(e));
  }
  j["options"] = option_json(effective_options(spec));
  return j.dump(2) + "\n";
}

}  // namespace ceso
