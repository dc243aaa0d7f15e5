// ceso-host — the hosts of an endpoint as records.
//
//   ceso-host ls                   # one `host` record per ESXi host
//   ceso-host ls -o name,free,memory_used_mib,memory_mib
//   ceso-host ls -H all            # every host of the config file, in parallel
//
// One RetrievePropertiesEx per endpoint, however many hosts (plus login on a
// cold session cache): hosts, their datastores, compute resources, resource
// pools and, on a standalone host, its licence come in the same answer.
#include "cli/endpoint.hpp"
#include "cli/fanout.hpp"
#include "cli/tool.hpp"
#include "vm/host.hpp"
#include "vsphere/client.hpp"

namespace {

const ceso::ToolSpec kSpec{
    "ceso-host",
    "List the ESXi hosts of an endpoint as NDJSON records (a table on a terminal).",
    "[OPTION]... ls [OPTION]...",
    {},
    ceso::kConnection | ceso::kHosts | ceso::kOutput,
    {{"ls", "one host record per ESXi host: version, licence, CPU, memory, datastores, state"}},
};

ceso::Exit list(const ceso::Args& args) {
  ceso::ReadOnlyRun read_only;  // Ctrl-C cuts a call in flight: nothing to undo
  if (!args.operands.empty())
    ceso::usage_error("ls takes no arguments, got " + ceso::quote(args.operands.front()));
  ceso::Output out(args, ceso::host_columns());
  // Several -H, or -H all: every endpoint in parallel, records in host order.
  if (auto eps = ceso::fan_out_endpoints(args)) {
    ceso::Exit code = ceso::fan_out(*eps, out, [](const ceso::Endpoint& ep) {
      ceso::vim::Client client(ep);
      return ceso::read_host_records(client);
    });
    out.finish();
    return code;
  }
  ceso::vim::Client client(ceso::resolve_endpoint(args));
  for (const auto& r : ceso::read_host_records(client)) out.emit(r);
  out.finish();
  return ceso::Exit::ok;
}

ceso::Exit run(const ceso::Args& args) {
  if (args.verb.empty()) {
    if (args.operands.empty()) ceso::usage_error("missing command: ls");
    ceso::usage_error("unknown command " + ceso::quote(args.operands.front()) + " (use ls)");
  }
  return list(args);
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
