#include "vm/pool.hpp"

#include <algorithm>
#include <map>
#include <tuple>

#include "base/error.hpp"
#include "base/numbers.hpp"
#include "base/xml.hpp"
#include "vm/names.hpp"

namespace ceso {

namespace {

[[noreturn]] void refuse(Exit code, std::string message) { throw Error(std::move(message), code); }

std::string key(const vim::MoRef& r) { return r.type + ":" + r.value; }

// A whole number the host sent (may be negative: a limit of -1).
std::optional<int64_t> host_number(const std::string& text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  size_t i = text[0] == '-' ? 1 : 0;
  if (i == text.size()) return std::nullopt;
  for (size_t k = i; k < text.size(); ++k)
    if (text[k] < '0' || text[k] > '9') return std::nullopt;
  return std::stoll(text);
}

std::optional<Allocation> allocation_from(const xml::Node* n) {
  if (!n) return std::nullopt;
  Allocation a;
  auto r = host_number(n->child_text("reservation"));
  auto l = host_number(n->child_text("limit"));
  std::string e = n->child_text("expandableReservation");
  const xml::Node* sh = n->child("shares");
  if (!r || !l || (e != "true" && e != "false") || !sh) return std::nullopt;
  a.reservation = *r;
  a.limit = *l;
  a.expandable = e == "true";
  a.level = sh->child_text("level");
  a.shares = host_number(sh->child_text("shares")).value_or(0);
  return a;
}

PoolUsage usage_from(const xml::Node* n) {
  PoolUsage u;
  if (!n) return u;
  u.reservation_used = host_number(n->child_text("reservationUsed"));
  u.unreserved = host_number(n->child_text("unreservedForPool"));
  u.overall = host_number(n->child_text("overallUsage"));
  u.max = host_number(n->child_text("maxUsage"));
  return u;
}

ordered_json opt(const std::optional<int64_t>& v) {
  return v ? ordered_json(*v) : ordered_json(nullptr);
}

using xml::tag;

std::string allocation_xml(const char* element, const Allocation& a) {
  // ResourceAllocationInfo: reservation, expandableReservation, limit,
  // shares (SharesInfo: shares, level).
  return std::string("<") + element + ">" + tag("reservation", std::to_string(a.reservation)) +
         tag("expandableReservation", a.expandable ? "true" : "false") +
         tag("limit", std::to_string(a.limit)) + "<shares>" +
         tag("shares", std::to_string(a.level == "custom" ? a.shares : 0)) + tag("level", a.level) +
         "</shares></" + element + ">";
}

// Code points of valid UTF-8 (checked before).
size_t code_points(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

}  // namespace

std::string pool_spec(const vim::MoRef& root_folder) {
  std::string s = "<specSet>";
  s += vim::prop_set_xml("ComputeResource", {"name", "host"});
  s += vim::prop_set_xml("HostSystem", {"name"});
  s += vim::prop_set_xml("ResourcePool",
                         {"name", "parent", "owner", "config", "runtime", "vm", "resourcePool"});
  s += "<objectSet>" + vim::moref_xml("obj", root_folder) + "<skip>true</skip>";
  s += vim::traversal_xml("folder", "Folder", "childEntity", false,
                          {"folder", "dc", "crHost", "crPool"});
  s += vim::traversal_xml("dc", "Datacenter", "hostFolder", true, {"folder"});
  s += vim::traversal_xml("crHost", "ComputeResource", "host", false, {});
  s += vim::traversal_xml("crPool", "ComputeResource", "resourcePool", false, {"pool"});
  s += vim::traversal_xml("pool", "ResourcePool", "resourcePool", false, {"pool"});
  s += "</objectSet>";
  return s + "</specSet>";
}

std::vector<Pool> pools_from(const std::vector<vim::ObjectContent>& objects) {
  std::map<std::string, const vim::ObjectContent*> by_ref;
  for (const auto& o : objects) by_ref[key(o.obj)] = &o;
  auto find = [&](const vim::MoRef& r) -> const vim::ObjectContent* {
    auto it = by_ref.find(key(r));
    return it == by_ref.end() ? nullptr : it->second;
  };
  std::vector<Pool> out;
  for (const auto& o : objects) {
    if (o.obj.type != "ResourcePool") continue;
    Pool p;
    p.ref = o.obj;
    p.name = o.text("name");
    if (const xml::Node* n = o.prop("owner")) p.owner = vim::moref_of(*n);
    if (const xml::Node* n = o.prop("parent")) p.parent = vim::moref_of(*n);
    // The path: names up to the root pool (its parent is the compute resource).
    std::string path;
    const vim::ObjectContent* cur = &o;
    bool reached = false;
    for (int depth = 0; cur && depth < 64; ++depth) {
      path = cur->text("name") + (path.empty() ? "" : "/" + path);
      const xml::Node* parent = cur->prop("parent");
      if (!parent) break;
      vim::MoRef up = vim::moref_of(*parent);
      if (up.type != "ResourcePool") {
        reached = up.type.find("ComputeResource") != std::string::npos;
        break;
      }
      cur = find(up);
    }
    if (!reached) continue;
    p.path = path;
    p.root = p.parent.type.find("ComputeResource") != std::string::npos;
    if (const auto* cr = find(p.owner)) {
      p.owner_name = cr->text("name");
      p.cluster = p.owner.type == "ClusterComputeResource";
      if (const xml::Node* hosts = cr->prop("host"))
        for (const auto& h : hosts->children) {
          p.hosts.push_back(vim::moref_of(h));
          if (const auto* ho = find(p.hosts.back()); ho && !p.cluster) p.host = ho->text("name");
        }
    }
    const xml::Node* cfg = o.prop("config");
    p.cpu = allocation_from(cfg ? cfg->child("cpuAllocation") : nullptr);
    p.memory = allocation_from(cfg ? cfg->child("memoryAllocation") : nullptr);
    const xml::Node* rt = o.prop("runtime");
    p.cpu_use = usage_from(rt ? rt->child("cpu") : nullptr);
    p.memory_use = usage_from(rt ? rt->child("memory") : nullptr);
    if (const xml::Node* vms = o.prop("vm"))
      for (const auto& v : vms->children) p.vms.push_back(vim::moref_of(v));
    if (const xml::Node* kids = o.prop("resourcePool"))
      for (const auto& k : kids->children) {
        vim::MoRef ref = vim::moref_of(k);
        const auto* child = find(ref);
        p.children.push_back(child ? child->text("name") : ref.value);
      }
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(), [](const Pool& a, const Pool& b) {
    return std::tie(a.owner_name, a.path, a.ref.value) <
           std::tie(b.owner_name, b.path, b.ref.value);
  });
  return out;
}

std::vector<Pool> read_pools(vim::Client& client) {
  std::vector<vim::ObjectContent> objects;
  client.for_each_object(pool_spec(client.content().root_folder),
                         [&](vim::ObjectContent&& o) { objects.push_back(std::move(o)); });
  return pools_from(objects);
}

ordered_json allocation_json(const Allocation& a) {
  ordered_json j;
  j["reservation"] = a.reservation;
  j["limit"] = a.limit < 0 ? ordered_json(nullptr) : ordered_json(a.limit);
  j["expandable"] = a.expandable;
  j["shares_level"] = a.level;
  j["shares"] = a.shares;
  return j;
}

ordered_json pool_record(const Pool& p, const std::string& endpoint) {
  ordered_json r;
  r["type"] = "pool";
  r["endpoint"] = endpoint;
  r["id"] = p.ref.value;
  r["name"] = p.name;
  r["path"] = p.path;
  auto slash = p.path.rfind('/');
  r["parent"] =
      slash == std::string::npos ? ordered_json(nullptr) : ordered_json(p.path.substr(0, slash));
  r["cluster"] = p.cluster ? ordered_json(p.owner_name) : ordered_json(nullptr);
  r["host"] = p.host.empty() ? ordered_json(nullptr) : ordered_json(p.host);
  r["root"] = p.root;
  auto alloc = [](const std::optional<Allocation>& a, const PoolUsage& u) {
    ordered_json j = a ? allocation_json(*a) : ordered_json(ordered_json::object());
    j["reservation_used"] = opt(u.reservation_used);
    j["unreserved"] = opt(u.unreserved);
    j["usage"] = opt(u.overall);
    j["max_usage"] = opt(u.max);
    return j;
  };
  r["cpu_mhz"] = alloc(p.cpu, p.cpu_use);
  r["memory_mib"] = alloc(p.memory, p.memory_use);
  r["vms"] = p.vms.size();
  r["pools"] = p.children;
  return r;
}

const std::vector<std::string>& pool_columns() {
  static const std::vector<std::string> kColumns = {"path",
                                                    "cluster",
                                                    "host",
                                                    "cpu_mhz.reservation",
                                                    "cpu_mhz.limit",
                                                    "memory_mib.reservation",
                                                    "memory_mib.limit",
                                                    "vms"};
  return kColumns;
}

void check_pool_name(std::string_view name, std::string_view field, Exit code) {
  check_object_label(name, field, "pool name", 4 * kMaxPoolNameChars, code);
  if (code_points(name) > kMaxPoolNameChars)
    refuse(code, std::string(field) + ": pool name " + quote_name(name) + " is longer than " +
                     std::to_string(kMaxPoolNameChars) + " characters");
  for (char c : {'/', '\\', '%'})
    if (name.find(c) != std::string_view::npos)
      refuse(code, std::string(field) + ": pool name " + quote_name(name) + " contains " +
                       quote(std::string(1, c)) +
                       " (vSphere stores / \\ % escaped; ceso paths use /)");
}

std::vector<std::string> split_pool_path(std::string_view path, std::string_view field, Exit code) {
  std::string f(field);
  if (path.empty()) refuse(code, f + ": empty pool path (e.g. Resources/prod)");
  if (path.size() > 32 * 4 * kMaxPoolNameChars)
    refuse(code, f + ": pool path of " + std::to_string(path.size()) + " bytes is too long");
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    std::string_view part = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty())
      refuse(code, f + ": pool path " + quote_name(path) +
                       " has an empty part (a leading, doubled or trailing /)");
    if (part == "." || part == "..")
      refuse(code, f + ": pool path " + quote_name(path) + " contains " + quote(part) +
                       " (paths are absolute, from Resources)");
    check_pool_name(part, f, code);
    parts.emplace_back(part);
    if (parts.size() > 32) refuse(code, f + ": pool path has more than 32 levels");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

const Pool* find_pool(const std::vector<Pool>& pools, const std::vector<std::string>& path,
                      const std::string& owner_name) {
  const Pool* found = nullptr;
  std::vector<std::string> owners;
  for (const auto& p : pools) {
    if (!owner_name.empty() && p.owner_name != owner_name) continue;
    // "Resources/a" as printed, or "a" below the root.
    std::string root = p.path.substr(0, p.path.find('/'));
    std::string full;
    for (size_t i = 0; i < path.size(); ++i) full += (i ? "/" : "") + path[i];
    bool match = p.path == full || (path.front() != root && p.path == root + "/" + full);
    if (!match) continue;
    if (found) owners.push_back(p.owner_name);
    if (!found) {
      found = &p;
      owners.push_back(p.owner_name);
    }
  }
  if (owners.size() > 1) {
    std::string list;
    for (const auto& o : owners) list += (list.empty() ? "" : ", ") + quote(o);
    usage_error("pool path names a pool in several compute resources (" + list +
                "): name one with --cluster");
  }
  return found;
}

const Pool& pool_for_vm(const std::vector<Pool>& pools, std::string_view path_text,
                        std::string_view field, const vim::MoRef& vm_pool,
                        const vim::MoRef& vm_host) {
  std::vector<std::string> path = split_pool_path(path_text, field, Exit::usage);
  const Pool* home = nullptr;
  for (const auto& p : pools)
    if (!vm_pool.empty() && p.ref == vm_pool) home = &p;
  if (!home)
    for (const auto& p : pools)
      if (std::find(p.hosts.begin(), p.hosts.end(), vm_host) != p.hosts.end()) home = &p;
  if (!home) fail(std::string(field) + ": cannot tell the compute resource of the source VM");
  std::string owner = home->owner_name;
  const Pool* found = nullptr;
  for (const auto& p : pools)
    if (p.owner == home->owner && find_pool({p}, path, owner)) found = &p;
  if (found) return *found;
  std::string elsewhere;
  for (const auto& p : pools)
    if (p.owner != home->owner && find_pool({p}, path, p.owner_name))
      elsewhere += (elsewhere.empty() ? "" : ", ") + quote(p.owner_name);
  fail(std::string(field) + ": no pool " + quote(std::string(path_text)) + " in " + quote(owner) +
       ", where the source VM's host is" +
       (elsewhere.empty() ? "" : " (there is one in " + elsewhere + ")") +
       "; ceso-host pool ls lists the pools");
}

vim::MoRef new_vm_pool(vim::Client& c, std::vector<Pool>& pools, std::string_view path_text,
                       const vim::MoRef& vm_pool, const vim::MoRef& vm_host, bool over_ssh) {
  if (pools.empty()) pools = read_pools(c);
  const Pool& p = pool_for_vm(pools, path_text, "--pool", vm_pool, vm_host);
  if (!p.root && over_ssh)
    fail("--pool " + quote(std::string(path_text)) +
         ": over SSH (free licence) a new VM goes to the root pool");
  return p.ref;
}

int64_t parse_reservation(std::string_view option, std::string_view text, bool memory) {
  if (text == "0") return 0;
  if (!memory) return parse_count(option, text, 0, 1'000'000'000);
  return parse_size(option, text, kMiB, kMiB, kMaxVmMemoryBytes * 64) / kMiB;
}

int64_t parse_limit(std::string_view option, std::string_view text, bool memory) {
  if (text == "unlimited" || text == "-1") return -1;
  if (text == "0") return 0;
  if (!memory) {
    std::string o(option);
    if (text.empty() || !(text[0] >= '0' && text[0] <= '9'))
      usage_error("--" + o + ": " + quote(text) + " is not a number of MHz or \"unlimited\"");
    return parse_count(option, text, 0, 1'000'000'000);
  }
  return parse_size(option, text, kMiB, kMiB, kMaxVmMemoryBytes * 64) / kMiB;
}

void parse_shares(std::string_view option, std::string_view text, Allocation& a) {
  if (text == "low" || text == "normal" || text == "high") {
    a.level = std::string(text);
    a.shares = 0;
    return;
  }
  if (text.empty() || text[0] < '0' || text[0] > '9')
    usage_error("--" + std::string(option) + ": " + quote(text) +
                " is not low, normal, high or a number of shares");
  a.level = "custom";
  a.shares = parse_count(option, text, 0, 1'000'000);
}

bool parse_yes_no(std::string_view option, std::string_view text) {
  if (text == "yes" || text == "true" || text == "on") return true;
  if (text == "no" || text == "false" || text == "off") return false;
  usage_error("--" + std::string(option) + ": " + quote(text) + " is not yes or no");
}

void check_allocation(const Allocation& a, std::string_view what) {
  if (a.limit >= 0 && a.limit < a.reservation)
    usage_error(std::string(what) + ": the limit " + std::to_string(a.limit) +
                " is below the reservation " + std::to_string(a.reservation));
}

std::string resource_config_spec_xml(const Allocation& cpu, const Allocation& memory) {
  return "<spec>" + allocation_xml("cpuAllocation", cpu) +
         allocation_xml("memoryAllocation", memory) + "</spec>";
}

vim::MoRef create_pool(vim::Client& c, const vim::MoRef& parent, const std::string& name,
                       const Allocation& cpu, const Allocation& memory) {
  xml::Node r = c.call("CreateResourcePool", parent,
                       tag("name", name) + resource_config_spec_xml(cpu, memory));
  return {"ResourcePool", r.child_text("returnval")};
}

void destroy_pool(vim::Client& c, const vim::MoRef& pool) {
  xml::Node resp = c.call("Destroy_Task", pool);
  c.wait_for_task({"Task", resp.child_text("returnval")});
}

}  // namespace ceso
