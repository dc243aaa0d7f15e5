// ceso-power — power VMs on, off, shut down, reboot, reset or suspend.
//
// Idempotent: a VM already in the wanted state is printed with
// "changed": false and no call is made. shutdown and reboot ask VMware Tools
// in the guest; --force falls back to a hard power-off (after --timeout) or a
// reset when Tools cannot do it.
#include <chrono>
#include <memory>

#include "cli/endpoint.hpp"
#include "cli/tool.hpp"
#include "safety/policy.hpp"
#include "vm/lifecycle.hpp"
#include "vm/vm.hpp"
#include "vm/writer.hpp"

namespace {

const ceso::ToolSpec kSpec{
    "ceso-power",
    "Power VMs named or read from standard input on, off, down, or reset them.",
    "[OPTION]... on|off|shutdown|reboot|reset|suspend [VM]...",
    {
        {"force", 'f', "",
         "shutdown: power off hard after --timeout or without Tools; reboot: reset without "
         "Tools; suspended VMs: power off"},
        {"timeout", 't', "SECONDS", "how long shutdown and --wait wait (default 120)"},
        {"wait", 'w', "", "after on, reset or reboot, wait until VMware Tools runs in the guest"},
    },
    ceso::kConnection | ceso::kOutput | ceso::kDryRun | ceso::kJobs | ceso::kTransport,
    {
        {"on", "power on (or resume a suspended VM)"},
        {"off", "power off hard"},
        {"shutdown", "shut the guest down through VMware Tools"},
        {"reboot", "reboot the guest through VMware Tools"},
        {"reset", "reset hard"},
        {"suspend", "suspend"},
    },
    ceso::Complete::vm,
};

std::string result_line(const ceso::ordered_json& r) {
  if (r.value("type", "") == "plan") return ceso::plan_line(r);
  return r.value("name", "") + ": " + r.value("power", "") +
         (r.value("changed", false) ? "" : " (unchanged)");
}

ceso::PowerOp op_from_args(const ceso::Args& args) {
  if (auto op = ceso::power_op_from(args.verb)) return *op;
  if (args.operands.empty())
    ceso::usage_error("missing action: on, off, shutdown, reboot, reset or suspend");
  ceso::usage_error("unknown action " + ceso::quote(args.operands.front()) +
                    " (use on, off, shutdown, reboot, reset or suspend)");
}

struct Settings {
  ceso::PowerOp op;
  bool force;
  bool wait;
  std::chrono::seconds timeout;
};

void power_one(const Settings& s, ceso::VmLocator& locator, ceso::VmWriters& writers,
               ceso::Gate& gate, ceso::Output& out, const ceso::Target& t) {
  ceso::LocatedVm vm = locator.locate(t);
  ceso::vim::Client& c = *vm.client;
  std::string state = ceso::vm_power(c, vm.ref);
  bool changed = false;
  std::string forced;
  if (!ceso::power_op_is_noop(s.op, state)) {
    ceso::check_power_op(s.op, state, s.force);
    ceso::Mutation m{c.endpoint().id,
                     vm.name,
                     vm.ref.value,
                     std::string(ceso::power_method(s.op)),
                     {{"action", ceso::to_string(s.op)}, {"force", s.force}}};
    if (s.op == ceso::PowerOp::shutdown) m.params["timeout_s"] = s.timeout.count();
    ceso::VmWriter& w = writers.for_client(c);
    m.transport = ceso::to_string(w.transport());
    std::string method;
    if (!gate.perform(
            m, [&] { changed = ceso::set_power(w, vm.ref, s.op, s.timeout, s.force, &method); }))
      return;  // dry run: the plan record says it all
    if (changed && method != m.operation) forced = method;
  }
  bool up =
      s.op == ceso::PowerOp::on || s.op == ceso::PowerOp::reset || s.op == ceso::PowerOp::reboot;
  if (s.wait && up) ceso::wait_for(c, vm.ref, "tools", s.timeout);
  // Read once the change is done: power, ip and the rest as they are now.
  ceso::ordered_json rec = ceso::current_vm_record(vm);
  if (!forced.empty()) rec["forced"] = forced;
  rec["changed"] = changed;
  out.emit(ceso::pass_through(t.record, rec, ceso::vm_owned_fields({"forced", "changed"})));
}

ceso::Exit run(const ceso::Args& args) {
  Settings s{op_from_args(args), args.has("force"), args.has("wait"),
             std::chrono::seconds(args.get_int("timeout", 120, 0, 86400))};
  size_t jobs = static_cast<size_t>(args.get_int("jobs", 1, 1, 64));
  ceso::Output out(args, {}, result_line);
  ceso::Gate gate =
      ceso::tool_gate(args.has("dry-run"), [&](const ceso::ordered_json& plan) { out.emit(plan); });
  auto writers = ceso::vm_writers(args);
  std::vector<std::unique_ptr<ceso::VmLocator>> locators;
  for (size_t i = 0; i < jobs; ++i)
    locators.push_back(std::make_unique<ceso::VmLocator>(ceso::endpoint_resolver(args)));
  ceso::Outcome outcome;
  ceso::for_each_target_parallel(args, outcome, jobs, [&](const ceso::Target& t, size_t worker) {
    power_one(s, *locators[worker], *writers, gate, out, t);
    outcome.succeeded();
  });
  out.finish();
  return outcome.exit_code();
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
