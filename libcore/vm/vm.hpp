// VM records (docs/design.md "Records") built from PropertyCollector results, and
// finding the VM a record or a name refers to.
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/cancel.hpp"
#include "base/log.hpp"
#include "base/records.hpp"
#include "vm/names.hpp"
#include "vsphere/client.hpp"

namespace ceso {

// Property paths a VM record is built from.
const std::vector<std::string>& vm_record_paths();
// The `vm` record: id, name, uuid, power, cpus, memory_mib, disks_gib, ip,
// tags, guest_id, datastore, vmx (+ template on vCenter templates).
ordered_json vm_record(const vim::ObjectContent& vm, const Endpoint& ep);
// What of vm_record_paths' values vm_record reads, for a caller that builds
// nothing else from them (ceso-ls): the disks' capacities of the device list
// and the ceso.tags value of ExtraConfig. Applied while parsing
// (vim::ValueFilter), the rest of those values is never built.
const std::vector<vim::ValueFilter>& vm_record_filters();

// Property paths for the detailed record of ceso-info.
const std::vector<std::string>& vm_detail_paths();
// The vm record plus hardware, disks, nics, cdroms, snapshots, tools, ips,
// annotation and guestinfo keys. `decode` decodes encoded guestinfo values.
ordered_json vm_details(const vim::ObjectContent& vm, const Endpoint& ep, bool decode);
// What of vm_detail_paths' device list vm_details reads (the disks, NICs,
// CD-ROMs, disk controllers and PCI passthrough devices, and of them only the
// fields it prints), for a caller that builds nothing else from it
// (ceso-info, ceso-template check). The rest is never built.
const std::vector<vim::ValueFilter>& vm_detail_filters();

// Every field a `vm` record states about its VM: vm_record's (template
// included) and vm_details'. A tool that prints a vm record owns them all
// (pass_through, base/records.hpp): one it did not read this time is left
// out rather than passed on stale from its input. `results`: the tool's own
// result fields ("changed", "forced"…), owned as well, so an earlier stage's
// value of one the tool did not write this time is dropped too.
std::vector<std::string> vm_owned_fields(std::initializer_list<std::string_view> results = {});

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

// Who a VM is: its managed object id, name and BIOS uuid (config.uuid), as a
// record states them or as the host shows them. Empty when not known.
struct VmIdentity {
  std::string id;
  std::string name;
  std::string uuid;
};

// The identity a target asks for: an operand's name, or a record's id, name
// and uuid. A field present with a non-string value is bad input (exit 3);
// null counts as absent.
VmIdentity wanted_identity(const Target& target);

// Picks the VM a target means (ceso(7) RECORDS). Ids change when a VM is
// re-registered and are reused after a deletion; uuids stay with the VM;
// names move to whatever VM has them now. So:
//   - record with uuid: the VM with its id if that VM has the uuid (a rename
//     keeps the VM), else the one VM with its name AND its uuid (re-registered);
//   - record with id but no uuid (hand-written): the VM with that id if it
//     still has that name; no fallback, since nothing proves a VM found by
//     name is the one meant;
//   - a name alone (operand, or a record with neither id nor uuid): the one VM
//     of that name.
// Names compare in decoded form (same_vm_name). `by_id`: the VM with want.id,
// if any. `listing` lists every VM of the endpoint; called only when needed.
// A record that matches no VM this way throws Error(bad_input) naming
// `origin`, the record's id/name/uuid and what differed; a name that matches
// no VM or several throws Error(failure).
VmIdentity match_vm(const VmIdentity& want, const std::optional<VmIdentity>& by_id,
                    const std::function<std::vector<VmIdentity>()>& listing, bool from_record,
                    std::string_view origin, std::string_view endpoint);

// A VM found on a host.
struct LocatedVm {
  vim::Client* client = nullptr;
  vim::MoRef ref;
  std::string name;  // as the host has it now (after a rename: the new one)
  std::string uuid;  // config.uuid now
};

// A VM found by VmLocator::locate_batch, with the properties read in the
// call that checked its identity.
struct FoundVm {
  LocatedVm vm;
  vim::ObjectContent props;                       // the paths asked for, and name and config.uuid
  std::chrono::steady_clock::time_point checked;  // when the identity was read
};

// One target's outcome of locate_batch: the VM, or the error locate() would
// have thrown for it (Error, or whatever else a call threw).
struct LookupResult {
  std::optional<FoundVm> found;
  std::exception_ptr error;
};

// Finds the VMs that names and records refer to, by match_vm(). Keeps one
// Client per endpoint, so records from several hosts can share a pipe; a
// record's endpoint is used only if configured (endpoint_for_record), never
// replaced by the default one.
class VmLocator {
 public:
  // `default_endpoint` gives the endpoint of the command line, environment
  // or config (cli/endpoint.hpp endpoint_resolver); it is called once, when
  // a target first needs it.
  explicit VmLocator(std::function<Endpoint()> default_endpoint);
  ~VmLocator();

  // The endpoint of the command line / environment / config.
  vim::Client& default_client();
  // The client for a target: its record's endpoint, or the default when the
  // record has none. An endpoint that is not a string is bad input.
  vim::Client& client_for(const Target& target);
  // Throws Error as match_vm() does; costs one call when a record's id still
  // matches, else one listing of the endpoint's VMs per call.
  LocatedVm locate(const Target& target);
  // Many targets at once, each as locate() would find it, and `paths` of each
  // VM read in the same answer (name and config.uuid are always read). Per
  // endpoint: one RetrievePropertiesEx for every record id; when some target
  // needs a listing (a name, a stale id): one listing and one more
  // RetrievePropertiesEx for the VMs found in it. A failure is the failing
  // target's (a call that fails: every target it was for); the result is in
  // the order of `targets`. `filters` trim the values of `paths` as they are
  // parsed (vim::ValueFilter).
  std::vector<LookupResult> locate_batch(const std::vector<const Target*>& targets,
                                         const std::vector<std::string>& paths = {},
                                         const std::vector<vim::ValueFilter>& filters = {});

 private:
  std::function<Endpoint()> default_endpoint_;
  std::map<std::string, std::unique_ptr<vim::Client>> clients_;  // by endpoint id
  std::string default_id_;
};

}  // namespace ceso
