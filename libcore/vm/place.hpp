// Placement (ceso-place): which host and datastore a new VM fits best, over
// the hosts of one or several endpoints, accounting for what the run has
// already placed. docs/provisioning.md "Placement" states the rule.
//
// The capacity comes from two reads per endpoint: the host records
// (vm/host read_host_records, one RetrievePropertiesEx) and the VMs
// (read_place_vms, one RetrievePropertiesEx over the session's VM view):
// their host, power state, memory and its reservation, thin disks and tags.
// The decision itself (Placer) is pure: a unit test gives it hosts and specs.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/records.hpp"
#include "vsphere/client.hpp"

namespace ceso {

// What a VM already on a host takes from it (read_place_vms).
struct PlaceVm {
  std::string name;
  std::string host_id;  // HostSystem moref value ("" = not known)
  bool powered_on = false;
  int64_t memory_mib = 0;
  int64_t reservation_mib = 0;
  std::vector<std::string> tags;
  // Full provisioned size of each thin disk, by datastore name: what it may
  // still grow to (counted whole: see docs/provisioning.md).
  std::map<std::string, int64_t> thin_mib;
};

// One RetrievePropertiesEx over the VMs of the endpoint (the session's VM
// view): name, runtime.host, runtime.powerState, config.hardware.memoryMB,
// config.memoryAllocation.reservation, the disks and ceso.tags.
std::vector<PlaceVm> read_place_vms(vim::Client& client);
// The same from the objects of that call (exposed for tests).
PlaceVm place_vm(const vim::ObjectContent& vm);
const std::vector<std::string>& place_vm_paths();

// One datastore of an endpoint as the placement sees it.
struct PlaceDatastore {
  std::string name;
  int64_t capacity_mib = 0;
  int64_t free_mib = 0;         // as the host reports it
  int64_t thin_growth_mib = 0;  // thin disks of existing VMs on it, full size
  int64_t placed_mib = 0;       // taken by the specs placed in this run
  std::string unusable;         // why nothing goes here ("" = usable)
  int64_t available_mib() const { return free_mib - thin_growth_mib - placed_mib; }
};

// One ESXi host.
struct PlaceHost {
  std::string endpoint;     // endpoint id, the records' `endpoint`
  std::string config_name;  // -H name, for messages ("" = none)
  std::string name;         // HostSystem name
  std::string id;           // HostSystem moref value
  int64_t memory_mib = 0;
  int64_t memory_used_mib = 0;      // quickStats.overallMemoryUsage
  int64_t memory_reserved_mib = 0;  // reservations of its powered-on VMs
  int64_t placed_memory_mib = 0;    // specs placed on it in this run
  int64_t cpu_cores = 0;
  int64_t cpu_capacity_mhz = 0;
  int64_t cpu_used_mhz = 0;
  int64_t placed_cpus = 0;                                 // vCPUs of the specs placed in this run
  std::vector<std::string> datastores;                     // names on its endpoint
  std::string unusable;                                    // why no VM goes here ("" = usable)
  std::map<std::string, std::vector<std::string>> tagged;  // tag → VMs on it
  // Free memory: capacity − max(in use, reserved) − placed in this run.
  int64_t memory_available_mib() const;
  std::string label() const;  // "'a' localhost.localdomain" for messages
};

// What is to be placed.
struct PlaceSpec {
  std::string name;
  std::string origin;  // "<stdin>:3", "argument 1"
  int64_t cpus = 1;
  int64_t memory_mib = 0;
  int64_t disk_mib = 0;
  std::vector<std::string> tags;  // normalised (parse_tags)
};

struct PlaceOptions {
  // Tags whose VMs go to different hosts; "*" = every tag.
  std::vector<std::string> anti_affinity;
  // When anti-affinity leaves no host, take the best host that breaks it
  // least (fewest shared tags), saying so, instead of failing the spec.
  bool force = false;
};

// Every host of the run and their datastores.
class Placer {
 public:
  explicit Placer(PlaceOptions options) : options_(std::move(options)) {}

  // The hosts of one endpoint from its host records (vm/host host_records)
  // and its VMs, in the order the endpoints were given. A host whose numbers
  // make no sense (no memory size, more in use than it has, no CPU), in
  // maintenance mode or not connected takes no VM: `unusable` says why; a
  // datastore likewise. Returns the hosts made unusable, for a warning each.
  std::vector<std::string> add_endpoint(const std::string& config_name,
                                        const std::vector<ordered_json>& host_records,
                                        const std::vector<PlaceVm>& vms);

  // Places `spec` (and counts what it takes) or explains why it fits
  // nowhere. The record fields: endpoint, host, host_id, datastore and the
  // `placement` object (ceso-place(1)). Throws Error(bad_input) for a name
  // placed earlier in this run, Error(partial) when it fits nowhere (the
  // message names every host and why), Error(failure) when the name is a VM
  // on two hosts.
  ordered_json place(const PlaceSpec& spec);

  const std::vector<PlaceHost>& hosts() const { return hosts_; }
  const PlaceDatastore* datastore(const std::string& endpoint, const std::string& name) const;

 private:
  struct Candidate;
  bool anti_tag(const std::string& tag) const;

  PlaceOptions options_;
  std::vector<PlaceHost> hosts_;
  std::map<std::pair<std::string, std::string>, PlaceDatastore> datastores_;
  std::map<std::string, std::vector<size_t>> existing_;  // decoded VM name → hosts
  std::map<std::string, std::string> placed_;            // decoded name → origin
};

}  // namespace ceso
