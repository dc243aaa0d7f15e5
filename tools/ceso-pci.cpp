// ceso-pci — PCI passthrough: list the hosts' devices, enable or disable
// passthrough on the host, attach devices (or a GPU by vendor:device) to VMs
// and detach them.
//
//   ceso-pci ls --gpus --assignable
//   ceso-pci enable 0000:18:00.0                 # active after the host reboots
//   ceso-pci attach gpu01 --gpu 10de:1eb8 --mmio-gb 128
//   ceso-ls --tag gpu | ceso-pci detach --all
//
// ls and info print one `pci` record per device; enable/disable print the
// device's record again with "changed"; attach/detach print the VM's record
// with its "pci" devices and "changed".
#include <algorithm>
#include <memory>
#include <optional>

#include "cli/endpoint.hpp"
#include "cli/fanout.hpp"
#include "cli/tool.hpp"
#include "safety/policy.hpp"
#include "vm/hostcli.hpp"
#include "vm/lifecycle.hpp"
#include "vm/pci.hpp"
#include "vm/spec.hpp"
#include "vm/vm.hpp"
#include "vm/writer.hpp"

namespace {

ceso::ToolSpec make_spec() {
  using ceso::kDryRun;
  ceso::ToolSpec spec{
      "ceso-pci",
      "List PCI devices of hosts, enable passthrough, attach devices and GPUs to VMs.",
      "[OPTION]... ls|info|enable|disable|attach|detach [OPTION]... [ARG]...",
      {},
      ceso::kConnection | ceso::kOutput | ceso::kTransport,
      {
          {"ls",
           "list the hosts' PCI devices as records",
           {
               {"gpus", 0, "", "only display controllers (GPUs)"},
               {"assignable", 0, "", "only devices a VM can take now (active, unused)"},
               {"esxi", 0, "NAME", "only this ESXi host of a vCenter"},
           },
           ceso::kHosts,
           "[OPTION]..."},
          {"info",
           "print the record of devices given by address or read as pci records",
           {{"esxi", 0, "NAME", "the ESXi host of a vCenter the address is on"}},
           0,
           "[OPTION]... [ADDRESS]..."},
          {"enable",
           "enable passthrough of devices on the host (active after a reboot)",
           {
               {"esxi", 0, "NAME", "the ESXi host of a vCenter the addresses are on"},
               {"now", 0, "", "ask the host to apply it without a reboot"},
           },
           kDryRun,
           "[OPTION]... [ADDRESS]..."},
          {"disable",
           "disable passthrough of devices on the host",
           {
               {"esxi", 0, "NAME", "the ESXi host of a vCenter the addresses are on"},
               {"now", 0, "", "ask the host to apply it without a reboot"},
           },
           kDryRun,
           "[OPTION]... [ADDRESS]..."},
          {"attach",
           "attach a device or a GPU to powered-off VMs",
           {
               {"gpu", 0, "VENDOR:DEVICE", "any free device with these ids (dynamic DirectPath)"},
               {"mmio-gb", 0, "N",
                "GPUs: pciPassthru.64bitMMIOSizeGB (default 64; a power of two)"},
           },
           kDryRun,
           "[OPTION]... [VM]... ADDRESS | --gpu VENDOR:DEVICE [VM]..."},
          {"detach",
           "detach passthrough devices from powered-off VMs",
           {
               {"gpu", 0, "VENDOR:DEVICE", "the devices with these ids"},
               {"all", 'a', "", "every passthrough device"},
           },
           kDryRun,
           "[OPTION]... [VM]... ADDRESS | --gpu VENDOR:DEVICE | --all [VM]..."},
      },
      ceso::Complete::vm,
  };
  spec.per_verb_options = true;
  return spec;
}

const ceso::ToolSpec kSpec = make_spec();

const std::vector<std::string> kListColumns = {
    "host", "address", "ids", "class", "device", "passthrough.enabled", "passthrough.active", "vm"};

// ---- the host side: ls, info, enable, disable

struct Found {
  const ceso::HostPci* host = nullptr;
  const ceso::PciDevice* device = nullptr;
};

// The device at `address` on the host named `host` (any host when empty:
// then the address must be on exactly one).
Found find_device(const std::vector<ceso::HostPci>& hosts, const std::string& address,
                  const std::string& host) {
  Found f;
  int matches = 0;
  bool host_seen = host.empty();
  for (const auto& h : hosts) {
    if (!host.empty() && h.name != host) continue;
    host_seen = true;
    for (const auto& d : h.devices)
      if (d.id == address) f = {&h, &d}, ++matches;
  }
  if (!host_seen) ceso::fail("no host named " + ceso::quote(host) + " on this endpoint");
  if (matches == 0)
    ceso::fail("no PCI device " + address + (host.empty() ? "" : " on " + ceso::quote(host)) +
               " (ceso-pci ls lists them)");
  if (matches > 1)
    ceso::fail("PCI device " + address + " exists on " + std::to_string(matches) +
               " hosts: name one with --esxi");
  return f;
}

// An address from an operand, or address and host from a `pci` record.
std::pair<std::string, std::string> address_of(const ceso::Target& t, const ceso::Args& args) {
  std::string host = args.get("esxi");
  if (t.record.is_object() && !t.record.empty()) {
    const auto* a = ceso::field_at(t.record, "address");
    if (!a || !a->is_string())
      ceso::bad_input(t.origin + ": a pci record needs \"address\" (a string)");
    if (const auto* h = ceso::field_at(t.record, "host"); h && h->is_string() && host.empty())
      host = h->get<std::string>();
    try {
      return {ceso::parse_pci_address(a->get<std::string>(), t.origin + ": address"), host};
    } catch (const ceso::Error& e) {
      ceso::bad_input(e.what());  // a bad record, not a bad command line
    }
  }
  return {ceso::parse_pci_address(t.name, t.origin), host};
}

// The pci records of one endpoint's devices that pass the filters; `seen`:
// whether the --esxi host (if any) is on it.
std::vector<ceso::ordered_json> list_devices(ceso::vim::Client& c, const ceso::Args& args,
                                             bool& seen) {
  std::vector<ceso::ordered_json> out;
  std::string host = args.get("esxi");
  seen = host.empty();
  for (const auto& h : ceso::read_host_pci(c)) {
    if (!host.empty() && h.name != host) continue;
    seen = true;
    for (const auto& d : h.devices) {
      if (args.has("gpus") && !ceso::is_gpu_class(d.class_id)) continue;
      if (args.has("assignable") && !d.assignable()) continue;
      out.push_back(ceso::pci_record(d, c.endpoint().id));
    }
  }
  return out;
}

ceso::Exit list(const ceso::Args& args) {
  ceso::ReadOnlyRun read_only;
  ceso::Output out(args, kListColumns);
  // Several -H, or -H all: every endpoint in parallel, records in host order.
  if (auto eps = ceso::fan_out_endpoints(args)) {
    if (args.has("esxi"))
      ceso::usage_error("--esxi picks a host of one vCenter: give one -H with it");
    ceso::Exit code = ceso::fan_out(*eps, out, [&](const ceso::Endpoint& ep) {
      ceso::vim::Client c(ep);
      bool seen = true;
      return list_devices(c, args, seen);
    });
    out.finish();
    return code;
  }
  bool seen = true;
  ceso::vim::Client client(ceso::resolve_endpoint(args));
  for (const auto& r : list_devices(client, args, seen)) out.emit(r);
  out.finish();
  if (!seen) ceso::fail("no host named " + ceso::quote(args.get("esxi")) + " on this endpoint");
  return ceso::Exit::ok;
}

std::string host_line(const ceso::ordered_json& r) {
  if (r.value("type", "") == "plan") return ceso::plan_line(r);
  std::string line = r.value("host", "") + " " + r.value("address", "") + ": passthrough ";
  const auto& p = r["passthrough"];
  line += p.value("enabled", false) ? "enabled" : "disabled";
  if (p.value("reboot_needed", false)) line += " (active after the host reboots)";
  return line + (r.value("changed", false) ? "" : " (unchanged)");
}

ceso::Exit host_verb(const ceso::Args& args, ceso::VmLocator& locator, ceso::VmWriters& writers) {
  bool info = args.verb == "info";
  bool enable = args.verb == "enable";
  std::optional<ceso::ReadOnlyRun> read_only;
  if (info) read_only.emplace();
  ceso::Output out(args, kListColumns, info ? nullptr : host_line);
  ceso::Gate gate = ceso::tool_gate(args.has("dry-run") && !info,
                                    [&](const ceso::ordered_json& plan) { out.emit(plan); });
  std::map<std::string, std::vector<ceso::HostPci>> cache;  // by endpoint id
  ceso::Outcome outcome;
  ceso::for_each_target(
      args, outcome,
      [&](const ceso::Target& t) {
        auto [address, host] = address_of(t, args);
        ceso::vim::Client& c = locator.client_for(t);
        auto& hosts = cache[c.endpoint().id];
        if (hosts.empty()) hosts = ceso::read_host_pci(c);
        Found f = find_device(hosts, address, host);
        ceso::PciDevice d = *f.device;
        if (info) {
          out.emit(ceso::pass_through(t.record, ceso::pci_record(d, c.endpoint().id)));
          outcome.succeeded();
          return;
        }
        if (!d.capable)
          ceso::fail("PCI device " + d.id + " on " + ceso::quote(d.host) + " (" +
                     ceso::quote(d.device_name) +
                     ") cannot be passed through (the host reports it not capable)");
        bool now = args.has("now");
        bool changed = d.enabled != enable || (now && d.active != enable);
        if (changed) {
          // A free-licensed host: esxcli over SSH (vm/hostcli), the API there is read-only.
          ceso::VmWriter& writer = writers.for_client(c);
          bool ssh = writer.transport() == ceso::Transport::ssh;
          ceso::Mutation m{
              c.endpoint().id,
              "",
              "",
              "UpdatePassthruConfig",  // the same operation whatever the transport
              {{"host", d.host}, {"address", d.id}, {"enabled", enable}, {"apply_now", now}}};
          m.transport = ceso::to_string(writer.transport());
          if (!gate.perform(m, [&] {
                if (ssh)
                  ceso::run_esxcli(writer, ceso::esxcli_passthru_set(d.id, enable, now),
                                   "esxcli hardware pci pcipassthru set");
                else
                  ceso::update_passthru(c, f.host->passthru_system, {d.id}, enable, now);
              })) {
            outcome.succeeded();
            return;
          }
          hosts = ceso::read_host_pci(c);  // what the host says now
          d = *find_device(hosts, address, d.host).device;
        }
        ceso::ordered_json r = ceso::pci_record(d, c.endpoint().id);
        r["changed"] = changed;
        if (d.enabled != d.active)
          ceso::note(ceso::quote(d.host) + " " + d.id + ": passthrough " +
                     (enable ? "enabled" : "disabled") + "; it takes effect when the host reboots");
        out.emit(ceso::pass_through(t.record, r, {"changed"}));
        outcome.succeeded();
      },
      {"pci"});
  out.finish();
  return outcome.exit_code();
}

// ---- the VM side: attach, detach

const std::vector<std::string>& vm_paths() {
  static const std::vector<std::string> kPaths = [] {
    std::vector<std::string> p = ceso::vm_record_paths();
    for (const char* x :
         {"runtime.powerState", "runtime.host", "environmentBrowser", "config.hardware.device",
          "config.hardware.memoryMB", "config.memoryReservationLockedToMax", "config.extraConfig"})
      if (std::find(p.begin(), p.end(), x) == p.end()) p.emplace_back(x);
    return p;
  }();
  return kPaths;
}

struct Request : ceso::PassthroughRequest {
  bool all = false;  // detach: every device
};

std::string vm_line(const ceso::ordered_json& r) {
  if (r.value("type", "") == "plan") return ceso::plan_line(r);
  std::string line = r.value("name", "") + ": ";
  size_t n = r.contains("pci") ? r["pci"].size() : 0;
  line += std::to_string(n) + " passthrough device(s)";
  return line + (r.value("changed", false) ? "" : " (unchanged)");
}

ceso::vim::ObjectContent read_vm(const ceso::LocatedVm& vm) {
  auto objs = vm.client->retrieve({vm.ref}, vm_paths());
  if (objs.empty()) ceso::fail("VM " + ceso::quote(vm.name) + " vanished");
  return std::move(objs.front());
}

void require_off(const ceso::vim::ObjectContent& o, const ceso::LocatedVm& vm) {
  std::string power = ceso::power_word(o.text("runtime.powerState"));
  if (power != "off")
    ceso::fail("VM " + ceso::quote(vm.name) + " is " + (power == "on" ? "powered on" : power) +
               ": passthrough devices change only while it is off (ceso-power off first)");
}

void emit_vm(ceso::Output& out, const ceso::Target& t, const ceso::LocatedVm& vm, bool changed) {
  ceso::ordered_json rec = ceso::current_vm_record(vm);
  auto o = read_vm(vm);
  if (const auto* dev = o.prop("config.hardware.device"))
    rec["pci"] = ceso::vm_pci_json(ceso::vm_pci_devices(*dev));
  rec["changed"] = changed;
  static const std::vector<std::string> kOwned = ceso::vm_owned_fields({"pci", "changed"});
  out.emit(ceso::pass_through(t.record, rec, kOwned));
}

void attach(const Request& q0, ceso::Gate& gate, ceso::Output& out, const ceso::Target& t,
            const ceso::LocatedVm& vm, ceso::VmWriter& writer) {
  ceso::vim::Client& c = *vm.client;
  // Over SSH the device goes into the .vmx as a static backing: --gpu picks a
  // free matching device (docs/esxi.md, "Free-licensed hosts over SSH").
  bool ssh = writer.transport() == ceso::Transport::ssh;
  Request q = q0;
  q.static_only = ssh;
  auto o = read_vm(vm);
  const ceso::xml::Node* dev = o.prop("config.hardware.device");
  auto mine = dev ? ceso::vm_pci_devices(*dev) : std::vector<ceso::VmPciDevice>{};
  ceso::vim::MoRef host =
      o.prop("runtime.host") ? ceso::vim::moref_of(*o.prop("runtime.host")) : ceso::vim::MoRef{};
  // Already there: nothing to do (also while the VM is on).
  for (const auto& p : mine) {
    bool same = q.gpu ? (p.dynamic && std::count(p.allowed.begin(), p.allowed.end(), *q.gpu)) ||
                            (!p.dynamic && p.vendor_id == q.gpu->vendor &&
                             p.device_id == ceso::hex4(q.gpu->device))
                      : (!p.dynamic && p.id == q.address);
    if (same) return emit_vm(out, t, vm, false);
  }
  require_off(o, vm);
  ceso::vim::MoRef browser;
  if (const auto* b = o.prop("environmentBrowser")) browser = ceso::vim::moref_of(*b);
  ceso::AttachPlan plan = ceso::plan_attach(c, vm.ref, browser, host, q);
  ceso::Mutation m{c.endpoint().id, vm.name, vm.ref.value, "ReconfigVM_Task", plan.params};
  m.transport = ceso::to_string(writer.transport());
  if (!gate.perform(m, [&] {
        if (!ssh) return ceso::apply_attach(c, vm.ref, plan);
        writer.edit_vmx_file(vm.ref, [&](std::string_view vmx) {
          return ceso::vmx_attach_changes(vmx, plan.device, plan.system_id, plan.gpu, q.mmio_gb);
        });
      }))
    return;
  emit_vm(out, t, vm, true);
}

// Whether a .vmx entry is one of the devices detach removes (over SSH).
bool vmx_match(const Request& q, const ceso::VmxPassthrough& p) {
  if (q.all) return true;
  if (q.gpu) return !p.dynamic && p.ids && *p.ids == *q.gpu;
  return !p.dynamic && p.address == q.address;
}

void detach(const Request& q, ceso::Gate& gate, ceso::Output& out, const ceso::Target& t,
            const ceso::LocatedVm& vm, ceso::VmWriter& writer) {
  ceso::vim::Client& c = *vm.client;
  auto o = read_vm(vm);
  const ceso::xml::Node* dev = o.prop("config.hardware.device");
  auto mine = dev ? ceso::vm_pci_devices(*dev) : std::vector<ceso::VmPciDevice>{};
  std::vector<const ceso::VmPciDevice*> doomed;
  for (const auto& p : mine) {
    bool match =
        q.all || (q.gpu ? (p.dynamic && std::count(p.allowed.begin(), p.allowed.end(), *q.gpu)) ||
                              (!p.dynamic && p.vendor_id == q.gpu->vendor &&
                               p.device_id == ceso::hex4(q.gpu->device))
                        : (!p.dynamic && p.id == q.address));
    if (match) doomed.push_back(&p);
  }
  if (doomed.empty()) return emit_vm(out, t, vm, false);
  require_off(o, vm);
  ceso::vmspec::ConfigSpec spec;
  ceso::ordered_json removed = ceso::ordered_json::array();
  for (const auto* p : doomed) {
    spec.device_changes.push_back(
        ceso::vmspec::device_change_xml("remove", "", ceso::vmspec::node_xml(*p->node, "device")));
    removed.push_back(p->dynamic ? "dynamic" : p->id);
  }
  if (doomed.size() == mine.size()) {  // the last one: the MMIO settings go too
    auto extra = ceso::extra_config_map(o.prop("config.extraConfig"));
    for (const char* k : {"pciPassthru.use64bitMMIO", "pciPassthru.64bitMMIOSizeGB"})
      if (extra.count(k)) spec.extra_config.emplace_back(k, "");
  }
  ceso::Mutation m{
      c.endpoint().id, vm.name, vm.ref.value, "ReconfigVM_Task", {{"remove", removed}}};
  m.transport = ceso::to_string(writer.transport());
  if (!gate.perform(m, [&] {
        if (writer.transport() == ceso::Transport::ssh) {
          writer.edit_vmx_file(vm.ref, [&](std::string_view vmx) {
            std::vector<std::string> gone;
            auto changes = ceso::vmx_detach_changes(
                vmx, [&](const ceso::VmxPassthrough& p) { return vmx_match(q, p); }, gone);
            if (changes.empty())
              ceso::fail("the .vmx of VM " + ceso::quote(vm.name) +
                         " has no pciPassthruN entry for the device(s) the host lists (" +
                         removed.dump() + "); not edited");
            return changes;
          });
          return;
        }
        auto resp = c.call("ReconfigVM_Task", vm.ref, spec.xml("spec"));
        c.wait_for_task({"Task", resp.child_text("returnval")});
      }))
    return;
  emit_vm(out, t, vm, true);
}

ceso::Exit vm_verb(const ceso::Args& in, ceso::VmLocator& locator, ceso::VmWriters& writers) {
  ceso::Args args = in;
  Request q;
  if (auto g = args.maybe("gpu")) q.gpu = ceso::parse_pci_ids(*g), q.gpu_text = *g;
  q.all = args.has("all");
  if (args.has("mmio-gb"))
    q.mmio_gb = ceso::check_mmio_gb(args.get_int("mmio-gb", ceso::kDefaultMmioGiB, 1, 4096));
  if (q.gpu && q.all) ceso::usage_error("--gpu and --all exclude each other");
  if (!q.gpu && !q.all) {
    if (args.operands.empty())
      ceso::usage_error(
          args.verb + " needs a device ADDRESS (the last argument)" +
          (args.verb == "detach" ? ", --gpu VENDOR:DEVICE or --all" : " or --gpu VENDOR:DEVICE"));
    q.address = ceso::parse_pci_address(args.operands.back(), "ADDRESS");
    args.operands.pop_back();
  }
  ceso::Output out(args, {}, vm_line);
  ceso::Gate gate =
      ceso::tool_gate(args.has("dry-run"), [&](const ceso::ordered_json& plan) { out.emit(plan); });
  ceso::Outcome outcome;
  bool is_attach = args.verb == "attach";
  ceso::for_each_target(args, outcome, [&](const ceso::Target& t) {
    ceso::LocatedVm vm = locator.locate(t);
    ceso::VmWriter& writer = writers.for_client(*vm.client);
    if (is_attach)
      attach(q, gate, out, t, vm, writer);
    else
      detach(q, gate, out, t, vm, writer);
    outcome.succeeded();
  });
  out.finish();
  return outcome.exit_code();
}

ceso::Exit run(const ceso::Args& args) {
  static const std::vector<std::string> kVerbs = {"ls",      "info",   "enable",
                                                  "disable", "attach", "detach"};
  if (args.verb.empty()) {
    if (args.operands.empty())
      ceso::usage_error("missing command: ls, info, enable, disable, attach or detach");
    ceso::usage_error("unknown command " + ceso::quote(args.operands.front()) +
                      " (use ls, info, enable, disable, attach or detach)");
  }
  if (args.verb == "ls") {
    if (!args.operands.empty())
      ceso::usage_error("ls takes no arguments (filter with --gpus, --assignable, --esxi)");
    return list(args);
  }
  ceso::VmLocator locator(ceso::endpoint_resolver(args));
  auto writers = ceso::vm_writers(args);  // API, or SSH on a free-licensed host
  if (args.verb == "attach" || args.verb == "detach") return vm_verb(args, locator, *writers);
  return host_verb(args, locator, *writers);
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
