#include "cli/backup_target.hpp"

#include <cstdlib>

#include "backup/backup.hpp"
#include "base/error.hpp"
#include "config/config.hpp"

namespace ceso {

std::optional<std::string> target_url(const Args& args) {
  if (auto t = args.maybe("target")) return t;
  if (const char* env = std::getenv("CESO_BACKUP_TARGET"); env && *env) return std::string(env);
  return config_backup_target();
}

TargetOptions target_options(const Args& args) { return {args.has("accept-new-host-key")}; }

std::vector<CatalogEntry> catalog_entries(const Args& args, Catalog& catalog) {
  auto url = target_url(args);
  return catalog.list(args.has("target") && url ? *url : std::string());
}

ResolvedBackup resolve_backup(const Args& args, Catalog& catalog, const std::string& id) {
  check_backup_id(id);
  ResolvedBackup r{id, catalog.find(id), nullptr};
  auto url = target_url(args);
  if (r.entry) {
    if (args.has("target") && url && *url != r.entry->target)
      bad_input("backup " + quote(id) + " is at " + r.entry->target + ", not at " + *url);
    r.target = open_backup_target(r.entry->target, target_options(args));
    return r;
  }
  if (!url)
    bad_input("no backup " + quote(id) + " in the catalog (give --target URL to look at a target)");
  r.target = open_backup_target(*url, target_options(args));
  auto named = manifest_id_at(*r.target, id);
  if (!named) bad_input("no backup " + quote(id) + " in the catalog or at " + r.target->url());
  if (*named != id)
    bad_input("backup directory " + quote(id) + " at " + r.target->url() + " holds a manifest of " +
              quote(*named));
  return r;
}

}  // namespace ceso
