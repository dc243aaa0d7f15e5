#include "cli/endpoint.hpp"

namespace ceso {

HostSelection host_selection(const Args& args) { return {args.maybe("url"), args.maybe("host")}; }

Endpoint resolve_endpoint(const Args& args, const Environment& env) {
  return resolve_endpoint(host_selection(args), env);
}

std::optional<Endpoint> resolve_endpoint_if_given(const Args& args, const Environment& env) {
  return resolve_endpoint_if_given(host_selection(args), env);
}

std::function<Endpoint()> endpoint_resolver(const Args& args) {
  return [given = host_selection(args)] { return resolve_endpoint(given); };
}

}  // namespace ceso
