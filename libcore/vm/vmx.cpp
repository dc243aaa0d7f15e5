#include "vm/vmx.hpp"

#include <cctype>
#include <map>
#include <set>

#include "base/error.hpp"
#include "base/util.hpp"
#include "cloudinit/cloudinit.hpp"

namespace ceso {

namespace {

bool has_control(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The .vmx name of a SCSI controller's type (scsiN.virtualDev).
std::string scsi_virtual_dev(std::string_view type) {
  if (type == "ParaVirtualSCSIController") return "pvscsi";
  if (type == "VirtualLsiLogicController") return "lsilogic";
  if (type == "VirtualLsiLogicSASController") return "lsisas1068";
  if (type == "VirtualBusLogicController") return "buslogic";
  return "";
}

// The .vmx prefix of a controller ("scsi", "sata", "nvme", "ide"), "" for others.
std::string bus_prefix(std::string_view type) {
  if (!scsi_virtual_dev(type).empty()) return "scsi";
  if (type == "VirtualAHCIController") return "sata";
  if (type == "VirtualNVMEController") return "nvme";
  if (type == "VirtualIDEController") return "ide";
  return "";
}

std::string nic_virtual_dev(std::string_view type) {
  if (type == "VirtualVmxnet3") return "vmxnet3";
  if (type == "VirtualE1000e") return "e1000e";
  if (type == "VirtualE1000") return "e1000";
  if (type == "VirtualVmxnet2") return "vmxnet2";
  if (type == "VirtualPCNet32") return "vlance";
  return "";
}

bool is_vmx_key(std::string_view k) {
  if (k.empty()) return false;
  for (unsigned char c : k)
    if (!std::isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-') return false;
  return true;
}

}  // namespace

std::string vmfs_path(const vmspec::DatastorePath& p, std::string_view what) {
  auto bad = [&](const std::string& why) {
    bad_input(std::string(what) + " " + quote(p.text()) + ": " + why);
  };
  if (p.datastore.empty() || p.datastore == "." || p.datastore == ".." ||
      p.datastore.find('/') != std::string::npos)
    bad("the datastore name cannot be a directory name on the host");
  if (has_control(p.datastore) || has_control(p.path)) bad("control characters are not allowed");
  if (p.path.empty() || p.path.front() == '/') bad("not a path inside a datastore");
  size_t start = 0;
  while (true) {
    size_t slash = p.path.find('/', start);
    std::string_view part = std::string_view(p.path).substr(
        start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "." || part == "..")
      bad("empty, '.' and '..' path components are not allowed");
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return "/vmfs/volumes/" + p.datastore + "/" + p.path;
}

std::string vmx_guest_os(std::string_view guest_id) {
  std::string s(guest_id);
  bool sixty_four = false;
  if (ends_with(s, "Guest64")) {
    s.erase(s.size() - 7);
    sixty_four = true;
  } else if (ends_with(s, "Guest")) {
    s.erase(s.size() - 5);
    if (ends_with(s, "_64")) {
      s.erase(s.size() - 3);
      sixty_four = true;
    } else if (ends_with(s, "64")) {
      s.erase(s.size() - 2);
      sixty_four = true;
    }
  }
  s = ascii_lower(s);
  return sixty_four ? s + "-64" : s;
}

std::string vmx_uuid(std::string_view uuid) {
  std::string hex;
  for (char c : uuid) {
    if (c == '-') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c)) || hex.size() == 32)
      bad_input("uuid " + quote(uuid) + ": not 32 hex digits");
    hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (hex.size() != 32) bad_input("uuid " + quote(uuid) + ": not 32 hex digits");
  std::string out;
  for (size_t i = 0; i < 16; ++i) {
    if (i) out += i == 8 ? '-' : ' ';
    out += hex.substr(i * 2, 2);
  }
  return out;
}

std::string new_vmx(const SourceVm& src, const NewVm& req, const Provisioned& ids,
                    const std::string& network) {
  std::string out;
  std::set<std::string> written;  // lower case: the host reads keys without case
  auto line = [&](const std::string& key, std::string_view value) {
    if (!written.insert(ascii_lower(key)).second)
      bad_input("the .vmx key " + quote(key) +
                " is given twice (ExtraConfig names a key ceso writes)");
    out += key + " = " + vmx_quote(value) + "\n";
  };
  line(".encoding", "UTF-8");
  line("config.version", "8");
  std::string hw = src.version;
  if (hw.rfind("vmx-", 0) == 0) hw.erase(0, 4);
  if (!hw.empty()) line("virtualHW.version", hw);
  line("displayName", req.name);
  if (!src.guest_id.empty()) line("guestOS", vmx_guest_os(src.guest_id));
  if (src.firmware == "efi") line("firmware", "efi");
  int cpus = req.cpus.value_or(src.cpus);
  line("numvcpus", std::to_string(cpus));
  if (src.cores_per_socket > 0 && !req.cpus)
    line("cpuid.coresPerSocket", std::to_string(src.cores_per_socket));
  line("memSize", std::to_string(req.memory_mib.value_or(src.memory_mib)));
  std::string annotation = req.annotation ? *req.annotation : src.annotation;
  if (!annotation.empty()) line("annotation", annotation);
  line("uuid.bios", vmx_uuid(ids.uuid));
  line("vc.uuid", vmx_uuid(ids.instance_uuid));
  line("uuid.action", "keep");

  // Controllers by key: their .vmx prefix and bus number.
  std::map<int, std::string> prefix_of;
  for (const auto& c : src.hardware.controllers) {
    std::string prefix = bus_prefix(c.type);
    if (prefix.empty())
      fail("controller type " + quote(c.type) + " of " + quote(src.name) +
           " cannot be written into a .vmx here");
    std::string id = prefix + std::to_string(c.bus);
    prefix_of[c.key] = id;
    line(id + ".present", "TRUE");
    if (prefix == "scsi") line(id + ".virtualDev", scsi_virtual_dev(c.type));
  }
  for (size_t i = 0; i < src.hardware.disks.size(); ++i) {
    const auto& d = src.hardware.disks[i];
    std::string ctl;
    if (auto it = prefix_of.find(d.controller_key); it != prefix_of.end())
      ctl = it->second;
    else if (d.controller_type == "VirtualIDEController" && d.controller_key >= 200 &&
             d.controller_key <= 201)
      ctl = "ide" + std::to_string(d.controller_key - 200);  // the host's default IDE controllers
    else
      fail("disk " + std::to_string(i + 1) + " of " + quote(src.name) +
           " is on a controller that cannot be written into a .vmx here");
    std::string id = ctl + ":" + std::to_string(d.unit);
    auto file = vmspec::parse_datastore_path(ids.disks.at(i));
    auto vmx_dir = vmspec::dir_name(vmspec::parse_datastore_path(ids.vmx).path);
    std::string name = file.path;
    // Disks beside the .vmx by their file name, others by their full path.
    if (vmspec::dir_name(file.path) == vmx_dir)
      name = file.path.substr(vmx_dir.empty() ? 0 : vmx_dir.size() + 1);
    else
      name = vmfs_path(file, "disk " + std::to_string(i + 1));
    line(id + ".present", "TRUE");
    line(id + ".fileName", name);
    if (ctl.rfind("ide", 0) != 0) line(id + ".deviceType", "scsi-hardDisk");
    if (!d.disk_mode.empty() && d.disk_mode != "persistent") line(id + ".mode", d.disk_mode);
  }
  for (size_t i = 0; i < src.hardware.nics.size(); ++i) {
    const auto& n = src.hardware.nics[i];
    if (!n.portgroup_key.empty() && network.empty())
      fail("NIC " + std::to_string(i + 1) + " of " + quote(src.name) +
           " is on a distributed portgroup, which a standalone host does not have; give --network");
    std::string id = "ethernet" + std::to_string(i);
    std::string dev = nic_virtual_dev(n.type);
    if (dev.empty()) fail("NIC type " + quote(n.type) + " cannot be written into a .vmx here");
    line(id + ".present", "TRUE");
    line(id + ".virtualDev", dev);
    line(id + ".networkName", network.empty() ? n.network : network);
    line(id + ".addressType", "static");
    line(id + ".address", ids.macs.at(i));
  }
  for (const auto& [k, v] : new_extra_config(src, req)) {
    if (!is_vmx_key(k))
      bad_input("ExtraConfig key " + quote(k) +
                " cannot be written into a .vmx (letters, digits and . _ : - only)");
    line(k, v);
  }
  return out;
}

}  // namespace ceso
