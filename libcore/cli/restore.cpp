#include "cli/restore.hpp"

#include "backup/backup.hpp"
#include "backup/restore.hpp"
#include "base/progress.hpp"
#include "cli/backup_target.hpp"
#include "cli/cloudinit_options.hpp"
#include "cli/endpoint.hpp"
#include "cli/tool.hpp"
#include "cloudinit/netcfg.hpp"
#include "vm/names.hpp"
#include "vm/vm.hpp"
#include "vm/writer.hpp"

namespace ceso {

namespace {

// `restore ID|VM`: an id the catalog knows is that backup; else a VM name
// (backup_for_name: the VM of that name on the host restored to, or the
// only VM such backups come from); else an id whose manifest is at the
// target. Anything else is Error(bad_input).
ResolvedBackup resolve_restore(const Args& args, Catalog& catalog, vim::Client& client,
                               RestoreRequest& req) {
  const std::string operand = req.id;
  if (is_backup_id(operand) && catalog.find(operand)) return resolve_backup(args, catalog, operand);
  std::vector<VmOrigin> live;
  for (auto& vm : client.retrieve_all_vms({"name", "config.uuid"}))
    if (vm.text("name") == operand) live.push_back({client.endpoint().id, vm.text("config.uuid")});
  if (auto e = backup_for_name(catalog_entries(args, catalog), operand, live)) {
    note("restoring " + quote(e->id) + ", the newest backup of " + quote(operand) + " (VM on " +
         e->endpoint + ", uuid " + e->vm_uuid + ")");
    req.id = e->id;
    req.by_id = false;
    return resolve_backup(args, catalog, e->id);
  }
  if (!is_backup_id(operand)) bad_input("no backup id or backed-up VM named " + quote(operand));
  return resolve_backup(args, catalog, operand);
}

// --to-file: one disk to a local raw file. The backup is an id, or a VM
// name whose backups come from one VM (no host is asked).
Exit restore_to_file(const Args& args) {
  for (const char* o : {"as", "replace", "power-on"})
    if (args.has(o)) usage_error(std::string("--") + o + " does not go with --to-file");
  std::string path = args.get("to-file");
  if (path.empty()) usage_error("--to-file: an empty path");
  int disk = static_cast<int>(args.get_int("disk", 0, 0, 255));
  DeferredInterrupts deferred;  // the temporary file is removed on SIGINT/SIGTERM
  Catalog catalog(Catalog::default_path());
  std::string id = args.operands[0];
  if (!(is_backup_id(id) && catalog.find(id)))
    if (auto e = backup_for_name(catalog_entries(args, catalog), id, {})) id = e->id;
  ResolvedBackup b = resolve_backup(args, catalog, id);
  Output out(args, {"path", "restored_from", "disk", "bytes"}, [](const ordered_json& r) {
    return r.value("path", "") + ": disk " + std::to_string(r.value("disk", 0)) + " of " +
           r.value("restored_from", "");
  });
  Gate gate = tool_gate(args.has("dry-run"), [&](const ordered_json& plan) { out.emit(plan); });
  Progress progress(Progress::wanted());
  ordered_json rec = restore_disk_to_file(*b.target, id, disk, path, gate, progress);
  if (!rec.is_null()) out.emit(rec);
  out.finish();
  if (interrupt_requested()) return Exit::interrupted;
  return Exit::ok;
}

}  // namespace

std::vector<Option> restore_options() {
  std::vector<Option> rows = {
      kTargetOption,
      kAcceptNewHostKeyOption,
      {"as", 0, "NAME", "name of the restored VM (default: the backed-up VM's)"},
  };
  for (const auto& o : vm_shape_options(kRestoreShape)) rows.push_back(o);
  rows.push_back({"retries", 0, "N", "start a failed disk upload again up to N times (default 3)"});
  rows.push_back({"transport", 0, "api|ssh|auto",
                  "how the VM is made: the vSphere API, SSH (free ESXi: the files streamed over "
                  "the SSH channel), or auto (default: SSH when the host's licence forbids API "
                  "writes and SSH access is configured)"});
  rows.push_back({"to-file", 0, "PATH",
                  "write one disk as a local raw file instead of restoring a VM (no host needed)"});
  rows.push_back({"disk", 0, "N", "--to-file: the disk to write, numbered from 0 (default 0)"});
  rows.push_back({"replace", 0, "",
                  "replace a powered-off VM of the same name (destroyed once the restore "
                  "succeeded)"});
  // The cloud-init flags of ceso-cloudinit, same names and meaning.
  for (const auto& o : cloudinit_flag_options()) rows.push_back(o);
  return rows;
}

Exit run_restore(const Args& args) {
  if (args.operands.size() != 1)
    usage_error("restore needs one backup ID (or the name of a VM: its newest backup)");
  if (args.has("to-file")) return restore_to_file(args);
  if (args.has("disk")) usage_error("--disk goes with --to-file");
  RestoreRequest req;
  req.id = args.operands[0];
  req.name = args.get("as");
  if (args.has("as")) check_vm_name(req.name, "--as", Exit::usage);
  req.shape = vm_shape(args, kRestoreShape);
  req.cloudinit = cloudinit_flag_fields(args);
  req.encoding = *parse_encoding(args.get("encoding", "gzip+base64"));
  if (auto mac = args.maybe("mac")) req.macs.push_back(normalize_mac(*mac));
  req.replace = args.has("replace");
  req.retries = static_cast<int>(args.get_int("retries", 3, 0, 100));
  DeferredInterrupts deferred;  // SIGINT/SIGTERM stop the upload; the rollback still runs
  Catalog catalog(Catalog::default_path());
  vim::Client client(resolve_endpoint(args));
  ResolvedBackup b = resolve_restore(args, catalog, client, req);
  Output out(args, {"name", "restored_from", "power", "id", "instance_id"},
             [](const ordered_json& r) {
               return r.value("name", "") + ": restored from " + r.value("restored_from", "");
             });
  Gate gate = tool_gate(args.has("dry-run"), [&](const ordered_json& plan) { out.emit(plan); });
  Progress progress(Progress::wanted());
  auto writers = vm_writers(args);  // API, or SSH on a free-licensed host
  ordered_json rec = restore_backup(client, *b.target, req, gate, progress, writers.get());
  if (!rec.is_null())
    for (const auto& w : rec.value("warnings", std::vector<std::string>{})) warn(w);
  if (!rec.is_null()) out.emit(rec);
  out.finish();
  if (interrupt_requested()) return Exit::interrupted;
  return Exit::ok;  // a change not audited: run_tool makes it exit 1
}

}  // namespace ceso
