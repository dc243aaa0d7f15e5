#include "vm/hostcli.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include "base/error.hpp"
#include "base/util.hpp"
#include "transport/relay.hpp"
#include "vsphere/vimcmd.hpp"

namespace ceso {

std::vector<std::string> esxcli_passthru_set(const std::string& address, bool enable,
                                             bool apply_now) {
  std::vector<std::string> argv = {"esxcli",
                                   "hardware",
                                   "pci",
                                   "pcipassthru",
                                   "set",
                                   "--device-id=" + address,
                                   std::string("--enable=") + (enable ? "true" : "false")};
  if (apply_now) argv.emplace_back("--apply-now");
  return argv;
}

namespace {
std::vector<std::string> portgroup_argv(const char* verb) {
  return {"esxcli", "network", "vswitch", "standard", "portgroup", verb};
}
}  // namespace

std::vector<std::string> esxcli_portgroup_add(const std::string& portgroup,
                                              const std::string& vswitch) {
  auto argv = portgroup_argv("add");
  argv.push_back("--portgroup-name=" + portgroup);
  argv.push_back("--vswitch-name=" + vswitch);
  return argv;
}

std::vector<std::string> esxcli_portgroup_vlan(const std::string& portgroup, int vlan) {
  auto argv = portgroup_argv("set");
  argv.push_back("--portgroup-name=" + portgroup);
  argv.push_back("--vlan-id=" + std::to_string(vlan));
  return argv;
}

std::vector<std::string> esxcli_portgroup_remove(const std::string& portgroup,
                                                 const std::string& vswitch) {
  auto argv = portgroup_argv("remove");
  argv.push_back("--portgroup-name=" + portgroup);
  argv.push_back("--vswitch-name=" + vswitch);
  return argv;
}

void run_esxcli(VmWriter& w, const std::vector<std::string>& argv, const std::string& what) {
  SshResult r = w.host_command(argv);
  if (r.ok()) return;
  // esxcli's message: the first "Error:" line (stderr, else stdout), else
  // the first line there is.
  std::string msg;
  for (const std::string* s : {&r.err, &r.out}) {
    size_t at = s->find("Error:");
    if (at == std::string::npos) continue;
    msg = s->substr(at, s->find('\n', at) - at);
    break;
  }
  if (msg.empty()) {
    const std::string& s = r.err.empty() ? r.out : r.err;
    msg = s.substr(0, s.find('\n'));
  }
  fail(what + " on " + w.name() + " failed" +
       (r.exit_signal.empty() ? " (esxcli exit status " + std::to_string(r.exit_status) + ")"
                              : " (signal " + r.exit_signal + ")") +
       (msg.empty() ? "" : ": " + host_text(msg)));
}

void ssh_add_portgroup(VmWriter& w, const std::string& portgroup, const std::string& vswitch,
                       int vlan) {
  run_esxcli(w, esxcli_portgroup_add(portgroup, vswitch),
             "esxcli network vswitch standard portgroup add");
  if (vlan == 0) return;
  try {
    run_esxcli(w, esxcli_portgroup_vlan(portgroup, vlan),
               "esxcli network vswitch standard portgroup set");
  } catch (const Error&) {
    try {  // not left half-made: without its VLAN it would carry untagged traffic
      w.host_command(esxcli_portgroup_remove(portgroup, vswitch));
    } catch (const Error&) {
    }
    throw;
  }
}

void ssh_set_portgroup_vlan(VmWriter& w, const std::string& portgroup, int vlan) {
  run_esxcli(w, esxcli_portgroup_vlan(portgroup, vlan),
             "esxcli network vswitch standard portgroup set");
}

void ssh_remove_portgroup(VmWriter& w, const std::string& portgroup, const std::string& vswitch) {
  run_esxcli(w, esxcli_portgroup_remove(portgroup, vswitch),
             "esxcli network vswitch standard portgroup remove");
}

std::string run_host_client(VmWriter& w, const std::vector<std::string>& argv,
                            const std::string& what, std::string_view input) {
  constexpr int kAttempts = 3;  // transient ManagedObjectNotFound while VMs come and go
  for (int attempt = 0;; ++attempt) {
    SshResult r = w.shell(argv, input);
    try {
      vim::check_result(r, what, w.name());
      return r.out;
    } catch (const vim::Fault& f) {
      if (f.fault_type() != "ManagedObjectNotFound" || attempt + 1 >= kAttempts) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(200 * (attempt + 1)));
    }
  }
}

bool ssh_make_dir(VmWriter& w, const std::string& path) {
  SshResult r = w.shell({"mkdir", path});
  if (r.ok()) return true;
  if (w.shell({"test", "-e", path}).exit_status == 0) return false;
  vim::check_result(r, "mkdir", w.name());
  fail("mkdir " + path + " on " + w.name() + " failed");  // not reached: the status is not 0
}

std::string SshFileWrite::command() const {
  return shell_command(write) + " && " + shell_command(move);
}

SshFileWrite ssh_file_write(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash + 1 == path.size())
    fail("cannot write " + quote(path) + " over SSH: not a file path");
  std::string tmp = path.substr(0, slash + 1) + "." + path.substr(slash + 1) + ".ceso-tmp";
  return {path, tmp, {"sh", "-c", "set -C && cat >\"$1\"", "sh", tmp}, {"mv", "-f", tmp, path}};
}

void run_ssh_file_write(VmWriter& w, const SshFileWrite& f, const SshConnection::InputFn& input,
                        const std::function<bool()>& cancel) {
  // The host's side failing (a full datastore: cat ends early) is named by
  // the file; the input's own errors and interruptions pass as they are.
  bool input_failed = false;
  auto pull = [&](char* data, size_t size) -> size_t {
    try {
      return input(data, size);
    } catch (...) {
      input_failed = true;
      throw;
    }
  };
  SshResult r;
  try {
    r = w.shell_input(f.write, pull, cancel);
  } catch (const Error& e) {
    if (input_failed || e.code() != Exit::failure) throw;
    throw Error("writing " + f.tmp + ": " + e.what(), e.code());
  }
  if (!r.ok()) fail("writing " + f.tmp + " on " + w.name() + " failed" + r.ending());
  SshResult mv = w.shell(f.move);
  if (!mv.ok()) fail("renaming " + f.tmp + " on " + w.name() + " failed" + mv.ending());
}

std::optional<SshFileHash> ssh_hash_file(VmWriter& w, const std::string& path, std::string& why,
                                         uint64_t limit) {
  StreamHash hash;
  uint64_t read = 0;
  SshResult r = w.shell_output({"cat", path}, [&](const char* d, size_t n) {
    read += n;
    if (read > limit)
      fail("reading " + path + " back on " + w.name() + ": it holds more than the " +
           std::to_string(limit) + " bytes written");
    hash.add(d, n);
  });
  if (!r.ok()) {
    why = "cat failed" + r.ending();
    return std::nullopt;
  }
  RelayResult sum = hash.result();
  return SshFileHash{sum.bytes, sum.sha256};
}

namespace {
std::string trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}
}  // namespace

void ssh_register_vm(VmWriter& w, vim::Client& c, const std::string& vmx_ds,
                     const std::string& name, std::string& vmid) {
  std::string vmx = vmfs_path(vmx_ds);
  std::string out = trimmed(
      run_host_client(w, {"vim-cmd", "solo/registervm", vmx, name}, "vim-cmd solo/registervm"));
  // The new id, or nothing (some versions): then the listing.
  if (!out.empty() && out.find_first_of(" \t\n") == std::string::npos) {
    vmid = out;
  } else {
    auto found = vim::vmids_for_vmx(
        run_host_client(w, {"vim-cmd", "vmsvc/getallvms"}, "vim-cmd vmsvc/getallvms"), vmx_ds);
    if (found.size() != 1)
      fail("the host lists " + std::to_string(found.size()) + " VMs with the .vmx " +
           quote(vmx_ds));
    vmid = found.front();
  }
  // Confirmed through the API: the id is a hint until then.
  vim::MoRef ref{"VirtualMachine", vmid};
  auto objs = c.retrieve({ref}, {"config.files.vmPathName"});
  if (objs.empty() || objs.front().text("config.files.vmPathName") != vmx_ds)
    fail("the host registered " + quote(vmid) + ", which the API does not show with the .vmx " +
         quote(vmx_ds));
}

std::vector<std::string> ssh_registered_vmids(VmWriter& w, const std::string& vmid,
                                              const std::string& vmx_ds) {
  if (!vmid.empty()) return {vmid};
  return vim::vmids_for_vmx(
      run_host_client(w, {"vim-cmd", "vmsvc/getallvms"}, "vim-cmd vmsvc/getallvms"), vmx_ds);
}

std::vector<VmxLine> vmx_lines(std::string_view text) {
  std::vector<VmxLine> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.remove_suffix(1);
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string_view::npos || line[b] == '#') continue;
    size_t eq = line.find('=', b);
    if (eq == std::string_view::npos) continue;
    std::string_view key = line.substr(b, eq - b);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.remove_suffix(1);
    std::string_view val = line.substr(eq + 1);
    size_t v = val.find_first_not_of(" \t");
    if (key.empty() || v == std::string_view::npos) continue;
    val = val.substr(v);
    if (val.size() < 2 || val.front() != '"' || val.back() != '"') continue;
    val = val.substr(1, val.size() - 2);
    std::string value;
    for (size_t i = 0; i < val.size(); ++i) {
      unsigned hi = 0;
      if (val[i] == '|' && i + 2 < val.size() + 0 &&
          std::isxdigit(static_cast<unsigned char>(val[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(val[i + 2])) &&
          std::sscanf(std::string(val.substr(i + 1, 2)).c_str(), "%2x", &hi) == 1) {
        value += static_cast<char>(hi);
        i += 2;
        continue;
      }
      value += val[i];
    }
    out.push_back({std::string(key), std::move(value)});
  }
  return out;
}

std::string vmx_pci_id(std::string_view address) {
  unsigned seg = 0, bus = 0, slot = 0, fn = 0;
  std::string a(address);
  char tail = 0;
  if (a.size() != 12 ||
      std::sscanf(a.c_str(), "%4x:%2x:%2x.%1x%c", &seg, &bus, &slot, &fn, &tail) != 4)
    fail("not a PCI address: " + quote(address));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%05u:%03u:%02u.%u", seg, bus, slot, fn);
  return buf;
}

std::string pci_address_of_vmx_id(std::string_view id) {
  // Exactly ddddd:ddd:dd.d, decimal.
  if (id.size() != 14 || id[5] != ':' || id[9] != ':' || id[12] != '.') return "";
  for (size_t i : {0, 1, 2, 3, 4, 6, 7, 8, 10, 11, 13})
    if (id[i] < '0' || id[i] > '9') return "";
  auto num = [&](size_t at, size_t n) { return std::stoul(std::string(id.substr(at, n))); };
  unsigned long seg = num(0, 5), bus = num(6, 3), slot = num(10, 2), fn = num(13, 1);
  if (seg > 0xffff || bus > 0xff || slot > 0x1f || fn > 7) return "";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04lx:%02lx:%02lx.%lx", seg, bus, slot, fn);
  return buf;
}

namespace {

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// "0x10de" or "10de" → the number; nullopt for anything else.
std::optional<uint16_t> hex_id(std::string_view s) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  if (s.empty() || s.size() > 4) return std::nullopt;
  unsigned v = 0;
  for (char c : s) {
    int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
            : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
            : (c >= 'A' && c <= 'F')                    ? c - 'A' + 10
                                                        : -1;
    if (d < 0) return std::nullopt;
    v = v * 16 + static_cast<unsigned>(d);
  }
  return static_cast<uint16_t>(v);
}

constexpr std::string_view kMmioKeys[] = {"pciPassthru.use64bitMMIO",
                                          "pciPassthru.64bitMMIOSizeGB"};

}  // namespace

std::vector<VmxPassthrough> vmx_passthrough(std::string_view text) {
  std::map<int, VmxPassthrough> by_index;
  std::map<int, std::map<std::string, std::string>> vals;  // lower-case field → value
  for (const auto& l : vmx_lines(text)) {
    std::string k = lower_ascii(l.key);
    constexpr std::string_view kPrefix = "pcipassthru";
    if (k.compare(0, kPrefix.size(), kPrefix) != 0) continue;
    size_t i = kPrefix.size(), j = i;
    while (j < k.size() && j - i < 4 && std::isdigit(static_cast<unsigned char>(k[j]))) ++j;
    if (j == i || j >= k.size() || k[j] != '.') continue;  // pciPassthru.use64bitMMIO…
    int n = std::stoi(k.substr(i, j - i));
    auto& p = by_index[n];
    p.index = n;
    p.keys.push_back(l.key);
    vals[n][k.substr(j + 1)] = l.value;
  }
  std::vector<VmxPassthrough> out;
  for (auto& [n, p] : by_index) {
    auto& v = vals[n];
    p.present = lower_ascii(v["present"]) == "true";
    p.id_text = v["id"];
    p.address = pci_address_of_vmx_id(p.id_text);
    auto ven = hex_id(v["vendorid"]), dev = hex_id(v["deviceid"]);
    if (ven && dev) p.ids = PciIds{*ven, *dev};
    p.dynamic = v.count("alloweddevices") > 0;
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<VmxChange> vmx_attach_changes(std::string_view vmx, const PciDevice& d,
                                          const std::string& system_id, bool gpu, int mmio_gb) {
  std::string mem;
  int mem_lines = 0;
  for (const auto& l : vmx_lines(vmx))
    if (lower_ascii(l.key) == "memsize") mem = l.value, ++mem_lines;
  if (mem_lines > 1)
    fail(
        "the .vmx has key 'memSize' on more than one line; not editing a file the host did "
        "not write that way");
  if (mem.empty() || mem.size() > 9 ||
      !std::all_of(mem.begin(), mem.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoul(mem) == 0)
    fail("the .vmx has no readable memSize (" + quote(mem) +
         "): the memory reservation a passthrough device needs cannot be set");
  auto present = vmx_passthrough(vmx);
  std::vector<bool> taken(kMaxVmxPassthrough, false);
  for (const auto& p : present) {
    if (p.index < kMaxVmxPassthrough) taken[static_cast<size_t>(p.index)] = true;
    if (p.present && p.address == d.id)
      fail("the .vmx already has PCI device " + d.id + " as pciPassthru" + std::to_string(p.index));
  }
  auto free = std::find(taken.begin(), taken.end(), false);
  if (free == taken.end())
    fail("the .vmx has no free pciPassthru0…" + std::to_string(kMaxVmxPassthrough - 1) +
         " (ESXi allows " + std::to_string(kMaxVmxPassthrough) + " passthrough devices per VM)");
  std::string pre = "pciPassthru" + std::to_string(free - taken.begin()) + ".";
  std::vector<VmxChange> out = {
      {pre + "present", "TRUE"},
      {pre + "id", vmx_pci_id(d.id)},
      {pre + "deviceId", "0x" + hex4(d.ids.device)},
      {pre + "vendorId", "0x" + hex4(d.ids.vendor)},
      {pre + "systemId", system_id},
      {"sched.mem.min", mem},
      {"sched.mem.pin", "TRUE"},
  };
  if (gpu) {
    out.emplace_back(std::string(kMmioKeys[0]), "TRUE");
    out.emplace_back(std::string(kMmioKeys[1]), std::to_string(mmio_gb));
  }
  return out;
}

std::vector<VmxChange> vmx_detach_changes(std::string_view vmx,
                                          const std::function<bool(const VmxPassthrough&)>& match,
                                          std::vector<std::string>& removed) {
  std::vector<VmxChange> out;
  size_t left = 0;
  for (const auto& p : vmx_passthrough(vmx)) {
    if (!p.present) continue;
    if (!match(p)) {
      ++left;
      continue;
    }
    removed.push_back(p.dynamic ? "dynamic" : p.address.empty() ? p.id_text : p.address);
    for (const auto& k : p.keys) out.emplace_back(k, std::nullopt);
  }
  if (!out.empty() && left == 0)
    for (const auto& l : vmx_lines(vmx))
      for (auto k : kMmioKeys)
        if (lower_ascii(l.key) == lower_ascii(k)) out.emplace_back(l.key, std::nullopt);
  return out;
}

}  // namespace ceso
