#include "vm/migrate.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include "base/cancel.hpp"
#include "base/error.hpp"
#include "base/log.hpp"
#include "base/xml.hpp"
#include "transport/relay.hpp"
#include "vm/host.hpp"
#include "vm/hostcli.hpp"
#include "vm/names.hpp"
#include "vm/provision.hpp"
#include "vm/spec.hpp"
#include "vm/vm.hpp"
#include "vm/vmx.hpp"
#include "vm/writer.hpp"

namespace ceso {

namespace {

using xml::tag;

using vim::task_of;

// Files a powered-off VM without snapshots has; anything else stops the move.
const std::set<std::string> kCopied = {"config",         "extendedConfig", "nvram", "snapshotList",
                                       "diskDescriptor", "diskExtent",     "log"};
// Left behind (made again by the host at power-on) — none for a VM that is off.
const std::set<std::string> kSkipped = {"swap", "uwswap", "stat", "screenshot", "core"};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// "dir/file" → "dir"; refuses what is not exactly one folder deep.
std::string folder_of(const DatastorePath& p, const std::string& what) {
  size_t slash = p.path.find('/');
  if (slash == std::string::npos || slash == 0 || p.path.find('/', slash + 1) != std::string::npos)
    fail(what + " " + quote(p.str()) +
         " is not in a folder of its own on the datastore; ceso-mv moves VMs whose files are "
         "all in the VM's folder");
  std::string dir = p.path.substr(0, slash);
  if (dir == "." || dir == "..") fail(what + " " + quote(p.str()) + " has a bad folder name");
  return dir;
}

struct DatastoreInfo {
  vim::MoRef ref;
  std::string name;
  uint64_t free = 0;
  bool accessible = false;
};

std::vector<DatastoreInfo> host_datastores(vim::Client& c, vim::MoRef* host_out,
                                           vim::MoRef* pool_out) {
  auto hosts = host_systems(c);
  if (hosts.size() != 1)
    fail(c.endpoint().id + " lists " + std::to_string(hosts.size()) +
         " hosts; a standalone host has one");
  *host_out = hosts.front();
  auto h = c.retrieve({hosts.front()}, {"datastore", "parent"});
  if (h.empty()) fail("the host of " + c.endpoint().id + " disappeared");
  std::vector<vim::MoRef> refs;
  if (const xml::Node* v = h.front().prop("datastore"))
    for (const auto& child : v->children) refs.push_back(vim::moref_of(child));
  if (const xml::Node* parent = h.front().prop("parent")) {
    auto cr = c.retrieve({vim::moref_of(*parent)}, {"resourcePool"});
    if (!cr.empty())
      if (const xml::Node* rp = cr.front().prop("resourcePool")) *pool_out = vim::moref_of(*rp);
  }
  std::vector<DatastoreInfo> out;
  if (refs.empty()) return out;
  for (const auto& o : c.retrieve(refs, {"summary"})) {
    const xml::Node* s = o.prop("summary");
    if (!s) continue;
    out.push_back({o.obj, s->child_text("name"),
                   std::strtoull(s->child_text("freeSpace").c_str(), nullptr, 10),
                   s->child_text("accessible") == "true"});
  }
  return out;
}

vim::MoRef vm_folder(vim::Client& c) {
  auto root = c.retrieve({c.content().root_folder}, {"childEntity"});
  if (!root.empty())
    if (const xml::Node* v = root.front().prop("childEntity"))
      for (const auto& child : v->children) {
        vim::MoRef ref = vim::moref_of(child);
        if (ref.type != "Datacenter") continue;
        auto dc = c.retrieve({ref}, {"vmFolder"});
        if (!dc.empty())
          if (const xml::Node* f = dc.front().prop("vmFolder")) return vim::moref_of(*f);
      }
  fail("cannot find the VM folder of " + c.endpoint().id);
}

void refuse_restricted(vim::Client& c, const std::string& side) {
  if (!c.api_writes_restricted()) return;
  if (side == "target")
    fail("the target host " + c.endpoint().id +
         " is free-licensed: its API is read-only and its /folder service takes no uploads, so "
         "ceso-mv writes the files and registers the VM there over SSH; " +
         (c.endpoint().ssh ? std::string("its SSH access is configured, but --transport api "
                                         "forbids it: leave --transport at auto or give ssh")
                           : ssh_access_hint(c.endpoint())));
  fail("the source host " + c.endpoint().id +
       " is free-licensed: its API cannot remove the VM; configure SSH access to it "
       "(ceso(7), FREE ESXI OVER SSH) or copy with --keep-source");
}

// What ceso-mv refuses to move, whichever way it moves (the answer holds
// config.template, runtime.powerState, snapshot, config.hardware.device).
void refuse_unmovable(const vim::ObjectContent& o, const std::string& what) {
  if (o.text("config.template") == "true")
    fail(what + " is a template; ceso-mv moves VMs (make it a VM first: ceso-template)");
  std::string power = o.text("runtime.powerState");
  if (power != "poweredOff")
    throw Error(what + " is " + (power == "poweredOn" ? "powered on" : power) +
                    "; ceso-mv moves powered-off VMs only (ceso-power off first)",
                Exit::policy);
  if (const xml::Node* s = o.prop("snapshot"); s && s->child("rootSnapshotList"))
    fail(what +
         " has snapshots; ceso-mv does not move them and never consolidates a "
         "user's snapshots: remove them (ceso-snap rm) or keep the VM where it is");
  if (const xml::Node* devs = o.prop("config.hardware.device"))
    for (const auto& d : devs->children)
      if (d.type() == "VirtualPCIPassthrough")
        fail(what +
             " has a PCI passthrough device, which names a device of its host; "
             "remove it (ceso-pci) before moving the VM");
}

}  // namespace

std::map<std::string, std::string> vmx_values(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string key(line.substr(0, eq));
    key.erase(std::remove_if(key.begin(), key.end(), [](char c) { return c == ' ' || c == '\t'; }),
              key.end());
    std::string_view v = line.substr(eq + 1);
    size_t q1 = v.find('"'), q2 = v.rfind('"');
    if (key.empty() || q1 == std::string_view::npos || q2 <= q1) continue;
    std::string raw(v.substr(q1 + 1, q2 - q1 - 1)), value;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '|' && i + 2 < raw.size() &&
          std::isxdigit(static_cast<unsigned char>(raw[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(raw[i + 2]))) {
        value += static_cast<char>(std::stoi(raw.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        value += raw[i];
      }
    }
    out.emplace(lower(key), value);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> copy_macs(
    const std::map<std::string, std::string>& vmx, const std::vector<std::string>& given) {
  std::vector<std::pair<int, std::string>> nics;  // N, old MAC
  for (const auto& [k, v] : vmx) {
    if (k.rfind("ethernet", 0) != 0 || k.size() < 17 || k.substr(k.size() - 8) != ".present")
      continue;
    std::string n = k.substr(8, k.size() - 16);
    if (n.empty() || !std::all_of(n.begin(), n.end(), ::isdigit) || lower(v) != "true") continue;
    std::string pre = "ethernet" + n + ".";
    auto a = vmx.find(pre + "address");
    if (a == vmx.end() || a->second.empty()) a = vmx.find(pre + "generatedaddress");
    nics.push_back({std::stoi(n), a == vmx.end() ? "" : lower(a->second)});
  }
  std::sort(nics.begin(), nics.end());
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < nics.size(); ++i)
    out.push_back({nics[i].second, i < given.size() ? given[i] : vmspec::random_mac()});
  return out;
}

std::string moved_vmx(const std::string& text, bool keep_source, const std::string& new_name,
                      const std::string& uuid, const std::string& instance_uuid,
                      const std::vector<std::pair<std::string, std::string>>& guestinfo,
                      const std::vector<std::pair<std::string, std::string>>& macs) {
  std::vector<VmxChange> changes = {{"uuid.action", "keep"}};
  if (keep_source) {
    auto values = vmx_values(text);
    changes.push_back({"displayName", new_name});
    changes.push_back({"uuid.bios", vmx_uuid(uuid)});
    changes.push_back({"vc.uuid", vmx_uuid(instance_uuid)});
    if (values.count("uuid.location")) changes.push_back({"uuid.location", std::nullopt});
    // NICs in ethernetN order, as copy_macs listed them.
    std::vector<int> ns;
    for (const auto& [k, v] : values)
      if (k.rfind("ethernet", 0) == 0 && k.size() > 16 && k.substr(k.size() - 8) == ".present" &&
          lower(v) == "true") {
        std::string n = k.substr(8, k.size() - 16);
        if (!n.empty() && std::all_of(n.begin(), n.end(), ::isdigit)) ns.push_back(std::stoi(n));
      }
    std::sort(ns.begin(), ns.end());
    for (size_t i = 0; i < ns.size() && i < macs.size(); ++i) {
      std::string pre = "ethernet" + std::to_string(ns[i]) + ".";
      changes.push_back({pre + "addressType", "static"});
      changes.push_back({pre + "address", macs[i].second});
      for (const char* k : {"generatedAddress", "generatedAddressOffset"})
        if (values.count(lower(pre + k))) changes.push_back({pre + k, std::nullopt});
    }
    for (const auto& [k, v] : guestinfo) changes.push_back({k, v});
  }
  return edit_vmx(text, changes);
}

MovePlan plan_move(vim::Client& source, const vim::MoRef& vm, vim::Client& target,
                   const MoveRequest& req, bool source_over_ssh, bool target_over_ssh) {
  if (source.endpoint().id == target.endpoint().id)
    usage_error("the VM is on " + source.endpoint().id + " already: --to names the same host");
  for (auto* c : {&source, &target})
    if (c->content().is_vcenter())
      fail(c->endpoint().id +
           " is a vCenter; ceso-mv moves a VM between standalone hosts, or between the hosts "
           "of one vCenter (then --to names one of its hosts)");
  if (!source_over_ssh && !req.keep_source) refuse_restricted(source, "source");
  if (!target_over_ssh) refuse_restricted(target, "target");

  auto objs =
      source.retrieve({vm}, {"name", "config.uuid", "config.instanceUuid", "config.template",
                             "config.files.vmPathName", "runtime.powerState", "snapshot",
                             "layoutEx", "config.hardware.device", "config.extraConfig"});
  if (objs.empty()) fail("the VM disappeared");
  const auto& o = objs.front();
  MovePlan p;
  p.vm = vm;
  p.name = o.text("name");
  p.uuid = o.text("config.uuid");
  p.instance_uuid = o.text("config.instanceUuid");
  std::string what = "VM " + quote(p.name);
  refuse_unmovable(o, what);
  if (const xml::Node* ec = o.prop("config.extraConfig"))
    for (const auto& ov : ec->children)
      p.extra_config[ov.child_text("key")] = ov.child_text("value");

  DatastorePath vmx = parse_datastore_path(o.text("config.files.vmPathName"));
  p.source_dir = {vmx.datastore, folder_of(vmx, "the .vmx")};
  p.new_name = req.keep_source ? req.new_name : p.name;
  std::string target_ds = req.datastore.empty() ? vmx.datastore : req.datastore;
  p.target_dir = {target_ds, req.keep_source ? req.new_name : p.source_dir.path};
  if (req.keep_source) (void)vmfs_path(vmspec::parse_datastore_path(p.target_dir.str()), "--as");

  const xml::Node* layout = o.prop("layoutEx");
  if (!layout || layout->all("file").empty())
    fail("the host lists no files for " + what + " (layoutEx); cannot tell what to copy");
  for (const xml::Node* f : layout->all("file")) {
    std::string type = f->child_text("type");
    DatastorePath path = parse_datastore_path(f->child_text("name"));
    if (kSkipped.count(type)) continue;
    if (!kCopied.count(type))
      fail(what + " has a file of kind " + quote(type) + " (" + quote(path.str()) +
           "), which a powered-off VM without snapshots does not have; not moved");
    if (path.datastore != p.source_dir.datastore || folder_of(path, "file") != p.source_dir.path)
      fail(what + ": " + quote(path.str()) + " is outside the VM's folder " +
           quote(p.source_dir.str()) + "; ceso-mv moves VMs whose files are all in their folder");
    std::string base = path.path.substr(path.path.find('/') + 1);
    uint64_t size = std::strtoull(f->child_text("size").c_str(), nullptr, 10);
    p.files.push_back({path, {target_ds, p.target_dir.path + "/" + base}, type, size});
    if (target_over_ssh)  // refused here, before anything is made, not at its command
      (void)shell_quote(vmfs_path(p.files.back().to.str()),
                        "target file " + p.files.back().to.str());
    p.bytes += size;
  }
  // The .vmx first: a target that refuses it refuses before the disks.
  std::stable_sort(p.files.begin(), p.files.end(), [](const MoveFile& a, const MoveFile& b) {
    return (a.kind == "config") > (b.kind == "config");
  });
  if (p.files.empty() || p.files.front().kind != "config")
    fail("the host lists no .vmx for " + what + " in its layoutEx");

  vim::MoRef src_host, src_pool;
  for (const auto& ds : host_datastores(source, &src_host, &src_pool))
    if (ds.name == vmx.datastore && !ds.accessible)
      fail("the source datastore " + quote(ds.name) + " is not accessible");
  bool found = false;
  for (const auto& ds : host_datastores(target, &p.target_host, &p.target_pool)) {
    if (ds.name != target_ds) continue;
    found = true;
    if (!ds.accessible) fail("the target datastore " + quote(ds.name) + " is not accessible");
    if (ds.free < p.bytes)
      fail("the target datastore " + quote(ds.name) + " on " + target.endpoint().id + " has " +
           size_text(ds.free) + " free; " + what + " needs " + size_text(p.bytes));
  }
  if (!found)
    fail("the target " + target.endpoint().id + " has no datastore " + quote(target_ds) +
         (req.datastore.empty() ? " (the source's; name one with --datastore)" : ""));
  if (p.target_pool.empty()) fail("cannot find the resource pool of " + target.endpoint().id);
  p.target_folder = vm_folder(target);

  for (const auto& t : target.retrieve_all_vms({"name", "config.uuid"})) {
    if (same_vm_name(t.text("name"), p.new_name))
      fail("a VM named " + quote(p.new_name) + " exists on " + target.endpoint().id + " already");
    if (!req.keep_source && !p.uuid.empty() && t.text("config.uuid") == p.uuid)
      fail("a VM with the BIOS uuid " + p.uuid + " of " + what + " (" + quote(t.text("name")) +
           ") exists on " + target.endpoint().id + " already");
  }
  return p;
}

ordered_json relocate_vm(vim::Client& c, const vim::MoRef& vm, const std::string& host,
                         const std::string& datastore, Gate& gate) {
  auto objs = c.retrieve({vm}, {"name", "config.template", "runtime.powerState", "runtime.host",
                                "snapshot", "config.hardware.device", "datastore"});
  if (objs.empty()) fail("the VM disappeared");
  const auto& o = objs.front();
  std::string name = o.text("name");
  std::string what = "VM " + quote(name);
  refuse_unmovable(o, what);
  vim::MoRef from;
  if (const xml::Node* h = o.prop("runtime.host")) from = vim::moref_of(*h);
  std::vector<vim::MoRef> vm_ds;
  if (const xml::Node* v = o.prop("datastore"))
    for (const auto& child : v->children) vm_ds.push_back(vim::moref_of(child));

  auto hosts = host_systems(c);
  std::vector<vim::ObjectContent> found;
  std::string from_name;
  for (auto& h : c.retrieve(hosts, {"name", "datastore", "parent"})) {
    if (h.obj == from) from_name = h.text("name");
    if (h.text("name") == host) found.push_back(std::move(h));
  }
  if (found.empty())
    usage_error("--to " + quote(host) + ": " + c.endpoint().id + " has no such host");
  if (found.size() > 1) fail("--to " + quote(host) + ": " + c.endpoint().id + " has several");
  const auto& h = found.front();
  if (h.obj == from) usage_error(what + " is on " + quote(host) + " already");
  std::vector<vim::MoRef> host_ds;
  if (const xml::Node* v = h.prop("datastore"))
    for (const auto& child : v->children) host_ds.push_back(vim::moref_of(child));
  vim::MoRef ds;
  if (!datastore.empty()) {
    for (const auto& d : c.retrieve(host_ds, {"summary"}))
      if (const xml::Node* sm = d.prop("summary"); sm && sm->child_text("name") == datastore) {
        if (sm->child_text("accessible") != "true")
          fail("the datastore " + quote(datastore) + " is not accessible from " + quote(host));
        ds = d.obj;
      }
    if (ds.empty()) fail("the host " + quote(host) + " has no datastore " + quote(datastore));
  } else {
    for (const auto& d : vm_ds)
      if (std::find(host_ds.begin(), host_ds.end(), d) == host_ds.end())
        fail(what + " has files on a datastore the host " + quote(host) +
             " cannot see; name one it can with --datastore");
  }
  vim::MoRef pool;
  if (const xml::Node* parent = h.prop("parent")) {
    auto cr = c.retrieve({vim::moref_of(*parent)}, {"resourcePool"});
    if (!cr.empty())
      if (const xml::Node* rp = cr.front().prop("resourcePool")) pool = vim::moref_of(*rp);
  }
  if (pool.empty()) fail("cannot find the resource pool of the host " + quote(host));
  std::string spec = "<spec>" + (ds.empty() ? "" : vim::moref_xml("datastore", ds)) +
                     vim::moref_xml("pool", pool) + vim::moref_xml("host", h.obj) + "</spec>";
  ordered_json params = {{"host", host}, {"from_host", from_name}};
  if (!datastore.empty()) params["datastore"] = datastore;
  Mutation m{c.endpoint().id, name, vm.value, "RelocateVM_Task", params, "api"};
  if (!gate.perform(m, [&] { c.wait_for_task(task_of(c.call("RelocateVM_Task", vm, spec))); }))
    return nullptr;
  auto after = c.retrieve({vm}, vm_record_paths());
  if (after.empty()) fail("the VM disappeared after RelocateVM_Task");
  ordered_json rec = vm_record(after.front(), c.endpoint());
  rec["changed"] = true;
  rec["host"] = host;
  rec["moved_from"] = {{"endpoint", c.endpoint().id}, {"host", from_name}};
  return rec;
}

ordered_json plan_files(const MovePlan& plan) {
  ordered_json files = ordered_json::array();
  for (const auto& f : plan.files)
    files.push_back({{"from", f.from.str()}, {"to", f.to.str()}, {"bytes", f.size}});
  return files;
}

namespace {

class MoveRun {
 public:
  MoveRun(vim::Client& s, VmWriter& sw, vim::Client& t, VmWriter& tw, const MovePlan& p,
          const MoveRequest& r, Gate& g, Progress& pr)
      : src_(s),
        src_writer_(sw),
        dst_(t),
        dst_writer_(tw),
        plan_(p),
        req_(r),
        gate_(g),
        progress_(pr) {}

  ordered_json run();

 private:
  vim::Client& src_;
  VmWriter& src_writer_;
  vim::Client& dst_;
  VmWriter& dst_writer_;  // over SSH on a free-licensed target
  const MovePlan& plan_;
  const MoveRequest& req_;
  Gate& gate_;
  Progress& progress_;
  bool made_dir_ = false;
  vim::MoRef registered_;
  bool register_tried_ = false;  // over SSH: registervm ran (its vmid may be unknown)
  std::string vmid_;             // over SSH: the vmid registervm gave
  ordered_json files_ = ordered_json::array();
  std::string new_uuid_, new_instance_uuid_, instance_id_;
  ordered_json macs_ = ordered_json::array();

  bool ssh() const { return dst_writer_.transport() == Transport::ssh; }
  std::string target_path(const DatastorePath& p) const { return vmfs_path(p.str()); }
  void make_target_dir();
  void put_text(const MoveFile& f, const std::string& text, const DownloadOptions& dopt);
  RelayResult relay(DatastoreFiles& from, DatastoreFiles& to, const MoveFile& f,
                    const RelayOptions& ro);
  std::optional<std::string> read_back(const MoveFile& f, const RelayResult& sent,
                                       const DownloadOptions& dopt, std::string& why);
  void register_target();
  void copy_in();
  void roll_back_target();
  void remove_source();
  std::string edited_vmx(const std::string& text);
};

std::string MoveRun::edited_vmx(const std::string& text) {
  if (!req_.keep_source) return moved_vmx(text, false, "", "", "", {}, {});
  auto values = vmx_values(text);
  auto macs = copy_macs(values, req_.macs);
  for (const auto& [from, to] : macs) macs_.push_back({{"from", from}, {"to", to}});
  GuestInfo gi = reidentified_guestinfo(plan_.extra_config, req_.cloudinit, req_.encoding, macs);
  instance_id_ = gi.instance_id;
  return moved_vmx(text, true, plan_.new_name, new_uuid_, new_instance_uuid_, gi.values, macs);
}

namespace {
std::string file_url(vim::Client& c, const DatastorePath& p) {
  return vim::datastore_file_url(c.endpoint(), "ha-datacenter", p.datastore, p.path);
}
}  // namespace

void MoveRun::make_target_dir() {
  std::string dir = plan_.target_dir.str();
  auto exists = [&] {
    fail("the folder " + quote(dir) + " exists on " + dst_.endpoint().id +
         " already; nothing was copied");
  };
  if (ssh()) {
    if (!ssh_make_dir(dst_writer_, target_path(plan_.target_dir))) exists();
    made_dir_ = true;
    return;
  }
  std::string args = tag("name", dir) + tag("createParentDirectories", "false");
  try {
    dst_.call("MakeDirectory", dst_.content().file_manager, args);
  } catch (const vim::Fault& f) {
    if (f.fault_type() == "FileAlreadyExists") exists();
    throw;
  }
  made_dir_ = true;
}

// The edited .vmx, from memory: a PUT, or over SSH the same write as a disk.
void MoveRun::put_text(const MoveFile& f, const std::string& text, const DownloadOptions& dopt) {
  size_t off = 0;
  auto input = [&](char* buf, size_t n) {
    n = std::min(n, text.size() - off);
    std::copy_n(text.data() + off, n, buf);
    off += n;
    return n;
  };
  if (ssh()) {
    run_ssh_file_write(dst_writer_, ssh_file_write(target_path(f.to)), input, dopt.cancelled);
    if (off != text.size()) fail("writing " + quote(f.to.str()) + " ended early");
    return;
  }
  DatastoreFiles to(dst_.endpoint(), dst_.http().cookie());
  to.upload(file_url(dst_, f.to), text.size(), input, dopt.cancelled);
}

RelayResult MoveRun::relay(DatastoreFiles& from, DatastoreFiles& to, const MoveFile& f,
                           const RelayOptions& ro) {
  if (!ssh()) return relay_file(from, file_url(src_, f.from), to, file_url(dst_, f.to), ro);
  // GET on the source, its bytes on the SSH channel's stdin (no restart: a
  // failed write fails the move, whose rollback removes the folder).
  SshFileWrite w = ssh_file_write(target_path(f.to));
  return relay_to(
      from, file_url(src_, f.from),
      [&](uint64_t, const std::function<size_t(char*, size_t)>& source) {
        run_ssh_file_write(dst_writer_, w, source, ro.download.cancelled);
      },
      ro);
}

// What differs between the target's copy and what was sent ("": nothing).
// Over the API the file is read back in segments, two ranged GETs at once
// (verify_remote_file); over SSH `cat` is streamed back and hashed (never
// held whole; stopped past the `sent` bytes). nullopt with `why` when the
// target has no such file.
std::optional<std::string> MoveRun::read_back(const MoveFile& f, const RelayResult& sent,
                                              const DownloadOptions& dopt, std::string& why) {
  if (ssh()) {
    auto got = ssh_hash_file(dst_writer_, target_path(f.to), why, sent.bytes);
    if (!got) return std::nullopt;
    if (got->bytes == sent.bytes && got->sha256 == sent.sha256) return "";
    return "holds " + std::to_string(got->bytes) + " bytes with SHA-256 " + got->sha256 +
           "; sent " + std::to_string(sent.bytes) + " bytes with SHA-256 " + sent.sha256;
  }
  why = "the target does not serve it";
  return verify_remote_file(dst_.endpoint(), dst_.http().cookie(), file_url(dst_, f.to), sent,
                            dopt);
}

void MoveRun::register_target() {
  const std::string& vmx = plan_.files.front().to.str();
  if (ssh()) {
    register_tried_ = true;
    ssh_register_vm(dst_writer_, dst_, vmx, plan_.new_name, vmid_);
    registered_ = {"VirtualMachine", vmid_};
    return;
  }
  std::string reg = tag("path", vmx) + tag("name", plan_.new_name) + tag("asTemplate", "false") +
                    vim::moref_xml("pool", plan_.target_pool) +
                    vim::moref_xml("host", plan_.target_host);
  xml::Node result =
      dst_.wait_for_task(task_of(dst_.call("RegisterVM_Task", plan_.target_folder, reg)));
  registered_ = vim::moref_of(result);
}

void MoveRun::copy_in() {
  dst_.content();
  src_.content();
  make_target_dir();
  DatastoreFiles from(src_.endpoint(), src_.http().cookie());
  DatastoreFiles to(dst_.endpoint(), dst_.http().cookie());
  DownloadOptions dopt;
  dopt.retries = req_.retries;
  dopt.cancelled = [] { return interrupt_requested(); };
  dopt.on_retry = [](const std::string& why) { warn("source: " + why); };
  std::vector<RelayResult> sent;
  for (const auto& f : plan_.files) {
    throw_if_interrupt_requested();
    RelayResult r;
    ordered_json rec = {{"file", f.to.str()}, {"kind", f.kind}};
    if (f.kind == "config") {
      std::string text;
      auto got = from.download(
          file_url(src_, f.from),
          [&](const char* d, size_t n) {
            if (text.size() + n > (4u << 20)) fail("the .vmx " + f.from.str() + " is over 4 MiB");
            text.append(d, n);
          },
          dopt);
      if (!got) fail("the source host does not serve the .vmx " + quote(f.from.str()));
      rec["source_sha256"] = hash_bytes(text).sha256;
      std::string out = edited_vmx(text);
      put_text(f, out, dopt);
      r = hash_bytes(out);
    } else {
      int task = progress_.start(plan_.name + " " + f.from.path, f.size);
      RelayOptions ro;
      ro.pipe_bytes = req_.pipe_bytes;
      ro.download = dopt;
      ro.put_retries = req_.retries;
      ro.progress = [&](uint64_t n) { progress_.advance(task, n); };
      ro.on_retry = [](const std::string& why) { warn("target: " + why); };
      try {
        r = relay(from, to, f, ro);
      } catch (...) {
        progress_.finish(task);
        throw;
      }
      progress_.finish(task);
      rec["source_sha256"] = r.sha256;
    }
    rec["bytes"] = r.bytes;
    rec["sha256"] = r.sha256;
    files_.push_back(rec);
    sent.push_back(r);
  }
  if (req_.verify) {
    for (size_t i = 0; i < plan_.files.size(); ++i) {
      throw_if_interrupt_requested();
      const auto& f = plan_.files[i];
      std::string why;
      auto differs = read_back(f, sent[i], dopt, why);
      if (!differs)
        fail("verify: " + quote(f.to.str()) + " on " + dst_.endpoint().id +
             " cannot be read back: " + why);
      if (!differs->empty())
        fail("verify: " + quote(f.to.str()) + " on " + dst_.endpoint().id + ": " + *differs);
      files_[i]["verified"] = true;
    }
  }
  throw_if_interrupt_requested();
  register_target();
  auto objs = dst_.retrieve(
      {registered_}, {"name", "config.uuid", "config.instanceUuid", "config.files.vmPathName"});
  if (objs.empty()) fail("the VM registered on the target disappeared");
  const auto& o = objs.front();
  std::string want_uuid = req_.keep_source ? new_uuid_ : plan_.uuid;
  std::string want_iuuid = req_.keep_source ? new_instance_uuid_ : plan_.instance_uuid;
  if (o.text("config.uuid") != want_uuid ||
      (!want_iuuid.empty() && o.text("config.instanceUuid") != want_iuuid))
    fail("the target registered the VM with BIOS uuid " + quote(o.text("config.uuid")) +
         " and instance uuid " + quote(o.text("config.instanceUuid")) + ", not " + want_uuid +
         " and " + want_iuuid);
  if (o.text("config.files.vmPathName") != plan_.files.front().to.str())
    fail("the target registered " + quote(o.text("config.files.vmPathName")) + ", not " +
         quote(plan_.files.front().to.str()));
  // The verified point: after it, the source may go.
  throw_if_interrupt_requested();
}

void MoveRun::roll_back_target() {
  CleanupScope cleanup;
  if (ssh()) {
    // What registervm made (by its vmid, else by the .vmx's getallvms rows),
    // then the folder this run made, over SSH: the target's API is read-only.
    try {
      if (register_tried_)
        for (const auto& id :
             ssh_registered_vmids(dst_writer_, vmid_, plan_.files.front().to.str()))
          run_host_client(dst_writer_, {"vim-cmd", "vmsvc/unregister", id},
                          "vim-cmd vmsvc/unregister");
      registered_ = {};
    } catch (const Error& e) {
      warn("rollback: could not unregister the VM on " + dst_writer_.name() + ": " + e.what());
      return;  // its folder is in use: leave it
    }
    if (made_dir_) {
      std::string dir = target_path(plan_.target_dir);
      try {
        SshResult r = dst_writer_.shell({"rm", "-rf", "--", dir});
        if (!r.ok()) fail("rm -rf " + dir + " failed" + r.ending());
        made_dir_ = false;
      } catch (const Error& e) {
        warn("rollback: could not delete " + quote(plan_.target_dir.str()) + " on " +
             dst_writer_.name() + ": " + e.what());
      }
    }
    return;
  }
  if (!registered_.empty()) {
    try {
      dst_.call("UnregisterVM", registered_);
      registered_ = {};
    } catch (const Error& e) {
      warn("rollback: could not unregister the VM on " + dst_.endpoint().id + ": " + e.what());
      return;  // its folder is in use: leave it
    }
  }
  if (made_dir_) {
    std::string a = tag("name", plan_.target_dir.str());
    try {
      dst_.wait_for_task(
          task_of(dst_.call("DeleteDatastoreFile_Task", dst_.content().file_manager, a)));
      made_dir_ = false;
    } catch (const Error& e) {
      warn("rollback: could not delete " + quote(plan_.target_dir.str()) + " on " +
           dst_.endpoint().id + ": " + e.what());
    }
  }
}

void MoveRun::remove_source() {
  Mutation m{src_.endpoint().id,
             plan_.name,
             plan_.vm.value,
             "Destroy_Task",
             {{"moved_to", dst_.endpoint().id}, {"vmx", plan_.files.front().to.str()}}};
  m.transport = std::string(to_string(src_writer_.transport()));
  gate_.perform(m, [&] {
    destroy_vm(src_writer_, plan_.vm);
    if (src_writer_.transport() == Transport::ssh) {
      std::string dir = vmfs_path(vmspec::parse_datastore_path(plan_.source_dir.str()), "folder");
      SshResult r = src_writer_.shell({"rm", "-rf", "--", dir});
      if (!r.ok()) fail("removing " + dir + " on " + src_writer_.name() + " failed" + r.ending());
      return;
    }
    std::string a = tag("name", plan_.source_dir.str());
    try {
      src_.wait_for_task(
          task_of(src_.call("DeleteDatastoreFile_Task", src_.content().file_manager, a)));
    } catch (const vim::Fault& f) {
      if (f.fault_type() != "FileNotFound") throw;  // gone with the VM
    }
  });
}

ordered_json MoveRun::run() {
  if (req_.keep_source) {
    new_uuid_ = vmspec::random_uuid();
    new_instance_uuid_ = vmspec::random_uuid();
  }
  ordered_json params = {{"from", src_.endpoint().id},
                         {"from_vm", plan_.vm.value},
                         {"vmx", plan_.files.front().to.str()},
                         {"files", plan_files(plan_)},
                         {"bytes", plan_.bytes},
                         {"identity", req_.keep_source ? "new" : "same"}};
  if (ssh()) {
    params["command"] = shell_command(
        {"vim-cmd", "solo/registervm", target_path(plan_.files.front().to), plan_.new_name});
    params["ssh"] = dst_writer_.name();
  }
  Mutation in{dst_.endpoint().id, plan_.new_name, "",
              "RegisterVM_Task",  params,         std::string(to_string(dst_writer_.transport()))};
  DeferredInterrupts deferred;  // the rollback always runs to its end
  bool done = gate_.perform(in, [&] {
    try {
      // The source goes at the end, over SSH on a free host: that SSH
      // access proves it reaches the source's host before anything is
      // read or made, or a wrong `ssh:` would leave the VM on both hosts.
      if (!req_.keep_source) src_writer_.prove();
      copy_in();
    } catch (...) {
      roll_back_target();
      throw;
    }
  });
  if (!done) {
    if (!req_.keep_source) {
      Mutation m{src_.endpoint().id,
                 plan_.name,
                 plan_.vm.value,
                 "Destroy_Task",
                 {{"moved_to", dst_.endpoint().id}, {"vmx", plan_.files.front().to.str()}}};
      m.transport = std::string(to_string(src_writer_.transport()));
      gate_.perform(m, [] {});
    }
    return nullptr;
  }
  if (!req_.keep_source) {
    try {
      remove_source();
    } catch (const Error& e) {
      throw Error("the VM is on " + dst_.endpoint().id +
                      " (verified and registered), but the "
                      "source could not be removed: " +
                      std::string(e.what()) +
                      "; both now have it: remove the source with ceso-rm -H " + src_.endpoint().id,
                  e.code());
    }
  }
  auto objs = dst_.retrieve({registered_}, vm_record_paths());
  if (objs.empty()) fail("the moved VM disappeared from " + dst_.endpoint().id);
  ordered_json rec = vm_record(objs.front(), dst_.endpoint());
  rec["changed"] = true;
  rec[req_.keep_source ? "copied_from" : "moved_from"] = {
      {"endpoint", src_.endpoint().id}, {"id", plan_.vm.value}, {"name", plan_.name}};
  rec["files"] = files_;
  if (req_.keep_source) {
    rec["macs"] = macs_;
    rec["instance_id"] = instance_id_;
  }
  return rec;
}

}  // namespace

ordered_json run_move(vim::Client& source, VmWriter& source_writer, vim::Client& target,
                      VmWriter& target_writer, const MovePlan& plan, const MoveRequest& req,
                      Gate& gate, Progress& progress) {
  return MoveRun(source, source_writer, target, target_writer, plan, req, gate, progress).run();
}

}  // namespace ceso
