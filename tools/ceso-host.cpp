// ceso-host — the hosts of an endpoint as records, and their resource pools.
//
//   ceso-host ls                   # one `host` record per ESXi host
//   ceso-host ls -o name,free,memory_used_mib,memory_mib
//   ceso-host ls -H all            # every host of the config file, in parallel
//   ceso-host pool ls              # one `pool` record per resource pool
//   ceso-host pool add Resources/prod --cpu-reservation 1000 --mem-limit 8G
//   ceso-host pool rm Resources/prod
//
// One RetrievePropertiesEx per endpoint, however many hosts (plus login on a
// cold session cache): hosts, their datastores, compute resources, resource
// pools and, on a standalone host, its licence come in the same answer.
#include <map>

#include "cli/endpoint.hpp"
#include "cli/fanout.hpp"
#include "cli/tool.hpp"
#include "safety/policy.hpp"
#include "vm/host.hpp"
#include "vm/pool.hpp"
#include "vm/vm.hpp"
#include "vsphere/client.hpp"

namespace {

ceso::ToolSpec make_spec() {
  ceso::ToolSpec spec{
      "ceso-host",
      "List the ESXi hosts of an endpoint as NDJSON records (a table on a terminal); list, add "
      "and remove resource pools.",
      "[OPTION]... ls|pool [OPTION]...",
      {},
      ceso::kConnection | ceso::kHosts | ceso::kOutput,
      {{"ls", "one host record per ESXi host: version, licence, CPU, memory, datastores, state"},
       {"pool",
        "resource pools: pool ls, pool add PATH..., pool rm PATH...",
        {
            {"cluster", 0, "NAME",
             "the cluster or standalone host (compute resource) the pools are in"},
            {"cpu-reservation", 0, "MHZ", "add: CPU reserved for the pool (default 0)"},
            {"cpu-limit", 0, "MHZ", "add: CPU limit, or unlimited (default)"},
            {"cpu-expandable", 0, "yes|no",
             "add: may borrow unreserved CPU from its parent (default yes)", 0,
             ceso::Complete::choices, "yes no"},
            {"cpu-shares", 0, "LEVEL", "add: low, normal (default), high, or a number"},
            {"mem-reservation", 0, "SIZE", "add: memory reserved: MiB or 512M, 4G (default 0)"},
            {"mem-limit", 0, "SIZE", "add: memory limit, or unlimited (default)"},
            {"mem-expandable", 0, "yes|no",
             "add: may borrow unreserved memory from its parent (default yes)", 0,
             ceso::Complete::choices, "yes no"},
            {"mem-shares", 0, "LEVEL", "add: low, normal (default), high, or a number"},
            {"force", 'f', "", "rm: also a pool with VMs or child pools (they move to its parent)"},
            {"missing-ok", 0, "", "rm: a pool that is not there is not an error"},
        },
        ceso::kDryRun,
        "[OPTION]... ls|add|rm [PATH]..."}},
      ceso::Complete::none,
  };
  spec.per_verb_options = true;
  return spec;
}

const ceso::ToolSpec kSpec = make_spec();

ceso::Exit list(const ceso::Args& args) {
  ceso::ReadOnlyRun read_only;  // Ctrl-C cuts a call in flight: nothing to undo
  if (!args.operands.empty())
    ceso::usage_error("ls takes no arguments, got " + ceso::quote(args.operands.front()));
  ceso::Output out(args, ceso::host_columns());
  // Several -H, or -H all: every endpoint in parallel, records in host order.
  if (auto eps = ceso::fan_out_endpoints(args)) {
    ceso::Exit code = ceso::fan_out(*eps, out, [](const ceso::Endpoint& ep) {
      ceso::vim::Client client(ep);
      return ceso::read_host_records(client);
    });
    out.finish();
    return code;
  }
  ceso::vim::Client client(ceso::resolve_endpoint(args));
  for (const auto& r : ceso::read_host_records(client)) out.emit(r);
  out.finish();
  return ceso::Exit::ok;
}

// ---- pool ----

const std::vector<std::string> kAddOnly = {"cpu-reservation", "cpu-limit",       "cpu-expandable",
                                           "cpu-shares",      "mem-reservation", "mem-limit",
                                           "mem-expandable",  "mem-shares"};

std::string pool_line(const ceso::ordered_json& r) {
  if (r.value("type", "") == "plan" && r.contains("params") && r["params"].is_object())
    return "pool " + r["params"].value("path", "") + " in " + r["params"].value("cluster", "") +
           ": would call " + r.value("operation", "");
  if (r.value("type", "") == "plan") return ceso::plan_line(r);
  std::string where = r["cluster"].is_string() ? r["cluster"].get<std::string>()
                      : r["host"].is_string()  ? r["host"].get<std::string>()
                                               : r.value("endpoint", "");
  std::string s = where + " " + r.value("path", "") + ": ";
  if (r.value("removed", false))
    s += "removed";
  else if (r.value("absent", false))
    s += "not there";
  else
    s += std::to_string(r.value("vms", 0)) + " VMs";
  return s + (r.value("changed", false) ? "" : " (unchanged)");
}

ceso::Exit pool_list(const ceso::Args& args, const std::vector<std::string>& rest) {
  ceso::ReadOnlyRun read_only;
  if (!rest.empty())
    ceso::usage_error("pool ls takes no arguments, got " + ceso::quote(rest.front()) +
                      " (filter with --cluster)");
  for (const auto& o : kAddOnly)
    if (args.has(o)) ceso::usage_error("--" + o + " goes with pool add");
  for (const char* o : {"force", "missing-ok", "dry-run"})
    if (args.has(o)) ceso::usage_error(std::string("--") + o + " goes with pool rm or add");
  std::string cluster = args.get("cluster");
  if (args.has("cluster") && cluster.empty()) ceso::usage_error("--cluster: empty name");
  ceso::Output out(args, ceso::pool_columns());
  auto records = [cluster](const ceso::Endpoint& ep) {
    ceso::vim::Client client(ep);
    std::vector<ceso::ordered_json> recs;
    bool seen = cluster.empty();
    for (const auto& p : ceso::read_pools(client)) {
      if (!cluster.empty() && p.owner_name != cluster && p.host != cluster) continue;
      seen = true;
      recs.push_back(ceso::pool_record(p, client.endpoint().id));
    }
    if (!seen)
      ceso::fail("no cluster or host named " + ceso::quote(cluster) + " on " +
                 client.endpoint().id);
    return recs;
  };
  if (auto eps = ceso::fan_out_endpoints(args)) {
    ceso::Exit code = ceso::fan_out(*eps, out, records);
    out.finish();
    return code;
  }
  for (const auto& r : records(ceso::resolve_endpoint(args))) out.emit(r);
  out.finish();
  return ceso::Exit::ok;
}

ceso::Allocation allocation_from_args(const ceso::Args& args, const std::string& kind) {
  bool memory = kind == "mem";
  ceso::Allocation a = ceso::default_allocation();
  if (auto v = args.maybe(kind + "-reservation"))
    a.reservation = ceso::parse_reservation(kind + "-reservation", *v, memory);
  if (auto v = args.maybe(kind + "-limit"))
    a.limit = ceso::parse_limit(kind + "-limit", *v, memory);
  if (auto v = args.maybe(kind + "-expandable"))
    a.expandable = ceso::parse_yes_no(kind + "-expandable", *v);
  if (auto v = args.maybe(kind + "-shares")) ceso::parse_shares(kind + "-shares", *v, a);
  ceso::check_allocation(a, "--" + kind + "-limit");
  return a;
}

bool same_allocation(const std::optional<ceso::Allocation>& have, const ceso::Allocation& want) {
  return have && have->reservation == want.reservation && have->limit == want.limit &&
         have->expandable == want.expandable && have->level == want.level &&
         (want.level != "custom" || have->shares == want.shares);
}

class PoolTool {
 public:
  PoolTool(const ceso::Args& args, ceso::VmLocator& locator, ceso::Output& out, ceso::Gate& gate,
           std::string verb)
      : args_(args), locator_(locator), out_(out), gate_(gate), verb_(std::move(verb)) {
    if (verb_ == "add") {
      cpu_ = allocation_from_args(args, "cpu");
      memory_ = allocation_from_args(args, "mem");
    }
  }

  void act(const ceso::Target& t) {
    std::string path_text = t.name, owner = args_.get("cluster");
    bool from_record = t.record.is_object() && !t.record.empty();
    if (from_record) {
      const auto* p = ceso::field_at(t.record, "path");
      if (!p || !p->is_string())
        ceso::bad_input(t.origin + ": a pool record needs \"path\" (a string)");
      path_text = p->get<std::string>();
      if (owner.empty())
        for (const char* f : {"cluster", "host"})
          if (const auto* o = ceso::field_at(t.record, f); o && o->is_string() && owner.empty())
            owner = o->get<std::string>();
    }
    std::vector<std::string> path =
        ceso::split_pool_path(path_text, from_record ? t.origin + ": field \"path\"" : t.origin,
                              from_record ? ceso::Exit::bad_input : ceso::Exit::usage);
    ceso::vim::Client& c = locator_.client_for(t);
    const std::vector<ceso::Pool>& pools = inventory(c);
    if (!owner.empty() && std::none_of(pools.begin(), pools.end(), [&](const auto& p) {
          return p.owner_name == owner || p.host == owner;
        }))
      ceso::fail("no cluster or host named " + ceso::quote(owner) + " on " + c.endpoint().id +
                 " (ceso-host pool ls lists the pools)");
    if (verb_ == "add")
      add(t, c, pools, path, owner);
    else
      remove(t, c, pools, path, owner);
  }

 private:
  const ceso::Args& args_;
  ceso::VmLocator& locator_;
  ceso::Output& out_;
  ceso::Gate& gate_;
  std::string verb_;
  ceso::Allocation cpu_, memory_;
  std::map<std::string, std::vector<ceso::Pool>> cache_;  // by endpoint id

  const std::vector<ceso::Pool>& inventory(ceso::vim::Client& c) {
    auto it = cache_.find(c.endpoint().id);
    if (it == cache_.end()) it = cache_.emplace(c.endpoint().id, ceso::read_pools(c)).first;
    return it->second;
  }

  static std::string joined(const std::vector<std::string>& path, size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s += (i ? "/" : "") + path[i];
    return s;
  }

  // The owner named, else the only compute resource, else the one whose pools
  // hold the parent path.
  std::string pick_owner(const std::vector<ceso::Pool>& pools, const std::string& owner) {
    if (!owner.empty()) return owner;
    std::vector<std::string> owners;
    for (const auto& p : pools)
      if (p.root) owners.push_back(p.owner_name);
    if (owners.size() == 1) return owners.front();
    return "";  // find_pool decides, or says it is ambiguous
  }

  void require_writable(ceso::vim::Client& c) {
    if (c.api_writes_restricted())
      ceso::fail(c.endpoint().id +
                 " has a free licence (vSphere Hypervisor): its API cannot change resource pools");
  }

  void emit(const ceso::Target& t, ceso::ordered_json rec, bool changed) {
    rec["changed"] = changed;
    out_.emit(ceso::pass_through(t.record, rec, {"changed", "removed", "absent"}));
  }

  void add(const ceso::Target& t, ceso::vim::Client& c, const std::vector<ceso::Pool>& pools,
           const std::vector<std::string>& path, const std::string& owner_given) {
    std::string owner = pick_owner(pools, owner_given);
    std::string text = joined(path, path.size());
    if (const ceso::Pool* have = ceso::find_pool(pools, path, owner)) {
      if (have->root)
        ceso::usage_error(t.origin + ": " + ceso::quote(text) +
                          " is the root pool, which every host and cluster has");
      if (same_allocation(have->cpu, cpu_) && same_allocation(have->memory, memory_))
        return emit(t, ceso::pool_record(*have, c.endpoint().id), false);
      ceso::fail("pool " + ceso::quote(have->path) + " already exists in " +
                 ceso::quote(have->owner_name) +
                 " with other allocations (ceso-host pool ls shows them)");
    }
    if (path.size() < 2 && path.front() == "Resources")
      ceso::usage_error(t.origin + ": " + ceso::quote(text) + " is the root pool's name");
    std::vector<std::string> parent_path(path.begin(), path.end() - 1);
    const ceso::Pool* parent =
        parent_path.empty() ? nullptr : ceso::find_pool(pools, parent_path, owner);
    if (parent_path.empty())  // "prod": below the root
      for (const auto& p : pools)
        if (p.root && (owner.empty() || p.owner_name == owner || p.host == owner)) {
          if (parent)
            ceso::usage_error(
                "the endpoint has several clusters and hosts: name one with --cluster "
                "(ceso-host pool ls lists them)");
          parent = &p;
        }
    if (!parent)
      ceso::fail("no parent pool " +
                 ceso::quote((parent_path.empty() || parent_path.front() == "Resources"
                                  ? std::string()
                                  : std::string("Resources/")) +
                             joined(path, path.size() - 1)) +
                 (owner.empty() ? "" : " in " + ceso::quote(owner)) + " on " + c.endpoint().id +
                 " (pool add makes one level at a time; ceso-host pool ls lists them)");
    const std::string& name = path.back();
    ceso::check_pool_name(name, t.origin, ceso::Exit::usage);
    require_writable(c);
    ceso::ordered_json params = {{"path", parent->path + "/" + name},
                                 {"parent", parent->ref.value},
                                 {"cluster", parent->owner_name},
                                 {"cpu_mhz", ceso::allocation_json(cpu_)},
                                 {"memory_mib", ceso::allocation_json(memory_)}};
    ceso::Mutation m{c.endpoint().id, "", "", "CreateResourcePool", params};
    m.transport = "api";
    ceso::vim::MoRef made;
    if (!gate_.perform(m, [&] { made = ceso::create_pool(c, parent->ref, name, cpu_, memory_); }))
      return;
    cache_.erase(c.endpoint().id);
    for (const auto& p : inventory(c))
      if (p.ref == made) return emit(t, ceso::pool_record(p, c.endpoint().id), true);
    ceso::fail("pool " + ceso::quote(parent->path + "/" + name) + " is not there after the change");
  }

  void remove(const ceso::Target& t, ceso::vim::Client& c, const std::vector<ceso::Pool>& pools,
              const std::vector<std::string>& path, const std::string& owner_given) {
    std::string owner = pick_owner(pools, owner_given);
    std::string text = joined(path, path.size());
    const ceso::Pool* p = ceso::find_pool(pools, path, owner);
    if (!p) {
      if (!args_.has("missing-ok"))
        ceso::fail("no pool " + ceso::quote(text) +
                   (owner.empty() ? "" : " in " + ceso::quote(owner)) + " on " + c.endpoint().id +
                   " (--missing-ok accepts that)");
      ceso::ordered_json rec = {
          {"type", "pool"}, {"endpoint", c.endpoint().id}, {"path", text}, {"absent", true}};
      return emit(t, rec, false);
    }
    if (p->root)
      ceso::usage_error(t.origin + ": " + ceso::quote(p->path) + " is the root pool of " +
                        ceso::quote(p->owner_name) + ": it cannot be removed");
    if ((!p->vms.empty() || !p->children.empty()) && !args_.has("force"))
      ceso::fail("pool " + ceso::quote(p->path) + " in " + ceso::quote(p->owner_name) + " holds " +
                 std::to_string(p->vms.size()) + " VMs and " + std::to_string(p->children.size()) +
                 " child pools (--force removes it; they move to its parent)");
    require_writable(c);
    ceso::ordered_json params = {{"path", p->path},
                                 {"pool", p->ref.value},
                                 {"cluster", p->owner_name},
                                 {"vms", p->vms.size()},
                                 {"pools", p->children}};
    ceso::Mutation m{c.endpoint().id, "", "", "Destroy_Task", params};
    m.transport = "api";
    ceso::ordered_json rec = ceso::pool_record(*p, c.endpoint().id);
    ceso::vim::MoRef ref = p->ref;
    if (!gate_.perform(m, [&] { ceso::destroy_pool(c, ref); })) return;
    cache_.erase(c.endpoint().id);
    rec["removed"] = true;
    emit(t, rec, true);
  }
};

ceso::Exit pool(const ceso::Args& args) {
  if (args.operands.empty()) ceso::usage_error("missing pool command: ls, add or rm");
  std::string verb = args.operands.front();
  std::vector<std::string> rest(args.operands.begin() + 1, args.operands.end());
  if (verb == "ls") return pool_list(args, rest);
  if (verb != "add" && verb != "rm")
    ceso::usage_error("unknown pool command " + ceso::quote(verb) + " (use ls, add or rm)");
  if (verb == "rm")
    for (const auto& o : kAddOnly)
      if (args.has(o)) ceso::usage_error("--" + o + " goes with pool add");
  if (verb == "add")
    for (const char* o : {"force", "missing-ok"})
      if (args.has(o)) ceso::usage_error(std::string("--") + o + " goes with pool rm");
  if (args.has("cluster") && args.get("cluster").empty())
    ceso::usage_error("--cluster: empty name");
  ceso::Args sub = args;
  sub.operands = rest;
  ceso::VmLocator locator(ceso::endpoint_resolver(args));
  ceso::Output out(sub, ceso::pool_columns(), pool_line);
  ceso::Gate gate =
      ceso::tool_gate(args.has("dry-run"), [&](const ceso::ordered_json& plan) { out.emit(plan); });
  PoolTool tool(sub, locator, out, gate, verb);
  ceso::Outcome outcome;
  ceso::for_each_target(sub, outcome,
                        [&](const ceso::Target& t) {
                          tool.act(t);
                          outcome.succeeded();
                        },
                        {"pool"});
  out.finish();
  return outcome.exit_code();
}

ceso::Exit run(const ceso::Args& args) {
  if (args.verb.empty()) {
    if (args.operands.empty()) ceso::usage_error("missing command: ls or pool");
    ceso::usage_error("unknown command " + ceso::quote(args.operands.front()) +
                      " (use ls or pool)");
  }
  if (args.verb == "pool") return pool(args);
  return list(args);
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
