// VM records (docs/design.md "Records") built from PropertyCollector results, and
// finding the VM a record or a name refers to.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ceso/records.hpp"
#include "ceso/tool.hpp"
#include "ceso/vim.hpp"

namespace ceso {

// Property paths a VM record is built from.
const std::vector<std::string>& vm_record_paths();
// The `vm` record: id, name, uuid, power, cpus, memory_mib, disks_gib, ip,
// tags, guest_id, datastore, vmx (+ template on vCenter templates).
ordered_json vm_record(const vim::ObjectContent& vm, const Endpoint& ep);

// Property paths for the detailed record of ceso-info.
const std::vector<std::string>& vm_detail_paths();
// The vm record plus hardware, disks, nics, cdroms, snapshots, tools, ips,
// annotation and guestinfo keys. `decode` decodes encoded guestinfo values.
ordered_json vm_details(const vim::ObjectContent& vm, const Endpoint& ep, bool decode);

// Tags compare case-insensitively (ASCII letters) and without surrounding
// blanks: "Protected" and " PROTECTED" in a hand-edited ExtraConfig are the
// tag "protected" (ceso(7) "Tags"). Tools write them normalised (lower case).
//
// "web, DB,,x,db" → {"web","db","x"}: trimmed, lower-cased, empty entries
// dropped, order kept, duplicates removed.
std::vector<std::string> parse_tags(std::string_view csv);
// A tag from the command line, normalised for writing and comparing: trimmed
// and lower-cased. Throws Error(usage) naming `option` for an empty tag or
// one with a comma (the separator in ceso.tags).
std::string normalize_tag(std::string_view option, std::string_view tag);
// Every tag of a repeated option normalised, duplicates dropped, order kept.
std::vector<std::string> normalize_tags(std::string_view option,
                                        const std::vector<std::string>& tags);
// Whether a record's "tags" array holds `tag`, compared as above.
bool has_tag(const ordered_json& tags, std::string_view tag);

// ExtraConfig (ArrayOfOptionValue) as key → value.
std::map<std::string, std::string> extra_config_map(const xml::Node* val);

// "on"/"off"/"suspended" from runtime.powerState.
std::string power_word(std::string_view power_state);

// A VM found on a host.
struct LocatedVm {
  vim::Client* client = nullptr;
  vim::MoRef ref;
  std::string name;
};

// Finds the VMs that names and records refer to. Keeps one Client per
// endpoint, so records from several hosts can share a pipe; a record is
// matched by endpoint+id, falling back to its name.
class VmLocator {
 public:
  explicit VmLocator(const Args& args);
  ~VmLocator();

  // The endpoint of the command line / environment / config.
  vim::Client& default_client();
  // The client for a target: its record's endpoint, or the default.
  vim::Client& client_for(const Target& target);
  // Throws Error naming the VM when it is not found or the name is ambiguous.
  LocatedVm locate(const Target& target);

 private:
  const Args& args_;
  std::map<std::string, std::unique_ptr<vim::Client>> clients_;  // by endpoint id
  std::string default_id_;
  // name → VMs, per endpoint, listed once per run.
  std::map<std::string, std::multimap<std::string, std::string>> names_;
  const std::multimap<std::string, std::string>& names_on(vim::Client& client);
};

}  // namespace ceso
