// ceso-wait — wait until VMs have an IP address, run VMware Tools, or are on
// or off.
//
// Prints each VM's record again once its condition holds (with the IP, power
// state or tools state brought up to date and "changed": false: waiting
// changes nothing), so `ceso-power on | ceso-wait --for ip | …` hands on only
// VMs that came up. A VM that times out is not printed.
#include <chrono>
#include <memory>

#include "cli/endpoint.hpp"
#include "cli/tool.hpp"
#include "vm/lifecycle.hpp"
#include "vm/vm.hpp"

namespace {

const ceso::ToolSpec kSpec{
    "ceso-wait",
    "Wait until VMs named or read from standard input have an IP, run Tools, or are on/off.",
    "[OPTION]... --for ip|tools|on|off [VM]...",
    {
        {"for", 'f', "WHAT", "what to wait for", 0, ceso::Complete::choices, ceso::kWaitConditions},
        {"timeout", 't', "SECONDS", "give up after this long, per VM (default 300)"},
    },
    ceso::kConnection | ceso::kOutput | ceso::kJobs,
    {},
    ceso::Complete::vm,
};

std::string result_line(const ceso::ordered_json& r) {
  const auto& w = r["waited"];
  std::string what = w.value("for", ""), value = w.value("value", "");
  return r.value("name", "") + ": " + (what == value ? what : what + " " + value);
}

ceso::Exit run(const ceso::Args& args) {
  ceso::ReadOnlyRun read_only;  // Ctrl-C cuts a call in flight: nothing to undo
  auto what = args.maybe("for");
  if (!what) ceso::usage_error("missing --for ip|tools|on|off");
  auto timeout = std::chrono::seconds(args.get_int("timeout", 300, 0, 7 * 86400));
  size_t jobs = static_cast<size_t>(args.get_int("jobs", 1, 1, 64));
  ceso::Output out(args, {}, result_line);
  ceso::Outcome outcome;
  ceso::for_each_vm(
      args, outcome, {jobs}, [&](const ceso::Target& t, ceso::FoundVm& found, size_t) {
        const ceso::LocatedVm& vm = found.vm;
        // The vm record comes with the poll that saw the condition: every vm
        // field is as fresh as `waited`, without a call of its own.
        ceso::ordered_json rec;
        std::string value = ceso::wait_for(*vm.client, vm.ref, *what, timeout, &rec);
        if (*what == "ip") rec["ip"] = value;
        if (*what == "on" || *what == "off") rec["power"] = value;
        rec["waited"] = {{"for", *what}, {"value", value}};
        rec["changed"] = false;
        static const std::vector<std::string> kOwned = ceso::vm_owned_fields({"waited", "changed"});
        out.emit(ceso::pass_through(t.record, rec, kOwned));
        outcome.succeeded();
      });
  out.finish();
  return outcome.exit_code();
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
