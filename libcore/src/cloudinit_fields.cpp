#include "ceso/cloudinit_fields.hpp"

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
       .flags = kRepeatable},
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
       .flags = kRepeatable},
      {.field = "search",
       .kind = K::network,
       .nic = N::shared,
       .arg = "DOMAIN",
       .help = "DNS search domain",
       .flags = kRepeatable},
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
       .flags = kRepeatable},
      {.field = "dhcp",
       .kind = K::network,
       .nic = N::own,
       .arg = "MODE",
       .help = "use DHCP",
       .complete = Complete::choices,
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
       .flags = kRepeatable},
      {.field = "ssh_key_file",
       .kind = K::user_data,
       .cloud_config = true,
       .arg = "FILE",
       .help = "file of SSH public keys, one per line",
       .flags = kRepeatable,
       .complete = Complete::file},
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
       .flags = kRepeatable},
      {.field = "runcmd",
       .kind = K::user_data,
       .cloud_config = true,
       .arg = "COMMAND",
       .help = "command to run at the end of first boot",
       .flags = kRepeatable},
      {.field = "write_file",
       .kind = K::user_data,
       .cloud_config = true,
       .arg = "PATH=LOCALFILE",
       .help = "write LOCALFILE's content to PATH in the VM",
       .flags = kRepeatable,
       .complete = Complete::file},
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
       .complete = Complete::file},
      // the network config file replaces the NIC fields
      {.field = "network_config",
       .kind = K::network,
       .arg = "FILE",
       .help = "network config used as is, instead of the NIC options",
       .complete = Complete::file},
      {.field = "cleanup",
       .kind = K::metadata,
       .help = "have cloud-init blank guestinfo.userdata after reading it"},
  };
  return kFields;
}

// Not a spec field: how the documents are encoded, in both option groups.
constexpr Option kEncodingOption = {"encoding",
                                    0,
                                    "ENC",
                                    "encoding of the guestinfo values (default gzip+base64)",
                                    0,
                                    Complete::choices,
                                    "gzip+base64 base64 none"};

// Option names outlive every Option that points at them.
const std::vector<std::string>& option_names() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const auto& f : table()) names.push_back(field_option_name(f.field));
    return names;
  }();
  return kNames;
}

std::vector<Option> options_of(bool copy_tools) {
  std::vector<Option> out;
  const auto& fields = table();
  for (size_t i = 0; i < fields.size(); ++i) {
    const CloudInitField& f = fields[i];
    if (f.record_only || (copy_tools && !f.copy_tools)) continue;
    std::string_view help = copy_tools && !f.copy_help.empty() ? f.copy_help : f.help;
    out.push_back({option_names()[i], 0, f.arg, help, f.flags, f.complete, f.choices});
  }
  out.push_back(kEncodingOption);
  return out;
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

const std::vector<Option>& cloudinit_tool_options() {
  static const std::vector<Option> kOptions = options_of(false);
  return kOptions;
}

const std::vector<Option>& cloudinit_flag_options() {
  static const std::vector<Option> kOptions = options_of(true);
  return kOptions;
}

ordered_json cloudinit_flag_fields(const Args& args) {
  ordered_json fields = ordered_json::object();
  const auto& rows = table();
  for (size_t i = 0; i < rows.size(); ++i) {
    const CloudInitField& f = rows[i];
    const std::string& option = option_names()[i];
    if (f.record_only || !args.has(option)) continue;
    std::string key(f.field);
    if (f.arg.empty())
      fields[key] = true;
    else if (f.flags & kRepeatable)
      fields[key] = args.all(option);
    else
      fields[key] = args.get(option);
  }
  return fields;
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
