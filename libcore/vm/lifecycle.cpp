#include "vm/lifecycle.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "base/cancel.hpp"
#include "base/log.hpp"
#include "vm/vm.hpp"
#include "vm/writer.hpp"

namespace ceso {

namespace {

using Clock = std::chrono::steady_clock;

struct PowerOpInfo {
  PowerOp op;
  std::string_view word;
  std::string_view target;  // power state it leads to
  std::string_view method;  // the first vSphere call it makes
};

constexpr std::array<PowerOpInfo, 6> kPowerOps = {{
    {PowerOp::on, "on", "on", "PowerOnVM_Task"},
    {PowerOp::off, "off", "off", "PowerOffVM_Task"},
    {PowerOp::shutdown, "shutdown", "off", "ShutdownGuest"},
    {PowerOp::reboot, "reboot", "on", "RebootGuest"},
    {PowerOp::reset, "reset", "on", "ResetVM_Task"},
    {PowerOp::suspend, "suspend", "suspended", "SuspendVM_Task"},
}};

const PowerOpInfo& info_of(PowerOp op) {
  return *std::find_if(kPowerOps.begin(), kPowerOps.end(),
                       [op](const PowerOpInfo& i) { return i.op == op; });
}

// Starts a *_Task method and waits for it.
void run_task(vim::Client& c, std::string_view method, const vim::MoRef& self,
              std::string_view args = {}) {
  xml::Node resp = c.call(method, self, args);
  const xml::Node* rv = resp.child("returnval");
  if (!rv) throw Error(std::string(method) + " on " + c.endpoint().id + " returned no task");
  c.wait_for_task(vim::moref_of(*rv));
}

vim::ObjectContent read_vm(vim::Client& c, const vim::MoRef& vm,
                           const std::vector<std::string>& paths) {
  auto objs = c.retrieve({vm}, paths);
  if (objs.empty()) throw Error("VM " + vm.value + " no longer exists on " + c.endpoint().id);
  return std::move(objs.front());
}

bool tools_running(vim::Client& c, const vim::MoRef& vm) {
  return read_vm(c, vm, {"guest.toolsRunningStatus"}).text("guest.toolsRunningStatus") ==
         "guestToolsRunning";
}

// Polls the VM's properties until `done` returns a value or `timeout` passes.
// Backs off from 100 ms to 1 s between reads so a long wait costs few calls.
std::optional<std::string> poll_until(
    vim::Client& c, const vim::MoRef& vm, const std::vector<std::string>& paths,
    const std::function<std::optional<std::string>(const vim::ObjectContent&)>& done,
    std::chrono::seconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto delay = std::chrono::milliseconds(100);
  for (;;) {
    if (auto v = done(read_vm(c, vm, paths))) return v;
    throw_if_interrupted();
    auto now = Clock::now();
    if (now >= deadline) return std::nullopt;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(delay, deadline - now + std::chrono::milliseconds(1)));
    delay = std::min(delay * 2, std::chrono::milliseconds(1000));
  }
}

bool wait_power(vim::Client& c, const vim::MoRef& vm, std::string_view word,
                std::chrono::seconds timeout) {
  return poll_until(
             c, vm, {"runtime.powerState"},
             [&](const vim::ObjectContent& o) -> std::optional<std::string> {
               std::string p = power_word(o.text("runtime.powerState"));
               if (p == word) return p;
               return std::nullopt;
             },
             timeout)
      .has_value();
}

// Hard power-off, tolerating a guest that went down on its own meanwhile.
void power_off_hard(VmWriter& w, const vim::MoRef& vm) {
  try {
    w.power(vm, PowerOp::off);
  } catch (const vim::Fault& f) {
    if (f.fault_type() != "InvalidPowerState" || vm_power(w.client(), vm) != "off") throw;
  }
}

// Asks the guest's VMware Tools (ShutdownGuest/RebootGuest); false when Tools
// are not running, so the caller can fall back.
bool ask_tools(VmWriter& w, const vim::MoRef& vm, PowerOp op) {
  try {
    if (!tools_running(w.client(), vm)) return false;
    w.guest(vm, op);
    return true;
  } catch (const vim::Fault& f) {
    if (f.fault_type() != "ToolsUnavailable") throw;
    return false;
  }
}

std::string shutdown_guest(VmWriter& w, const vim::MoRef& vm, std::chrono::seconds timeout,
                           bool force) {
  vim::Client& c = w.client();
  if (vm_power(c, vm) == "suspended") {
    power_off_hard(w, vm);  // check_power_op let this through only with force
    return "PowerOffVM_Task";
  }
  if (!ask_tools(w, vm, PowerOp::shutdown)) {
    if (!force)
      fail(
          "VMware Tools is not running in the guest, so it cannot be shut down cleanly; "
          "use --force to power it off hard");
    power_off_hard(w, vm);
    return "PowerOffVM_Task";
  }
  if (wait_power(c, vm, "off", timeout)) return "ShutdownGuest";
  if (!force)
    fail("the guest did not shut down within " + std::to_string(timeout.count()) +
         " s; use --force to power it off hard after the timeout");
  power_off_hard(w, vm);
  return "PowerOffVM_Task";
}

// A guest's own reboot cannot be observed through the API (the VM stays on),
// so RebootGuest counts as done once Tools accepted it.
std::string reboot_guest(VmWriter& w, const vim::MoRef& vm, bool force) {
  if (ask_tools(w, vm, PowerOp::reboot)) return "RebootGuest";
  if (!force)
    fail(
        "VMware Tools is not running in the guest, so it cannot be rebooted cleanly; "
        "use --force to reset it");
  w.power(vm, PowerOp::reset);
  return "ResetVM_Task";
}

std::mutex g_tty_mutex;

}  // namespace

std::optional<PowerOp> power_op_from(std::string_view word) {
  for (const auto& i : kPowerOps)
    if (i.word == word) return i.op;
  return std::nullopt;
}

std::string_view to_string(PowerOp op) { return info_of(op).word; }
std::string_view target_power(PowerOp op) { return info_of(op).target; }
std::string_view power_method(PowerOp op) { return info_of(op).method; }

std::string vm_power(vim::Client& c, const vim::MoRef& vm) {
  return power_word(read_vm(c, vm, {"runtime.powerState"}).text("runtime.powerState"));
}

void check_power_op(PowerOp op, std::string_view state, bool force) {
  std::string what = state == "suspended" ? "suspended" : "powered " + std::string(state);
  bool ok = true;
  std::string hint;
  switch (op) {
    case PowerOp::reboot:
    case PowerOp::reset:
      ok = state == "on";
      hint = "; power it on instead";
      break;
    case PowerOp::suspend:
      ok = state != "off";
      break;
    case PowerOp::shutdown:
      ok = state != "suspended" || force;
      hint = "; VMware Tools cannot shut it down: use 'off', or --force";
      break;
    default:
      break;
  }
  if (!ok) fail("cannot " + std::string(to_string(op)) + " a VM that is " + what + hint);
}

bool power_op_is_noop(PowerOp op, std::string_view state) {
  if (op == PowerOp::reboot || op == PowerOp::reset) return false;
  return state == target_power(op);
}

bool set_power(vim::Client& c, const vim::MoRef& vm, PowerOp op, std::chrono::seconds timeout,
               bool force, std::string* method) {
  return set_power(*make_api_writer(c), vm, op, timeout, force, method);
}

bool set_power(VmWriter& w, const vim::MoRef& vm, PowerOp op, std::chrono::seconds timeout,
               bool force, std::string* method) {
  vim::Client& c = w.client();
  std::string state = vm_power(c, vm);
  if (power_op_is_noop(op, state)) return false;
  check_power_op(op, state, force);
  std::string used;
  if (op == PowerOp::shutdown)
    used = shutdown_guest(w, vm, timeout, force);
  else if (op == PowerOp::reboot)
    used = reboot_guest(w, vm, force);
  else
    w.power(vm, op), used = std::string(power_method(op));
  if (method) *method = used;
  return true;
}

std::string wait_for(vim::Client& c, const vim::MoRef& vm, std::string_view what,
                     std::chrono::seconds timeout) {
  std::vector<std::string> paths;
  std::function<std::optional<std::string>(const vim::ObjectContent&)> done;
  if (what == "ip") {
    paths = {"guest.ipAddress"};
    done = [](const vim::ObjectContent& o) -> std::optional<std::string> {
      std::string ip = o.text("guest.ipAddress");
      if (ip.empty()) return std::nullopt;
      return ip;
    };
  } else if (what == "tools") {
    paths = {"guest.toolsRunningStatus"};
    done = [](const vim::ObjectContent& o) -> std::optional<std::string> {
      if (o.text("guest.toolsRunningStatus") == "guestToolsRunning") return "running";
      return std::nullopt;
    };
  } else if (what == "on" || what == "off") {
    paths = {"runtime.powerState"};
    done = [w = std::string(what)](const vim::ObjectContent& o) -> std::optional<std::string> {
      if (power_word(o.text("runtime.powerState")) == w) return w;
      return std::nullopt;
    };
  } else {
    usage_error("cannot wait for " + quote(what) + " (use ip, tools, on or off)");
  }
  if (auto v = poll_until(c, vm, paths, done, timeout)) return *v;
  static const std::map<std::string_view, std::string_view> kWhat = {
      {"ip", "an IP address"},
      {"tools", "VMware Tools to run"},
      {"on", "the VM to power on"},
      {"off", "the VM to power off"}};
  fail("timed out after " + std::to_string(timeout.count()) + " s waiting for " +
       std::string(kWhat.at(what)));
}

void destroy_vm(vim::Client& c, const vim::MoRef& vm) { run_task(c, "Destroy_Task", vm); }
void destroy_vm(VmWriter& w, const vim::MoRef& vm) { w.destroy(vm); }

ordered_json current_vm_record(const LocatedVm& vm) {
  auto objs = vm.client->retrieve({vm.ref}, vm_record_paths());
  if (objs.empty()) fail("VM " + vm.ref.value + " no longer exists on " + vm.client->endpoint().id);
  return vm_record(objs.front(), vm.client->endpoint());
}

std::string plan_line(const ordered_json& plan) {
  auto text = [&](const char* key) {
    auto it = plan.find(key);
    return it != plan.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string line = text("vm") + ": would call " + text("operation");
  if (plan.contains("refused")) line += " (refused in restricted mode)";
  return line;
}

bool confirm_on_terminal(const std::string& question, std::string_view yes_option) {
  std::lock_guard<std::mutex> lock(g_tty_mutex);
  std::unique_ptr<FILE, int (*)(FILE*)> tty(std::fopen("/dev/tty", "r+"), std::fclose);
  if (!tty)
    throw Error("no terminal to confirm on; pass " + std::string(yes_option) +
                    " to go ahead without asking",
                Exit::policy);
  std::fprintf(tty.get(), "%s [y/N] ", question.c_str());
  std::fflush(tty.get());
  char answer[64] = {};
  if (!std::fgets(answer, sizeof answer, tty.get())) {
    std::fputc('\n', tty.get());
    return false;
  }
  return answer[0] == 'y' || answer[0] == 'Y';
}

}  // namespace ceso
