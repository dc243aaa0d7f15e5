#include "vm/writer.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include "base/cancel.hpp"
#include "base/error.hpp"
#include "base/log.hpp"
#include "cloudinit/cloudinit.hpp"
#include "transport/ssh.hpp"
#include "vm/host.hpp"
#include "vsphere/vimcmd.hpp"

namespace ceso {

namespace {

// Starts a *_Task method and waits for it.
void run_task(vim::Client& c, std::string_view method, const vim::MoRef& self,
              std::string_view args = {}) {
  xml::Node resp = c.call(method, self, args);
  const xml::Node* rv = resp.child("returnval");
  if (!rv) throw Error(std::string(method) + " on " + c.endpoint().id + " returned no task");
  c.wait_for_task(vim::moref_of(*rv));
}

}  // namespace

std::string ssh_access_hint(const Endpoint& ep) {
  return "ceso makes changes on such a host over SSH: configure `ssh: root@" +
         (ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host) +
         "` (with ssh_identity and ssh_host_key) in its config entry, or CESO_SSH, "
         "CESO_SSH_IDENTITY and CESO_SSH_HOST_KEY (ceso(7), FREE ESXI OVER SSH)";
}

namespace {

class ApiVmWriter : public VmWriter {
 public:
  // `hint_ssh`: a RestrictedVersion answer says how to configure SSH access
  // (auto on a host without it).
  ApiVmWriter(vim::Client& c, bool hint_ssh) : c_(c), hint_ssh_(hint_ssh) {}
  Transport transport() const override { return Transport::api; }
  vim::Client& client() override { return c_; }

  void power(const vim::MoRef& vm, PowerOp op) override {
    guarded([&] { run_task(c_, power_method(op), vm); });
  }
  void guest(const vim::MoRef& vm, PowerOp op) override {
    guarded([&] { c_.call(power_method(op), vm); });
  }
  void destroy(const vim::MoRef& vm) override {
    guarded([&] { run_task(c_, "Destroy_Task", vm); });
  }
  vim::MoRef create_snapshot(const vim::MoRef& vm, const std::string& name,
                             const std::string& description, bool memory, bool quiesce) override {
    vim::MoRef ref;
    guarded([&] { ref = ceso::create_snapshot(c_, vm, name, description, memory, quiesce); });
    return ref;
  }
  void remove_snapshot(const vim::MoRef&, const SnapshotInfo& s, bool children,
                       bool consolidate) override {
    guarded([&] { ceso::remove_snapshot(c_, s.ref, children, consolidate); });
  }
  void remove_all_snapshots(const vim::MoRef& vm, bool consolidate) override {
    guarded([&] { ceso::remove_all_snapshots(c_, vm, consolidate); });
  }
  void revert_snapshot(const vim::MoRef&, const SnapshotInfo& s, bool suppress) override {
    guarded([&] { ceso::revert_snapshot(c_, s.ref, suppress); });
  }
  void reconfigure(const vim::MoRef& vm, const vmspec::ConfigSpec& spec) override {
    guarded([&] { run_task(c_, "ReconfigVM_Task", vm, spec.xml("spec")); });
  }

 private:
  template <typename F>
  void guarded(F&& f) {
    if (!hint_ssh_) return f();
    try {
      f();
    } catch (const vim::Fault& fault) {
      if (fault.fault_type() != "RestrictedVersion") throw;
      throw vim::Fault(std::string(fault.what()) + "; " + ssh_access_hint(c_.endpoint()),
                       fault.code(), fault.fault_type(), fault.method());
    }
  }

  vim::Client& c_;
  bool hint_ssh_;
};

}  // namespace

SshResult VmWriter::shell(const std::vector<std::string>& argv, std::string_view) {
  fail("cannot run " + quote(argv.empty() ? "" : argv.front()) +
       ": this write goes over the API, not SSH");
}

SshResult VmWriter::shell_input(const std::vector<std::string>& argv, const SshConnection::InputFn&,
                                const std::function<bool()>&) {
  fail("cannot run " + quote(argv.empty() ? "" : argv.front()) +
       ": this write goes over the API, not SSH");
}

SshResult VmWriter::shell_output(const std::vector<std::string>& argv,
                                 const std::function<void(const char*, size_t)>&) {
  fail("cannot run " + quote(argv.empty() ? "" : argv.front()) +
       ": this write goes over the API, not SSH");
}

void VmWriter::edit_vmx_file(const vim::MoRef&, const VmxEditor&) {
  fail("cannot edit a .vmx: this write goes over the API, not SSH");
}

SshResult VmWriter::host_command(const std::vector<std::string>& argv) {
  fail("cannot run " + quote(argv.empty() ? "" : argv.front()) +
       ": this write goes over the API, not SSH");
}

std::string VmWriter::name() const { return "the API"; }

namespace {

// The hardware uuid of the one HostSystem behind `c` (summary.hardware.uuid):
// one RetrievePropertiesEx from the root folder down to the hosts. Throws
// Error(usage) for a vCenter or an inventory of other than one host (vim-cmd
// over SSH speaks for one host only), Error(failure) when the host reports
// none.
std::string api_host_uuid(vim::Client& c) {
  const vim::ServiceContent& sc = c.content();
  if (sc.is_vcenter())
    usage_error(c.endpoint().id +
                " is a vCenter: changes over SSH go to a standalone ESXi host's own endpoint; "
                "configure `ssh:` on that host's entry instead");
  std::vector<std::string> uuids;
  c.for_each_object(host_systems_spec(sc.root_folder, {"summary.hardware.uuid"}),
                    [&](vim::ObjectContent&& o) {
                      if (o.obj.type == "HostSystem")
                        uuids.push_back(o.text("summary.hardware.uuid"));
                    });
  if (uuids.size() != 1)
    usage_error(c.endpoint().id + " lists " + std::to_string(uuids.size()) +
                " hosts over the API; changes over SSH need the endpoint of one standalone host");
  if (uuids.front().empty())
    fail(c.endpoint().id +
         " reports no hardware uuid (summary.hardware.uuid): cannot confirm that its SSH access "
         "leads to the same host, so nothing is changed over SSH");
  return uuids.front();
}

}  // namespace

// One endpoint's SSH connection, opened at its first command. Each new
// connection (the first, and one opened again after a lost one, which may
// reach another machine) is used only once `vim-cmd hostsvc/hostsummary`
// there has printed the hardware uuid the API reports for the endpoint's
// host (read once per run): a `ssh:` that leads to another host is refused
// before any command of the tool runs there, for good in this run.
struct VmWriters::Link {
  SshSettings settings;
  SshLimits limits;
  std::string name;  // "root@host:22", for messages before connecting
  std::mutex mutex;  // one command at a time
  std::unique_ptr<SshConnection> conn;
  uint64_t commands = 0;
  std::string api_uuid;  // summary.hardware.uuid over the API, "" = not read yet
  std::string refused;   // the message of a failed identity check, "" = none

  // Runs argv and returns what it printed, whatever its exit status.
  SshResult exec(vim::Client& api, const std::vector<std::string>& argv,
                 std::string_view input = {}) {
    std::lock_guard<std::mutex> lock(mutex);
    connect(api);
    ++commands;
    return conn->run(argv, input);
  }

  SshResult exec_input(vim::Client& api, const std::vector<std::string>& argv,
                       const SshConnection::InputFn& input, const std::function<bool()>& cancel) {
    std::lock_guard<std::mutex> lock(mutex);
    connect(api);
    ++commands;
    return conn->run_input(argv, input, cancel);
  }

  // Runs argv with its stdout streamed to `sink`; a sink that throws ends
  // the stream early (the connection is closed; the next command opens a
  // new one).
  SshResult exec_output(vim::Client& api, const std::vector<std::string>& argv,
                        const std::function<void(const char*, size_t)>& sink) {
    std::lock_guard<std::mutex> lock(mutex);
    connect(api);
    ++commands;
    std::unique_ptr<SshStream> s = conn->stream(argv);
    std::vector<char> buf(256u << 10);
    for (;;) {
      size_t n = s->read(buf.data(), buf.size());
      if (n == 0) break;
      sink(buf.data(), n);
    }
    return s->finish();
  }

  void prove(vim::Client& api) {
    std::lock_guard<std::mutex> lock(mutex);
    connect(api);
  }

  // The connection, opened at the first command; opened again (host key
  // checked again, identity checked again) after it was lost, so a rollback
  // can still run.
  void connect(vim::Client& api) {
    if (!refused.empty()) usage_error(refused);
    if (conn && !conn->lost()) return;
    conn.reset();
    if (api_uuid.empty()) api_uuid = api_host_uuid(api);
    auto fresh = std::make_unique<SshConnection>(settings, limits);
    ++commands;
    constexpr std::string_view kWhat = "vim-cmd hostsvc/hostsummary";
    SshResult r = fresh->run({"vim-cmd", "hostsvc/hostsummary"});
    // The summary is itself a "(vim.X) {" block, which check_result would
    // take for a fault: it looks only at output that is not a summary.
    size_t start = r.out.find_first_not_of(" \t\r\n");
    bool summary =
        start != std::string::npos && r.out.compare(start, 20, "(vim.host.Summary) {") == 0;
    if (!summary)
      vim::check_result(r, kWhat, name);  // a fault block, or the exit status
    else if (!r.ok())
      fail(std::string(kWhat) + " on " + name + " failed" + r.ending());
    std::string ssh_uuid = vim::parse_hostsummary_uuid(r.out);
    if (!vim::hardware_uuids_equal(api_uuid, ssh_uuid)) {
      refused = "SSH access " + name + " does not lead to the host of " + api.endpoint().id +
                ": its API reports hardware uuid " + quote(api_uuid) +
                ", vim-cmd hostsvc/hostsummary over SSH at " + name + " reports " +
                quote(ssh_uuid) + "; check `ssh:` (or CESO_SSH) for " + api.endpoint().id +
                "; nothing was changed over SSH";
      usage_error(refused);
    }
    conn = std::move(fresh);
  }

  // A vim-cmd: its result checked for fault blocks and the exit status
  // (vim::check_result); a transient ManagedObjectNotFound is tried again,
  // up to kAttempts times, with a short pause.
  SshResult vimcmd(vim::Client& api, const std::vector<std::string>& argv, std::string_view what) {
    constexpr int kAttempts = 4;
    for (int attempt = 1;; ++attempt) {
      SshResult r = exec(api, argv);
      try {
        vim::check_result(r, what, name);
        return r;
      } catch (const vim::Fault& f) {
        if (f.fault_type() != "ManagedObjectNotFound" || attempt >= kAttempts) throw;
      }
      throw_if_interrupted();
      std::this_thread::sleep_for(std::chrono::milliseconds(200 * attempt));
    }
  }

  // A plain shell command (cat, mv): only its exit status counts; what it
  // prints is file content, not host messages.
  SshResult shell(vim::Client& api, const std::vector<std::string>& argv, std::string_view what,
                  std::string_view input = {}) {
    SshResult r = exec(api, argv, input);
    if (!r.ok()) fail(std::string(what) + " on " + name + " failed" + r.ending());
    return r;
  }
};

namespace {

std::string_view ssh_power_verb(PowerOp op) {
  switch (op) {
    case PowerOp::on:
      return "power.on";
    case PowerOp::off:
      return "power.off";
    case PowerOp::reset:
      return "power.reset";
    case PowerOp::suspend:
      return "power.suspend";
    case PowerOp::shutdown:
      return "power.shutdown";
    case PowerOp::reboot:
      return "power.reboot";
  }
  return "";
}

class SshVmWriter : public VmWriter {
 public:
  SshVmWriter(vim::Client& c, std::shared_ptr<VmWriters::Link> link)
      : c_(c), link_(std::move(link)) {}
  Transport transport() const override { return Transport::ssh; }
  vim::Client& client() override { return c_; }
  void prove() override { link_->prove(c_); }

  void power(const vim::MoRef& vm, PowerOp op) override {
    write("vmsvc/" + std::string(ssh_power_verb(op)), {vm.value});
  }
  void guest(const vim::MoRef& vm, PowerOp op) override {
    write("vmsvc/" + std::string(ssh_power_verb(op)), {vm.value});
  }
  void destroy(const vim::MoRef& vm) override { write("vmsvc/destroy", {vm.value}); }

  vim::MoRef create_snapshot(const vim::MoRef& vm, const std::string& name,
                             const std::string& description, bool memory, bool quiesce) override {
    try {
      write("vmsvc/snapshot.create",
            {vm.value, name, description, memory ? "1" : "0", quiesce ? "1" : "0"});
    } catch (const vim::Fault& f) {
      translate_snapshot_fault(f);
      throw;
    }
    return {};
  }
  void remove_snapshot(const vim::MoRef& vm, const SnapshotInfo& s, bool children, bool) override {
    write("vmsvc/snapshot.remove", {vm.value, std::to_string(s.id), children ? "1" : "0"});
  }
  void remove_all_snapshots(const vim::MoRef& vm, bool) override {
    write("vmsvc/snapshot.removeall", {vm.value});
  }
  void revert_snapshot(const vim::MoRef& vm, const SnapshotInfo& s, bool suppress) override {
    write("vmsvc/snapshot.revert", {vm.value, std::to_string(s.id), suppress ? "1" : "0"});
  }

  SshResult shell(const std::vector<std::string>& argv, std::string_view input) override {
    return link_->exec(c_, argv, input);
  }
  SshResult shell_input(const std::vector<std::string>& argv, const SshConnection::InputFn& input,
                        const std::function<bool()>& cancel) override {
    return link_->exec_input(c_, argv, input, cancel);
  }
  SshResult shell_output(const std::vector<std::string>& argv,
                         const std::function<void(const char*, size_t)>& sink) override {
    return link_->exec_output(c_, argv, sink);
  }
  std::string name() const override { return link_->name; }

  void reconfigure(const vim::MoRef& vm, const vmspec::ConfigSpec& spec) override {
    std::vector<VmxChange> changes = vmx_changes(spec);  // refuses before anything is sent
    if (changes.empty()) return;
    edit_vmx_file(vm, [&](std::string_view) { return changes; });
  }

  SshResult host_command(const std::vector<std::string>& argv) override {
    return link_->exec(c_, argv);
  }

  void edit_vmx_file(const vim::MoRef& vm, const VmxEditor& editor) override {
    // The .vmx path from the API (reads stay there), confirmed by getallvms:
    // the vmid must still be the VM of that file.
    auto objs = c_.retrieve({vm}, {"config.files.vmPathName"});
    if (objs.empty()) fail("VM " + vm.value + " no longer exists on " + c_.endpoint().id);
    std::string ds_path = objs.front().text("config.files.vmPathName");
    std::string path = vmfs_path(ds_path);
    SshResult all = vimcmd("vmsvc/getallvms", {});
    auto ids = vim::vmids_for_vmx(all.out, ds_path);
    if (std::find(ids.begin(), ids.end(), vm.value) == ids.end())
      fail("vim-cmd vmsvc/getallvms on " + link_->name + " does not list VM " + vm.value +
           " with " + quote(ds_path) + "; it changed meanwhile, try again");
    // The .vmx can be edited only while the VM is off (reload refuses
    // otherwise, and a running VM rewrites it).
    SshResult state = vimcmd("vmsvc/power.getstate", {vm.value});
    if (vim::parse_power_state(state.out) != vim::PowerState::powered_off)
      fail(
          "the VM is not powered off; over SSH (free ESXi) its settings change only while it is "
          "off, by editing its .vmx (ceso-power off, then ceso-set again)");
    SshResult text = link_->shell(c_, {"cat", path}, "reading " + path);
    std::vector<VmxChange> changes = editor(text.out);
    if (changes.empty()) return;
    std::string edited = edit_vmx(text.out, changes);
    // Written next to it and renamed over it: a cut connection leaves the
    // old .vmx whole, never half a file.
    std::string dir = path.substr(0, path.rfind('/'));
    std::string tmp = dir + "/.ceso-" + path.substr(path.rfind('/') + 1) + ".tmp";
    auto replace = [&](const std::string& content) {
      try {
        link_->shell(c_, {"sh", "-c", "cat > \"$1\"", "sh", tmp}, "writing " + tmp, content);
        link_->shell(c_, {"mv", "-f", tmp, path}, "renaming " + tmp);
      } catch (const Error&) {
        try {
          link_->exec(c_, {"rm", "-f", tmp});  // best effort: the .vmx itself is unchanged
        } catch (const Error&) {
        }
        throw;
      }
    };
    replace(edited);
    try {
      vimcmd("vmsvc/reload", {vm.value});
    } catch (const Error&) {
      // The host did not take the new file: put the old one back (and have
      // it read again), so the file and the VM's settings stay one.
      try {
        replace(text.out);
        vimcmd("vmsvc/reload", {vm.value});
      } catch (const Error&) {
      }
      throw;
    }
  }

 private:
  // A change (the link has checked that the SSH host is the API's host).
  SshResult write(const std::string& verb, std::vector<std::string> args) {
    return vimcmd(verb, std::move(args));
  }

  SshResult vimcmd(std::string_view verb, std::vector<std::string> args) {
    std::vector<std::string> argv{"vim-cmd", std::string(verb)};
    for (auto& a : args) argv.push_back(std::move(a));
    return link_->vimcmd(c_, argv, "vim-cmd " + std::string(verb));
  }

  vim::Client& c_;
  std::shared_ptr<VmWriters::Link> link_;
};

bool vmx_key_ok(std::string_view key) {
  if (key.empty() || key.size() > 256) return false;
  return std::all_of(key.begin(), key.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-' || ch == ':';
  });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  return out;
}

// The key of a .vmx line "key = value" (lower case), or "" for a comment,
// a blank line or anything else.
std::string line_key(std::string_view line) {
  size_t b = line.find_first_not_of(" \t");
  if (b == std::string_view::npos || line[b] == '#') return "";
  size_t eq = line.find('=', b);
  if (eq == std::string_view::npos) return "";
  std::string_view key = line.substr(b, eq - b);
  while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.remove_suffix(1);
  return vmx_key_ok(key) ? lower(key) : "";
}

}  // namespace

std::string_view to_string(Transport t) { return t == Transport::ssh ? "ssh" : "api"; }

std::optional<TransportChoice> transport_choice_from(std::string_view word) {
  if (word == "api") return TransportChoice::api;
  if (word == "ssh") return TransportChoice::ssh;
  if (word == "auto") return TransportChoice::automatic;
  return std::nullopt;
}

std::unique_ptr<VmWriter> make_api_writer(vim::Client& c) {
  return std::make_unique<ApiVmWriter>(c, false);
}

VmWriters::VmWriters(TransportChoice choice, bool accept_new_host_key, Environment env)
    : choice_(choice), accept_new_host_key_(accept_new_host_key), env_(std::move(env)) {}

VmWriters::~VmWriters() = default;

VmWriter& VmWriters::for_client(vim::Client& c) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = writers_.find(&c); it != writers_.end()) return *it->second;
  }
  const Endpoint& ep = c.endpoint();
  bool ssh = false;
  if (choice_ == TransportChoice::ssh) {
    if (!ep.ssh)
      usage_error("--transport ssh: no SSH access is configured for " + ep.id +
                  "; set `ssh: root@HOST` in its config entry, or CESO_SSH");
    ssh = true;
  } else if (choice_ == TransportChoice::automatic && ep.ssh) {
    ssh = c.api_writes_restricted();  // one call per session, then cached
  }
  std::unique_ptr<VmWriter> w;
  std::lock_guard<std::mutex> lock(mutex_);
  if (ssh) {
    auto& link = links_[ep.id];
    if (!link) {
      const SshAccess& a = *ep.ssh;
      check_host_allowed(a.host, "SSH access (" + a.source + ")", env_);
      link = std::make_shared<Link>();
      link->settings.user = a.user;
      link->settings.host = a.host;
      link->settings.port = a.port;
      link->settings.identity = a.identity;
      link->settings.host_key_pin = a.host_key;
      link->settings.known_hosts_files = ssh_known_hosts_files(env_);
      link->settings.record_file = ssh_record_file(env_);
      link->settings.accept_new_host_key = accept_new_host_key_;
      link->limits.idle_timeout_s = ep.idle_timeout_s;
      link->limits.call_timeout_s = ep.call_timeout_s;
      link->limits.max_output_bytes = ep.max_answer_bytes;
      link->name = a.user + "@" + a.host + ":" + std::to_string(a.port);
    }
    w = std::make_unique<SshVmWriter>(c, link);
  } else {
    w = std::make_unique<ApiVmWriter>(c, choice_ == TransportChoice::automatic && !ep.ssh);
  }
  auto& slot = writers_[&c];
  if (!slot) slot = std::move(w);
  return *slot;
}

uint64_t VmWriters::ssh_commands() const {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t n = 0;
  for (const auto& [id, link] : links_) {
    std::lock_guard<std::mutex> l(link->mutex);
    n += link->commands;
  }
  return n;
}

const SnapshotInfo* new_snapshot(const std::vector<SnapshotInfo>& after,
                                 const std::vector<SnapshotInfo>& before, const vim::MoRef& ref,
                                 const std::string& name) {
  const SnapshotInfo* found = nullptr;
  for (const auto& s : after) {
    if (!ref.empty()) {
      if (s.ref == ref) return &s;
      continue;
    }
    if (s.name != name) continue;
    bool old = std::any_of(before.begin(), before.end(),
                           [&](const SnapshotInfo& b) { return b.id == s.id; });
    if (!old && (!found || s.id > found->id)) found = &s;
  }
  return found;
}

std::vector<VmxChange> vmx_changes(const vmspec::ConfigSpec& spec) {
  std::vector<std::string> refused;
  if (!spec.device_changes.empty()) refused.push_back("devices (disks, NICs)");
  if (!spec.name.empty()) refused.push_back("the name");
  if (!spec.uuid.empty() || !spec.instance_uuid.empty()) refused.push_back("uuids");
  if (!spec.guest_id.empty()) refused.push_back("the guest OS");
  if (!spec.vm_path_name.empty()) refused.push_back("the .vmx path");
  if (!spec.firmware.empty()) refused.push_back("the firmware");
  if (!spec.version.empty()) refused.push_back("the hardware version");
  if (!refused.empty()) {
    std::string what;
    for (const auto& r : refused) what += (what.empty() ? "" : ", ") + r;
    fail(
        "over SSH (free ESXi) ceso changes only CPUs, memory, annotation, tags and guestinfo, "
        "by editing the .vmx; it cannot change " +
        what);
  }
  std::vector<VmxChange> out;
  if (spec.num_cpus) out.emplace_back("numvcpus", std::to_string(*spec.num_cpus));
  if (spec.cores_per_socket)
    out.emplace_back("cpuid.coresPerSocket", std::to_string(*spec.cores_per_socket));
  if (spec.memory_mib) out.emplace_back("memSize", std::to_string(*spec.memory_mib));
  if (spec.annotation) out.emplace_back("annotation", *spec.annotation);
  for (const auto& [k, v] : spec.extra_config) {
    if (!vmx_key_ok(k))
      throw Error("cannot write key " + quote(k) +
                      " into a .vmx: keys hold only letters, digits, '.', '_', '-' and ':'",
                  Exit::bad_input);
    if (v.empty())
      out.emplace_back(k, std::nullopt);
    else
      out.emplace_back(k, v);
  }
  return out;
}

std::string edit_vmx(std::string_view text, const std::vector<VmxChange>& changes) {
  // Last change of a key wins, as in a ConfigSpec.
  std::vector<std::pair<std::string, const VmxChange*>> wanted;
  for (const auto& c : changes) {
    std::string k = lower(c.first);
    auto it =
        std::find_if(wanted.begin(), wanted.end(), [&](const auto& w) { return w.first == k; });
    if (it != wanted.end())
      it->second = &c;
    else
      wanted.emplace_back(k, &c);
  }
  std::vector<bool> done(wanted.size(), false);
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
    std::string_view line = text.substr(pos, end - pos);
    pos = end;
    std::string key = line_key(line);
    auto it = key.empty() ? wanted.end()
                          : std::find_if(wanted.begin(), wanted.end(),
                                         [&](const auto& w) { return w.first == key; });
    if (it == wanted.end()) {
      out += line;
      continue;
    }
    size_t i = static_cast<size_t>(it - wanted.begin());
    if (done[i])
      fail("the .vmx has key " + quote(it->second->first) +
           " on more than one line; not editing a file the host did not write that way");
    done[i] = true;
    if (it->second->second) {
      out += it->second->first + " = " + vmx_quote(*it->second->second) + "\n";
    }
  }
  if (!out.empty() && out.back() != '\n') out += '\n';
  for (size_t i = 0; i < wanted.size(); ++i)
    if (!done[i] && wanted[i].second->second)
      out += wanted[i].second->first + " = " + vmx_quote(*wanted[i].second->second) + "\n";
  return out;
}

std::string vmfs_path(std::string_view p) {
  auto bad = [&](const char* why) -> std::string {
    fail("cannot use the .vmx path " + quote(p) + ": " + why);
  };
  if (p.size() < 4 || p[0] != '[') return bad("not of the form '[datastore] path'");
  size_t close = p.find("] ");
  if (close == std::string_view::npos || close == 1)
    return bad("not of the form '[datastore] path'");
  std::string_view ds = p.substr(1, close - 1), rest = p.substr(close + 2);
  if (ds.find('/') != std::string_view::npos || ds == "." || ds == "..")
    return bad("the datastore name holds '/' or is '.' or '..'");
  if (rest.empty() || rest.front() == '/') return bad("no relative path after the datastore");
  size_t start = 0;
  for (;;) {
    size_t slash = rest.find('/', start);
    std::string_view part =
        rest.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (part.empty() || part == "." || part == "..")
      return bad("a path component is empty, '.' or '..'");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return "/vmfs/volumes/" + std::string(ds) + "/" + std::string(rest);
}

}  // namespace ceso
