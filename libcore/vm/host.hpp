// ESXi hosts as records (ceso-host ls): one `host` record per HostSystem of
// an endpoint — product version and build, licence, CPU and memory capacity
// and use, datastores, maintenance and connection state, and on vCenter the
// cluster and the resource pools.
//
// Everything comes from one RetrievePropertiesEx (host_spec): a traversal
// from the root folder through datacenters, folders and compute resources to
// the hosts, their datastores and the resource pools; on a standalone host
// the LicenseManager's licences come in the same call (docs/esxi.md "Hosts").
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "base/records.hpp"
#include "vsphere/client.hpp"

namespace ceso {

// The <specSet> of that one call for this endpoint (`license_manager` empty:
// none read, as on vCenter, whose LicenseManager lists vCenter's own
// licences, not a host's).
std::string host_spec(const vim::MoRef& root_folder, const vim::MoRef& license_manager);

// The host records from that call's objects, sorted by host name then id.
// `vcenter`: the endpoint is a vCenter (licence not read: edition null, free
// false, since a free-licensed host cannot be managed by vCenter). Missing or
// malformed numbers become null; a datastore the answer does not describe
// (gone, or not readable by this user) is left out of the host's list.
std::vector<ordered_json> host_records(const std::vector<vim::ObjectContent>& objects,
                                       const std::string& endpoint_id, bool vcenter);

// Both, over the client: one RetrievePropertiesEx (plus its pages).
std::vector<ordered_json> read_host_records(vim::Client& client);

// The PropertyCollector spec of `paths` of every HostSystem below the root
// folder (through datacenters and compute resources), for one call.
std::string host_systems_spec(const vim::MoRef& root_folder,
                              std::initializer_list<const char*> paths);

// The HostSystems of the endpoint (a container view over the root folder,
// destroyed again): what ceso-pci and ceso-net read host by host.
std::vector<vim::MoRef> host_systems(vim::Client& c);

// Default table columns of host records.
const std::vector<std::string>& host_columns();

}  // namespace ceso
