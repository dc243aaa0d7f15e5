// ceso-clone — cold clone of a configured VM, with re-IP: the clone's guestinfo
// is the source's with user-data kept and hostname, network (when given) and
// instance-id replaced, so cloud-init re-applies the network on first boot.
// Same copy path, rollback and dry-run as ceso-mkvm (provision.hpp,
// docs/provisioning.md).
#include <unistd.h>

#include <cstdio>
#include <optional>

#include "base/progress.hpp"
#include "cli/cloudinit_options.hpp"
#include "cli/endpoint.hpp"
#include "cli/tool.hpp"
#include "cli/vm_options.hpp"
#include "cloudinit/cloudinit.hpp"
#include "cloudinit/netcfg.hpp"
#include "config/config.hpp"
#include "safety/policy.hpp"
#include "vm/lifecycle.hpp"
#include "vm/names.hpp"
#include "vm/pool.hpp"
#include "vm/provision.hpp"
#include "vm/vm.hpp"
#include "vm/writer.hpp"
#include "vsphere/client.hpp"

namespace {

// A clone keeps the source's tags unless --tag.
constexpr ceso::VmShapeDefaults kShape{.copies_disks = true, .keeps_tags = true, .powers_on = true};

ceso::ToolSpec make_spec() {
  ceso::ToolSpec spec{
      "ceso-clone",
      "Cold clone of a VM, with a new identity and network for cloud-init.",
      "[OPTION]... SOURCE NEWNAME",
      {
          {"stop-source", 0, "", "shut a running source down (VMware Tools), start it again after"},
          {"pool", 0, "PATH",
           "resource pool of the clone, as ceso-host pool ls prints it (default: the source's)"},
      },
      ceso::kConnection | ceso::kOutput | ceso::kDryRun | ceso::kTransport,
      {},
      ceso::Complete::vm,
  };
  for (const auto& o : ceso::vm_shape_options(kShape)) spec.options.push_back(o);
  for (const auto& o : ceso::cloudinit_flag_options()) spec.options.push_back(o);
  return spec;
}

const ceso::ToolSpec kSpec = make_spec();

// The clone's guestinfo: the source's documents with a new identity; network
// and user-data replaced only when flags describe them.
std::vector<std::pair<std::string, std::string>> clone_guestinfo(const ceso::SourceVm& src,
                                                                 const std::string& name,
                                                                 const ceso::Args& args,
                                                                 std::string* instance_id) {
  ceso::ordered_json fields = ceso::cloudinit_flag_fields(args);
  if (!fields.contains("hostname") && !fields.contains("fqdn")) {
    if (!ceso::is_host_label(name))
      ceso::usage_error("clone name " + ceso::quote(name) +
                        " is not a valid host name; give --hostname");
    fields["hostname"] = name;
  }
  ceso::GuestInfo gi = ceso::reidentified_guestinfo(
      src.extra_config, fields, *ceso::parse_encoding(args.get("encoding", "gzip+base64")));
  *instance_id = gi.instance_id;
  return gi.values;
}

ceso::Exit run(const ceso::Args& args) {
  if (args.operands.size() != 2) ceso::usage_error("give SOURCE and NEWNAME");
  const std::string& source = args.operands[0];
  const std::string& name = args.operands[1];
  ceso::check_vm_name(name, "NEWNAME", ceso::Exit::usage);
  const ceso::VmShape shape = ceso::vm_shape(args, kShape);
  if (args.has("pool")) ceso::split_pool_path(args.get("pool"), "--pool", ceso::Exit::usage);
  ceso::NewVm req = shape.vm;
  req.name = name;
  if (auto mac = args.maybe("mac")) req.macs.push_back(ceso::normalize_mac(*mac));
  const bool power_on = shape.power_on;
  const bool wait_ip = shape.wait_ip;
  const std::chrono::seconds timeout = shape.timeout;

  ceso::Output out(args, {"name", "changed", "power", "ip", "id"}, [](const ceso::ordered_json& r) {
    return r.value("name", "") + ": cloned from " + r.value("source", "");
  });
  ceso::Gate gate =
      ceso::tool_gate(args.has("dry-run"), [&](const ceso::ordered_json& plan) { out.emit(plan); });
  // Finding the source changes nothing: Ctrl-C cuts these calls at once.
  std::optional<ceso::ReadOnlyPhase> reading(std::in_place);
  ceso::VmLocator locator(ceso::endpoint_resolver(args));
  ceso::LocatedVm src_vm = locator.locate({source, ceso::ordered_json::object(), "argument 1"});
  ceso::vim::Client& c = *src_vm.client;
  for (const auto& vm : c.retrieve_all_vms({"name"}))
    if (ceso::same_vm_name(vm.text("name"), name))
      ceso::fail("a VM named " + ceso::quote(name) + " already exists on " + c.endpoint().id);
  ceso::SourceVm src = ceso::read_source_vm(c, src_vm.ref);
  auto writers = ceso::vm_writers(args);  // API, or SSH on a free-licensed host
  ceso::VmWriter& writer = writers->for_client(c);
  if (args.has("pool")) {  // there before anything is made
    std::vector<ceso::Pool> pools;
    req.pool = ceso::new_vm_pool(c, pools, args.get("pool"), src.pool, src.host,
                                 writer.transport() == ceso::Transport::ssh);
  }
  reading.reset();  // from here on, calls change things: they run to the end
  std::string instance_id;
  auto guestinfo = clone_guestinfo(src, name, args, &instance_id);
  req.extra_config = guestinfo;
  if (!req.tags) {
    auto t = src.extra_config.find("ceso.tags");
    if (t != src.extra_config.end()) req.tags = ceso::parse_tags(t->second);
  }

  auto gated = [&](const std::string& vm, const std::string& id) {
    return [&, vm, id](const std::string& op, const ceso::ordered_json& params,
                       const std::function<void()>& action) {
      ceso::Mutation m{c.endpoint().id, vm, id, op, params};
      m.transport = ceso::to_string(writer.transport());
      return gate.perform(m, action);
    };
  };
  bool restart = false;
  if (src.power == "on" && args.has("stop-source")) {
    restart = gated(src.name, src.ref.value)("ShutdownGuest", ceso::ordered_json::object(), [&] {
      ceso::set_power(writer, src.ref, ceso::PowerOp::shutdown, timeout, false);
    });
    if (restart) src = ceso::read_source_vm(c, src_vm.ref);
    if (gate.dry_run()) src.power = "off";  // the plan goes on as if it had stopped
  }
  auto start_source = [&] {
    if (restart)
      gated(src.name, src.ref.value)("PowerOnVM_Task", ceso::ordered_json::object(), [&] {
        ceso::set_power(writer, src.ref, ceso::PowerOp::on, timeout, false);
      });
  };
  ceso::Provisioned made;
  std::string ip;
  ceso::Progress progress(ceso::Progress::wanted());
  ceso::ProgressFn prog = [&](const std::string& label, int pct) { progress.percent(label, pct); };
  try {
    ceso::Provisioner p(c, writer, gated(name, ""), prog);
    made = p.create(src, req, ceso::plan_identity(src, req));
    start_source();
    restart = false;
    if (power_on)
      p.step("powering on", "PowerOnVM_Task", ceso::ordered_json::object(),
             [&] { p.power_on(made.vm, timeout); });
    if (wait_ip && !gate.dry_run())
      p.step("waiting for an IP address", "", {},
             [&] { ip = ceso::wait_for(c, made.vm, "ip", timeout); });
    p.commit();
  } catch (const ceso::Error&) {
    ceso::CleanupScope cleanup;  // after an interruption too: the source must run again
    try {
      start_source();
    } catch (const ceso::Error& e) {
      ceso::warn("could not start the source " + ceso::quote(src.name) + " again: " + e.what());
    }
    throw;
  }
  if (gate.dry_run()) return ceso::Exit::ok;
  auto objs = c.retrieve({made.vm}, ceso::vm_record_paths());
  if (objs.empty()) ceso::fail("the clone disappeared");
  ceso::ordered_json rec = ceso::vm_record(objs.front(), c.endpoint());
  if (!ip.empty()) rec["ip"] = ip;
  rec["changed"] = true;
  rec["source"] = src.name;
  rec["macs"] = made.macs;
  rec["instance_id"] = instance_id;
  out.emit(rec);
  out.finish();
  return ceso::Exit::ok;  // run_tool makes an unaudited change exit 1
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
