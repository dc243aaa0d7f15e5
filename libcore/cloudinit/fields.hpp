// The cloud-init fields: ONE table from which everything that lists them is
// derived, so adding a field touches one row (docs/cloudinit.md "Adding a
// field"):
//   - the spec record fields SpecReader accepts (spec_field_names, the NIC
//     field lists, the fields that cannot go with passed-through user-data);
//   - through cli/cloudinit_options.hpp, the option rows of ceso-cloudinit
//     and of the cloud-init flag group of ceso-mkvm, ceso-clone and
//     ceso-restore, hence their --help, --dump-options, the
//     completions and the man-page check, and flags → spec record fields;
//   - what a field changes when a copy of a VM is re-identified (clone,
//     restore): touches_user_data, touches_network.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/records.hpp"

namespace ceso {

// What a field describes, i.e. which guestinfo document it changes.
enum class FieldKind {
  identity,   // metadata: name, hostname, fqdn, instance-id
  network,    // the network config
  user_data,  // the user-data (#cloud-config keys, or the user's own file)
  metadata,   // other metadata keys (cleanup-guestinfo)
};

// Whether a network field belongs to one NIC, may be a default for every NIC
// in "nics", or is not a NIC field.
enum class NicScope { none, own, shared };

// What an option's value is, for its completion: free text, a file name, or
// one of `choices`.
enum class FieldValue { text, file, choices };

struct CloudInitField {
  std::string_view field;  // spec record name ("ssh_key"); the option is "--ssh-key"
  FieldKind kind;
  NicScope nic = NicScope::none;
  bool cloud_config = false;  // goes into the generated #cloud-config (so it cannot be
                              // combined with user-data that is passed through as is)
  bool record_only = false;   // no option ("nics": an array of objects)
  bool copy_tools = true;     // also a flag of ceso-mkvm, ceso-clone, ceso-restore
  // The option row (ceso-cloudinit). An empty `arg` makes a flag without a
  // value (true in the record); a repeatable option makes the record field
  // an array.
  std::string_view arg, help;
  bool repeatable = false;
  FieldValue value = FieldValue::text;
  std::string_view choices;
  std::string_view copy_help;  // help in the copy tools when it differs ("" = help)
};

// Every field, in option order (the order of --help).
const std::vector<CloudInitField>& cloudinit_fields();
// nullptr for a name that is not a field.
const CloudInitField* find_cloudinit_field(std::string_view field);
// "ssh_key" → "ssh-key".
std::string field_option_name(std::string_view field);

// True when a field changes the user-data or other metadata (user, keys,
// packages, files, cleanup…), false for identity/network fields only. An
// unknown field counts as user-data (it is rendered from the fields).
bool touches_user_data(const ordered_json& fields);
// True when a network field is given.
bool touches_network(const ordered_json& fields);

}  // namespace ceso
