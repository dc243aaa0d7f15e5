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

#include "backup/backup.hpp"
#include "backup/restore.hpp"
#include "base/numbers.hpp"
#include "base/time.hpp"
#include "cli/cloudinit_options.hpp"
#include "cli/endpoint.hpp"
#include "cli/tool.hpp"
#include "cloudinit/netcfg.hpp"
#include "config/config.hpp"
#include "vm/provision.hpp"
#include "vm/vm.hpp"

namespace {

// Options several verbs share.
const ceso::Option kTarget{"target", 0, "URL",
                           "where backups are stored: file:///path or sftp://user@host/path "
                           "(default: $CESO_BACKUP_TARGET or the config file's backup target)"};
const ceso::Option kAcceptNewHostKey{
    "accept-new-host-key", 0, "",
    "sftp: add an unknown host's key to ~/.ssh/known_hosts instead of refusing"};

// Each verb's table. --timeout and --retries mean one thing per verb: the
// guest shutdown wait and the download resumes for create, the power-on
// wait and the upload restarts for restore; no other verb takes them.
std::vector<ceso::Verb> verbs() {
  using ceso::kConnection, ceso::kOutput, ceso::kDryRun, ceso::kJobs;
  std::vector<ceso::Verb> v = {
      {"create",
       "back up VMs named or read as records (the default)",
       {
           kTarget,
           kAcceptNewHostKey,
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
       },
       kConnection | kOutput | kDryRun | kJobs,
       "[OPTION]... [VM]..."},
      {"ls", "list backups from the catalog", {kTarget}, kOutput, "[OPTION]... [VM]..."},
      {"verify",
       "re-read, decompress and re-hash backups (default: all)",
       {kTarget, kAcceptNewHostKey},
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
       "remove leftovers of interrupted runs from the target",
       {kTarget, kAcceptNewHostKey},
       kOutput | kDryRun,
       "[OPTION]..."},
      {"reindex",
       "rebuild the catalog rows of --target from its manifests",
       {kTarget, kAcceptNewHostKey},
       0,
       "[OPTION]..."},
      {"restore",
       "restore backup ID (or a VM's newest backup) as a new VM, with a new identity for "
       "cloud-init",
       {
           kTarget,
           kAcceptNewHostKey,
           {"as", 0, "NAME", "name of the restored VM (default: the backed-up VM's)"},
           {"datastore", 0, "NAME", "datastore for the VM (default: the one it was on)"},
           {"network", 0, "PORTGROUP", "connect every NIC to this portgroup"},
           {"power-on", 0, "", "power the restored VM on"},
           {"timeout", 0, "SECONDS", "how long to wait for --power-on to finish (default 600)"},
           {"retries", 0, "N", "start a failed disk upload again up to N times (default 3)"},
           {"replace", 0, "",
            "replace a powered-off VM of the same name (destroyed once the restore succeeded)"},
           {"keep-on-failure", 0, "", "do not roll back what a failed restore created"},
       },
       kConnection | kOutput | kDryRun,
       "[OPTION]... ID|VM"},
  };
  // restore: the cloud-init flags of ceso-cloudinit, same names and meaning.
  for (auto& verb : v)
    if (verb.name == "restore")
      for (const auto& o : ceso::cloudinit_flag_options()) verb.options.push_back(o);
  return v;
}

ceso::ToolSpec make_spec() {
  ceso::ToolSpec spec{
      "ceso-backup",
      "Back up VMs (hot through a snapshot, or cold) to a target; list, verify, remove, prune "
      "and restore backups.",
      "[create] [OPTION]... [VM]...\n       ceso-backup ls|verify|rm|prune|gc|reindex [OPTION]... "
      "[ARG]...\n       ceso-backup restore [OPTION]... ID|VM",
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
  std::vector<std::unique_ptr<ceso::VmLocator>> locators(jobs);
  ceso::for_each_target_parallel(args, outcome, jobs, [&](const ceso::Target& t, size_t w) {
    ceso::throw_if_interrupt_requested();
    if (!locators[w])
      locators[w] = std::make_unique<ceso::VmLocator>(ceso::endpoint_resolver(args));
    ceso::LocatedVm vm = locators[w]->locate(t);
    ceso::BackupContext ctx{gate, catalog, *target, progress, [&](const std::string& m) {
                              ceso::warn(ceso::quote(vm.name) + ": " + m);
                            }};
    ceso::ordered_json rec;  // the VM's vm record, as read for the backup
    ceso::ordered_json b = ceso::backup_vm(vm, options, ctx, rec);
    if (!b.is_null()) {
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

// A backup named by the user on the command line.
struct Resolved {
  std::string id;
  std::optional<ceso::CatalogEntry> entry;  // its catalog row, if the catalog knows it
  std::unique_ptr<ceso::BackupTarget> target;
};

// Backup ids are untrusted: `id` must be well-formed and name exactly one
// backup the catalog knows (at --target when that is given) or whose
// manifest under the target names it. Anything else is Error(bad_input):
// nothing is ever looked up or removed by a path built from a bad id.
// Ids are matched exactly (no prefixes).
Resolved resolve(const ceso::Args& args, ceso::Catalog& catalog, const std::string& id) {
  ceso::check_backup_id(id);
  Resolved r{id, catalog.find(id), nullptr};
  auto url = target_url(args);
  if (r.entry) {
    if (args.has("target") && url && *url != r.entry->target)
      ceso::bad_input("backup " + ceso::quote(id) + " is at " + r.entry->target + ", not at " +
                      *url);
    r.target = ceso::open_backup_target(r.entry->target, target_options(args));
    return r;
  }
  if (!url)
    ceso::bad_input("no backup " + ceso::quote(id) +
                    " in the catalog (give --target URL to look at a target)");
  r.target = ceso::open_backup_target(*url, target_options(args));
  auto named = ceso::manifest_id_at(*r.target, id);
  if (!named)
    ceso::bad_input("no backup " + ceso::quote(id) + " in the catalog or at " + r.target->url());
  if (*named != id)
    ceso::bad_input("backup directory " + ceso::quote(id) + " at " + r.target->url() +
                    " holds a manifest of " + ceso::quote(*named));
  return r;
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
      Resolved b = resolve(args, catalog, id);
      ceso::VerifyResult r = ceso::verify_backup(*b.target, id);
      auto now = ceso::unix_now();
      if (b.entry) catalog.set_verify(id, r.ok ? "ok" : "failed", now);
      ceso::ordered_json rec = {{"type", "backup"}, {"id", id}};
      if (auto e = catalog.find(id)) rec = ceso::backup_record(*e);
      rec["problems"] = r.problems;
      for (const auto& p : r.problems) ceso::warn(ceso::quote(id) + ": " + p);
      if (!r.ok) mismatch = true;
      out.emit(rec);
      if (r.ok)
        outcome.succeeded();
      else
        outcome.failed(ceso::Error("verification failed", ceso::Exit::partial), ceso::quote(id));
    } catch (const ceso::Error& e) {
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
      Resolved b = resolve(args, catalog, id);
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
  auto presence = [&](const ceso::CatalogEntry& e) {
    return ceso::backup_presence_problem(target(e.target), e.id);
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
  out.finish();
  return ceso::Exit::ok;
}

ceso::Exit reindex(const ceso::Args& args) {
  auto target = require_target(args);
  ceso::Catalog catalog(ceso::Catalog::default_path());
  ceso::ReindexResult r = ceso::reindex(*target, catalog);
  for (const auto& bad : r.bad) ceso::warn("not indexed: " + bad);
  ceso::note("catalog rebuilt from " + std::to_string(r.indexed) + " backup(s) at " +
             target->url() +
             (r.bad.empty() ? std::string() : ", " + std::to_string(r.bad.size()) + " bad"));
  return r.bad.empty() ? ceso::Exit::ok : ceso::Exit::partial;
}

// `restore ID|VM`: an id the catalog knows is that backup; else a VM name
// (backup_for_name: the VM of that name on the host restored to, or the
// only VM such backups come from); else an id whose manifest is at the
// target. Anything else is Error(bad_input).
Resolved resolve_restore(const ceso::Args& args, ceso::Catalog& catalog, ceso::vim::Client& client,
                         ceso::RestoreRequest& req) {
  const std::string operand = req.id;
  if (ceso::is_backup_id(operand) && catalog.find(operand)) return resolve(args, catalog, operand);
  std::vector<ceso::VmOrigin> live;
  for (auto& vm : client.retrieve_all_vms({"name", "config.uuid"}))
    if (vm.text("name") == operand) live.push_back({client.endpoint().id, vm.text("config.uuid")});
  if (auto e = ceso::backup_for_name(catalog_entries(args, catalog), operand, live)) {
    ceso::note("restoring " + ceso::quote(e->id) + ", the newest backup of " +
               ceso::quote(operand) + " (VM on " + e->endpoint + ", uuid " + e->vm_uuid + ")");
    req.id = e->id;
    req.by_id = false;
    return resolve(args, catalog, e->id);
  }
  if (!ceso::is_backup_id(operand))
    ceso::bad_input("no backup id or backed-up VM named " + ceso::quote(operand));
  return resolve(args, catalog, operand);
}

ceso::Exit restore(const ceso::Args& args) {
  if (args.operands.size() != 1)
    ceso::usage_error("restore needs one backup ID (or the name of a VM: its newest backup)");
  ceso::RestoreRequest req;
  req.id = args.operands[0];
  req.name = args.get("as");
  if (args.has("as")) ceso::check_vm_name(req.name, "--as", ceso::Exit::usage);
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
  ceso::DeferredInterrupts deferred;  // SIGINT/SIGTERM stop the upload; the rollback still runs
  ceso::Catalog catalog(ceso::Catalog::default_path());
  ceso::vim::Client client(ceso::resolve_endpoint(args));
  Resolved b = resolve_restore(args, catalog, client, req);
  auto& target = b.target;
  ceso::Output out(args, {"name", "restored_from", "power", "id", "instance_id"},
                   [](const ceso::ordered_json& r) {
                     return r.value("name", "") + ": restored from " + r.value("restored_from", "");
                   });
  ceso::Gate gate =
      ceso::tool_gate(args.has("dry-run"), [&](const ceso::ordered_json& plan) { out.emit(plan); });
  ceso::Progress progress(ceso::Progress::wanted());
  ceso::ordered_json rec = ceso::restore_backup(client, *target, req, gate, progress);
  if (!rec.is_null())
    for (const auto& w : rec.value("warnings", std::vector<std::string>{})) ceso::warn(w);
  if (!rec.is_null()) out.emit(rec);
  out.finish();
  if (ceso::interrupt_requested()) return ceso::Exit::interrupted;
  return ceso::Exit::ok;  // a change not audited: run_tool makes it exit 1
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
