#include "vm/snapshot.hpp"

#include <charconv>
#include <functional>

#include "vm/vm.hpp"

namespace ceso {

namespace {

std::string bool_xml(bool b) { return b ? "true" : "false"; }

vim::MoRef start_task(vim::Client& c, std::string_view method, const vim::MoRef& self,
                      std::string_view args) {
  xml::Node resp = c.call(method, self, args);
  const xml::Node* rv = resp.child("returnval");
  if (!rv) throw Error(std::string(method) + " on " + c.endpoint().id + " returned no task");
  return vim::moref_of(*rv);
}

void add_tree(const xml::Node& node, const std::string& parent_path, const std::string& current,
              std::vector<SnapshotInfo>& out) {
  SnapshotInfo s;
  s.ref = {"VirtualMachineSnapshot", node.child_text("snapshot")};
  s.name = node.child_text("name");
  s.description = node.child_text("description");
  s.created = node.child_text("createTime");
  s.power = power_word(node.child_text("state"));
  s.quiesced = node.child_text("quiesced") == "true";
  s.current = !s.ref.value.empty() && s.ref.value == current;
  std::string id = node.child_text("id");
  s.id = id.empty() ? 0 : std::atoi(id.c_str());
  s.path = parent_path.empty() ? s.name : parent_path + "/" + s.name;
  std::string path = s.path;
  out.push_back(std::move(s));
  for (const xml::Node* child : node.all("childSnapshotList")) add_tree(*child, path, current, out);
}

}  // namespace

std::vector<SnapshotInfo> snapshots_from_xml(const xml::Node* val) {
  std::vector<SnapshotInfo> out;
  if (!val) return out;
  std::string current = val->child_text("currentSnapshot");
  for (const xml::Node* root : val->all("rootSnapshotList")) add_tree(*root, "", current, out);
  return out;
}

std::vector<SnapshotInfo> list_snapshots(vim::Client& c, const vim::MoRef& vm) {
  auto objs = c.retrieve({vm}, {"snapshot"});
  if (objs.empty()) throw Error("VM " + vm.value + " no longer exists on " + c.endpoint().id);
  return snapshots_from_xml(objs.front().prop("snapshot"));
}

std::vector<SnapshotInfo> list_snapshots(vim::Client& c, const vim::MoRef& vm,
                                         ordered_json& record) {
  std::vector<std::string> paths = vm_record_paths();
  paths.emplace_back("snapshot");
  auto objs = c.retrieve({vm}, paths);
  if (objs.empty()) throw Error("VM " + vm.value + " no longer exists on " + c.endpoint().id);
  record = vm_record(objs.front(), c.endpoint());
  return snapshots_from_xml(objs.front().prop("snapshot"));
}

const SnapshotInfo* find_snapshot(const std::vector<SnapshotInfo>& snapshots,
                                  const std::string& name) {
  // A full tree path is unambiguous when names repeat in different branches.
  for (const auto& s : snapshots)
    if (s.path == name && name.find('/') != std::string::npos) return &s;
  const SnapshotInfo* found = nullptr;
  std::string paths;
  size_t count = 0;
  for (const auto& s : snapshots) {
    if (s.name != name) continue;
    found = &s;
    paths += (count++ ? ", " : "") + quote(s.path) + " (id " + std::to_string(s.id) + ")";
  }
  if (count > 1)
    fail(std::to_string(count) + " snapshots are named " + quote(name) + ": " + paths +
         "; name one by its tree path");
  return found;
}

void translate_snapshot_fault(const vim::Fault& f) {
  // ESXi: "Virtual machine is configured to use a device that prevents the
  // snapshot operation: Device '' is a PCI passthrough device."
  std::string what = f.what();
  if (f.fault_type() != "InvalidState" || what.find("passthrough") == std::string::npos) return;
  throw Error(
      "has PCI passthrough devices, which ESXi cannot snapshot; back it up cold instead "
      "(ceso-backup --cold, with the VM off): " +
          what,
      f.code());
}

vim::MoRef create_snapshot(vim::Client& c, const vim::MoRef& vm, const std::string& name,
                           const std::string& description, bool memory, bool quiesce) {
  std::string args = "<name>" + xml::escape(name) + "</name>";
  if (!description.empty()) args += "<description>" + xml::escape(description) + "</description>";
  args += "<memory>" + bool_xml(memory) + "</memory><quiesce>" + bool_xml(quiesce) + "</quiesce>";
  xml::Node result;
  try {
    result = c.wait_for_task(start_task(c, "CreateSnapshot_Task", vm, args));
  } catch (const vim::Fault& f) {
    translate_snapshot_fault(f);
    throw;
  }
  // The result is <result xsi:type="ManagedObjectReference" type="…">: the
  // two attributes share a local name, so set the type we know it has.
  vim::MoRef ref{"VirtualMachineSnapshot", result.text};
  if (ref.value.empty())
    fail("CreateSnapshot_Task on " + c.endpoint().id + " returned no snapshot");
  return ref;
}

void remove_snapshot(vim::Client& c, const vim::MoRef& snapshot, bool remove_children,
                     bool consolidate) {
  c.wait_for_task(start_task(c, "RemoveSnapshot_Task", snapshot,
                             "<removeChildren>" + bool_xml(remove_children) +
                                 "</removeChildren><consolidate>" + bool_xml(consolidate) +
                                 "</consolidate>"));
}

void remove_all_snapshots(vim::Client& c, const vim::MoRef& vm, bool consolidate) {
  c.wait_for_task(start_task(c, "RemoveAllSnapshots_Task", vm,
                             "<consolidate>" + bool_xml(consolidate) + "</consolidate>"));
}

void revert_snapshot(vim::Client& c, const vim::MoRef& snapshot, bool suppress_power_on) {
  c.wait_for_task(
      start_task(c, "RevertToSnapshot_Task", snapshot,
                 "<suppressPowerOn>" + bool_xml(suppress_power_on) + "</suppressPowerOn>"));
}

ordered_json snapshot_record(const SnapshotInfo& s) {
  return {{"name", s.name},
          {"path", s.path},
          {"id", s.id},
          {"ref", s.ref.value},
          {"description", s.description},
          {"created", s.created},
          {"power", s.power},
          {"quiesced", s.quiesced},
          {"current", s.current}};
}

ordered_json snapshot_record(const SnapshotInfo& s, const std::string& endpoint,
                             const std::string& vm_id, const std::string& vm_name) {
  ordered_json r = {
      {"type", "snapshot"}, {"endpoint", endpoint}, {"vm_id", vm_id}, {"vm", vm_name}};
  ordered_json fields = snapshot_record(s);
  for (auto& [k, v] : fields.items()) r[k] = v;
  return r;
}

}  // namespace ceso
