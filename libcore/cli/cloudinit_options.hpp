// The cloud-init fields (cloudinit/fields.hpp) as command-line options: the
// option rows derived from the one field table, and the parsed flags turned
// back into spec record fields.
#pragma once

#include <vector>

#include "base/records.hpp"
#include "cli/options.hpp"

namespace ceso {

// The option rows of ceso-cloudinit: every field's row, then --encoding.
const std::vector<Option>& cloudinit_tool_options();
// The cloud-init flag group of ceso-mkvm, ceso-clone and ceso-restore:
// the rows of copy_tools fields with their copy_help, then --encoding.
const std::vector<Option>& cloudinit_flag_options();
// The field flags given on the command line, as spec record fields (option
// name with '-' → '_'; repeatable options as arrays, flags as true).
ordered_json cloudinit_flag_fields(const Args& args);

}  // namespace ceso
