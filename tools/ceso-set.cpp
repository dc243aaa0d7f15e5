// ceso-set — reconfigure VMs: CPUs, memory, first-disk growth, network, tags,
// annotation, guestinfo. One ReconfigVM_Task per VM carrying every change;
// nothing is sent when the VM already is as asked ("changed": false).
#include <algorithm>
#include <memory>

#include "cli/endpoint.hpp"
#include "cli/tool.hpp"
#include "config/config.hpp"
#include "safety/policy.hpp"
#include "vm/provision.hpp"
#include "vm/spec.hpp"
#include "vm/vm.hpp"
#include "vm/writer.hpp"
#include "vsphere/client.hpp"

namespace {

const ceso::ToolSpec kSpec{
    "ceso-set",
    "Reconfigure VMs: CPUs, memory, disk growth, network, tags, annotation, guestinfo.",
    "[OPTION]... [VM]...",
    {
        {"cpus", 'c', "N", "number of virtual CPUs (VM must be off)"},
        {"memory", 'm', "SIZE", "memory: MiB, or with a unit (512M, 2G) (VM must be off)"},
        {"disk-grow", 0, "SIZE", "grow the first disk to SIZE, or by +SIZE (GiB by default)"},
        {"network", 0, "PORTGROUP", "connect every NIC to this portgroup"},
        {"tag", 't', "+TAG|-TAG", "add (+TAG or TAG) or remove (-TAG) a tag", ceso::kRepeatable},
        {"annotation", 0, "TEXT", "set the annotation (notes)"},
        {"guestinfo", 'g', "KEY=VALUE", "set guestinfo.KEY (empty VALUE removes it)",
         ceso::kRepeatable},
    },
    ceso::kConnection | ceso::kOutput | ceso::kDryRun | ceso::kJobs | ceso::kTransport,
    {},
    ceso::Complete::vm,
};

struct Settings {
  std::optional<int> cpus;
  std::optional<int64_t> memory_mib;
  std::optional<ceso::vmspec::DiskGrow> disk_grow;
  std::string network;
  std::vector<std::pair<bool, std::string>> tag_ops;  // add?, tag
  std::optional<std::string> annotation;
  std::vector<std::pair<std::string, std::string>> guestinfo;
};

Settings parse_settings(const ceso::Args& args) {
  Settings s;
  if (args.has("cpus")) s.cpus = static_cast<int>(args.get_int("cpus", 1, 1, 768));
  if (auto m = args.maybe("memory")) s.memory_mib = ceso::vmspec::parse_memory_mib(*m);
  if (auto g = args.maybe("disk-grow")) s.disk_grow = ceso::vmspec::parse_disk_grow(*g);
  s.network = args.get("network");
  for (const auto& t : args.all("tag")) {
    // Normalised like every tag (trimmed, lower case), so "-Protected"
    // removes a hand-set "PROTECTED" and "+Web" adds "web" once.
    std::string name = ceso::normalize_tag("tag", t);
    bool add = name.front() != '-';
    if (name.front() == '+' || name.front() == '-') name.erase(0, 1);
    if (name.empty()) ceso::usage_error("--tag: " + ceso::quote(t) + " is not +TAG or -TAG");
    s.tag_ops.emplace_back(add, ceso::normalize_tag("tag", name));
  }
  if (auto a = args.maybe_xml_text("annotation")) s.annotation = *a;
  for (const auto& kv : args.all("guestinfo")) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      ceso::usage_error("--guestinfo: " + ceso::quote(kv) + " is not KEY=VALUE");
    ceso::Args::check_xml_text("guestinfo", kv);
    std::string key = kv.substr(0, eq);
    if (key.rfind("guestinfo.", 0) != 0) key = "guestinfo." + key;
    s.guestinfo.emplace_back(key, kv.substr(eq + 1));
  }
  return s;
}

std::vector<std::string> paths() {
  std::vector<std::string> p = ceso::vm_record_paths();
  for (const auto& x : ceso::source_vm_paths())
    if (std::find(p.begin(), p.end(), x) == p.end()) p.push_back(x);
  return p;
}

// guestinfo keys of a guestinfo record on stdin.
std::vector<std::pair<std::string, std::string>> record_guestinfo(const ceso::Target& t) {
  auto gi = t.record.find("guestinfo");
  if (t.record.value("type", "") != "guestinfo" || gi == t.record.end()) return {};
  return ceso::guestinfo_pairs(*gi, t.origin);
}

struct Change {
  ceso::vmspec::ConfigSpec spec;
  ceso::ordered_json params = ceso::ordered_json::object();
  std::vector<std::string> needs_off;  // what asks for a powered-off VM
  std::vector<std::string> tags;
};

// `net`: --network as found on the VM's host (standard or distributed).
Change changes_for(const ceso::SourceVm& vm, const Settings& s, const ceso::vmspec::Network& net,
                   const std::vector<std::pair<std::string, std::string>>& guestinfo) {
  Change c;
  if (s.cpus && *s.cpus != vm.cpus) {
    c.spec.num_cpus = *s.cpus;
    c.params["cpus"] = *s.cpus;
    c.needs_off.push_back("CPUs");
  }
  if (s.memory_mib && *s.memory_mib != vm.memory_mib) {
    c.spec.memory_mib = *s.memory_mib;
    c.params["memory_mib"] = *s.memory_mib;
    c.needs_off.push_back("memory");
  }
  if (s.disk_grow && !vm.hardware.disks.empty()) {
    const auto& d = vm.hardware.disks.front();
    int64_t target = ceso::vmspec::grown_capacity(*s.disk_grow, d.capacity_bytes);
    if (target != d.capacity_bytes) {
      c.spec.device_changes.push_back(
          ceso::vmspec::device_change_xml("edit", "", ceso::vmspec::disk_resize_xml(d, target)));
      c.params["disk_capacity_bytes"] = target;
    }
  }
  if (!net.name.empty())
    for (const auto& n : vm.hardware.nics)
      if (!ceso::vmspec::nic_on(n, net)) {
        c.spec.device_changes.push_back(
            ceso::vmspec::device_change_xml("edit", "", ceso::vmspec::nic_network_xml(n, net)));
        c.params["network"] = net.name;
      }
  auto it = vm.extra_config.find("ceso.tags");
  c.tags = ceso::parse_tags(it == vm.extra_config.end() ? "" : it->second);
  std::vector<std::string> before = c.tags;
  for (const auto& [add, tag] : s.tag_ops) {
    auto pos = std::find(c.tags.begin(), c.tags.end(), tag);
    if (add && pos == c.tags.end()) c.tags.push_back(tag);
    if (!add && pos != c.tags.end()) c.tags.erase(pos);
  }
  if (c.tags != before) {
    std::string csv;
    for (const auto& t : c.tags) csv += (csv.empty() ? "" : ",") + t;
    c.spec.extra_config.emplace_back("ceso.tags", csv);
    c.params["tags"] = c.tags;
  }
  if (s.annotation && *s.annotation != vm.annotation) {
    c.spec.annotation = *s.annotation;
    c.params["annotation"] = *s.annotation;
  }
  for (const auto& [k, v] : guestinfo) {
    auto cur = vm.extra_config.find(k);
    if ((cur == vm.extra_config.end() && v.empty()) ||
        (cur != vm.extra_config.end() && cur->second == v))
      continue;
    c.spec.extra_config.emplace_back(k, v);
    c.params["guestinfo_keys"].push_back(k);
  }
  return c;
}

ceso::Exit run(const ceso::Args& args) {
  Settings s = parse_settings(args);
  size_t jobs = static_cast<size_t>(args.get_int("jobs", 1, 1, 64));
  ceso::Output out(
      args, {"name", "changed", "cpus", "memory_mib", "tags"}, [](const ceso::ordered_json& r) {
        return r.value("name", "") + ": " + (r.value("changed", false) ? "changed" : "unchanged");
      });
  ceso::Gate gate =
      ceso::tool_gate(args.has("dry-run"), [&](const ceso::ordered_json& plan) { out.emit(plan); });
  auto writers = ceso::vm_writers(args);
  ceso::Outcome outcome;
  // The VM's properties are read in the call that finds it (batched).
  ceso::VmLookup lookup{jobs, paths(), {"vm", "guestinfo"}};
  ceso::for_each_vm(
      args, outcome, lookup, [&](const ceso::Target& t, ceso::FoundVm& found, size_t) {
        ceso::vim::Client& c = *found.vm.client;
        ceso::ordered_json rec = ceso::vm_record(found.props, c.endpoint());
        ceso::SourceVm vm = ceso::source_vm_from(std::move(found.props));
        auto guestinfo = s.guestinfo;
        for (auto& kv : record_guestinfo(t)) guestinfo.push_back(std::move(kv));
        ceso::vmspec::Network net;
        if (!s.network.empty())
          net = ceso::find_network(c, vm.host, s.network, "the host of " + ceso::quote(vm.name));
        Change ch = changes_for(vm, s, net, guestinfo);
        if (!ch.needs_off.empty() && vm.power != "off") {
          std::string what;
          for (const auto& x : ch.needs_off) what += (what.empty() ? "" : " and ") + x;
          ceso::fail("VM " + ceso::quote(vm.name) + " is " + vm.power + "; changing " + what +
                     " needs it powered off (ceso-power off, then ceso-set again)");
        }
        bool changed = false;
        if (!ch.spec.empty()) {
          ceso::VmWriter& w = writers->for_client(c);
          if (w.transport() == ceso::Transport::ssh) {
            // Over SSH the .vmx is edited, which the host allows only while
            // the VM is off; what the .vmx cannot say is refused up front.
            ceso::vmx_changes(ch.spec);
            if (vm.power != "off")
              ceso::fail("VM " + ceso::quote(vm.name) + " is " + vm.power +
                         "; over SSH (free ESXi) its settings change only while it is off, by "
                         "editing its .vmx (ceso-power off, then ceso-set again)");
          }
          ceso::Mutation m{c.endpoint().id, vm.name, vm.ref.value, "ReconfigVM_Task", ch.params};
          m.transport = ceso::to_string(w.transport());
          m.params["spec"] = ch.spec.xml("spec");
          changed = gate.perform(m, [&] { w.reconfigure(vm.ref, ch.spec); });
          if (gate.dry_run()) {
            outcome.succeeded();
            return;
          }
        }
        if (changed) {
          if (ch.spec.num_cpus) rec["cpus"] = *ch.spec.num_cpus;
          if (ch.spec.memory_mib) rec["memory_mib"] = *ch.spec.memory_mib;
          rec["tags"] = ch.tags;
        }
        rec["changed"] = changed;
        // The guestinfo and documents of a guestinfo record were applied, not passed on.
        out.emit(ceso::pass_through(t.record, rec,
                                    ceso::vm_owned_fields({"changed", "guestinfo", "documents"})));
        outcome.succeeded();
      });
  out.finish();
  return outcome.exit_code();  // run_tool makes an unaudited change exit 1
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
