// The host a tool run talks to, from its command line: --url and -H/--host
// turned into the library's HostSelection (config/config.hpp), so that no
// library layer ever sees the parsed command line (docs/architecture.md).
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "cli/options.hpp"
#include "config/config.hpp"
#include "vm/writer.hpp"

namespace ceso {

// --url and -H/--host as given (both may be absent; both given is refused by
// resolve_endpoint, as a usage error). -H given more than once (only the
// listings take it so, cli/fanout) is a usage error here.
HostSelection host_selection(const Args& args);

// resolve_endpoint / resolve_endpoint_if_given (config.hpp) for this run.
Endpoint resolve_endpoint(const Args& args, const Environment& env = process_environment());
std::optional<Endpoint> resolve_endpoint_if_given(const Args& args,
                                                  const Environment& env = process_environment());

// The same, deferred: for a VmLocator, which resolves the default endpoint
// only when a target first needs it (records may all name their own host).
std::function<Endpoint()> endpoint_resolver(const Args& args);

// --transport (else CESO_TRANSPORT, else auto): api, ssh or auto. Throws
// Error(usage) naming the option or variable for another value.
TransportChoice transport_choice(const Args& args, const Environment& env = process_environment());

// The VM writers of a run of a tool with kTransport (vm/writer.hpp):
// transport_choice and --accept-new-host-key.
std::unique_ptr<VmWriters> vm_writers(const Args& args);

}  // namespace ceso
