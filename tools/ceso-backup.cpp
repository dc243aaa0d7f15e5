// ceso-backup — hot/cold backups of VMs to a target, with a catalog,
// verification, garbage collection and retention.
//
//   ceso-ls --tag web | ceso-backup --hot
//   ceso-backup ls web01 ; ceso-backup verify ID ; ceso-backup prune --keep-daily 7
//
// `create` is the default verb. The logic lives in libcore (backup.hpp); this
// file is the option table and the verbs.
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "backup/backup.hpp"
#include "backup/chunks.hpp"
#include "backup/restore.hpp"
#include "base/metrics.hpp"
#include "base/numbers.hpp"
#include "base/time.hpp"
#include "cli/backup_target.hpp"
#include "cli/cloudinit_options.hpp"
#include "cli/endpoint.hpp"
#include "cli/restore.hpp"
#include "cli/tool.hpp"
#include "cloudinit/netcfg.hpp"
#include "config/config.hpp"
#include "vm/provision.hpp"
#include "vm/vm.hpp"

namespace {

// Options several verbs share (and ceso-restore: cli/backup_target.hpp).
const ceso::Option kTarget = ceso::kTargetOption;
const ceso::Option kAcceptNewHostKey = ceso::kAcceptNewHostKeyOption;

// Each verb's table. --timeout and --retries mean one thing per verb: the
// guest shutdown wait and the download resumes for create, the power
// changes and the upload restarts for restore; no other verb takes them.
std::vector<ceso::Verb> verbs() {
  using ceso::kConnection, ceso::kOutput, ceso::kDryRun, ceso::kJobs;
  std::vector<ceso::Verb> v = {
      {"create",
       "back up VMs named or read as records (the default)",
       {
           kTarget,
           kAcceptNewHostKey,
           {"transport", 0, "api|ssh|auto",
            "how the snapshot and power changes are made: the vSphere API, SSH (free ESXi), or "
            "auto (default: SSH when the host's licence forbids API writes and SSH access is "
            "configured)"},
           {"hot", 0, "", "back up running VMs through a temporary snapshot (the default)"},
           {"cold", 0, "", "shut running VMs down through VMware Tools, copy, power them back on"},
           {"quiesce", 0, "", "hot: quiesce the guest file systems through VMware Tools"},
           {"force", 0, "",
            "cold: power off hard when the guest has not shut down after --timeout"},
           {"timeout", 0, "SECONDS", "cold: how long to wait for a guest shutdown (default 300)"},
           {"level", 0, "N", "zstd compression level 1-19 (default 3)"},
           {"threads", 0, "N", "zstd worker threads per VM (default: half the CPUs, 1 to 4)"},
           {"retries", 0, "N", "resume a cut download up to N times (default 5)"},
           {"limit-rate", 0, "BYTES", "limit each download to BYTES per second (suffix K, M, G)"},
           {"format", 0, "N",
            "1: each file one zstd stream (the default); 2: disks as deduplicated 4 MiB chunks"},
           {"cbt", 0, "",
            "format 2, hot: read only the areas Changed Block Tracking reports since the "
            "previous backup (enables tracking on the VM if needed)"},
       },
       kConnection | kOutput | kDryRun | kJobs,
       "[OPTION]... [VM]..."},
      {"ls", "list backups from the catalog", {kTarget}, kOutput, "[OPTION]... [VM]..."},
      {"verify",
       "re-read, decompress and re-hash backups (default: all)",
       {kTarget,
        kAcceptNewHostKey,
        {"sample", 0, "PERCENT",
         "format 2: read and re-hash this share of the chunks (the others: presence only)"},
        {"index-only", 0, "", "format 2: check that every chunk is present, read none"}},
       kOutput,
       "[OPTION]... [ID]..."},
      {"rm",
       "remove backups",
       {kTarget, kAcceptNewHostKey},
       kOutput | kDryRun,
       "[OPTION]... ID..."},
      {"prune",
       "remove backups by retention rules",
       {
           kTarget,
           kAcceptNewHostKey,
           {"keep-last", 0, "N", "keep the N newest backups"},
           {"keep-hourly", 0, "N", "keep the newest backup of each of the last N hours"},
           {"keep-daily", 0, "N", "keep the newest backup of each of the last N days"},
           {"keep-weekly", 0, "N", "keep the newest backup of each of the last N ISO weeks"},
           {"keep-monthly", 0, "N", "keep the newest backup of each of the last N months"},
           {"keep-yearly", 0, "N", "keep the newest backup of each of the last N years"},
           {"keep-within", 0, "DURATION",
            "keep backups newer than the newest minus DURATION (e.g. 7d, 36h, 1y6mo)"},
       },
       kOutput | kDryRun,
       "[OPTION]... [VM]..."},
      {"gc",
       "remove leftovers of interrupted runs and chunks no backup uses from the target",
       {kTarget, kAcceptNewHostKey},
       kOutput | kDryRun,
       "[OPTION]..."},
      {"reindex",
       "rebuild the catalog rows of --target from its manifests",
       {kTarget, kAcceptNewHostKey},
       0,
       "[OPTION]..."},
      // Deprecated alias of ceso-restore for one release: its table (cli/restore.hpp).
      {"restore", "deprecated: use ceso-restore (the same command)", ceso::restore_options(),
       ceso::kRestoreCommon, ceso::kRestoreUsage},
  };
  return v;
}

ceso::ToolSpec make_spec() {
  ceso::ToolSpec spec{
      "ceso-backup",
      "Back up VMs (hot through a snapshot, or cold) to a target; list, verify, remove and prune "
      "backups (ceso-restore restores them).",
      "[create] [OPTION]... [VM]...\n       ceso-backup ls|verify|rm|prune|gc|reindex [OPTION]... "
      "[ARG]...",
      {},
      0,
      verbs(),
      ceso::Complete::vm,
  };
  spec.per_verb_options = true;
  spec.default_verb = "create";
  return spec;
}

const ceso::ToolSpec kSpec = make_spec();

// Shared with ceso-restore (cli/backup_target.hpp).
using ceso::catalog_entries, ceso::target_options, ceso::target_url;
using Resolved = ceso::ResolvedBackup;

std::unique_ptr<ceso::BackupTarget> require_target(const ceso::Args& args) {
  auto url = target_url(args);
  if (!url) ceso::usage_error("no backup target: give --target URL or set CESO_BACKUP_TARGET");
  return ceso::open_backup_target(*url, target_options(args));
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
  if (auto r = args.maybe("limit-rate")) o.limit_rate = ceso::parse_rate("limit-rate", *r);
  o.format = static_cast<int>(args.get_int("format", 1, 1, 2));
  o.cbt = args.has("cbt");
  if (o.cbt && o.format != 2)
    ceso::usage_error(
        "--cbt needs --format 2 (format 1 stores each disk whole, so it cannot "
        "take unchanged areas from the previous backup)");
  if (o.cbt && o.mode == "cold")
    ceso::usage_error("--cbt needs --hot: the changed areas are asked of the backup snapshot");
  // Test-only (ceso-backup(1), ENVIRONMENT): force the id to exercise collisions.
  if (const char* id = std::getenv("CESO_BACKUP_TEST_ID"); id && *id) o.forced_id = id;
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
  ceso::DeferredInterrupts deferred;  // a signal stops the copy; the cleanup still runs
  ceso::Catalog catalog(ceso::Catalog::default_path());
  ceso::Output out(args, {}, backup_line);
  ceso::Gate gate =
      ceso::tool_gate(args.has("dry-run"), [&](const ceso::ordered_json& plan) { out.emit(plan); });
  ceso::Progress progress(ceso::Progress::wanted());
  ceso::Outcome outcome;
  size_t jobs = static_cast<size_t>(args.get_int("jobs", 1, 1, 64));
  auto writers = ceso::vm_writers(args);  // API, or SSH on a free-licensed host
  ceso::for_each_vm(
      args, outcome, {jobs}, [&](const ceso::Target& t, ceso::FoundVm& found, size_t) {
        ceso::throw_if_interrupt_requested();
        const ceso::LocatedVm& vm = found.vm;
        const auto start = std::chrono::steady_clock::now();
        auto seconds = [&start] {
          return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        };
        ceso::BackupContext ctx{gate, catalog, *target, progress, [&](const std::string& m) {
                                  ceso::warn(ceso::quote(vm.name) + ": " + m);
                                }};
        ctx.writers = writers.get();
        ceso::ordered_json rec;  // the VM's vm record, as read for the backup
        ceso::ordered_json b;
        try {
          b = ceso::backup_vm(vm, options, ctx, rec);
        } catch (const ceso::Error&) {
          if (!gate.dry_run()) ceso::metrics::record_backup(vm.name, false, 0, 0, seconds(), 0);
          throw;
        }
        if (!b.is_null()) {
          ceso::metrics::record_backup(vm.name, true, b.value("bytes_raw", uint64_t{0}),
                                       b.value("bytes_stored", uint64_t{0}), seconds(),
                                       ceso::unix_now());
          rec["backup"] = std::move(b);
          rec["changed"] = true;
          out.emit(ceso::pass_through(t.record, rec, ceso::vm_owned_fields({"backup", "changed"})));
        }
        outcome.succeeded();
      });
  out.finish();
  if (ceso::interrupt_requested()) return ceso::Exit::interrupted;
  return outcome.exit_code();
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

ceso::Exit verify(const ceso::Args& args) {
  ceso::Catalog catalog(ceso::Catalog::default_path());
  std::vector<std::string> ids = args.operands;
  if (ids.empty())
    for (const auto& e : catalog_entries(args, catalog))
      if (e.status == "complete") ids.push_back(e.id);
  ceso::Output out(args, {"id", "vm", "verify", "problems"});
  ceso::Outcome outcome;
  bool mismatch = false;
  ceso::VerifyOptions vo;
  std::set<std::string> checked;  // chunks read and found good (shared between backups)
  vo.checked = &checked;
  vo.index_only = args.has("index-only");
  if (auto s = args.maybe("sample")) {
    if (vo.index_only) ceso::usage_error("--sample and --index-only exclude each other");
    std::string v = *s;
    if (!v.empty() && v.back() == '%') v.pop_back();
    vo.sample_percent = static_cast<int>(ceso::parse_count("sample", v, 0, 100));
  }
  for (const auto& id : ids) {
    const auto start = std::chrono::steady_clock::now();
    auto seconds = [&start] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    try {
      Resolved b = ceso::resolve_backup(args, catalog, id);
      ceso::VerifyResult r = ceso::verify_backup(*b.target, id, vo);
      auto now = ceso::unix_now();
      // A partial check that found nothing does not make a backup "ok";
      // any problem found makes it "failed".
      bool whole = !vo.index_only && vo.sample_percent >= 100;
      if (b.entry && (whole || !r.ok)) catalog.set_verify(id, r.ok ? "ok" : "failed", now);
      ceso::ordered_json rec = {{"type", "backup"}, {"id", id}};
      if (auto e = catalog.find(id)) rec = ceso::backup_record(*e);
      rec["problems"] = r.problems;
      for (const auto& p : r.problems) ceso::warn(ceso::quote(id) + ": " + p);
      if (!r.ok) mismatch = true;
      ceso::metrics::record_verify(r.ok ? "ok" : "failed", seconds());
      out.emit(rec);
      if (r.ok)
        outcome.succeeded();
      else
        outcome.failed(ceso::Error("verification failed", ceso::Exit::partial), ceso::quote(id));
    } catch (const ceso::Error& e) {
      ceso::metrics::record_verify("error", seconds());
      outcome.failed(e, ceso::quote(id));
    }
  }
  out.finish();
  if (mismatch) return ceso::Exit::partial;
  return outcome.exit_code();
}

ceso::Mutation delete_mutation(const ceso::CatalogEntry& e) {
  return {e.endpoint, e.vm_name, e.vm_id, "DeleteBackup", {{"id", e.id}, {"target", e.target}}};
}

// Removes one backup: its own directory <id> at its target (never anything
// else) and its catalog row. A failed run's row names no data (the run
// removed its directory): only the row goes.
void remove_backup(ceso::BackupTarget& target, ceso::Catalog& catalog,
                   const ceso::CatalogEntry& e) {
  if (e.status != "failed") target.remove_tree(e.id);
  catalog.remove(e.id);
}

ceso::Exit remove(const ceso::Args& args) {
  if (args.operands.empty()) ceso::usage_error("rm needs the ids of the backups to remove");
  ceso::Catalog catalog(ceso::Catalog::default_path());
  ceso::Output out(args, {"id", "vm", "removed"});
  ceso::Gate gate = ceso::tool_gate(args.has("dry-run"),
                                    [&out](const ceso::ordered_json& plan) { out.emit(plan); });
  ceso::Outcome outcome;
  for (const auto& id : args.operands) {
    try {
      Resolved b = ceso::resolve_backup(args, catalog, id);
      ceso::CatalogEntry entry = b.entry ? *b.entry : ceso::CatalogEntry{id, b.target->url()};
      if (!b.entry) entry.status = "complete";
      if (entry.status != "failed") {
        // The catalog's word is enough for a damaged manifest, not for one
        // that names another backup.
        std::optional<std::string> named;
        try {
          named = ceso::manifest_id_at(*b.target, id);
        } catch (const ceso::Error& e) {
          if (e.code() != ceso::Exit::bad_input) throw;
        }
        if (named && *named != id)
          ceso::bad_input("backup directory " + ceso::quote(id) + " at " + b.target->url() +
                          " holds a manifest of " + ceso::quote(*named) + "; not removed");
      }
      if (gate.perform(delete_mutation(entry), [&] { remove_backup(*b.target, catalog, entry); })) {
        ceso::ordered_json rec = ceso::backup_record(entry);
        rec["removed"] = true;
        rec["changed"] = true;
        out.emit(rec);
      }
      outcome.succeeded();
    } catch (const ceso::Error& e) {
      outcome.failed(e, ceso::quote(id));
    }
  }
  out.finish();
  return outcome.exit_code();
}

// The chunk sweep (format 2) of gc and prune: one `chunks` record, or a
// note saying why nothing was removed.
void sweep(ceso::BackupTarget& target, bool dry, ceso::Output& out) {
  ceso::SweepResult r = ceso::sweep_chunks(target, dry);
  if (!r.swept) {
    ceso::note("chunks at " + target.url() + " not swept: " + r.why);
    return;
  }
  if (r.present == 0) return;  // no chunk store at this target
  out.emit({{"type", "chunks"},
            {"target", target.url()},
            {"action", "sweep"},
            {"present", r.present},
            {"referenced", r.referenced},
            {"removed", r.removed.size()},
            {"bytes_removed", r.bytes_removed},
            {"changed", !dry && !r.removed.empty()}});
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
  ceso::Gate gate = ceso::tool_gate(args.has("dry-run"), [](const ceso::ordered_json&) {
  });  // prune prints its own keep/remove records
  ceso::Outcome outcome;
  std::map<std::string, std::unique_ptr<ceso::BackupTarget>> targets;
  auto target = [&](const std::string& url) -> ceso::BackupTarget& {
    auto& t = targets[url];
    if (!t) t = ceso::open_backup_target(url, target_options(args));
    return *t;
  };
  // Before anything is removed, every complete backup is checked at its
  // target (manifest, file sizes): retention counts only those present. A
  // target that cannot be reached fails the prune before any removal.
  std::set<std::string> known;  // chunks found present (backups share them)
  auto presence = [&](const ceso::CatalogEntry& e) {
    return ceso::backup_presence_problem(target(e.target), e.id, &known);
  };
  bool missing = false;
  for (const auto& d : ceso::plan_prune(entries, policy, presence)) {
    ceso::ordered_json rec = ceso::backup_record(d.entry);
    rec["action"] = d.missing ? "missing" : d.keep ? "keep" : "remove";
    rec["reasons"] = d.reasons;
    if (d.missing) {
      missing = true;
      ceso::warn(ceso::quote(d.entry.id) + ": not at " + d.entry.target + " as the catalog says (" +
                 d.reasons.front() + "); not counted, not removed (ceso-backup gc forgets it)");
    }
    try {
      if (!d.keep && !gate.dry_run()) {
        gate.perform(delete_mutation(d.entry),
                     [&] { remove_backup(target(d.entry.target), catalog, d.entry); });
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
  // Chunks only the removed backups used go too (mark and sweep).
  if (!gate.dry_run() && ceso::policy_mode() != ceso::Mode::restricted)
    for (auto& [url, t] : targets)
      if (t) sweep(*t, false, out);
  out.finish();
  if (missing && outcome.failures() == 0) return ceso::Exit::partial;
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
    ceso::note(ceso::quote(id) +
               ": its backup run may still be going (or its marker is not "
               "ceso's); left alone");
  // Catalog rows of complete backups whose directory is gone.
  auto listing = ceso::list_target(*target);
  for (const auto& name : listing.foreign)
    ceso::note(ceso::quote(name) +
               ": not made by ceso-backup (no manifest, no run marker); left "
               "alone");
  for (const auto& e : catalog.list(target->url())) {
    if (e.status != "complete" ||
        std::find(listing.complete.begin(), listing.complete.end(), e.id) != listing.complete.end())
      continue;
    if (!dry) catalog.remove(e.id);
    out.emit({{"type", "backup"}, {"id", e.id}, {"action", "forget"}, {"changed", !dry}});
  }
  sweep(*target, dry, out);
  out.finish();
  return ceso::Exit::ok;
}

ceso::Exit reindex(const ceso::Args& args) {
  auto target = require_target(args);
  ceso::Catalog catalog(ceso::Catalog::default_path());
  ceso::ReindexResult r = ceso::reindex(*target, catalog);
  // The local cache of the target's chunks is rebuilt too (format 2).
  ceso::ChunkStore store(*target, 3, ceso::ChunkStore::cache_path_for(target->url()));
  size_t chunks = store.rebuild_cache();
  if (chunks) ceso::note("chunk cache rebuilt: " + std::to_string(chunks) + " chunk(s)");
  for (const auto& bad : r.bad) ceso::warn("not indexed: " + bad);
  ceso::note("catalog rebuilt from " + std::to_string(r.indexed) + " backup(s) at " +
             target->url() +
             (r.bad.empty() ? std::string() : ", " + std::to_string(r.bad.size()) + " bad"));
  return r.bad.empty() ? ceso::Exit::ok : ceso::Exit::partial;
}

// Deprecated alias of ceso-restore (one release): a warning, then the same run.
ceso::Exit restore(const ceso::Args& args) {
  ceso::warn("ceso-backup restore is deprecated; use ceso-restore");
  return ceso::run_restore(args);
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
