// ceso-snap — create, list, revert and remove VM snapshots.
//
//   ceso-ls --tag web | ceso-snap create --name pre-upgrade | ceso-backup --hot
//
// create/revert/rm print the VM record again with "snapshot" (or
// "snapshots_removed") and "changed" added; ls prints one `snapshot` record
// per snapshot. Bulk removal (rm --all, rm --older-than) asks on the terminal
// unless --yes, and refuses without a terminal: it deletes the user's own
// snapshots, which ceso never does implicitly.
#include <algorithm>
#include <memory>
#include <optional>

#include "base/duration.hpp"
#include "base/time.hpp"
#include "cli/endpoint.hpp"
#include "cli/tool.hpp"
#include "safety/policy.hpp"
#include "vm/lifecycle.hpp"
#include "vm/snapshot.hpp"
#include "vm/vm.hpp"
#include "vm/writer.hpp"

namespace {

// Each verb's own table; connection, output and --jobs are shared by all.
ceso::ToolSpec make_spec() {
  using ceso::kDryRun;
  ceso::ToolSpec spec{
      "ceso-snap",
      "Create, list, revert and remove snapshots of VMs named or read from standard input.",
      "[OPTION]... create|ls|revert|rm [OPTION]... [VM]...",
      {},
      ceso::kConnection | ceso::kOutput | ceso::kJobs,
      {
          {"create",
           "take a snapshot",
           {
               {"name", 'N', "NAME", "snapshot name (required)"},
               {"description", 'd', "TEXT", "snapshot description"},
               {"memory", 'm', "", "include the VM's memory"},
               {"quiesce", 0, "", "quiesce the guest file systems (needs VMware Tools)"},
               {"exist-ok", 0, "", "a snapshot of that name already there is fine"},
           },
           kDryRun | ceso::kTransport,
           "--name NAME [OPTION]... [VM]..."},
          {"ls", "list snapshots as records", {}, 0, "[OPTION]... [VM]..."},
          {"revert",
           "revert to a snapshot",
           {{"name", 'N', "NAME", "snapshot to revert to (default: the current one)"}},
           kDryRun | ceso::kTransport,
           "[OPTION]... [VM]..."},
          {"rm",
           "remove snapshots",
           {
               {"name", 'N', "NAME", "remove the snapshot of this name"},
               {"missing-ok", 0, "", "--name: no snapshot of that name is fine"},
               {"children", 0, "", "--name: also remove the snapshot's children"},
               {"all", 'a', "", "remove every snapshot of the VM"},
               {"older-than", 0, "DURATION",
                "remove snapshots older than this (90min, 12h, 7d, 2w, 6mo)"},
               {"yes", 'y', "", "--all/--older-than: do not ask for confirmation"},
           },
           kDryRun | ceso::kTransport,
           "--name NAME|--all|--older-than DURATION [OPTION]... [VM]..."},
      },
      ceso::Complete::vm,
  };
  spec.per_verb_options = true;
  return spec;
}

const ceso::ToolSpec kSpec = make_spec();

struct Context {
  const ceso::Args& args;
  ceso::Gate& gate;
  ceso::Output& out;
  ceso::VmWriters* writers;  // null for ls (it only reads)
};

std::string result_line(const ceso::ordered_json& r) {
  std::string type = r.value("type", "");
  if (type == "plan") return ceso::plan_line(r);
  if (type == "snapshot")
    return r.value("vm", "") + ": " + r.value("path", "") + "  " + r.value("created", "") +
           (r.value("current", false) ? "  (current)" : "");
  std::string line = r.value("name", "") + ": ";
  if (r.contains("snapshots_removed"))
    return line + std::to_string(r["snapshots_removed"].size()) + " snapshot(s) removed";
  if (r.contains("snapshot")) line += "snapshot " + ceso::quote(r["snapshot"].value("path", ""));
  return line + (r.value("changed", false) ? "" : " (unchanged)");
}

ceso::VmWriter& writer(const Context& x, const ceso::LocatedVm& vm) {
  return x.writers->for_client(*vm.client);
}

ceso::Mutation mutation(const ceso::LocatedVm& vm, ceso::VmWriter& w, std::string operation,
                        ceso::ordered_json p) {
  return {vm.client->endpoint().id, vm.name,      vm.ref.value,
          std::move(operation),     std::move(p), std::string(ceso::to_string(w.transport()))};
}

// The VM's record `rec` (read with the snapshot tree, or after the change),
// with `results` added, passed through with the input record. ceso-snap owns
// snapshot, snapshots_removed and changed: an earlier stage's snapshot never
// poses as this one's.
void emit_result(const Context& x, const ceso::Target& t, ceso::ordered_json rec,
                 const ceso::ordered_json& results) {
  for (const auto& [k, v] : results.items()) rec[k] = v;
  static const std::vector<std::string> kOwned =
      ceso::vm_owned_fields({"snapshot", "snapshots_removed", "changed"});
  x.out.emit(ceso::pass_through(t.record, rec, kOwned));
}

void create(const Context& x, const ceso::Target& t, const ceso::LocatedVm& vm) {
  std::string name = x.args.get("name");
  ceso::vim::Client& c = *vm.client;
  // The vm record comes with each tree read: no round trip of its own.
  ceso::ordered_json rec;
  auto snaps = ceso::list_snapshots(c, vm.ref, rec);
  if (const ceso::SnapshotInfo* s = ceso::find_snapshot(snaps, name)) {
    if (!x.args.has("exist-ok"))
      ceso::fail("already has a snapshot named " + ceso::quote(name) +
                 " (pass --exist-ok to accept it)");
    emit_result(x, t, rec, {{"snapshot", ceso::snapshot_record(*s)}, {"changed", false}});
    return;
  }
  std::string description = x.args.get("description");
  bool memory = x.args.has("memory"), quiesce = x.args.has("quiesce");
  ceso::vim::MoRef ref;
  ceso::VmWriter& w = writer(x, vm);
  auto m = mutation(
      vm, w, "CreateSnapshot_Task",
      {{"name", name}, {"description", description}, {"memory", memory}, {"quiesce", quiesce}});
  if (!x.gate.perform(m,
                      [&] { ref = w.create_snapshot(vm.ref, name, description, memory, quiesce); }))
    return;
  auto after = ceso::list_snapshots(c, vm.ref, rec);  // after the change
  const ceso::SnapshotInfo* made = ceso::new_snapshot(after, snaps, ref, name);
  if (!made)
    ceso::fail("the new snapshot " + (ref.empty() ? ceso::quote(name) : ref.value) +
               " is not in the VM's tree");
  emit_result(x, t, rec, {{"snapshot", ceso::snapshot_record(*made)}, {"changed", true}});
}

void list(const Context& x, const ceso::Target&, const ceso::LocatedVm& vm) {
  for (const auto& s : ceso::list_snapshots(*vm.client, vm.ref))
    x.out.emit(ceso::snapshot_record(s, vm.client->endpoint().id, vm.ref.value, vm.name));
}

void revert(const Context& x, const ceso::Target& t, const ceso::LocatedVm& vm) {
  ceso::vim::Client& c = *vm.client;
  auto snaps = ceso::list_snapshots(c, vm.ref);
  const ceso::SnapshotInfo* s = nullptr;
  if (auto name = x.args.maybe("name")) {
    s = ceso::find_snapshot(snaps, *name);
    if (!s) ceso::fail("has no snapshot named " + ceso::quote(*name));
  } else {
    auto cur = std::find_if(snaps.begin(), snaps.end(), [](const auto& i) { return i.current; });
    if (cur == snaps.end()) ceso::fail("has no current snapshot to revert to");
    s = &*cur;
  }
  ceso::VmWriter& w = writer(x, vm);
  auto m = mutation(vm, w, "RevertToSnapshot_Task", {{"snapshot", s->path}, {"id", s->id}});
  if (!x.gate.perform(m, [&] { w.revert_snapshot(vm.ref, *s, false); })) return;
  ceso::SnapshotInfo reverted = *s;
  reverted.current = true;
  // Read after the revert: power (and the rest) as the snapshot left them.
  emit_result(x, t, ceso::current_vm_record(vm),
              {{"snapshot", ceso::snapshot_record(reverted)}, {"changed", true}});
}

void remove_named(const Context& x, const ceso::Target& t, const ceso::LocatedVm& vm,
                  const std::string& name) {
  ceso::vim::Client& c = *vm.client;
  // The vm record is read with the tree; removing a snapshot changes none of
  // its fields (power, hardware, disk capacities and the .vmx stay).
  ceso::ordered_json rec;
  auto snaps = ceso::list_snapshots(c, vm.ref, rec);
  const ceso::SnapshotInfo* s = ceso::find_snapshot(snaps, name);
  if (!s) {
    if (!x.args.has("missing-ok"))
      ceso::fail("has no snapshot named " + ceso::quote(name) + " (pass --missing-ok to accept)");
    emit_result(x, t, rec, {{"changed", false}});
    return;
  }
  bool children = x.args.has("children");
  ceso::VmWriter& w = writer(x, vm);
  auto m = mutation(vm, w, "RemoveSnapshot_Task",
                    {{"snapshot", s->path}, {"id", s->id}, {"remove_children", children}});
  if (!x.gate.perform(m, [&] { w.remove_snapshot(vm.ref, *s, children, true); })) return;
  emit_result(x, t, rec, {{"snapshot", ceso::snapshot_record(*s)}, {"changed", true}});
}

void confirm_bulk(const Context& x, const ceso::LocatedVm& vm, size_t count) {
  if (x.args.has("yes") || x.gate.dry_run() || x.gate.mode() == ceso::Mode::restricted) return;
  if (!ceso::confirm_on_terminal("Remove " + std::to_string(count) + " snapshot(s) of VM " +
                                 ceso::quote(vm.name) + " on " + vm.client->endpoint().id + "?"))
    throw ceso::Error("snapshots not removed: confirmation declined", ceso::Exit::policy);
}

void remove_bulk(const Context& x, const ceso::Target& t, const ceso::LocatedVm& vm) {
  ceso::vim::Client& c = *vm.client;
  ceso::ordered_json rec;  // read with the tree, as in remove_named
  auto snaps = ceso::list_snapshots(c, vm.ref, rec);
  std::vector<ceso::SnapshotInfo> doomed;
  if (x.args.has("all")) {
    doomed = snaps;
  } else {
    auto age = ceso::parse_duration(x.args.get("older-than"), "--older-than");
    // Calendar units (mo, y) count back from now in UTC, like --keep-within.
    int64_t cutoff = ceso::subtract(ceso::unix_now(), age);
    // createTime is an xsd:dateTime ("2026-11-22T03:04:05.123Z", "…+01:00").
    for (const auto& s : snaps)
      if (auto when = ceso::parse_utc_time(s.created); when && *when < cutoff) doomed.push_back(s);
  }
  ceso::ordered_json removed = ceso::ordered_json::array();
  if (!doomed.empty()) confirm_bulk(x, vm, doomed.size());
  bool dry = x.gate.dry_run();
  ceso::VmWriter& w = writer(x, vm);
  if (x.args.has("all") && !doomed.empty()) {
    auto m = mutation(vm, w, "RemoveAllSnapshots_Task", {{"count", doomed.size()}});
    x.gate.perform(m, [&] { w.remove_all_snapshots(vm.ref, true); });
    for (const auto& s : doomed) removed.push_back(ceso::snapshot_record(s));
  } else {
    // Oldest first; each one separately, so one failure leaves the rest listed.
    std::sort(doomed.begin(), doomed.end(),
              [](const auto& a, const auto& b) { return a.id < b.id; });
    for (const auto& s : doomed) {
      auto m = mutation(vm, w, "RemoveSnapshot_Task",
                        {{"snapshot", s.path}, {"id", s.id}, {"remove_children", false}});
      x.gate.perform(m, [&] { w.remove_snapshot(vm.ref, s, false, true); });
      removed.push_back(ceso::snapshot_record(s));
    }
  }
  if (dry && !doomed.empty()) return;
  bool changed = !removed.empty();
  emit_result(x, t, std::move(rec),
              {{"snapshots_removed", std::move(removed)}, {"changed", changed}});
}

void remove(const Context& x, const ceso::Target& t, const ceso::LocatedVm& vm) {
  if (auto name = x.args.maybe("name")) return remove_named(x, t, vm, *name);
  remove_bulk(x, t, vm);
}

using Action = void (*)(const Context&, const ceso::Target&, const ceso::LocatedVm&);

Action action_for(const ceso::Args& args) {
  static const std::pair<std::string_view, Action> kActions[] = {
      {"create", create}, {"ls", list}, {"revert", revert}, {"rm", remove}};
  for (const auto& [verb, action] : kActions)
    if (verb == args.verb) return action;
  if (args.operands.empty()) ceso::usage_error("missing command: create, ls, revert or rm");
  ceso::usage_error("unknown command " + ceso::quote(args.operands.front()) +
                    " (use create, ls, revert or rm)");
}

ceso::Exit run(const ceso::Args& args) {
  Action action = action_for(args);
  // Usage errors once, before any VM is touched.
  if (args.has("older-than")) ceso::parse_duration(args.get("older-than"), "--older-than");
  if (args.verb == "create" && args.get("name").empty())
    ceso::usage_error("create needs --name NAME");
  if (args.verb == "create") {  // sent as XML text: checked before any VM
    args.maybe_xml_text("name");
    args.maybe_xml_text("description");
  }
  if (args.verb == "rm" && args.has("name") + args.has("all") + args.has("older-than") != 1)
    ceso::usage_error("rm needs exactly one of --name NAME, --all, --older-than DURATION");
  size_t jobs = static_cast<size_t>(args.get_int("jobs", 1, 1, 64));
  // ls only reads: Ctrl-C cuts a call in flight, there is nothing to undo.
  std::optional<ceso::ReadOnlyRun> read_only;
  if (args.verb == "ls") read_only.emplace();
  std::vector<std::string> columns;
  if (args.verb == "ls") columns = {"vm", "path", "id", "created", "power", "quiesced", "current"};
  ceso::Output out(args, columns, args.verb == "ls" ? nullptr : result_line);
  ceso::Gate gate =
      ceso::tool_gate(args.has("dry-run"), [&](const ceso::ordered_json& plan) { out.emit(plan); });
  std::unique_ptr<ceso::VmWriters> writers;
  if (args.verb != "ls") writers = ceso::vm_writers(args);
  Context x{args, gate, out, writers.get()};
  ceso::Outcome outcome;
  ceso::for_each_vm(args, outcome, {jobs}, [&](const ceso::Target& t, ceso::FoundVm& vm, size_t) {
    action(x, t, vm.vm);
    outcome.succeeded();
  });
  out.finish();
  return outcome.exit_code();
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
