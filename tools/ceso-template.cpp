// ceso-template — check that a VM is fit to be a golden image.
//
// On a standalone ESXi host a "template" is a plain powered-off VM that new
// VMs are copied from (MarkAsTemplate is vCenter-only), so everything a
// clone would inherit matters: one `check` record per check, passed or not;
// exit 4 when any check fails.
#include <algorithm>

#include "cli/endpoint.hpp"
#include "cli/tool.hpp"
#include "vm/lifecycle.hpp"
#include "vm/vm.hpp"

namespace {

const ceso::ToolSpec kSpec{
    "ceso-template",
    "Check VMs named or read from standard input as golden images for ceso-mkvm/ceso-clone.",
    "[OPTION]... check [VM]...",
    {},
    ceso::kConnection | ceso::kOutput,
    {{"check", "print one check record per check of each VM"}},
    ceso::Complete::vm,
};

struct Check {
  const char* name;
  bool ok;
  std::string detail;
};

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

Check powered_off(const ceso::ordered_json& d) {
  std::string p = d["power"];
  return {"powered-off", p == "off", "power state " + p};
}

Check ubuntu_guest(const ceso::ordered_json& d) {
  std::string g = d["guest_id"];
  return {"ubuntu-64", g == "ubuntu64Guest",
          "guest id " + (g.empty() ? std::string("unset") : g) + " (want ubuntu64Guest)"};
}

Check tools_installed(const ceso::ordered_json& d) {
  std::string status = d["tools"].value("status", "");
  std::string vs = d["tools"].value("version_status", "");
  bool ok = !status.empty() && status != "toolsNotInstalled" && vs != "guestToolsNotInstalled";
  return {"tools-installed", ok,
          "tools status " + (status.empty() ? std::string("unknown") : status) +
              (ok ? "" : " (install open-vm-tools in the image)")};
}

Check has_disk(const ceso::ordered_json& d) {
  size_t n = d["disks"].size();
  return {"has-disk", n > 0, std::to_string(n) + " disk(s)"};
}

Check vmxnet3(const ceso::ordered_json& d) {
  std::vector<std::string> types;
  bool ok = !d["nics"].empty();
  for (const auto& n : d["nics"]) {
    types.push_back(n.value("type", ""));
    ok = ok && types.back() == "vmxnet3";
  }
  return {"vmxnet3-nic", ok, types.empty() ? "no NIC" : "NIC type(s) " + join(types)};
}

size_t count_snapshots(const ceso::ordered_json& tree) {
  size_t n = 0;
  for (const auto& s : tree) n += 1 + count_snapshots(s["children"]);
  return n;
}

Check no_snapshots(const ceso::ordered_json& d) {
  size_t n = count_snapshots(d["snapshots"]);
  return {"no-snapshots", n == 0, std::to_string(n) + " snapshot(s)"};
}

Check no_iso(const ceso::ordered_json& d) {
  std::vector<std::string> isos;
  for (const auto& c : d["cdroms"])
    if (c["iso"].is_string() && (c.value("connected", false) || c.value("start_connected", false)))
      isos.push_back(c["iso"].get<std::string>());
  return {"no-iso", isos.empty(),
          isos.empty() ? "no ISO connected" : "ISO connected: " + join(isos)};
}

// Guestinfo a clone would inherit: the source's instance-id (in the metadata)
// would make cloud-init skip the clone's first boot, and old user data would
// run again.
Check no_guestinfo(const ceso::ordered_json& d) {
  static const char* kInherited[] = {"guestinfo.metadata", "guestinfo.userdata",
                                     "guestinfo.vendordata"};
  std::vector<std::string> left;
  for (const char* k : kInherited)
    if (auto it = d["guestinfo"].find(k); it != d["guestinfo"].end() && *it != "")
      left.push_back(k);
  return {"no-guestinfo", left.empty(),
          left.empty() ? "no cloud-init guestinfo" : "left over: " + join(left)};
}

std::string check_line(const ceso::ordered_json& r) {
  return r.value("vm", "") + ": " + (r.value("ok", false) ? "ok    " : "FAIL  ") +
         r.value("check", "") + "  " + r.value("detail", "");
}

ceso::Exit run(const ceso::Args& args) {
  if (args.verb != "check") {
    if (args.operands.empty()) ceso::usage_error("missing command: check");
    ceso::usage_error("unknown command " + ceso::quote(args.operands.front()) + " (use check)");
  }
  ceso::ReadOnlyRun read_only;  // check only reads: Ctrl-C cuts a call in flight
  ceso::Output out(args, {}, check_line);
  ceso::Outcome outcome;
  bool any_failed = false;
  // The details are read in the call that finds the VMs, many at once.
  ceso::VmLookup lookup{
      .jobs = 1, .paths = ceso::vm_detail_paths(), .filters = ceso::vm_detail_filters()};
  ceso::for_each_vm(args, outcome, lookup, [&](const ceso::Target&, ceso::FoundVm& found, size_t) {
    const ceso::LocatedVm& vm = found.vm;
    ceso::ordered_json d = ceso::vm_details(found.props, vm.client->endpoint(), false);
    for (auto check : {powered_off, ubuntu_guest, tools_installed, has_disk, vmxnet3, no_snapshots,
                       no_iso, no_guestinfo}) {
      Check c = check(d);
      any_failed = any_failed || !c.ok;
      out.emit({{"type", "check"},
                {"endpoint", vm.client->endpoint().id},
                {"vm", vm.name},
                {"id", vm.ref.value},
                {"check", c.name},
                {"ok", c.ok},
                {"detail", c.detail}});
    }
    outcome.succeeded();
  });
  out.finish();
  ceso::Exit code = outcome.exit_code();
  return code == ceso::Exit::ok && any_failed ? ceso::Exit::partial : code;
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
