// The restore command, for ceso-restore and for `ceso-backup restore` (its
// deprecated alias): one option table and one run, so the two cannot drift.
// The logic is backup/restore.hpp; this is the command line around it.
#pragma once

#include <vector>

#include "base/error.hpp"
#include "cli/options.hpp"
#include "cli/vm_options.hpp"

namespace ceso {

// What restore's VM-shape group differs in: the disks are uploaded as
// stored (no --thick), the tags are the backed-up VM's by default, and the
// VM stays off unless --power-on.
inline constexpr VmShapeDefaults kRestoreShape{false, true, false};
inline constexpr unsigned kRestoreCommon = kConnection | kOutput | kDryRun;
inline constexpr std::string_view kRestoreUsage = "[OPTION]... ID|VM";
inline constexpr std::string_view kRestoreSummary =
    "Restore a backup (or a VM's newest backup) as a new VM, with a new identity for cloud-init.";

// --target, --accept-new-host-key, --as, the VM-shape group, --retries,
// --replace, then the cloud-init flag group.
std::vector<Option> restore_options();

// Restores the one backup the operand names (an id, or a VM name: its newest
// backup) and prints the new VM's record.
Exit run_restore(const Args& args);

}  // namespace ceso
