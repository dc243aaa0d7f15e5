// Interim (h-free-prov): which transport writes for ceso-mkvm and ceso-clone
// until the selection of h-free-core (licence cached with the session,
// --transport) replaces it. Writes go over SSH when the endpoint names SSH
// access and the host's licence is the free one (edition "esxBasic").
#pragma once

#include <memory>

#include "config/config.hpp"
#include "transport/ssh.hpp"
#include "vsphere/client.hpp"

namespace ceso {

// Whether the host's licence forbids API writes (LicenseManager.licenses
// holds only the free edition). One RetrievePropertiesEx.
bool host_is_free_licensed(vim::Client& client);

// The SSH connection for writes on `client`'s host, or null when writes go
// over the API. Throws Error(usage) for a free host without SSH access.
std::unique_ptr<SshConnection> ssh_for_writes(vim::Client& client);

}  // namespace ceso
