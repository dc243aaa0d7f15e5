// ceso-ls — list VMs as records, with filters.
//
// One PropertyCollector round trip over a container view, whatever the VM
// count (plus login and the view's creation on a cold session cache). With
// several -H (or -H all) the hosts are listed in parallel (cli/fanout).
#include <fnmatch.h>

#include <algorithm>

#include "cli/endpoint.hpp"
#include "cli/fanout.hpp"
#include "cli/tool.hpp"
#include "config/config.hpp"
#include "vm/names.hpp"
#include "vm/vm.hpp"
#include "vsphere/client.hpp"

namespace {

const ceso::ToolSpec kSpec{
    "ceso-ls",
    "List VMs as NDJSON records (a table on a terminal).",
    "[OPTION]...",
    {
        {"name", 0, "GLOB",
         "only VMs whose name matches the shell pattern ('a/b' also matches vSphere's 'a%2fb')"},
        {"tag", 't', "TAG", "only VMs with this tag (repeat: all of them)", ceso::kRepeatable},
        {"power", 'p', "STATE", "only VMs in this power state", 0, ceso::Complete::choices,
         "on off suspended"},
        {"guest", 0, "GLOB", "only VMs whose guest id matches (e.g. 'ubuntu*')"},
        {"no-sort", 0, "",
         "in the host's order, each record written as it arrives (memory stays flat)"},
    },
    ceso::kConnection | ceso::kHosts | ceso::kOutput,
};

bool matches(const ceso::ordered_json& vm, const ceso::Args& args) {
  auto glob = [](const std::string& pattern, const std::string& value) {
    return fnmatch(pattern.c_str(), value.c_str(), 0) == 0;
  };
  // vSphere returns '/', '\' and '%' escaped (vm/names.hpp): a pattern
  // matches the name as returned or, both decoded, as the user reads it. The
  // decoded pair is matched without backslash escapes, which a decoded '\'
  // would otherwise turn into one.
  if (auto n = args.maybe("name")) {
    const auto& name = vm["name"].get_ref<const std::string&>();
    if (!glob(*n, name) && fnmatch(ceso::decoded_vm_name(*n).c_str(),
                                   ceso::decoded_vm_name(name).c_str(), FNM_NOESCAPE) != 0)
      return false;
  }
  if (auto g = args.maybe("guest"); g && !glob(*g, vm["guest_id"].get<std::string>())) return false;
  if (auto p = args.maybe("power"); p && vm["power"] != *p) return false;
  for (const auto& t : args.all("tag"))
    if (!ceso::has_tag(vm["tags"], t)) return false;
  return true;
}

// One endpoint's VMs that pass the filters, sorted by name then id (not with
// --no-sort).
using Emit = std::function<void(ceso::ordered_json&&)>;

std::vector<ceso::ordered_json> list_vms(const ceso::Endpoint& ep, const ceso::Args& args,
                                         const Emit* direct) {
  ceso::vim::Client client(ep);
  // One VM's XML at a time (streamed), trimmed to what the record reads while
  // it is parsed; only the records are kept, to sort them (or, with
  // --no-sort and one host, none: each is handed to `direct` as it arrives).
  const bool sorted = !args.has("no-sort");
  std::vector<ceso::ordered_json> vms;
  client.for_each_vm(
      ceso::vm_record_paths(),
      [&](ceso::vim::ObjectContent&& o) {
        auto rec = ceso::vm_record(o, ep);
        if (!matches(rec, args)) return;
        if (!sorted && direct)
          (*direct)(std::move(rec));
        else
          vms.push_back(std::move(rec));
      },
      ceso::vm_record_filters());
  if (sorted) {
    // Each record's name and id looked up once, not at every comparison.
    struct Key {
      const std::string* name;
      const std::string* id;
      size_t at;
    };
    std::vector<Key> keys;
    keys.reserve(vms.size());
    for (size_t i = 0; i < vms.size(); ++i) {
      const ceso::ordered_json& vm = vms[i];
      keys.push_back(
          {&vm["name"].get_ref<const std::string&>(), &vm["id"].get_ref<const std::string&>(), i});
    }
    std::sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
      return std::tie(*a.name, *a.id) < std::tie(*b.name, *b.id);
    });
    std::vector<ceso::ordered_json> in_order;
    in_order.reserve(vms.size());
    for (const Key& k : keys) in_order.push_back(std::move(vms[k.at]));
    return in_order;
  }
  return vms;
}

ceso::Exit run(const ceso::Args& args) {
  ceso::ReadOnlyRun read_only;  // Ctrl-C cuts a call in flight: nothing to undo
  if (!args.operands.empty())
    ceso::usage_error("unexpected argument " + ceso::quote(args.operands.front()) +
                      " (use --name GLOB to filter by name)");
  for (const auto& t : args.all("tag")) ceso::normalize_tag("tag", t);  // refuse "" and "a,b"
  ceso::Output out(args, {"name", "power", "cpus", "memory_mib", "disks_gib", "ip", "tags", "id"});
  // Several -H, or -H all: every host in parallel, records in host order.
  if (auto eps = ceso::fan_out_endpoints(args)) {
    ceso::Exit code = ceso::fan_out(
        *eps, out, [&](const ceso::Endpoint& ep) { return list_vms(ep, args, nullptr); });
    out.finish();
    return code;
  }
  const Emit emit = [&](ceso::ordered_json&& rec) { out.emit(rec); };
  out.emit_all(list_vms(ceso::resolve_endpoint(args), args, &emit));
  out.finish();
  return ceso::Exit::ok;
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
