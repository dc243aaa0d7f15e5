// ceso-mv — cold migration of a powered-off VM from one standalone ESXi host
// to another, host to host through their datastore HTTP endpoints (no local
// copy, no vCenter); the source is removed only once the target holds every
// file verified (sizes and SHA-256 re-read) and the VM is registered with the
// same identity. With --keep-source: a cross-host copy with a new identity
// and network, as ceso-clone makes (libcore/vm/migrate.hpp).
//
//   ceso-mv web01 --to esx2
//   ceso-ls --name 'web*' | ceso-mv --to esx2 --datastore ssd1
#include <memory>
#include <optional>

#include "base/progress.hpp"
#include "cli/cloudinit_options.hpp"
#include "cli/endpoint.hpp"
#include "cli/tool.hpp"
#include "cloudinit/cloudinit.hpp"
#include "config/config.hpp"
#include "safety/policy.hpp"
#include "vm/migrate.hpp"
#include "vm/names.hpp"
#include "vm/vm.hpp"
#include "vm/writer.hpp"
#include "vsphere/client.hpp"

namespace {

ceso::ToolSpec make_spec() {
  ceso::ToolSpec spec{
      "ceso-mv",
      "Move a powered-off VM to another standalone host, host to host, verified.",
      "[OPTION]... [VM]... --to HOST",
      {
          {"to", 't', "HOST",
           "the host to move to: a host of the config file (vCenter: one of its hosts)", 0,
           ceso::Complete::host},
          {"datastore", 'd', "DS",
           "datastore on the target (default: the one named as the source's)"},
          {"keep-source", 0, "", "copy instead of move: new identity and network, source kept"},
          {"as", 0, "NAME", "with --keep-source: the copy's name (required)"},
          {"no-verify", 0, "", "do not read the files back from the target before registering"},
          {"retries", 0, "N", "resume a cut download / restart a cut upload N times (default 3)"},
      },
      ceso::kConnection | ceso::kOutput | ceso::kDryRun | ceso::kTransport,
      {},
      ceso::Complete::vm,
  };
  for (const auto& o : ceso::cloudinit_flag_options()) spec.options.push_back(o);
  return spec;
}

const ceso::ToolSpec kSpec = make_spec();

std::string result_line(const ceso::ordered_json& r) {
  if (r.value("type", "") == "plan") return ceso::plan_line(r);
  if (r.contains("copied_from"))
    return r.value("name", "") + ": copied from " + r["copied_from"].value("endpoint", "") +
           " to " + r.value("endpoint", "");
  return r.value("name", "") + ": moved from " + r["moved_from"].value("endpoint", "") + " to " +
         r.value("endpoint", "");
}

ceso::Exit run(const ceso::Args& args) {
  auto to = args.maybe("to");
  if (!to || to->empty()) ceso::usage_error("give --to HOST, the host to move the VM to");
  ceso::MoveRequest req;
  req.datastore = args.get("datastore");
  req.keep_source = args.has("keep-source");
  req.verify = !args.has("no-verify");
  req.retries = static_cast<int>(args.get_int("retries", 3, 0, 100));
  ceso::ordered_json fields = ceso::cloudinit_flag_fields(args);
  if (req.keep_source) {
    auto as = args.maybe("as");
    if (!as) ceso::usage_error("--keep-source makes a copy: give its name with --as NAME");
    ceso::check_vm_name(*as, "--as", ceso::Exit::usage);
    req.new_name = *as;
    if (!fields.contains("hostname") && !fields.contains("fqdn")) {
      if (!ceso::is_host_label(*as))
        ceso::usage_error("--as " + ceso::quote(*as) +
                          " is not a valid host name; give --hostname");
      fields["hostname"] = *as;
    }
    req.cloudinit = fields;
    req.encoding = *ceso::parse_encoding(args.get("encoding", "gzip+base64"));
  } else {
    if (args.has("as")) ceso::usage_error("--as names a copy: give --keep-source with it");
    if (!fields.empty())
      ceso::usage_error("the cloud-init options re-identify a copy: give --keep-source with them");
  }

  ceso::Output out(args, {"name", "endpoint", "changed", "id"}, result_line);
  ceso::Gate gate =
      ceso::tool_gate(args.has("dry-run"), [&](const ceso::ordered_json& plan) { out.emit(plan); });
  // --to names a configured host (standalone source) or a host of the
  // source's vCenter; the former is resolved when a standalone source needs it.
  std::unique_ptr<ceso::vim::Client> target_client;
  auto target = [&]() -> ceso::vim::Client& {
    if (!target_client)
      target_client = std::make_unique<ceso::vim::Client>(ceso::resolve_endpoint(
          ceso::HostSelection{std::nullopt, *to}, ceso::process_environment()));
    return *target_client;
  };
  auto writers = ceso::vm_writers(args);
  ceso::Progress progress(ceso::Progress::wanted());
  ceso::Outcome outcome;
  ceso::for_each_vm(args, outcome, {1}, [&](const ceso::Target& t, ceso::FoundVm& vm, size_t) {
    ceso::vim::Client& source = *vm.vm.client;
    std::optional<ceso::ReadOnlyPhase> reading(std::in_place);
    if (source.content().is_vcenter()) {
      if (req.keep_source) ceso::usage_error("--keep-source is for standalone hosts");
      reading.reset();
      ceso::ordered_json rec = ceso::relocate_vm(source, vm.vm.ref, *to, req.datastore, gate);
      if (!rec.is_null())
        out.emit(ceso::pass_through(t.record, rec,
                                    ceso::vm_owned_fields({"changed", "moved_from", "host"})));
      outcome.succeeded();
      return;
    }
    ceso::VmWriter& writer = writers->for_client(source);
    ceso::VmWriter& target_writer = writers->for_client(target());
    ceso::MovePlan plan = ceso::plan_move(source, vm.vm.ref, target(), req,
                                          writer.transport() == ceso::Transport::ssh,
                                          target_writer.transport() == ceso::Transport::ssh);
    reading.reset();  // from here on, calls change things: they run to the end
    ceso::ordered_json rec =
        ceso::run_move(source, writer, target(), target_writer, plan, req, gate, progress);
    if (!rec.is_null())
      out.emit(ceso::pass_through(t.record, rec,
                                  ceso::vm_owned_fields({"changed", "moved_from", "copied_from",
                                                         "files", "macs", "instance_id"})));
    outcome.succeeded();
  });
  out.finish();
  return outcome.exit_code();
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
