// The backup target and backups a ceso-backup or ceso-restore command line
// names: --target, --accept-new-host-key, $CESO_BACKUP_TARGET, and backup ids
// resolved against the catalog and the target. Shared so that both tools read
// them the same way.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backup/catalog.hpp"
#include "cli/options.hpp"
#include "transport/target.hpp"

namespace ceso {

// The rows of the two options every target-using verb and ceso-restore take.
inline constexpr Option kTargetOption{
    "target", 0, "URL",
    "where backups are stored: file:///path, sftp://user@host/path or s3://bucket/prefix "
    "(default: $CESO_BACKUP_TARGET or the config file's backup target)"};
inline constexpr Option kAcceptNewHostKeyOption{
    "accept-new-host-key", 0, "",
    "sftp: add an unknown host's key to ~/.ssh/known_hosts instead of refusing"};

// --target, else $CESO_BACKUP_TARGET, else the config file's backup target.
std::optional<std::string> target_url(const Args& args);
TargetOptions target_options(const Args& args);
// The catalog rows of --target (all rows when --target is not given).
std::vector<CatalogEntry> catalog_entries(const Args& args, Catalog& catalog);

// A backup named by the user on the command line.
struct ResolvedBackup {
  std::string id;
  std::optional<CatalogEntry> entry;  // its catalog row, if the catalog knows it
  std::unique_ptr<BackupTarget> target;
};

// Backup ids are untrusted: `id` must be well-formed and name exactly one
// backup the catalog knows (at --target when that is given) or whose
// manifest under the target names it. Anything else is Error(bad_input):
// nothing is ever looked up or removed by a path built from a bad id.
// Ids are matched exactly (no prefixes).
ResolvedBackup resolve_backup(const Args& args, Catalog& catalog, const std::string& id);

}  // namespace ceso
