// The VM-shape option group of the tools that make a VM (ceso-mkvm,
// ceso-clone, ceso-restore): one set of rows with one help text each, and the
// parsed options as a VmShape (vm/shape.hpp) for the library.
#pragma once

#include <vector>

#include "cli/options.hpp"
#include "vm/shape.hpp"

namespace ceso {

// Where the tools really differ; everything else in the group is the same
// row with the same meaning.
struct VmShapeDefaults {
  // The tool copies disks (ceso-mkvm, ceso-clone): --thick. Restore uploads
  // the disks as they were backed up.
  bool copies_disks = true;
  // The new VM keeps the tags of the VM it is made from (a clone, a restored
  // backup); a golden image's tags describe the image, not its copies.
  bool keeps_tags = true;
  // Powered on unless --no-power-on (ceso-mkvm, ceso-clone), or off unless
  // --power-on (ceso-restore: the copy keeps the backed-up VM's network
  // config, and its original may still be running at that address).
  bool powers_on = true;
};

// The rows, in help order: --datastore, [--thick], --cpus, --memory,
// --disk-grow, --network, --tag, --annotation, --no-power-on|--power-on,
// --wait, --timeout, --keep-on-failure.
std::vector<Option> vm_shape_options(VmShapeDefaults d);
// The rows' values. Usage errors name the option: --cpus out of range, a bad
// --memory or --disk-grow, a bad tag, --wait without power-on.
VmShape vm_shape(const Args& args, VmShapeDefaults d);

}  // namespace ceso
