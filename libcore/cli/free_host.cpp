#include "cli/free_host.hpp"

#include "base/error.hpp"

namespace ceso {

bool host_is_free_licensed(vim::Client& client) {
  const auto& lm = client.content().license_manager;
  if (lm.empty()) return false;
  auto objs = client.retrieve({lm}, {"licenses"});
  if (objs.empty()) return false;
  const xml::Node* list = objs.front().prop("licenses");
  if (!list) return false;
  bool any = false;
  for (const auto& l : list->children) {
    std::string edition = l.child_text("editionKey");
    if (edition.empty()) continue;
    if (edition.rfind("esxBasic", 0) != 0) return false;
    any = true;
  }
  return any;
}

std::unique_ptr<SshConnection> ssh_for_writes(vim::Client& client) {
  const Endpoint& e = client.endpoint();
  if (!host_is_free_licensed(client)) return nullptr;
  if (!e.ssh)
    usage_error(e.id +
                " has a free licence: its API is read-only. Give SSH access to write there "
                "(CESO_SSH=root@HOST[:PORT] or `ssh:` in the config entry; see ceso(7))");
  SshSettings s;
  s.user = e.ssh->user;
  s.host = e.ssh->host;
  s.port = e.ssh->port;
  s.identity = e.ssh->identity;
  s.host_key_pin = e.ssh->host_key;
  s.known_hosts_files = ssh_known_hosts_files();
  s.record_file = ssh_record_file();
  SshLimits limits;
  limits.idle_timeout_s = e.idle_timeout_s;
  limits.call_timeout_s = e.call_timeout_s;
  limits.max_output_bytes = e.max_answer_bytes;
  return std::make_unique<SshConnection>(s, limits);
}

}  // namespace ceso
