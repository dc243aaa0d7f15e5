// ceso-info — detailed records for VMs named as arguments or read as records.
//
// The record is the VM record of ceso-ls plus hardware, disks, NICs,
// CD-ROMs, the snapshot tree, VMware Tools state, IPs, annotation and the
// guestinfo keys (decoded with --decode). Unknown fields of an input record
// are kept.
#include "cli/tool.hpp"
#include "vm/vm.hpp"
#include "vsphere/client.hpp"

namespace {

const ceso::ToolSpec kSpec{
    "ceso-info",
    "Print detailed records for VMs named or read from standard input.",
    "[OPTION]... [VM]...",
    {
        {"decode", 'd', "", "decode encoded guestinfo values (gzip+base64, base64)"},
    },
    ceso::kConnection | ceso::kOutput,
    {},
    ceso::Complete::vm,
};

std::string summary_line(const ceso::ordered_json& r) {
  std::string line = r.value("name", "") + ": " + r.value("power", "") + ", " +
                     std::to_string(r.value("cpus", 0)) + " CPU, " +
                     std::to_string(r.value("memory_mib", 0)) + " MiB";
  for (const auto& d : r["disks"])
    line += "\n  disk  " + d.value("label", "") + "  " + ceso::cell_text(&d["capacity_gib"]) +
            " GiB " + d.value("provisioning", "") + "  " + d.value("file", "");
  for (const auto& n : r["nics"])
    line += "\n  nic   " + n.value("label", "") + "  " + n.value("type", "") + "  " +
            n.value("mac", "") + "  " + n.value("network", "");
  for (const auto& ip : r["ips"]) line += "\n  ip    " + ip.get<std::string>();
  std::function<void(const ceso::ordered_json&, int)> snaps = [&](const ceso::ordered_json& s,
                                                                  int depth) {
    line += "\n  snap  " + std::string(static_cast<size_t>(depth) * 2, ' ') + s.value("name", "") +
            (s.value("current", false) ? " (current)" : "") + "  " + s.value("created", "");
    for (const auto& c : s["children"]) snaps(c, depth + 1);
  };
  for (const auto& s : r["snapshots"]) snaps(s, 0);
  line += "\n  tools " + r["tools"].value("running", "") + " " + r["tools"].value("version", "");
  if (!r["tags"].empty()) line += "\n  tags  " + ceso::cell_text(&r["tags"]);
  for (const auto& [k, v] : r["guestinfo"].items()) {
    std::string value = v.is_string() ? v.get<std::string>() : v.dump();
    if (value.size() > 60) value = value.substr(0, 57) + "...";
    line += "\n  " + k + " = " + value;
  }
  return line;
}

ceso::Exit run(const ceso::Args& args) {
  ceso::ReadOnlyRun read_only;  // Ctrl-C cuts a call in flight: nothing to undo
  ceso::Output out(args, {}, summary_line);
  ceso::Outcome outcome;
  bool decode = args.has("decode");
  // The details are read in the call that finds the VMs, many at once.
  // The device list is trimmed to what the record shows while it is parsed.
  ceso::VmLookup lookup{
      .jobs = 1, .paths = ceso::vm_detail_paths(), .filters = ceso::vm_detail_filters()};
  ceso::for_each_vm(args, outcome, lookup, [&](const ceso::Target& t, ceso::FoundVm& vm, size_t) {
    ceso::ordered_json rec = ceso::vm_details(vm.props, vm.vm.client->endpoint(), decode);
    // Fields added upstream are kept; every vm field is the host's now.
    out.emit(ceso::pass_through(t.record, rec, ceso::vm_owned_fields()));
    outcome.succeeded();
  });
  out.finish();
  return outcome.exit_code();
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
