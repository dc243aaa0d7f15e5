// ceso-backup — hot/cold backups of VMs to a target, with a catalog,
// verification, garbage collection and retention.
//
//   ceso-ls --tag web | ceso-backup --hot
//   ceso-backup ls web01 ; ceso-backup verify ID ; ceso-backup prune --keep-daily 7
//
// `create` is the default verb. The logic lives in libcore (backup.hpp); this
// file is the option table and the verbs.
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>

#include "ceso/backup.hpp"
#include "ceso/config.hpp"
#include "ceso/netcfg.hpp"
#include "ceso/provision.hpp"
#include "ceso/restore.hpp"
#include "ceso/tool.hpp"
#include "ceso/vm.hpp"

namespace {

ceso::ToolSpec make_spec() {
  ceso::ToolSpec spec{
      "ceso-backup",
      "Back up VMs (hot through a snapshot, or cold) to a target; list, verify, remove, prune "
      "and restore backups.",
      "[create] [OPTION]... [VM]...\n       ceso-backup ls|verify|rm|prune|gc|reindex [OPTION]... "
      "[ARG]...\n       ceso-backup restore [OPTION]... ID|VM",
      {
          {"target", 0, "URL",
           "where backups are stored: file:///path or sftp://user@host/path (default: "
           "$CESO_BACKUP_TARGET "
           "or the config file's backup target)"},
          {"accept-new-host-key", 0, "",
           "sftp: add an unknown host's key to ~/.ssh/known_hosts instead of refusing"},
          {"hot", 0, "", "back up running VMs through a temporary snapshot (the default)"},
          {"cold", 0, "", "shut running VMs down through VMware Tools, copy, power them back on"},
          {"quiesce", 0, "", "hot: quiesce the guest file systems through VMware Tools"},
          {"force", 0, "", "cold: power off hard when the guest has not shut down after --timeout"},
          {"timeout", 0, "SECONDS",
           "cold: how long to wait for a guest shutdown (default 300); restore: for --power-on "
           "(default 600)"},
          {"level", 0, "N", "zstd compression level 1-19 (default 3)"},
          {"threads", 0, "N", "zstd worker threads per VM (default: half the CPUs, 1 to 4)"},
          {"retries", 0, "N",
           "resume a cut download up to N times (default 5); restore: start a failed upload "
           "again (default 3)"},
          {"limit-rate", 0, "BYTES", "limit each download to BYTES per second (suffix K, M, G)"},
          {"keep-last", 0, "N", "prune: keep the N newest backups"},
          {"keep-hourly", 0, "N", "prune: keep the newest backup of each of the last N hours"},
          {"keep-daily", 0, "N", "prune: keep the newest backup of each of the last N days"},
          {"keep-weekly", 0, "N", "prune: keep the newest backup of each of the last N ISO weeks"},
          {"keep-monthly", 0, "N", "prune: keep the newest backup of each of the last N months"},
          {"keep-yearly", 0, "N", "prune: keep the newest backup of each of the last N years"},
          {"keep-within", 0, "DURATION",
           "prune: keep backups newer than the newest minus DURATION "
           "(e.g. 7d, 36h, 1y6mo)"},
          {"as", 0, "NAME", "restore: name of the restored VM (default: the backed-up VM's)"},
          {"datastore", 0, "NAME", "restore: datastore for the VM (default: the one it was on)"},
          {"network", 0, "PORTGROUP", "restore: connect every NIC to this portgroup"},
          {"power-on", 0, "", "restore: power the restored VM on"},
          {"replace", 0, "",
           "restore: replace a powered-off VM of the same name (destroyed once the restore "
           "succeeded)"},
          {"keep-on-failure", 0, "", "restore: do not roll back what a failed restore created"},
      },
      ceso::kConnection | ceso::kOutput | ceso::kDryRun | ceso::kJobs,
      {
          {"create", "back up VMs named or read as records (the default)"},
          {"ls", "list backups from the catalog [VM]..."},
          {"verify", "re-read, decompress and re-hash backups [ID]... (default: all)"},
          {"rm", "remove backups ID..."},
          {"prune", "remove backups by retention rules [VM]..."},
          {"gc", "remove leftovers of interrupted runs from the target"},
          {"reindex", "rebuild the catalog rows of --target from its manifests"},
          {"restore",
           "restore backup ID (or a VM's newest backup) as a new VM, with a new identity for "
           "cloud-init"},
      },
      ceso::Complete::vm,
  };
  // restore: the cloud-init flags of ceso-cloudinit, same names and meaning.
  for (const auto& o : ceso::cloudinit_flag_options()) spec.options.push_back(o);
  return spec;
}

const ceso::ToolSpec kSpec = make_spec();

std::optional<std::string> target_url(const ceso::Args& args) {
  if (auto t = args.maybe("target")) return t;
  if (const char* env = std::getenv("CESO_BACKUP_TARGET"); env && *env) return std::string(env);
  return ceso::config_backup_target();
}

ceso::TargetOptions target_options(const ceso::Args& args) {
  return {args.has("accept-new-host-key")};
}

std::unique_ptr<ceso::BackupTarget> require_target(const ceso::Args& args) {
  auto url = target_url(args);
  if (!url) ceso::usage_error("no backup target: give --target URL or set CESO_BACKUP_TARGET");
  return ceso::open_backup_target(*url, target_options(args));
}

uint64_t parse_rate(const std::string& text) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  std::string suffix(end ? end : "");
  double mult = suffix.empty()                   ? 1
                : suffix == "K" || suffix == "k" ? 1024.0
                : suffix == "M" || suffix == "m" ? 1024.0 * 1024
                : suffix == "G" || suffix == "g" ? 1024.0 * 1024 * 1024
                                                 : -1;
  if (end == text.c_str() || mult < 0 || v <= 0)
    ceso::usage_error("--limit-rate: bad rate " + ceso::quote(text) + " (use e.g. 500K, 20M)");
  return static_cast<uint64_t>(v * mult);
}

ceso::BackupOptions backup_options(const ceso::Args& args) {
  if (args.has("hot") && args.has("cold")) ceso::usage_error("--hot and --cold exclude each other");
  ceso::BackupOptions o;
  o.mode = args.has("cold") ? "cold" : "hot";
  o.quiesce = args.has("quiesce");
  o.force = args.has("force");
  if (o.quiesce && o.mode == "cold") ceso::usage_error("--quiesce is for --hot backups");
  o.timeout = std::chrono::seconds(args.get_int("timeout", 300, 1, 86400));
  o.level = static_cast<int>(args.get_int("level", 3, 1, 19));
  o.threads = static_cast<int>(args.get_int("threads", 0, 1, 64));
  o.retries = static_cast<int>(args.get_int("retries", 5, 0, 100));
  if (auto r = args.maybe("limit-rate")) o.limit_rate = parse_rate(*r);
  return o;
}

std::string backup_line(const ceso::ordered_json& r) {
  const auto& b = r.contains("backup") ? r["backup"] : r;
  return r.value("name", r.value("vm", "")) + ": backup " + b.value("id", "") + " (" +
         b.value("mode", "") + ", " +
         ceso::human_bytes(static_cast<double>(b.value("bytes_stored", uint64_t{0}))) + ")";
}

ceso::Exit create(const ceso::Args& args) {
  ceso::BackupOptions options = backup_options(args);
  auto target = require_target(args);
  ceso::defer_interrupts();
  ceso::Catalog catalog(ceso::Catalog::default_path());
  ceso::Output out(args, {}, backup_line);
  ceso::Gate gate(
      "ceso-backup", args.has("dry-run"), [](const std::string& m) { ceso::warn(m); },
      [&](const ceso::ordered_json& plan) { out.emit(plan); });
  ceso::Progress progress(ceso::Progress::wanted());
  ceso::Outcome outcome;
  size_t jobs = static_cast<size_t>(args.get_int("jobs", 1, 1, 64));
  std::vector<std::unique_ptr<ceso::VmLocator>> locators(jobs);
  ceso::for_each_target_parallel(args, outcome, jobs, [&](const ceso::Target& t, size_t w) {
    ceso::throw_if_interrupt_requested();
    if (!locators[w]) locators[w] = std::make_unique<ceso::VmLocator>(args);
    ceso::LocatedVm vm = locators[w]->locate(t);
    ceso::BackupContext ctx{gate, catalog, *target, progress, [&](const std::string& m) {
                              ceso::warn(ceso::quote(vm.name) + ": " + m);
                            }};
    ceso::ordered_json rec = t.record;
    ceso::ordered_json b = ceso::backup_vm(vm, options, ctx, rec);
    if (!b.is_null()) {
      rec["backup"] = std::move(b);
      rec["changed"] = true;
      out.emit(rec);
    }
    outcome.succeeded();
  });
  out.finish();
  if (ceso::interrupt_requested()) return ceso::Exit::interrupted;
  return outcome.exit_code();
}

std::vector<ceso::CatalogEntry> catalog_entries(const ceso::Args& args, ceso::Catalog& catalog) {
  auto url = target_url(args);
  return catalog.list(args.has("target") && url ? *url : std::string());
}

ceso::Exit list(const ceso::Args& args) {
  ceso::Catalog catalog(ceso::Catalog::default_path());
  ceso::Output out(args, {"id", "vm", "created", "mode", "status", "verify", "bytes_stored"});
  for (const auto& e : catalog_entries(args, catalog)) {
    if (!args.operands.empty() &&
        std::find(args.operands.begin(), args.operands.end(), e.vm_name) == args.operands.end())
      continue;
    out.emit(ceso::backup_record(e));
  }
  out.finish();
  return ceso::Exit::ok;
}

// The target holding a backup: its catalog row's, else --target.
std::unique_ptr<ceso::BackupTarget> target_of(const ceso::Args& args, ceso::Catalog& catalog,
                                              const std::string& id) {
  if (auto e = catalog.find(id)) return ceso::open_backup_target(e->target, target_options(args));
  auto t = require_target(args);
  if (!t->file_size(id + "/" + ceso::kManifestName) && t->list(id).empty())
    ceso::fail("no backup " + ceso::quote(id) + " in the catalog or at " + t->url());
  return t;
}

ceso::Exit verify(const ceso::Args& args) {
  ceso::Catalog catalog(ceso::Catalog::default_path());
  std::vector<std::string> ids = args.operands;
  if (ids.empty())
    for (const auto& e : catalog_entries(args, catalog))
      if (e.status == "complete") ids.push_back(e.id);
  ceso::Output out(args, {"id", "vm", "verify", "problems"});
  ceso::Outcome outcome;
  bool mismatch = false;
  for (const auto& id : ids) {
    try {
      auto target = target_of(args, catalog, id);
      ceso::VerifyResult r = ceso::verify_backup(*target, id);
      auto now = static_cast<int64_t>(std::time(nullptr));
      if (catalog.find(id)) catalog.set_verify(id, r.ok ? "ok" : "failed", now);
      ceso::ordered_json rec = {{"type", "backup"}, {"id", id}};
      if (auto e = catalog.find(id)) rec = ceso::backup_record(*e);
      rec["problems"] = r.problems;
      for (const auto& p : r.problems) ceso::warn(ceso::quote(id) + ": " + p);
      if (!r.ok) mismatch = true;
      out.emit(rec);
      if (r.ok)
        outcome.succeeded();
      else
        outcome.failed(ceso::Error("verification failed", ceso::Exit::partial), id);
    } catch (const ceso::Error& e) {
      outcome.failed(e, id);
    }
  }
  out.finish();
  if (mismatch) return ceso::Exit::partial;
  return outcome.exit_code();
}

ceso::Mutation delete_mutation(const ceso::CatalogEntry& e) {
  return {e.endpoint, e.vm_name, e.vm_id, "DeleteBackup", {{"id", e.id}, {"target", e.target}}};
}

ceso::Exit remove(const ceso::Args& args) {
  if (args.operands.empty()) ceso::usage_error("rm needs the ids of the backups to remove");
  ceso::Catalog catalog(ceso::Catalog::default_path());
  ceso::Output out(args, {"id", "vm", "removed"});
  ceso::Gate gate(
      "ceso-backup", args.has("dry-run"), [](const std::string& m) { ceso::warn(m); },
      [&out](const ceso::ordered_json& plan) { out.emit(plan); });
  ceso::Outcome outcome;
  for (const auto& id : args.operands) {
    try {
      auto e = catalog.find(id);
      auto target = target_of(args, catalog, id);
      ceso::CatalogEntry entry = e ? *e : ceso::CatalogEntry{id, target->url()};
      if (gate.perform(delete_mutation(entry), [&] {
            target->remove_tree(id);
            catalog.remove(id);
          })) {
        ceso::ordered_json rec = ceso::backup_record(entry);
        rec["removed"] = true;
        rec["changed"] = true;
        out.emit(rec);
      }
      outcome.succeeded();
    } catch (const ceso::Error& e) {
      outcome.failed(e, id);
    }
  }
  out.finish();
  return outcome.exit_code();
}

ceso::RetentionPolicy retention_policy(const ceso::Args& args) {
  ceso::RetentionPolicy p;
  auto n = [&](const char* name) { return static_cast<int>(args.get_int(name, 0, -1, 1000000)); };
  p.last = n("keep-last");
  p.hourly = n("keep-hourly");
  p.daily = n("keep-daily");
  p.weekly = n("keep-weekly");
  p.monthly = n("keep-monthly");
  p.yearly = n("keep-yearly");
  if (auto w = args.maybe("keep-within")) p.within = ceso::parse_duration(*w, "--keep-within");
  if (p.empty())
    ceso::usage_error("prune needs at least one --keep-* rule (an empty policy removes nothing)");
  return p;
}

ceso::Exit prune(const ceso::Args& args) {
  ceso::RetentionPolicy policy = retention_policy(args);
  ceso::Catalog catalog(ceso::Catalog::default_path());
  std::vector<ceso::CatalogEntry> entries;
  for (auto& e : catalog_entries(args, catalog))
    if (args.operands.empty() ||
        std::find(args.operands.begin(), args.operands.end(), e.vm_name) != args.operands.end())
      entries.push_back(std::move(e));
  ceso::Output out(args, {"id", "vm", "created", "action", "reasons"});
  ceso::Gate gate(
      "ceso-backup", args.has("dry-run"), [](const std::string& m) { ceso::warn(m); },
      [](const ceso::ordered_json&) {});  // prune prints its own keep/remove records
  ceso::Outcome outcome;
  std::map<std::string, std::unique_ptr<ceso::BackupTarget>> targets;
  for (const auto& d : ceso::plan_prune(entries, policy)) {
    ceso::ordered_json rec = ceso::backup_record(d.entry);
    rec["action"] = d.keep ? "keep" : "remove";
    rec["reasons"] = d.reasons;
    try {
      if (!d.keep && !gate.dry_run()) {
        auto& t = targets[d.entry.target];
        if (!t && d.entry.status == "complete")
          t = ceso::open_backup_target(d.entry.target, target_options(args));
        gate.perform(delete_mutation(d.entry), [&] {
          if (d.entry.status == "complete") t->remove_tree(d.entry.id);
          catalog.remove(d.entry.id);
        });
        rec["changed"] = true;
      } else {
        rec["changed"] = false;
      }
      out.emit(rec);
      outcome.succeeded();
    } catch (const ceso::Error& e) {
      if (e.code() == ceso::Exit::policy) throw;  // refused once is refused for all
      outcome.failed(e, d.entry.id);
    }
  }
  out.finish();
  return outcome.exit_code();
}

ceso::Exit gc(const ceso::Args& args) {
  auto target = require_target(args);
  ceso::Output out(args, {"id", "action"});
  ceso::Catalog catalog(ceso::Catalog::default_path());
  bool dry = args.has("dry-run");
  if (!dry && ceso::policy_mode() == ceso::Mode::restricted)
    throw ceso::Error("gc removes files: refused in restricted mode (CESO_MODE=restricted)",
                      ceso::Exit::policy);
  std::vector<std::string> busy;
  for (const auto& id : ceso::collect_garbage(*target, dry, &busy))
    out.emit({{"type", "backup"}, {"id", id}, {"action", "remove"}, {"changed", !dry}});
  for (const auto& id : busy)
    ceso::note(ceso::quote(id) + ": a backup run is still writing it; left alone");
  // Catalog rows of complete backups whose directory is gone.
  auto listing = ceso::list_target(*target);
  for (const auto& e : catalog.list(target->url())) {
    if (e.status != "complete" ||
        std::find(listing.complete.begin(), listing.complete.end(), e.id) != listing.complete.end())
      continue;
    if (!dry) catalog.remove(e.id);
    out.emit({{"type", "backup"}, {"id", e.id}, {"action", "forget"}, {"changed", !dry}});
  }
  out.finish();
  return ceso::Exit::ok;
}

ceso::Exit reindex(const ceso::Args& args) {
  auto target = require_target(args);
  ceso::Catalog catalog(ceso::Catalog::default_path());
  size_t n = ceso::reindex(*target, catalog);
  ceso::note("catalog rebuilt from " + std::to_string(n) + " backup(s) at " + target->url());
  return ceso::Exit::ok;
}

ceso::Exit restore(const ceso::Args& args) {
  if (args.operands.size() != 1)
    ceso::usage_error("restore needs one backup ID (or the name of a VM: its newest backup)");
  ceso::RestoreRequest req;
  req.id = args.operands[0];
  req.name = args.get("as");
  req.datastore = args.get("datastore");
  req.network = args.get("network");
  req.cloudinit = ceso::cloudinit_flag_fields(args);
  req.encoding = *ceso::parse_encoding(args.get("encoding", "gzip+base64"));
  if (auto mac = args.maybe("mac")) req.macs.push_back(ceso::normalize_mac(*mac));
  req.power_on = args.has("power-on");
  req.replace = args.has("replace");
  req.keep_on_failure = args.has("keep-on-failure");
  req.retries = static_cast<int>(args.get_int("retries", 3, 0, 100));
  req.timeout = std::chrono::seconds(args.get_int("timeout", 600, 1, 86400));
  ceso::defer_interrupts();  // SIGINT/SIGTERM stop the upload; the rollback still runs
  ceso::Catalog catalog(ceso::Catalog::default_path());
  if (!catalog.find(req.id)) {
    // A VM name: its newest complete backup that did not fail verification.
    std::optional<ceso::CatalogEntry> newest;
    for (auto& e : catalog_entries(args, catalog))
      if (e.vm_name == req.id && e.status == "complete" && e.verify != "failed" &&
          (!newest || e.created > newest->created))
        newest = std::move(e);
    if (newest) {
      ceso::note("restoring " + ceso::quote(newest->id) + ", the newest backup of " +
                 ceso::quote(req.id));
      req.id = newest->id;
    }
  }
  auto target = target_of(args, catalog, req.id);
  ceso::Output out(args, {"name", "restored_from", "power", "id", "instance_id"},
                   [](const ceso::ordered_json& r) {
                     return r.value("name", "") + ": restored from " + r.value("restored_from", "");
                   });
  ceso::Gate gate(
      "ceso-backup", args.has("dry-run"), [](const std::string& m) { ceso::warn(m); },
      [&](const ceso::ordered_json& plan) { out.emit(plan); });
  ceso::vim::Client client(ceso::resolve_endpoint(args));
  ceso::Progress progress(ceso::Progress::wanted());
  ceso::ordered_json rec = ceso::restore_backup(client, *target, req, gate, progress);
  if (!rec.is_null()) out.emit(rec);
  out.finish();
  if (ceso::interrupt_requested()) return ceso::Exit::interrupted;
  return gate.audit_failures() > 0 ? ceso::Exit::failure : ceso::Exit::ok;
}

ceso::Exit run(const ceso::Args& args) {
  static const std::map<std::string, std::function<ceso::Exit(const ceso::Args&)>> kVerbs = {
      {"", create},       {"create", create},   {"ls", list},
      {"verify", verify}, {"rm", remove},       {"prune", prune},
      {"gc", gc},         {"reindex", reindex}, {"restore", restore},
  };
  return kVerbs.at(args.verb)(args);
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
