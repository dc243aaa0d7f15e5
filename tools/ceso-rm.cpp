// ceso-rm — delete VMs and their disks, safely.
//
// Refuses a powered-on VM unless --force (which powers it off first), refuses
// a VM tagged `protected` unless --force, and asks on the terminal before
// each deletion unless --yes. Without a terminal and without --yes it refuses
// (exit 5): a script must say --yes explicitly.
#include <algorithm>
#include <memory>

#include "cli/endpoint.hpp"
#include "cli/tool.hpp"
#include "safety/policy.hpp"
#include "vm/lifecycle.hpp"
#include "vm/vm.hpp"
#include "vm/writer.hpp"

namespace {

const ceso::ToolSpec kSpec{
    "ceso-rm",
    "Delete VMs named or read from standard input, with their disks.",
    "[OPTION]... [VM]...",
    {
        {"force", 'f', "", "also delete powered-on (power off first) and protected VMs"},
        {"yes", 'y', "", "do not ask for confirmation"},
    },
    ceso::kConnection | ceso::kOutput | ceso::kDryRun | ceso::kJobs | ceso::kTransport,
    {},
    ceso::Complete::vm,
};

std::string result_line(const ceso::ordered_json& r) {
  if (r.value("type", "") == "plan") return ceso::plan_line(r);
  return r.value("name", "") + ": deleted";
}

struct Settings {
  bool force, yes, dry_run;
};

void check_allowed(const Settings& s, const ceso::ordered_json& now) {
  if (s.force) return;
  if (ceso::has_tag(now["tags"], "protected"))  // also "Protected", " PROTECTED"
    throw ceso::Error("refusing to delete a VM tagged 'protected'; pass --force to delete it",
                      ceso::Exit::policy);
  if (now["power"] != "off")
    throw ceso::Error(
        "refusing to delete a VM that is " +
            (now["power"] == "on" ? std::string("powered on") : now["power"].get<std::string>()) +
            "; power it off first, or pass --force",
        ceso::Exit::policy);
}

void remove_one(const Settings& s, ceso::VmLocator& locator, ceso::VmWriters& writers,
                ceso::Gate& gate, ceso::Output& out, const ceso::Target& t) {
  ceso::LocatedVm vm = locator.locate(t);
  ceso::vim::Client& c = *vm.client;
  ceso::ordered_json now = ceso::current_vm_record(vm);  // power state and tags
  check_allowed(s, now);
  bool ask = !s.yes && !s.dry_run && gate.mode() != ceso::Mode::restricted;
  if (ask && !ceso::confirm_on_terminal("Delete VM " + ceso::quote(vm.name) + " (" + vm.ref.value +
                                        ") and its disks on " + c.endpoint().id + "?"))
    throw ceso::Error("not deleted: confirmation declined", ceso::Exit::policy);
  std::string id = c.endpoint().id;
  ceso::VmWriter& w = writers.for_client(c);
  std::string transport(ceso::to_string(w.transport()));
  if (now["power"] != "off") {
    ceso::Mutation off{id,       vm.name, vm.ref.value, "PowerOffVM_Task", {{"action", "off"}},
                       transport};
    // The record printed shows the VM as it was deleted: read again once off.
    if (gate.perform(off, [&] { ceso::set_power(w, vm.ref, ceso::PowerOp::off, {}, true); }))
      now = ceso::current_vm_record(vm);
  }
  ceso::Mutation destroy{id,       vm.name, vm.ref.value, "Destroy_Task", {{"disks", "deleted"}},
                         transport};
  if (!gate.perform(destroy, [&] { ceso::destroy_vm(w, vm.ref); })) return;
  now["deleted"] = true;
  now["changed"] = true;
  out.emit(ceso::pass_through(t.record, now, ceso::vm_owned_fields({"deleted", "changed"})));
}

ceso::Exit run(const ceso::Args& args) {
  Settings s{args.has("force"), args.has("yes"), args.has("dry-run")};
  size_t jobs = static_cast<size_t>(args.get_int("jobs", 1, 1, 64));
  ceso::Output out(args, {}, result_line);
  ceso::Gate gate =
      ceso::tool_gate(s.dry_run, [&](const ceso::ordered_json& plan) { out.emit(plan); });
  auto writers = ceso::vm_writers(args);
  std::vector<std::unique_ptr<ceso::VmLocator>> locators;
  for (size_t i = 0; i < jobs; ++i)
    locators.push_back(std::make_unique<ceso::VmLocator>(ceso::endpoint_resolver(args)));
  ceso::Outcome outcome;
  ceso::for_each_target_parallel(args, outcome, jobs, [&](const ceso::Target& t, size_t worker) {
    remove_one(s, *locators[worker], *writers, gate, out, t);
    outcome.succeeded();
  });
  out.finish();
  return outcome.exit_code();
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
