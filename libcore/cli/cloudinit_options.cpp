#include "cli/cloudinit_options.hpp"

#include "cloudinit/fields.hpp"

namespace ceso {

namespace {

Complete completion_of(FieldValue v) {
  switch (v) {
    case FieldValue::file:
      return Complete::file;
    case FieldValue::choices:
      return Complete::choices;
    case FieldValue::text:
      break;
  }
  return Complete::none;
}

// The table of cloudinit/fields.cpp.
const std::vector<CloudInitField>& table() { return cloudinit_fields(); }

// Not a spec field: how the documents are encoded, in both option groups.
constexpr Option kEncodingOption = {"encoding",
                                    0,
                                    "ENC",
                                    "encoding of the guestinfo values (default gzip+base64)",
                                    0,
                                    Complete::choices,
                                    "gzip+base64 base64 none"};

// Option names outlive every Option that points at them.
const std::vector<std::string>& option_names() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const auto& f : table()) names.push_back(field_option_name(f.field));
    return names;
  }();
  return kNames;
}

std::vector<Option> options_of(bool copy_tools) {
  std::vector<Option> out;
  const auto& fields = table();
  for (size_t i = 0; i < fields.size(); ++i) {
    const CloudInitField& f = fields[i];
    if (f.record_only || (copy_tools && !f.copy_tools)) continue;
    std::string_view help = copy_tools && !f.copy_help.empty() ? f.copy_help : f.help;
    out.push_back({option_names()[i], 0, f.arg, help, f.repeatable ? kRepeatable : 0u,
                   completion_of(f.value), f.choices});
  }
  out.push_back(kEncodingOption);
  return out;
}

}  // namespace

const std::vector<Option>& cloudinit_tool_options() {
  static const std::vector<Option> kOptions = options_of(false);
  return kOptions;
}

const std::vector<Option>& cloudinit_flag_options() {
  static const std::vector<Option> kOptions = options_of(true);
  return kOptions;
}

ordered_json cloudinit_flag_fields(const Args& args) {
  ordered_json fields = ordered_json::object();
  const auto& rows = table();
  for (size_t i = 0; i < rows.size(); ++i) {
    const CloudInitField& f = rows[i];
    const std::string& option = option_names()[i];
    if (f.record_only || !args.has(option)) continue;
    std::string key(f.field);
    if (f.arg.empty())
      fields[key] = true;
    else if (f.repeatable)
      fields[key] = args.all(option);
    else
      fields[key] = args.get(option);
  }
  return fields;
}

}  // namespace ceso
