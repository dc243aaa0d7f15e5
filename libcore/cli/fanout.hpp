// Fan-out: one read-only listing over several hosts at once (ceso-ls,
// ceso-host ls with `-H NAME` given several times, or `-H all`: every host of
// the config file). docs/design.md "Several hosts".
//
// The hosts are queried in parallel (a thread each, at most kFanOutThreads at
// once), each with its own vim::Client. Their records are written in the
// order the hosts were given, each host's records as that host returned them,
// as soon as the host and every host before it have answered. A host that
// fails is a warning naming it (config name and endpoint) and exit 4 at the
// end, the other hosts' records still written. When every host failed: their
// common code, or 1 when the codes differ (Outcome, docs/design.md).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/records.hpp"
#include "cli/options.hpp"
#include "cli/tool.hpp"
#include "config/config.hpp"

namespace ceso {

inline constexpr size_t kFanOutThreads = 16;

// The config names of a fan-out from the -H values as given: "all" is every
// name `config_names` returns (in file order). Nullopt when there is no
// fan-out (no -H, or one -H that is not "all"): the tool's single-host path.
// Throws Error(usage): "all" with no host in the config file, "all" with
// other -H values, a name given twice, an empty name.
std::optional<std::vector<std::string>> fan_out_names(
    const std::vector<std::string>& given,
    const std::function<std::vector<std::string>()>& config_names);

// The endpoints of a run's fan-out (nullopt: none, see fan_out_names), each
// resolved as `-H NAME` alone would be, all before any host is contacted.
// Throws Error(usage) for --url with several -H, an unknown name, and two
// names that are the same endpoint; otherwise what resolve_endpoint throws.
std::optional<std::vector<Endpoint>> fan_out_endpoints(
    const Args& args, const Environment& env = process_environment());

// Runs `list` for every endpoint (on worker threads; `list` must not share a
// vim::Client between calls) and emits the records through `out` in endpoint
// order. Returns the exit status (Outcome: 0, 4, or as above when all failed).
Exit fan_out(const std::vector<Endpoint>& endpoints, Output& out,
             const std::function<std::vector<ordered_json>(const Endpoint&)>& list);

}  // namespace ceso
