#include "cli/vm_options.hpp"

#include "base/error.hpp"
#include "vm/spec.hpp"
#include "vm/vm.hpp"

namespace ceso {

namespace {

// Each row once. "The source VM" is the golden image (ceso-mkvm), the VM
// cloned (ceso-clone) or the VM backed up (ceso-restore).
constexpr Option kDatastore{"datastore", 0, "NAME",
                            "datastore for the new VM (default: the source VM's)"};
constexpr Option kThick{"thick", 0, "", "copy disks preallocated instead of thin"};
constexpr Option kCpus{"cpus", 'c', "N", "number of virtual CPUs"};
constexpr Option kMemory{"memory", 'm', "SIZE", "memory: MiB, or with a unit (512M, 2G, 2GiB)"};
constexpr Option kDiskGrow{"disk-grow", 0, "SIZE",
                           "grow the first disk to SIZE, or by +SIZE (GiB by default)"};
constexpr Option kNetwork{"network", 0, "PORTGROUP", "connect every NIC to this portgroup"};
constexpr Option kTagNew{"tag", 't', "TAG", "tag of the new VM (default: none)", kRepeatable};
constexpr Option kTagKept{"tag", 't', "TAG", "tag of the new VM (default: the source VM's tags)",
                          kRepeatable};
constexpr Option kAnnotation{"annotation", 0, "TEXT",
                             "annotation (notes) of the new VM (default: the source VM's)"};
constexpr Option kNoPowerOn{"no-power-on", 0, "", "leave the new VM powered off"};
constexpr Option kPowerOn{"power-on", 0, "", "power the new VM on (default: left off)"};
constexpr Option kWait{
    "wait", 'w', "WHAT", "after power-on, wait for the guest's IP address", 0, Complete::choices,
    "ip"};
constexpr Option kTimeout{"timeout", 0, "SECONDS",
                          "limit for each power change and for --wait (default 600)"};
constexpr Option kKeepOnFailure{"keep-on-failure", 0, "",
                                "do not roll back what a failed run created"};

}  // namespace

std::vector<Option> vm_shape_options(VmShapeDefaults d) {
  std::vector<Option> rows{kDatastore};
  if (d.copies_disks) rows.push_back(kThick);
  rows.insert(rows.end(),
              {kCpus, kMemory, kDiskGrow, kNetwork, d.keeps_tags ? kTagKept : kTagNew, kAnnotation,
               d.powers_on ? kNoPowerOn : kPowerOn, kWait, kTimeout, kKeepOnFailure});
  return rows;
}

VmShape vm_shape(const Args& args, VmShapeDefaults d) {
  VmShape s;
  NewVm& v = s.vm;
  v.datastore = args.get("datastore");
  v.thick = d.copies_disks && args.has("thick");
  if (args.has("cpus")) v.cpus = static_cast<int>(args.get_int("cpus", 1, 1, 768));
  if (auto m = args.maybe("memory")) v.memory_mib = vmspec::parse_memory_mib(*m);
  if (auto g = args.maybe("disk-grow")) v.disk_grow = vmspec::parse_disk_grow(*g);
  v.network = args.get("network");
  if (args.has("tag")) v.tags = normalize_tags("tag", args.all("tag"));
  if (auto a = args.maybe_xml_text("annotation")) v.annotation = *a;
  v.keep_on_failure = args.has("keep-on-failure");
  s.power_on = d.powers_on ? !args.has("no-power-on") : args.has("power-on");
  s.wait_ip = args.has("wait");
  if (s.wait_ip && !s.power_on)
    usage_error(d.powers_on ? "--wait ip needs the new VM powered on (drop --no-power-on)"
                            : "--wait ip needs the new VM powered on (give --power-on)");
  s.timeout = std::chrono::seconds(args.get_int("timeout", 600, 1, 86400));
  return s;
}

}  // namespace ceso
