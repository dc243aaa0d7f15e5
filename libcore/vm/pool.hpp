// Resource pools (ceso-host pool, ceso-mkvm --pool): every pool of an
// endpoint with its allocation and runtime use, read in one
// RetrievePropertiesEx; CreateResourcePool with a full ResourceConfigSpec;
// Destroy_Task.
//
// Facts relied on (docs/esxi.md "Resource pools"): every compute resource (a
// standalone host, a cluster) has one root pool, named "Resources", that
// cannot be destroyed; ResourceAllocationInfo is reservation,
// expandableReservation, limit, shares (SharesInfo: shares, level) in that
// order, and CreateResourcePool refuses a spec that lacks any of the four in
// cpuAllocation or memoryAllocation (InvalidArgument); CPU counts in MHz,
// memory in MB (MiB); a limit of -1 is unlimited; Destroy_Task of a pool moves
// its VMs and child pools to its parent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/records.hpp"
#include "vsphere/client.hpp"

namespace ceso {

// One of cpuAllocation / memoryAllocation (ResourceAllocationInfo).
struct Allocation {
  int64_t reservation = 0;  // MHz or MiB
  bool expandable = true;
  int64_t limit = -1;            // -1: unlimited
  std::string level = "normal";  // low, normal, high, custom
  int64_t shares = 0;            // with level custom (the host computes the others)
};

// What `pool add` sends when a flag is not given: the vSphere Client's
// defaults for a new pool (no reservation, expandable, unlimited, normal).
inline Allocation default_allocation() { return {}; }

// The runtime use of one resource (ResourcePoolResourceUsage); null when the
// answer lacks a number.
struct PoolUsage {
  std::optional<int64_t> reservation_used, unreserved, overall, max;
};

struct Pool {
  vim::MoRef ref, parent, owner;
  std::string name;
  std::string path;                       // "Resources/prod/web"; the root: "Resources"
  std::string owner_name;                 // the compute resource
  bool cluster = false;                   // the owner is a ClusterComputeResource
  std::string host;                       // a standalone host's name ("" for a cluster)
  std::vector<vim::MoRef> hosts;          // the compute resource's hosts
  bool root = false;                      // the compute resource's root pool
  std::optional<Allocation> cpu, memory;  // nullopt: the answer lacked one
  PoolUsage cpu_use, memory_use;
  std::vector<vim::MoRef> vms;
  std::vector<std::string> children;  // the names of its child pools
};

// The <specSet> of the one call: from the root folder through datacenters,
// folders and compute resources to their hosts and pools.
std::string pool_spec(const vim::MoRef& root_folder);

// The pools from that call's objects, sorted by compute resource then path.
// Names are kept as the host sends them (a "/" in a name is %2f), so paths
// are unambiguous; a pool whose parent chain does not reach a compute
// resource (looping or cut answer) is left out.
std::vector<Pool> pools_from(const std::vector<vim::ObjectContent>& objects);

// Both, over the client.
std::vector<Pool> read_pools(vim::Client& client);

// The `pool` record.
ordered_json pool_record(const Pool& p, const std::string& endpoint);
const std::vector<std::string>& pool_columns();

// A pool path as the user gives it: "Resources/prod/web" or "prod/web" (the
// root's name may be left out); split into its names. Throws Error(`code`)
// naming `field` for an empty path or name, ".", "..", an empty part ("a//b",
// a trailing "/"), a name check_pool_name refuses, or more than 32 levels.
std::vector<std::string> split_pool_path(std::string_view path, std::string_view field, Exit code);

// A new pool's name: 1–80 characters of UTF-8 without control or formatting
// characters, no space at either end, and none of / \ % (vSphere stores them
// escaped as %2f %5c %25; ceso paths use "/").
inline constexpr size_t kMaxPoolNameChars = 80;
void check_pool_name(std::string_view name, std::string_view field, Exit code);

// The pool at `path` among `pools` of the compute resource `owner` (empty:
// any, but then the path must name a pool in only one of them). nullptr when
// there is none; Error(usage) when the path is ambiguous.
const Pool* find_pool(const std::vector<Pool>& pools, const std::vector<std::string>& path,
                      const std::string& owner_name);

// The pool at `path_text` (a path as split_pool_path takes it, `field` names
// it) in the compute resource of a VM: the one its pool `vm_pool` belongs
// to, else the one holding its host `vm_host` (a template has no pool).
// Error(usage) for a bad path, Error(failure) naming the compute resource
// when the pool is not there (or is in another one).
const Pool& pool_for_vm(const std::vector<Pool>& pools, std::string_view path_text,
                        std::string_view field, const vim::MoRef& vm_pool,
                        const vim::MoRef& vm_host);

// --pool of ceso-mkvm and ceso-clone: the pool a copy of a VM goes to,
// found with pool_for_vm (`pools` is read when empty, so a caller can keep
// it for the next VM). Over SSH (a free-licensed host, `over_ssh`) only the
// root pool: Error(failure) for another.
vim::MoRef new_vm_pool(vim::Client& c, std::vector<Pool>& pools, std::string_view path_text,
                       const vim::MoRef& vm_pool, const vim::MoRef& vm_host, bool over_ssh);

// Option values: --cpu-limit / --mem-limit "unlimited" or a number; shares
// "low", "normal", "high" or a number (custom). Error(usage) naming `option`.
int64_t parse_limit(std::string_view option, std::string_view text, bool memory);
void parse_shares(std::string_view option, std::string_view text, Allocation& a);
int64_t parse_reservation(std::string_view option, std::string_view text, bool memory);
bool parse_yes_no(std::string_view option, std::string_view text);
// Error(usage) naming `what` when a limit is below the reservation.
void check_allocation(const Allocation& a, std::string_view what);

// <spec> (ResourceConfigSpec) with all four fields of both allocations, in
// WSDL order.
std::string resource_config_spec_xml(const Allocation& cpu, const Allocation& memory);
ordered_json allocation_json(const Allocation& a);

// CreateResourcePool under `parent`; the new pool.
vim::MoRef create_pool(vim::Client& c, const vim::MoRef& parent, const std::string& name,
                       const Allocation& cpu, const Allocation& memory);
// Destroy_Task of the pool, waited for.
void destroy_pool(vim::Client& c, const vim::MoRef& pool);

}  // namespace ceso
