// ceso-restore — restore a backup made by ceso-backup as a new VM, with a new
// identity for cloud-init. It makes a VM as ceso-mkvm does: the VM-shape and
// cloud-init option groups, dry-run, audit, rollback. The command line is
// libcore/cli/restore.hpp (shared with the deprecated `ceso-backup restore`),
// the logic libcore/backup/restore.hpp.
//
//   ceso-restore web01 --as web01-test --ip 192.0.2.21/24 --gateway 192.0.2.1
#include "cli/restore.hpp"
#include "cli/tool.hpp"

namespace {

ceso::ToolSpec make_spec() {
  ceso::ToolSpec spec;
  spec.name = "ceso-restore";
  spec.summary = ceso::kRestoreSummary;
  spec.usage = ceso::kRestoreUsage;
  spec.options = ceso::restore_options();
  spec.common = ceso::kRestoreCommon;
  spec.operands = ceso::Complete::vm;
  return spec;
}

const ceso::ToolSpec kSpec = make_spec();

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, ceso::run_restore); }
