#include "vm/provision.hpp"

#include <algorithm>
#include <cctype>
#include <set>
#include <thread>

#include "base/cancel.hpp"
#include "base/error.hpp"
#include "base/log.hpp"
#include "base/util.hpp"
#include "transport/ssh.hpp"
#include "vm/hostcli.hpp"
#include "vm/lifecycle.hpp"
#include "vm/vm.hpp"
#include "vm/vmx.hpp"
#include "vm/writer.hpp"
#include "vsphere/vimcmd.hpp"

namespace ceso {

namespace {

using xml::tag;

using vim::task_of;

// Directory names on a datastore: '/' would make a subdirectory.
std::string dir_for(std::string_view vm_name) {
  std::string d(vm_name);
  std::replace(d.begin(), d.end(), '/', '_');
  std::replace(d.begin(), d.end(), '\\', '_');
  return d;
}

// A moref held in a property <val>: its xsi:type ("ManagedObjectReference")
// and its own type attribute share the local name "type"; take the latter.
vim::MoRef prop_moref(const xml::Node& n) {
  vim::MoRef ref{"", n.text};
  for (const auto& [k, v] : n.attrs)
    if (k == "type" && v != "ManagedObjectReference") ref.type = v;
  return ref;
}

int to_int(const std::string& s, int fallback) {
  return s.empty() ? fallback : std::atoi(s.c_str());
}

}  // namespace

const std::vector<std::string>& source_vm_paths() {
  static const std::vector<std::string> kPaths = {"name",
                                                  "runtime.powerState",
                                                  "runtime.host",
                                                  "resourcePool",
                                                  "parent",
                                                  "config.template",
                                                  "config.guestId",
                                                  "config.firmware",
                                                  "config.version",
                                                  "config.annotation",
                                                  "config.files.vmPathName",
                                                  "config.hardware.numCPU",
                                                  "config.hardware.numCoresPerSocket",
                                                  "config.hardware.memoryMB",
                                                  "config.hardware.device",
                                                  "config.extraConfig"};
  return kPaths;
}

std::string SourceVm::datastore() const {
  return vmx_path.empty() ? std::string() : vmspec::parse_datastore_path(vmx_path).datastore;
}

SourceVm source_vm_from(vim::ObjectContent props) {
  SourceVm s;
  auto owned = std::make_shared<const vim::ObjectContent>(std::move(props));
  const vim::ObjectContent& p = *owned;
  s.props = owned;
  s.ref = p.obj;
  s.name = p.text("name");
  s.power = power_word(p.text("runtime.powerState"));
  s.is_template = p.text("config.template") == "true";
  s.guest_id = p.text("config.guestId");
  s.firmware = p.text("config.firmware");
  s.version = p.text("config.version");
  s.annotation = p.text("config.annotation");
  s.vmx_path = p.text("config.files.vmPathName");
  s.cpus = to_int(p.text("config.hardware.numCPU"), 1);
  s.cores_per_socket = to_int(p.text("config.hardware.numCoresPerSocket"), 0);
  s.memory_mib = std::atoll(p.text("config.hardware.memoryMB").c_str());
  if (const xml::Node* d = p.prop("config.hardware.device"))
    s.hardware = vmspec::parse_hardware(*d);
  s.extra_config = extra_config_map(p.prop("config.extraConfig"));
  for (auto [path, ref] : {std::pair{"parent", &s.folder}, std::pair{"resourcePool", &s.pool},
                           std::pair{"runtime.host", &s.host}})
    if (const xml::Node* n = p.prop(path)) *ref = prop_moref(*n);
  return s;
}

SourceVm source_vm_from_config(const xml::Node& config) {
  // The retrieval's shape: one <val> per property path below "config.";
  // arrays (devices, ExtraConfig) as the children of one <val>.
  vim::ObjectContent p;
  auto below = [&](std::string_view dotted) -> std::vector<const xml::Node*> {
    const xml::Node* cur = &config;
    std::string path(dotted);
    size_t dot;
    while ((dot = path.find('.')) != std::string::npos) {
      cur = cur->child(path.substr(0, dot));
      if (!cur) return {};
      path.erase(0, dot + 1);
    }
    return cur->all(path);
  };
  for (const auto& path : source_vm_paths()) {
    if (path.rfind("config.", 0) != 0) continue;
    auto nodes = below(std::string_view(path).substr(7));
    if (nodes.empty()) continue;
    xml::Node val;
    val.name = "val";
    if (path == "config.hardware.device" || path == "config.extraConfig") {
      for (const xml::Node* n : nodes) val.children.push_back(*n);
    } else {
      val = *nodes.front();
      val.name = "val";
    }
    p.props.emplace_back(path, std::move(val));
  }
  xml::Node name;
  name.name = "val";
  name.text = config.child_text("name");
  p.props.emplace_back("name", std::move(name));
  xml::Node power;
  power.name = "val";
  power.text = "poweredOff";
  p.props.emplace_back("runtime.powerState", std::move(power));
  return source_vm_from(std::move(p));
}

SourceVm read_source_vm(vim::Client& client, const vim::MoRef& vm) {
  // The VM and the datacenter it is in, in one call: a traversal up from
  // the VM (VirtualMachine.parent, then Folder.parent as often as folders
  // nest) reports the Datacenter it reaches. Saves the lookup of the
  // datacenter that datastore paths need (MakeDirectory, CopyVirtualDisk).
  std::string paths;
  for (const auto& p : source_vm_paths()) paths += "<pathSet>" + xml::escape(p) + "</pathSet>";
  std::string spec =
      "<specSet><propSet><type>VirtualMachine</type>" + paths +
      "</propSet><propSet><type>Datacenter</type><pathSet>name</pathSet></propSet><objectSet>" +
      vim::moref_xml("obj", vm) +
      "<skip>false</skip>"
      "<selectSet xsi:type=\"TraversalSpec\"><name>vmParent</name><type>VirtualMachine</type>"
      "<path>parent</path><skip>false</skip><selectSet><name>folderParent</name></selectSet>"
      "</selectSet>"
      "<selectSet xsi:type=\"TraversalSpec\"><name>folderParent</name><type>Folder</type>"
      "<path>parent</path><skip>false</skip><selectSet><name>folderParent</name></selectSet>"
      "</selectSet></objectSet></specSet><options></options>";
  std::optional<vim::ObjectContent> found;
  vim::MoRef datacenter;
  try {
    xml::Node resp = client.call("RetrievePropertiesEx", client.content().property_collector, spec);
    if (const xml::Node* rv = resp.child("returnval"))
      for (const auto& o : rv->children) {
        if (o.name != "objects") continue;
        auto oc = vim::object_from_xml(o);
        if (!oc) continue;
        if (oc->obj == vm)
          found = std::move(*oc);
        else if (oc->obj.type == "Datacenter" && datacenter.empty())
          datacenter = oc->obj;
      }
  } catch (const vim::Fault& f) {
    if (f.fault_type() != "ManagedObjectNotFound") throw;
  }
  if (!found) fail("VM " + vm.value + " disappeared while reading it");
  SourceVm s = source_vm_from(std::move(*found));
  s.datacenter = datacenter;
  return s;
}

std::vector<std::pair<std::string, std::string>> new_extra_config(const SourceVm& src,
                                                                  const NewVm& req) {
  std::vector<std::pair<std::string, std::string>> out;
  auto given = [&](const std::string& key) {
    return std::any_of(req.extra_config.begin(), req.extra_config.end(),
                       [&](const auto& kv) { return kv.first == key; });
  };
  for (const auto& [k, v] : src.extra_config)
    if (vmspec::inheritable_extra_config(k) && !given(k)) out.emplace_back(k, v);
  std::string tags;
  if (req.tags) {
    for (const auto& t : *req.tags) tags += (tags.empty() ? "" : ",") + t;
    if (!tags.empty()) out.emplace_back("ceso.tags", tags);
  }
  for (const auto& kv : req.extra_config) out.push_back(kv);
  return out;
}

Provisioned plan_identity(const SourceVm& src, const NewVm& req) {
  Provisioned p;
  p.uuid = vmspec::random_uuid();
  p.instance_uuid = vmspec::random_uuid();
  for (size_t i = 0; i < src.hardware.nics.size(); ++i)
    p.macs.push_back(i < req.macs.size() ? req.macs[i] : vmspec::random_mac());
  std::string ds = req.datastore.empty() ? src.datastore() : req.datastore;
  std::string dir = dir_for(req.name);
  p.vmx = vmspec::DatastorePath{ds, dir + "/" + dir + ".vmx"}.text();
  for (size_t i = 0; i < src.hardware.disks.size(); ++i)
    p.disks.push_back(
        vmspec::DatastorePath{ds, dir + "/" + dir + (i ? "_" + std::to_string(i) : "") + ".vmdk"}
            .text());
  return p;
}

Provisioner::Provisioner(vim::Client& client, StepGate gate, ProgressFn progress)
    : client_(client), gate_(std::move(gate)), progress_(std::move(progress)) {}

Provisioner::Provisioner(vim::Client& client, VmWriter& writer, StepGate gate, ProgressFn progress)
    : client_(client),
      writer_(&writer),
      ssh_(writer.transport() == Transport::ssh),
      gate_(std::move(gate)),
      progress_(std::move(progress)) {}

Provisioned Provisioner::create(const SourceVm& src, const NewVm& req, const Provisioned& ids) {
  if (src.power != "off")
    fail("source VM " + quote(src.name) + " is " + (src.power.empty() ? "not off" : src.power) +
         "; its disks can only be copied while it is powered off");
  undo_.clear();
  keep_ = req.keep_on_failure;
  if (datacenter_.empty()) datacenter_ = src.datacenter;  // read with the source, if it was
  network_ = network_for(src, req);
  if (ssh_) return create_over_ssh(src, req, ids);
  return client_.content().is_vcenter() ? clone_vcenter(src, req, ids)
                                        : create_standalone(src, req, ids);
}

// The VM this run just created is off: power it on without reading its
// power state first (one round trip less).
void Provisioner::power_on(const vim::MoRef& vm, std::chrono::seconds) {
  if (writer_) {
    writer_->power(vm, PowerOp::on);
    return;
  }
  auto resp = client_.call("PowerOnVM_Task", vm);
  const xml::Node* rv = resp.child("returnval");
  if (!rv) fail("the host answered PowerOnVM_Task without a task");
  client_.wait_for_task(vim::moref_of(*rv));
}

bool Provisioner::step(const std::string& label, const std::string& operation,
                       const ordered_json& params, const std::function<void()>& action) {
  try {
    throw_if_interrupted();   // between steps: roll back what is done
    if (operation.empty()) {  // not a change (waiting): no gate, but rollback on failure
      action();
      return true;
    }
    return gate_(operation, params, action);
  } catch (const Error& e) {
    // Refusals by policy change nothing of ours: report them as they are.
    if (e.code() == Exit::policy || undo_.empty()) {
      if (e.code() == Exit::policy) throw;
      throw Error(label + " failed: " + e.what(), e.code());
    }
    roll_back(label, e);
  }
}

void Provisioner::roll_back(const std::string& label, const Error& e) {
  CleanupScope cleanup;  // an interruption is why we may be here: the undo runs to the end
  std::string msg = label + " failed: " + e.what();
  std::vector<Undo> undo;
  undo.swap(undo_);
  Exit code = e.code() == Exit::interrupted || e.code() == Exit::policy ? e.code() : Exit::failure;
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  std::vector<std::string> done, left;
  for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
    if (keep_) {
      done.push_back(it->what);
      continue;
    }
    try {
      it->run();
      done.push_back(it->what);
    } catch (const Error& ue) {
      left.push_back(it->what + " (" + ue.what() + ")");
    }
  }
  if (keep_) throw Error(msg + "; kept for debugging (--keep-on-failure): " + join(done), code);
  if (!done.empty()) msg += "; rolled back: " + join(done);
  if (!left.empty()) msg += "; could NOT remove: " + join(left);
  throw Error(msg, code);
}

Provisioner::Undo Provisioner::remove_vm_undo(const std::string& name, const vim::MoRef& vm) {
  return {"VM " + quote(name), [this, vm] {
            // Interrupted during or after powering on: a VM must be off to be
            // destroyed (InvalidPowerState otherwise).
            if (vm_power(client_, vm) != "off")
              gate_("PowerOffVM_Task", ordered_json::object(), [&] {
                set_power(client_, vm, PowerOp::off, std::chrono::seconds(300), false);
              });
            gate_("Destroy_Task", ordered_json::object(), [&] { destroy_vm(client_, vm); });
          }};
}

void Provisioner::commit() {
  // The last step may have been the one in flight when the signal came (the
  // CreateVM_Task of a run without --power-on): with nothing after it to
  // see the interruption, the end of the run is where it is seen. What was
  // made goes, whichever options the run had.
  if (interrupted()) {
    if (!undo_.empty()) roll_back("the run", Error("interrupted", Exit::interrupted));
    throw Error("interrupted", Exit::interrupted);
  }
  undo_.clear();
}

const vim::MoRef& Provisioner::datacenter() {
  if (!datacenter_.empty()) return datacenter_;
  // On a standalone host this is ha-datacenter; found, not assumed.
  auto objs = client_.retrieve({client_.content().root_folder}, {"childEntity"});
  if (!objs.empty())
    if (const xml::Node* kids = objs.front().prop("childEntity"))
      for (const auto& c : kids->children)
        if (prop_moref(c).type == "Datacenter") {
          datacenter_ = prop_moref(c);
          break;
        }
  if (datacenter_.empty()) fail("no datacenter found on " + client_.endpoint().id);
  return datacenter_;
}

vim::MoRef Provisioner::resolve_pool(const SourceVm& src) {
  if (!src.pool.empty()) return src.pool;
  // Templates have no pool: use the root pool of their host's compute resource.
  if (src.host.empty()) fail("cannot tell which resource pool to use for " + quote(src.name));
  auto host = client_.retrieve({src.host}, {"parent"});
  const xml::Node* parent = host.empty() ? nullptr : host.front().prop("parent");
  if (!parent) fail("cannot find the compute resource of " + quote(src.name) + "'s host");
  auto cr = client_.retrieve({prop_moref(*parent)}, {"resourcePool"});
  const xml::Node* pool = cr.empty() ? nullptr : cr.front().prop("resourcePool");
  if (!pool) fail("cannot find the resource pool of " + quote(src.name) + "'s host");
  return prop_moref(*pool);
}

vim::MoRef Provisioner::find_datastore(const SourceVm& src, const std::string& name) {
  auto host = client_.retrieve({src.host}, {"datastore"});
  const xml::Node* list = host.empty() ? nullptr : host.front().prop("datastore");
  std::vector<vim::MoRef> refs;
  if (list)
    for (const auto& c : list->children) refs.push_back(prop_moref(c));
  for (const auto& ds : client_.retrieve(refs, {"name"}))
    if (ds.text("name") == name) return ds.obj;
  fail("no datastore named " + quote(name) + " on the host of " + quote(src.name));
}

vmspec::Network find_network(vim::Client& client, const vim::MoRef& where, const std::string& name,
                             const std::string& what) {
  if (where.empty()) fail("cannot look up port group " + quote(name) + ": " + what + " is unknown");
  auto owner = client.retrieve({where}, {"network"});
  const xml::Node* list = owner.empty() ? nullptr : owner.front().prop("network");
  // Standard portgroups are Network objects, distributed ones
  // DistributedVirtualPortgroup: one retrieval per type.
  std::map<std::string, std::vector<vim::MoRef>> by_type;
  if (list)
    for (const auto& c : list->children) {
      vim::MoRef ref = prop_moref(c);
      by_type[ref.type].push_back(ref);
    }
  for (const auto& [type, refs] : by_type)
    for (const auto& net : client.retrieve(refs, {"name"})) {
      if (net.text("name") != name) continue;
      if (net.obj.type != "DistributedVirtualPortgroup") return {name, "", ""};
      auto pg = client.retrieve({net.obj}, {"key", "config.distributedVirtualSwitch"});
      const xml::Node* dvs =
          pg.empty() ? nullptr : pg.front().prop("config.distributedVirtualSwitch");
      auto sw =
          dvs ? client.retrieve({prop_moref(*dvs)}, {"uuid"}) : std::vector<vim::ObjectContent>{};
      std::string key = pg.empty() ? "" : pg.front().text("key");
      if (sw.empty() || key.empty() || sw.front().text("uuid").empty())
        fail("cannot read the switch of distributed portgroup " + quote(name));
      return {name, sw.front().text("uuid"), key};
    }
  fail("no portgroup named " + quote(name) + " on " + what);
}

vmspec::Network Provisioner::network_for(const SourceVm& src, const NewVm& req) {
  if (req.network.empty()) return {};
  // A restored VM's config names no host: look in the datacenter.
  if (src.host.empty()) return find_network(client_, datacenter(), req.network, "the datacenter");
  return find_network(client_, src.host, req.network, "the host of " + quote(src.name));
}

// ------------------------------------------------------------- standalone ESXi

void Provisioner::make_directory(const std::string& dir) {
  if (!try_make_directory(dir))
    roll_back("creating folder " + dir, Error("the folder exists already on the datastore"));
}

// False (nothing changed) when the folder exists already.
bool Provisioner::try_make_directory(const std::string& dir) {
  if (ssh_) return ssh_make_directory(dir);
  std::string args = tag("name", dir) + vim::moref_xml("datacenter", datacenter()) +
                     tag("createParentDirectories", "false");
  bool exists = false;
  bool made = step("creating folder " + dir, "MakeDirectory", {{"name", dir}}, [&] {
    try {
      client_.call("MakeDirectory", client_.content().file_manager, args);
    } catch (const vim::Fault& f) {
      if (f.fault_type() != "FileAlreadyExists") throw;
      exists = true;
    }
  });
  if (exists) return false;
  if (made)
    undo_.push_back({"folder " + dir, [this, dir] {
                       std::string a =
                           tag("name", dir) + vim::moref_xml("datacenter", datacenter());
                       gate_("DeleteDatastoreFile_Task", {{"name", dir}}, [&] {
                         try {
                           client_.wait_for_task(task_of(client_.call(
                               "DeleteDatastoreFile_Task", client_.content().file_manager, a)));
                         } catch (const vim::Fault& f) {
                           if (f.fault_type() != "FileNotFound") throw;  // already gone with the VM
                         }
                       });
                     }});
  return true;
}

void Provisioner::copy_disks(const SourceVm& src, const NewVm& req, const Provisioned& ids) {
  const auto& disks = src.hardware.disks;
  for (size_t i = 0; i < disks.size(); ++i) {
    const auto& d = disks[i];
    std::string dest = ids.disks.at(i);
    std::string adapter(vmspec::disk_adapter_type(d.controller_type));
    std::string args =
        tag("sourceName", d.file) + vim::moref_xml("sourceDatacenter", datacenter()) +
        tag("destName", dest) + vim::moref_xml("destDatacenter", datacenter()) +
        vmspec::copy_disk_spec_xml(adapter, !req.thick, d.capacity_bytes) + tag("force", "false");
    std::string label =
        "copying disk " + std::to_string(i + 1) + "/" + std::to_string(disks.size());
    ordered_json params = {{"source", d.file},
                           {"dest", dest},
                           {"disk_type", req.thick ? "preallocated" : "thin"},
                           {"adapter_type", adapter}};
    if (step(label, "CopyVirtualDisk_Task", params, [&] {
          auto task = task_of(
              client_.call("CopyVirtualDisk_Task", client_.content().virtual_disk_manager, args));
          client_.wait_for_task(task, [&](int pct) {
            if (progress_) progress_(label, pct);
          });
          if (progress_) progress_(label, 100);
        }))
      undo_.push_back(
          {"disk " + dest, [this, dest] {
             std::string a = tag("name", dest) + vim::moref_xml("datacenter", datacenter());
             gate_("DeleteVirtualDisk_Task", {{"name", dest}}, [&] {
               client_.wait_for_task(task_of(client_.call(
                   "DeleteVirtualDisk_Task", client_.content().virtual_disk_manager, a)));
             });
           }});
  }
}

vim::MoRef Provisioner::create_vm(const SourceVm& config, const NewVm& req,
                                  const Provisioned& ids) {
  if (ssh_) return ssh_create_vm(config, req, ids);
  vmspec::ConfigSpec spec;
  spec.name = req.name;
  spec.version = config.version;
  spec.uuid = ids.uuid;
  spec.instance_uuid = ids.instance_uuid;
  spec.guest_id = config.guest_id;
  spec.annotation = req.annotation ? req.annotation : std::optional(config.annotation);
  if (spec.annotation->empty()) spec.annotation.reset();
  spec.vm_path_name = ids.vmx;
  spec.num_cpus = req.cpus.value_or(config.cpus);
  if (config.cores_per_socket > 0 && !req.cpus) spec.cores_per_socket = config.cores_per_socket;
  spec.memory_mib = req.memory_mib.value_or(config.memory_mib);
  spec.firmware = config.firmware;
  // New devices get negative keys; disks refer to their new controller's key.
  std::map<int, int> controller_keys;
  int next = -100;
  for (const auto& c : config.hardware.controllers) {
    controller_keys[c.key] = next;
    spec.device_changes.push_back(
        vmspec::device_change_xml("add", "", vmspec::controller_add_xml(c, next--)));
  }
  for (size_t i = 0; i < config.hardware.disks.size(); ++i) {
    const auto& d = config.hardware.disks[i];
    auto it = controller_keys.find(d.controller_key);
    int ckey = it == controller_keys.end() ? d.controller_key : it->second;
    spec.device_changes.push_back(vmspec::device_change_xml(
        "add", "", vmspec::disk_attach_xml(d, next--, ckey, ids.disks.at(i), !req.thick)));
  }
  for (size_t i = 0; i < config.hardware.nics.size(); ++i)
    spec.device_changes.push_back(vmspec::device_change_xml(
        "add", "", vmspec::nic_add_xml(config.hardware.nics[i], next--, ids.macs.at(i), network_)));
  spec.extra_config = new_extra_config(config, req);

  vim::MoRef pool = req.pool.empty() ? resolve_pool(config) : req.pool;
  std::string args = spec.xml("config") + vim::moref_xml("pool", pool);
  ordered_json params = {{"name", req.name},
                         {"vmx", ids.vmx},
                         {"cpus", *spec.num_cpus},
                         {"memory_mib", *spec.memory_mib},
                         {"macs", ids.macs},
                         {"uuid", ids.uuid},
                         {"extra_config_keys", ordered_json::array()},
                         {"spec", spec.xml("config")}};
  for (const auto& kv : spec.extra_config) params["extra_config_keys"].push_back(kv.first);
  if (!req.pool.empty()) params["pool"] = req.pool.value;
  vim::MoRef vm;
  if (step("creating VM " + quote(req.name), "CreateVM_Task", params, [&] {
        xml::Node r =
            client_.wait_for_task(task_of(client_.call("CreateVM_Task", config.folder, args)));
        vm = prop_moref(r);
      })) {
    // The VM owns its disks now: destroying it deletes them.
    undo_.erase(std::remove_if(undo_.begin(), undo_.end(),
                               [](const Undo& u) { return u.what.rfind("disk ", 0) == 0; }),
                undo_.end());
    undo_.push_back(remove_vm_undo(req.name, vm));
  }
  return vm;
}

void Provisioner::grow_first_disk(const vim::MoRef& vm, const SourceVm& config, const NewVm& req) {
  if (!req.disk_grow || config.hardware.disks.empty()) return;
  int64_t current = config.hardware.disks.front().capacity_bytes;
  int64_t target = vmspec::grown_capacity(*req.disk_grow, current);
  if (target == current) return;
  if (ssh_) fail("growing a disk over SSH is not supported (the API is read-only here)");
  ordered_json params = {{"disk", 1}, {"capacity_bytes", target}};
  step("growing the first disk", "ReconfigVM_Task", params, [&] {
    // The new VM's own device (its key and file), not the source's.
    SourceVm now = read_source_vm(client_, vm);
    if (now.hardware.disks.empty()) fail("the new VM has no disk to grow");
    vmspec::ConfigSpec spec;
    spec.device_changes.push_back(vmspec::device_change_xml(
        "edit", "", vmspec::disk_resize_xml(now.hardware.disks.front(), target)));
    client_.wait_for_task(task_of(client_.call("ReconfigVM_Task", vm, spec.xml("spec"))));
  });
}

Provisioned Provisioner::create_standalone(const SourceVm& src, const NewVm& req,
                                           const Provisioned& ids) {
  Provisioned out = ids;
  auto dir = vmspec::parse_datastore_path(ids.vmx);
  dir.path = vmspec::dir_name(dir.path);
  make_directory(dir.text());
  copy_disks(src, req, ids);
  out.vm = create_vm(src, req, ids);
  grow_first_disk(out.vm, src, req);
  return out;
}

std::string Provisioner::make_fresh_directory(const std::string& datastore,
                                              const std::string& base) {
  for (int n = 0; n < 100; ++n) {
    std::string dir = base + (n ? "_" + std::to_string(n) : "");
    if (try_make_directory(vmspec::DatastorePath{datastore, dir}.text())) return dir;
  }
  fail("no free folder name for " + quote(base) + " on datastore " + quote(datastore));
}

Provisioned Provisioner::create_from_disks(const SourceVm& config, const NewVm& req,
                                           const Provisioned& ids, const UploadFn& upload) {
  undo_.clear();
  keep_ = req.keep_on_failure;
  network_ = network_for(config, req);
  if (ssh_) {
    // Refused before the first change, as create_over_ssh does.
    if (client_.content().is_vcenter())
      fail("writing over SSH is for a standalone host; " + client_.endpoint().id + " is a vCenter");
    int64_t first =
        config.hardware.disks.empty() ? 0 : config.hardware.disks.front().capacity_bytes;
    if (req.disk_grow && vmspec::grown_capacity(*req.disk_grow, first) != first)
      fail(
          "growing the first disk is not supported over SSH (the free licence's API is "
          "read-only); restore, then grow the disk in the guest's golden image");
    if (network_.distributed()) fail("a distributed portgroup cannot be used on a standalone host");
    (void)new_vmx(config, req, ids, network_.name);
  }
  Provisioned out = ids;
  auto vmx = vmspec::parse_datastore_path(ids.vmx);
  std::string base = dir_for(req.name);
  std::string dir = make_fresh_directory(vmx.datastore, base);
  out.vmx = vmspec::DatastorePath{vmx.datastore, dir + "/" + base + ".vmx"}.text();
  try {
    out.disks = upload(vmspec::DatastorePath{vmx.datastore, dir}.text(), out.vmx);
  } catch (const Error& e) {
    roll_back("uploading the disks", e);
  }
  if (out.disks.size() != config.hardware.disks.size())
    roll_back("uploading the disks",
              Error("the backup has " + std::to_string(out.disks.size()) + " disk(s), its config " +
                    std::to_string(config.hardware.disks.size())));
  out.vm = create_vm(config, req, out);
  grow_first_disk(out.vm, config, req);
  return out;
}

// ------------------------------------------------------------- over SSH (free licence)

namespace {

ordered_json ssh_params(const std::vector<std::string>& argv, ordered_json extra = {}) {
  ordered_json p = ordered_json::object();
  p["command"] = shell_command(argv);
  if (extra.is_object())
    for (auto it = extra.begin(); it != extra.end(); ++it) p[it.key()] = it.value();
  return p;
}

}  // namespace

std::string Provisioner::ssh_run(const std::vector<std::string>& argv, const std::string& what,
                                 std::string_view input) {
  return run_host_client(*writer_, argv, what, input);
}

// False (nothing changed) when the folder exists already.
bool Provisioner::ssh_make_directory(const std::string& dir) {
  std::string path = vmfs_path(vmspec::parse_datastore_path(dir), "folder");
  std::vector<std::string> argv = {"mkdir", path};
  bool exists = false;
  bool made = step("creating folder " + dir, "MakeDirectory", ssh_params(argv, {{"name", dir}}),
                   [&] { exists = !ssh_make_dir(*writer_, path); });
  if (exists) return false;
  if (made)
    undo_.push_back({"folder " + dir, [this, dir, path, vm_left = vm_left_] {
                       if (*vm_left) fail("a VM registered from it could not be unregistered");
                       std::vector<std::string> rm = {"rm", "-rf", "--", path};
                       gate_("DeleteDatastoreFile_Task", ssh_params(rm, {{"name", dir}}),
                             [&] { ssh_run(rm, "rm"); });
                     }});
  return true;
}

void Provisioner::ssh_copy_disks(const SourceVm& src, const NewVm& req, const Provisioned& ids) {
  const auto& disks = src.hardware.disks;
  for (size_t i = 0; i < disks.size(); ++i) {
    const auto& d = disks[i];
    std::string n = std::to_string(i + 1);
    std::string from =
        vmfs_path(vmspec::parse_datastore_path(d.file), "disk " + n + " of the source");
    std::string dest = ids.disks.at(i);
    std::string to = vmfs_path(vmspec::parse_datastore_path(dest), "new disk " + n);
    std::string format = req.thick ? "zeroedthick" : "thin";
    std::vector<std::string> argv = {"vmkfstools", "-i", from, "-d", format, to};
    std::string label = "copying disk " + n + "/" + std::to_string(disks.size());
    ordered_json params = ssh_params(
        argv,
        {{"source", d.file}, {"dest", dest}, {"disk_type", req.thick ? "preallocated" : "thin"}});
    // The folder's undo removes the copies with it.
    step(label, "CopyVirtualDisk_Task", params, [&] {
      ssh_run(argv, "vmkfstools -i");
      if (progress_) progress_(label, 100);
    });
  }
}

void Provisioner::ssh_power_off_if_on(const std::string& vmid) {
  std::string state =
      ssh_run({"vim-cmd", "vmsvc/power.getstate", vmid}, "vim-cmd vmsvc/power.getstate");
  if (vim::parse_power_state(state) == vim::PowerState::powered_off) return;
  std::vector<std::string> off = {"vim-cmd", "vmsvc/power.off", vmid};
  gate_("PowerOffVM_Task", ssh_params(off), [&] { ssh_run(off, "vim-cmd vmsvc/power.off"); });
}

vim::MoRef Provisioner::ssh_create_vm(const SourceVm& config, const NewVm& req,
                                      const Provisioned& ids) {
  std::string vmx_text = new_vmx(config, req, ids, network_.name);
  std::string vmx = vmfs_path(vmspec::parse_datastore_path(ids.vmx), "the .vmx");
  // Never over an existing file (noclobber): the folder is this run's.
  std::vector<std::string> write = {"sh", "-c", "set -C && cat >\"$1\"", "sh", vmx};
  step("writing " + ids.vmx, "CreateVM_Task",
       ssh_params(write, {{"name", req.name},
                          {"vmx", ids.vmx},
                          {"cpus", req.cpus.value_or(config.cpus)},
                          {"memory_mib", req.memory_mib.value_or(config.memory_mib)},
                          {"macs", ids.macs},
                          {"uuid", ids.uuid}}),
       [&] { ssh_run(write, "writing the .vmx", vmx_text); });
  std::vector<std::string> reg = {"vim-cmd", "solo/registervm", vmx, req.name};
  // Undo whatever got registered from our .vmx, even when registervm failed
  // after registering: by the id it printed, else found by its path (never
  // by name). While a VM stays registered its folder is not removed.
  auto vmid = std::make_shared<std::string>();
  auto vm_left = vm_left_;
  std::string vmx_ds = ids.vmx;
  undo_.push_back({"VM " + quote(req.name), [this, vmx_ds, vmid, vm_left] {
                     for (const auto& id : ssh_registered_vmids(*writer_, *vmid, vmx_ds)) {
                       *vm_left = true;
                       ssh_power_off_if_on(id);
                       std::vector<std::string> un = {"vim-cmd", "vmsvc/unregister", id};
                       gate_("UnregisterVM", ssh_params(un),
                             [&] { ssh_run(un, "vim-cmd vmsvc/unregister"); });
                       *vm_left = false;
                     }
                   }});
  bool made = step("registering " + quote(req.name), "RegisterVM_Task",
                   ssh_params(reg, {{"name", req.name}, {"vmx", ids.vmx}}),
                   [&] { ssh_register_vm(*writer_, client_, ids.vmx, req.name, *vmid); });
  if (!made) return {};
  return {"VirtualMachine", *vmid};
}

Provisioned Provisioner::create_over_ssh(const SourceVm& src, const NewVm& req,
                                         const Provisioned& ids) {
  if (client_.content().is_vcenter())
    fail("writing over SSH is for a standalone host; " + client_.endpoint().id + " is a vCenter");
  if (req.disk_grow &&
      vmspec::grown_capacity(*req.disk_grow, src.hardware.disks.empty()
                                                 ? 0
                                                 : src.hardware.disks.front().capacity_bytes) !=
          (src.hardware.disks.empty() ? 0 : src.hardware.disks.front().capacity_bytes))
    fail(
        "growing the first disk is not supported over SSH (the free licence's API is "
        "read-only); make the VM, then grow the disk in the guest's golden image");
  if (network_.distributed()) fail("a distributed portgroup cannot be used on a standalone host");
  // Everything that can be refused is refused before the first change.
  (void)new_vmx(src, req, ids, network_.name);
  Provisioned out = ids;
  auto dir = vmspec::parse_datastore_path(ids.vmx);
  dir.path = vmspec::dir_name(dir.path);
  make_directory(dir.text());
  ssh_copy_disks(src, req, ids);
  out.vm = create_vm(src, req, ids);
  return out;
}

// ------------------------------------------------------------- vCenter

Provisioned Provisioner::clone_vcenter(const SourceVm& src, const NewVm& req,
                                       const Provisioned& ids) {
  Provisioned out = ids;
  vmspec::ConfigSpec config;
  config.uuid = ids.uuid;
  config.instance_uuid = ids.instance_uuid;
  config.annotation = req.annotation;
  config.num_cpus = req.cpus;
  config.memory_mib = req.memory_mib;
  for (size_t i = 0; i < src.hardware.nics.size(); ++i)
    config.device_changes.push_back(vmspec::device_change_xml(
        "edit", "", vmspec::nic_mac_xml(src.hardware.nics[i], ids.macs.at(i), network_)));
  config.extra_config = new_extra_config(src, req);
  // A clone inherits the source's ExtraConfig: clear guestinfo we do not set
  // (and the tags when new ones are given) so nothing of the source leaks.
  for (const auto& entry : src.extra_config) {
    const std::string& k = entry.first;  // (clang 14 cannot capture a structured binding)
    bool set = std::any_of(config.extra_config.begin(), config.extra_config.end(),
                           [&](const auto& kv) { return kv.first == k; });
    if (!set && (k.starts_with("guestinfo.") || (k == "ceso.tags" && req.tags)))
      config.extra_config.emplace_back(k, "");
  }
  // RelocateSpec in WSDL order: datastore, pool, host.
  std::string location;
  if (!req.host.empty()) {
    SourceVm on = src;  // the chosen host's datastores and (without --pool) its root pool
    on.host = req.host;
    on.pool = {};
    if (!req.datastore.empty())
      location += vim::moref_xml("datastore", find_datastore(on, req.datastore));
    location += vim::moref_xml("pool", req.pool.empty() ? resolve_pool(on) : req.pool);
    location += vim::moref_xml("host", req.host);
  } else {
    if (!req.datastore.empty() && req.datastore != src.datastore())
      location += vim::moref_xml("datastore", find_datastore(src, req.datastore));
    location += vim::moref_xml("pool", req.pool.empty() ? resolve_pool(src) : req.pool);
  }
  std::string spec = "<spec><location>" + location + "</location><template>false</template>" +
                     config.xml("config") + "<powerOn>false</powerOn></spec>";
  std::string args = vim::moref_xml("folder", src.folder) + tag("name", req.name) + spec;
  ordered_json params = {{"source", src.name},
                         {"name", req.name},
                         {"macs", ids.macs},
                         {"uuid", ids.uuid},
                         {"spec", spec}};
  std::string label = "cloning " + quote(src.name);
  if (step(label, "CloneVM_Task", params, [&] {
        auto task = task_of(client_.call("CloneVM_Task", src.ref, args));
        xml::Node r = client_.wait_for_task(task, [&](int pct) {
          if (progress_) progress_(label, pct);
        });
        out.vm = prop_moref(r);
      })) {
    vim::MoRef vm = out.vm;
    undo_.push_back(remove_vm_undo(req.name, vm));
    // The clone's disk paths are the host's choice.
    SourceVm made = read_source_vm(client_, vm);
    out.disks.clear();
    for (const auto& d : made.hardware.disks) out.disks.push_back(d.file);
    out.vmx = made.vmx_path;
    grow_first_disk(vm, made, req);
  }
  return out;
}

// ------------------------------------------------------------- cloud-init flags

GuestInfo reidentified_guestinfo(const std::map<std::string, std::string>& source_extra_config,
                                 const ordered_json& fields, GuestInfoEncoding encoding,
                                 const std::vector<std::pair<std::string, std::string>>& macs) {
  std::map<std::string, std::string, std::less<>> old;
  for (const auto& [k, v] : source_extra_config)
    if (k.rfind("guestinfo.", 0) == 0) old.emplace(k, v);
  GuestInfoDocuments docs = render_documents(SpecReader().read(fields, FieldStyle::flag));
  if (old.count("guestinfo.metadata")) {
    GuestInfo before = decode_guestinfo(old);
    if (!touches_user_data(fields)) docs.userdata = before.documents.userdata;
    if (!touches_network(fields)) {
      docs.network = before.documents.network;
      for (const auto& [from, to] : macs) replace_mac(docs.network, from, to);
    }
  }
  // render_documents made a fresh instance-id (there is no flag to keep one).
  return encode_guestinfo(docs, encoding);
}

void replace_mac(std::string& text, const std::string& from, const std::string& to) {
  if (from.size() != 17 || to.empty()) return;
  std::string hay = ascii_lower(text), needle = ascii_lower(from);
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1))
    text.replace(at, needle.size(), to);
}

}  // namespace ceso
