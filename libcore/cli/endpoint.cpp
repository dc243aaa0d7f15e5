#include "cli/endpoint.hpp"

namespace ceso {

HostSelection host_selection(const Args& args) {
  // Only the listings fan out (cli/fanout); any other use of -H names one
  // host, and a second -H must not silently replace the first.
  if (args.all("host").size() > 1)
    usage_error("-H is given " + std::to_string(args.all("host").size()) +
                " times: this talks to one host (ceso-ls, ceso-host ls and ceso-pci ls take "
                "several)");
  return {args.maybe("url"), args.maybe("host")};
}

Endpoint resolve_endpoint(const Args& args, const Environment& env) {
  return resolve_endpoint(host_selection(args), env);
}

std::optional<Endpoint> resolve_endpoint_if_given(const Args& args, const Environment& env) {
  return resolve_endpoint_if_given(host_selection(args), env);
}

std::function<Endpoint()> endpoint_resolver(const Args& args) {
  return [given = host_selection(args)] { return resolve_endpoint(given); };
}

TransportChoice transport_choice(const Args& args, const Environment& env) {
  std::string from = "--transport";
  std::optional<std::string> word = args.maybe("transport");
  if (!word) {
    word = env("CESO_TRANSPORT");
    from = "CESO_TRANSPORT";
  }
  if (!word) return TransportChoice::automatic;
  if (auto c = transport_choice_from(*word)) return *c;
  usage_error(from + ": " + quote(*word) + " is not a transport (use api, ssh or auto)");
}

std::unique_ptr<VmWriters> vm_writers(const Args& args) {
  return std::make_unique<VmWriters>(transport_choice(args), args.has("accept-new-host-key"));
}

}  // namespace ceso
