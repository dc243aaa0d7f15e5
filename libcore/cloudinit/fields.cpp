#include "cloudinit/fields.hpp"

#include <algorithm>

namespace ceso {

namespace {

using K = FieldKind;
using N = NicScope;

// THE table. Option order is the order of --help; a field's row gives its
// record name, what it changes, its option and its help. A function-local
// static: tools build their option tables during static initialization.
const std::vector<CloudInitField>& table() {
  static const std::vector<CloudInitField> kFields = {
      // identity
      {.field = "hostname",
       .kind = K::identity,
       .arg = "NAME",
       .help = "host name, one RFC 1123 label (without it: specs on stdin)",
       .copy_help = "cloud-init host name (default: the VM name)"},
      {.field = "fqdn",
       .kind = K::identity,
       .cloud_config = true,
       .arg = "FQDN",
       .help = "fully qualified domain name (gives the host name if not set)",
       .copy_help = "cloud-init fully qualified domain name"},
      {.field = "instance_id",
       .kind = K::identity,
       .copy_tools = false,  // a copy always gets a fresh one
       .arg = "ID",
       .help = "cloud-init instance-id (default: HOSTNAME-UTCTIME-RANDOM)"},
      {.field = "name",
       .kind = K::identity,
       .copy_tools = false,  // the copy tools name the VM with their own --name/operand
       .arg = "NAME",
       .help = "VM name in the output record (default: the host name)"},
      // network
      {.field = "ip",
       .kind = K::network,
       .nic = N::own,
       .arg = "CIDR",
       .help = "static address with prefix length, IPv4 or IPv6",
       .repeatable = true},
      {.field = "gateway",
       .kind = K::network,
       .nic = N::own,
       .arg = "ADDR",
       .help = "IPv4 default gateway, inside an --ip subnet"},
      {.field = "gateway6",
       .kind = K::network,
       .nic = N::own,
       .arg = "ADDR",
       .help = "IPv6 default gateway, inside an --ip subnet or link-local",
       .copy_help = "IPv6 default gateway"},
      {.field = "dns",
       .kind = K::network,
       .nic = N::shared,
       .arg = "ADDR",
       .help = "DNS server",
       .repeatable = true},
      {.field = "search",
       .kind = K::network,
       .nic = N::shared,
       .arg = "DOMAIN",
       .help = "DNS search domain",
       .repeatable = true},
      {.field = "mtu",
       .kind = K::network,
       .nic = N::shared,
       .arg = "BYTES",
       .help = "MTU of the interface"},
      {.field = "route",
       .kind = K::network,
       .nic = N::own,
       .arg = "DEST=VIA",
       .help = "static route; DEST is a CIDR or 'default'",
       .repeatable = true},
      {.field = "dhcp",
       .kind = K::network,
       .nic = N::own,
       .arg = "MODE",
       .help = "use DHCP",
       .value = FieldValue::choices,
       .choices = "v4 v6 both"},
      {.field = "mac",
       .kind = K::network,
       .nic = N::own,
       .arg = "MAC",
       .help = "match the NIC by MAC address and name it (set-name)",
       .copy_help = "MAC of the first NIC (default: generated), matched by cloud-init"},
      {.field = "nic",
       .kind = K::network,
       .nic = N::own,
       .arg = "NAME",
       .help = "interface name, or a name glob (default: match 'en*')"},
      {.field = "nics", .kind = K::network, .record_only = true, .copy_tools = false},
      // user-data
      {.field = "user",
       .kind = K::user_data,
       .cloud_config = true,
       .arg = "NAME",
       .help = "user to create or configure (default: ubuntu)"},
      {.field = "ssh_key",
       .kind = K::user_data,
       .cloud_config = true,
       .arg = "KEY",
       .help = "authorized SSH public key line",
       .repeatable = true},
      {.field = "ssh_key_file",
       .kind = K::user_data,
       .cloud_config = true,
       .arg = "FILE",
       .help = "file of SSH public keys, one per line",
       .repeatable = true,
       .value = FieldValue::file},
      {.field = "password_hash",
       .kind = K::user_data,
       .cloud_config = true,
       .arg = "HASH",
       .help = "crypt(3) password hash (mkpasswd --method=SHA-512)",
       .copy_help = "crypt(3) password hash"},
      {.field = "sudo",
       .kind = K::user_data,
       .cloud_config = true,
       .help = "give the user passwordless sudo"},
      {.field = "groups",
       .kind = K::user_data,
       .cloud_config = true,
       .arg = "LIST",
       .help = "comma-separated supplementary groups"},
      {.field = "shell",
       .kind = K::user_data,
       .cloud_config = true,
       .arg = "PATH",
       .help = "login shell of the user"},
      {.field = "package",
       .kind = K::user_data,
       .cloud_config = true,
       .arg = "NAME",
       .help = "package to install",
       .repeatable = true},
      {.field = "runcmd",
       .kind = K::user_data,
       .cloud_config = true,
       .arg = "COMMAND",
       .help = "command to run at the end of first boot",
       .repeatable = true},
      {.field = "write_file",
       .kind = K::user_data,
       .cloud_config = true,
       .arg = "PATH=LOCALFILE",
       .help = "write LOCALFILE's content to PATH in the VM",
       .repeatable = true,
       .value = FieldValue::file},
      {.field = "timezone",
       .kind = K::user_data,
       .cloud_config = true,
       .arg = "TZ",
       .help = "time zone, e.g. Europe/Paris"},
      {.field = "locale",
       .kind = K::user_data,
       .cloud_config = true,
       .arg = "LOCALE",
       .help = "system locale, e.g. en_US.UTF-8"},
      {.field = "user_data",
       .kind = K::user_data,
       .arg = "FILE",
       .help = "own user-data: #cloud-config is merged, others passed as is",
       .value = FieldValue::file},
      // the network config file replaces the NIC fields
      {.field = "network_config",
       .kind = K::network,
       .arg = "FILE",
       .help = "network config used as is, instead of the NIC options",
       .value = FieldValue::file},
      {.field = "cleanup",
       .kind = K::metadata,
       .help = "have cloud-init blank guestinfo.userdata after reading it"},
  };
  return kFields;
}

}  // namespace

const std::vector<CloudInitField>& cloudinit_fields() { return table(); }

const CloudInitField* find_cloudinit_field(std::string_view field) {
  const auto& fields = table();
  auto it = std::find_if(fields.begin(), fields.end(),
                         [&](const CloudInitField& f) { return f.field == field; });
  return it == fields.end() ? nullptr : &*it;
}

std::string field_option_name(std::string_view field) {
  std::string name(field);
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

bool touches_user_data(const ordered_json& fields) {
  for (const auto& [k, v] : fields.items()) {
    const CloudInitField* f = find_cloudinit_field(k);
    if (!f || (f->kind != FieldKind::identity && f->kind != FieldKind::network)) return true;
  }
  return false;
}

bool touches_network(const ordered_json& fields) {
  for (const auto& [k, v] : fields.items())
    if (const CloudInitField* f = find_cloudinit_field(k); f && f->kind == FieldKind::network)
      return true;
  return false;
}

}  // namespace ceso
