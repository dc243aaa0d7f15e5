#include "ceso/cli.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ceso/error.hpp"
#include "ceso/numbers.hpp"

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
const Option kOutputOptions[] = {
    {"json", 0, "", "print NDJSON records even on a terminal"},
    {"output", 'o', "FIELDS", "only these comma-separated fields/columns"},
};
const Option kDryRunOption{"dry-run", 'n', "", "print plan records; change nothing"};
const Option kJobsOption{"jobs", 'j', "N", "act on up to N VMs at once (default 1)"};

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
    case Complete::none: return "none";
    case Complete::file: return "file";
    case Complete::dir: return "dir";
    case Complete::vm: return "vm";
    case Complete::host: return "host";
    case Complete::choices: return "choices";
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

long Args::get_int(std::string_view name, long fallback, long min, long max) const {
  auto v = maybe(name);
  if (!v) return fallback;
  return static_cast<long>(parse_count(name, *v, min, max));  // one grammar for every count
}

void Args::add(std::string_view name, std::string value) {
  values_[std::string(name)].push_back(std::move(value));
}

std::vector<Option> effective_options(const ToolSpec& spec) {
  std::vector<Option> all(spec.options.begin(), spec.options.end());
  if (spec.common & kConnection) all.insert(all.end(), std::begin(kConnectionOptions), std::end(kConnectionOptions));
  if (spec.common & kOutput) all.insert(all.end(), std::begin(kOutputOptions), std::end(kOutputOptions));
  if (spec.common & kDryRun) all.push_back(kDryRunOption);
  if (spec.common & kJobs) all.push_back(kJobsOption);
  all.push_back(kQuiet);
  all.push_back(kHelp);
  all.push_back(kVersion);
  all.push_back(kDump);
  return all;
}

Args parse_args(const ToolSpec& spec, int argc, const char* const* argv) {
  const auto options = effective_options(spec);
  Args args;
  auto find_long = [&](std::string_view name) -> const Option* {
    for (const auto& o : options)
      if (o.name == name) return &o;
    return nullptr;
  };
  auto find_short = [&](char c) -> const Option* {
    for (const auto& o : options)
      if (o.short_name == c) return &o;
    return nullptr;
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
        if (i + 1 >= argc) usage_error("option '--" + std::string(body) + "' needs a value (" + std::string(o->arg) + ")");
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
        if (i + 1 >= argc) usage_error(std::string("option '-") + a[k] + "' needs a value (" + std::string(o->arg) + ")");
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

std::string help_text(const ToolSpec& spec) {
  std::ostringstream out;
  out << "Usage: " << spec.name << ' ' << spec.usage << "\n\n" << spec.summary << "\n";
  if (!spec.verbs.empty()) {
    out << "\nCommands:\n";
    for (const auto& v : spec.verbs) {
      std::string left = "  " + std::string(v.name);
      if (left.size() < 28) left.resize(28, ' ');
      else left += "  ";
      out << left << v.help << '\n';
    }
  }
  out << "\nOptions:\n";
  for (const auto& o : effective_options(spec)) {
    if (o.flags & kHidden) continue;
    std::string left = "  ";
    left += o.short_name ? std::string("-") + o.short_name + ", " : "    ";
    left += "--" + std::string(o.name);
    if (!o.arg.empty()) left += " " + std::string(o.arg);
    if (left.size() < 28) left.resize(28, ' ');
    else left += "\n" + std::string(28, ' ');
    out << left << o.help;
    if (!o.choices.empty()) out << " (" << split_choices_message(o.choices) << ")";
    if (o.flags & kRepeatable) out << " (repeatable)";
    out << '\n';
  }
  out << "\nSee " << spec.name << "(1) and ceso(7).\n";
  return out.str();
}

std::string dump_options(const ToolSpec& spec) {
  nlohmann::ordered_json j;
  j["name"] = spec.name;
  j["summary"] = spec.summary;
  j["operands"] = complete_name(spec.operands);
  j["verbs"] = nlohmann::ordered_json::array();
  for (const auto& v : spec.verbs) j["verbs"].push_back({{"name", v.name}, {"help", v.help}});
  j["options"] = nlohmann::ordered_json::array();
  for (const auto& o : effective_options(spec)) {
    if (o.flags & kHidden) continue;
    nlohmann::ordered_json e;
    e["name"] = o.name;
    e["short"] = o.short_name ? std::string(1, o.short_name) : std::string();
    e["arg"] = o.arg;
    e["help"] = o.help;
    e["repeatable"] = (o.flags & kRepeatable) != 0;
    e["complete"] = complete_name(o.complete);
    e["choices"] = o.choices;
    j["options"].push_back(std::move(e));
  }
  return j.dump(2) + "\n";
}

std::string_view version() { return CESO_VERSION; }

}  // namespace ceso
