// The shape of a VM a tool makes (ceso-mkvm, ceso-clone, ceso-restore): what
// the VM-shape options (cli/vm_options.hpp) ask for, as the library takes it.
#pragma once

#include <chrono>

#include "vm/provision.hpp"

namespace ceso {

struct VmShape {
  // datastore, thick, cpus, memory_mib, disk_grow, network, tags, annotation,
  // keep_on_failure; the tool sets name, extra_config and macs.
  NewVm vm;
  bool power_on = true;
  bool wait_ip = false;               // after power-on, wait for the guest's IP address
  std::chrono::seconds timeout{600};  // each power change and the wait
};

}  // namespace ceso
