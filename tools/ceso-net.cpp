// ceso-net — host networking: list standard vSwitches, portgroups and
// distributed portgroups with the VMs on them; add, change and remove
// standard portgroups (VLANs) on ESXi hosts and distributed portgroups on a
// vCenter.
//
//   ceso-net ls
//   ceso-net add web --vswitch vSwitch0 --vlan 10
//   ceso-net set web --vlan 4095                    # trunk (VGT)
//   ceso-net rm web
//   ceso-net add dvweb --dvs DVS0 --vlan 20         # vCenter
//   ceso-net set dvweb --dvs DVS0 --vlan 21
//   ceso-net rm dvweb --dvs DVS0
//
// ls prints one `net` record per vSwitch, portgroup and distributed
// portgroup; add/set/rm print the portgroup's record with "changed".
#include <map>
#include <optional>

#include "cli/endpoint.hpp"
#include "cli/tool.hpp"
#include "safety/policy.hpp"
#include "vm/hostcli.hpp"
#include "vm/net.hpp"
#include "vm/vm.hpp"
#include "vm/writer.hpp"

namespace {

ceso::ToolSpec make_spec() {
  using ceso::kDryRun;
  ceso::ToolSpec spec{
      "ceso-net",
      "List host networks; add, change and remove standard and distributed portgroups (VLANs).",
      "[OPTION]... ls|add|set|rm [OPTION]... [PORTGROUP]...",
      {},
      ceso::kConnection | ceso::kOutput | ceso::kTransport,
      {
          {"ls",
           "list vSwitches, portgroups and distributed portgroups as records",
           {
               {"kind", 0, "KIND", "only vswitch, portgroup or dvportgroup", 0,
                ceso::Complete::choices, "vswitch portgroup dvportgroup"},
               {"esxi", 0, "NAME", "only this ESXi host of a vCenter"},
           },
           0,
           "[OPTION]..."},
          {"add",
           "add standard portgroups to a vSwitch",
           {
               {"vswitch", 0, "NAME", "the standard vSwitch (required, or --dvs)"},
               {"dvs", 0, "NAME", "vCenter: a distributed portgroup on this distributed switch"},
               {"vlan", 0, "N", "VLAN id 0-4095: 0 none, 4095 all VLANs (trunk); default 0"},
               {"esxi", 0, "NAME", "the ESXi host of a vCenter"},
           },
           kDryRun,
           "[OPTION]... --vswitch NAME|--dvs NAME [PORTGROUP]..."},
          {"set",
           "change the VLAN or vSwitch of standard portgroups, the VLAN of distributed ones",
           {
               {"vswitch", 0, "NAME", "move it to this standard vSwitch"},
               {"dvs", 0, "NAME", "vCenter: a distributed portgroup of this distributed switch"},
               {"vlan", 0, "N", "VLAN id 0-4095: 0 none, 4095 all VLANs (trunk)"},
               {"esxi", 0, "NAME", "the ESXi host of a vCenter"},
           },
           kDryRun,
           "[OPTION]... [--dvs NAME] [PORTGROUP]..."},
          {"rm",
           "remove standard or distributed portgroups no VM uses",
           {
               {"dvs", 0, "NAME", "vCenter: a distributed portgroup of this distributed switch"},
               {"esxi", 0, "NAME", "the ESXi host of a vCenter"},
               {"force", 'f', "", "also when powered-off VMs have NICs on it"},
           },
           kDryRun,
           "[OPTION]... [PORTGROUP]..."},
      },
      ceso::Complete::none,
  };
  spec.per_verb_options = true;
  return spec;
}

const ceso::ToolSpec kSpec = make_spec();

const std::vector<std::string> kColumns = {"kind", "host", "name", "vlan", "vswitch", "clients"};

ceso::Exit list(const ceso::Args& args, ceso::VmLocator& locator) {
  ceso::ReadOnlyRun read_only;
  std::string kind = args.get("kind");  // one of the choices (checked by the parser)
  ceso::Output out(args, kColumns);
  ceso::vim::Client& c = locator.default_client();
  std::string host = args.get("esxi");
  bool seen = host.empty();
  ceso::NetInventory inv = ceso::read_networks(c);
  const std::string& ep = c.endpoint().id;
  for (const auto& h : inv.hosts) {
    if (!host.empty() && h.name != host) continue;
    seen = true;
    if (kind.empty() || kind == "vswitch")
      for (const auto& v : h.vswitches) out.emit(ceso::net_record(v, ep));
    if (kind.empty() || kind == "portgroup")
      for (const auto& p : h.portgroups) out.emit(ceso::net_record(p, ep));
  }
  if (kind.empty() || kind == "dvportgroup")
    for (const auto& d : inv.dvportgroups) out.emit(ceso::net_record(d, ep));
  out.finish();
  if (!seen) ceso::fail("no host named " + ceso::quote(host) + " on this endpoint");
  return ceso::Exit::ok;
}

// The portgroup an operand or a `net` record names, and the host it is on.
struct Wanted {
  std::string name, host;
  std::string dvs;  // a distributed portgroup of this switch (--dvs, or a dvportgroup record)
};

Wanted wanted_of(const ceso::Target& t, const ceso::Args& args) {
  Wanted w{t.name, args.get("esxi"), args.get("dvs")};
  if (t.record.is_object() && !t.record.empty()) {
    const auto* n = ceso::field_at(t.record, "name");
    if (!n || !n->is_string())
      ceso::bad_input(t.origin + ": a net record needs \"name\" (a string)");
    if (const auto* k = ceso::field_at(t.record, "kind");
        k && k->is_string() && k->get<std::string>() == "dvportgroup") {
      const auto* sw = ceso::field_at(t.record, "vswitch");
      if (!sw || !sw->is_string() || sw->get<std::string>().empty())
        ceso::bad_input(t.origin + ": a dvportgroup record needs \"vswitch\" (its switch)");
      if (w.dvs.empty()) w.dvs = sw->get<std::string>();
    } else if (k && k->is_string() && k->get<std::string>() != "portgroup") {
      ceso::bad_input(t.origin + ": " + ceso::quote(n->get<std::string>()) + " is a " +
                      k->get<std::string>() + ", not a standard portgroup (nor a distributed one)");
    }
    if (const auto* h = ceso::field_at(t.record, "host"); h && h->is_string() && w.host.empty())
      w.host = h->get<std::string>();
    w.name = n->get<std::string>();
    ceso::check_portgroup_name(w.name, t.origin + ": field \"name\"", ceso::Exit::bad_input);
    return w;
  }
  ceso::check_portgroup_name(w.name, t.origin, ceso::Exit::usage);
  return w;
}

// The host a change goes to: the one named, or the endpoint's only host.
const ceso::HostNet& pick_host(const ceso::NetInventory& inv, const std::string& name) {
  if (name.empty()) {
    if (inv.hosts.size() == 1) return inv.hosts.front();
    if (inv.hosts.empty()) ceso::fail("the endpoint has no ESXi host");
    ceso::usage_error("the endpoint has " + std::to_string(inv.hosts.size()) +
                      " ESXi hosts: name one with --esxi (ceso-net ls lists them)");
  }
  for (const auto& h : inv.hosts)
    if (h.name == name) return h;
  ceso::fail("no host named " + ceso::quote(name) + " on this endpoint");
}

std::string line(const ceso::ordered_json& r) {
  if (r.value("type", "") == "plan") return ceso::plan_line(r);
  std::string s = r.value("host", "") + " " + r.value("name", "") + ": ";
  if (r.value("removed", false)) {
    s += "removed";
  } else if (r.value("absent", false)) {
    s += "not there";
  } else {
    const auto& v = r["vlan"];
    s += "VLAN " + (v.is_number() ? std::to_string(v.get<int>()) : std::string("?")) +
         (r.value("trunk", false) ? " (trunk)" : "") + " on " + r.value("vswitch", "");
  }
  return s + (r.value("changed", false) ? "" : " (unchanged)");
}

struct Change {
  std::optional<int> vlan;
  std::string vswitch;
  std::string dvs;
  bool force = false;
};

class NetTool {
 public:
  NetTool(const ceso::Args& args, ceso::VmLocator& locator, ceso::Output& out, ceso::Gate& gate,
          ceso::VmWriters& writers)
      : args_(args), locator_(locator), out_(out), gate_(gate), writers_(writers) {}

  void act(const ceso::Target& t, const Change& ch) {
    planned_ = false;
    Wanted w = wanted_of(t, args_);
    ceso::vim::Client& c = locator_.client_for(t);
    ceso::NetInventory& inv = inventory(c);
    if (!w.dvs.empty()) {
      if (args_.verb == "add") return add_dv(t, c, inv, w.name, w.dvs, ch);
      if (args_.verb == "set") return set_dv(t, c, inv, w.name, w.dvs, ch);
      return remove_dv(t, c, inv, w.name, w.dvs);
    }
    const ceso::HostNet& h = pick_host(inv, w.host);
    std::string host = h.name;
    const ceso::NetEntry* pg = h.portgroup(w.name);
    ceso::ordered_json rec;
    bool changed = false;
    if (args_.verb == "add") {
      changed = add(c, h, pg, w.name, ch);
    } else if (args_.verb == "set") {
      if (!pg)
        ceso::fail("no portgroup " + ceso::quote(w.name) + " on " + ceso::quote(host) +
                   " (ceso-net add makes one)");
      changed = set(c, h, *pg, ch);
    } else {
      if (!pg) {
        rec = {{"type", "net"}, {"kind", "portgroup"}, {"endpoint", c.endpoint().id},
               {"host", host},  {"name", w.name},      {"absent", true}};
      } else {
        rec = ceso::net_record(*pg, c.endpoint().id);
        changed = remove(c, h, *pg, ch);
        if (planned_) return;
        rec["removed"] = true;
      }
      rec["changed"] = changed;
      out_.emit(ceso::pass_through(t.record, rec, {"changed", "removed", "absent"}));
      return;
    }
    if (planned_) return;                        // --dry-run: the plan is the output
    if (changed) cache_.erase(c.endpoint().id);  // what the host says now
    const ceso::HostNet& now = pick_host(inventory(c), host);
    const ceso::NetEntry* after = now.portgroup(w.name);
    if (!after)
      ceso::fail("portgroup " + ceso::quote(w.name) + " is not on " + ceso::quote(host) +
                 " after the change");
    rec = ceso::net_record(*after, c.endpoint().id);
    rec["changed"] = changed;
    out_.emit(ceso::pass_through(t.record, rec, {"changed"}));
  }

 private:
  const ceso::Args& args_;
  ceso::VmLocator& locator_;
  ceso::Output& out_;
  ceso::Gate& gate_;
  ceso::VmWriters& writers_;  // a free-licensed host: esxcli over SSH (vm/hostcli)
  std::map<std::string, ceso::NetInventory> cache_;  // by endpoint id
  bool planned_ = false;                             // the last change was only planned (--dry-run)

  ceso::NetInventory& inventory(ceso::vim::Client& c) {
    auto it = cache_.find(c.endpoint().id);
    if (it == cache_.end()) it = cache_.emplace(c.endpoint().id, ceso::read_networks(c)).first;
    return it->second;
  }

  // A free-licensed host's API is read-only: say so before anything is sent.
  void require_writable(ceso::vim::Client& c, const std::string& host) {
    if (c.api_writes_restricted())
      ceso::fail(ceso::quote(host) +
                 " has a free licence (vSphere Hypervisor): its API cannot change networking. "
                 "Configure SSH access to it (ssh:, man 7 ceso FREE ESXI OVER SSH) and ceso-net "
                 "uses esxcli there");
  }

  // The host's changes go over SSH (esxcli) when the transport says so.
  bool over_ssh(ceso::vim::Client& c) {
    return writers_.for_client(c).transport() == ceso::Transport::ssh;
  }

  // `action` over the API, or `ssh_action` with the SSH writer.
  bool perform(ceso::vim::Client& c, const std::string& host, const std::string& op,
               ceso::ordered_json params, const std::function<void()>& action,
               const std::function<void(ceso::VmWriter&)>& ssh_action) {
    ceso::VmWriter& writer = writers_.for_client(c);
    bool ssh = writer.transport() == ceso::Transport::ssh;
    if (!ssh) require_writable(c, host);
    params["host"] = host;
    ceso::Mutation m{c.endpoint().id, "", "", op, std::move(params)};
    m.transport = ceso::to_string(writer.transport());
    bool done = gate_.perform(m, [&] { ssh ? ssh_action(writer) : action(); });
    planned_ = !done;
    return done;
  }

  const ceso::DvSwitch& dv_switch(ceso::vim::Client& c, ceso::NetInventory& inv,
                                  const std::string& dvs) {
    if (!c.content().is_vcenter())
      ceso::fail("--dvs: distributed portgroups need a vCenter; " + c.endpoint().id +
                 " is a standalone host (use --vswitch)");
    const ceso::DvSwitch* sw = inv.dv_switch(dvs);
    if (!sw)
      ceso::fail("no distributed switch " + ceso::quote(dvs) +
                 " with hosts on this endpoint (ceso-net ls --kind dvportgroup shows them)");
    return *sw;
  }

  // The distributed portgroup `name` of switch `sw`, or nullptr.
  const ceso::NetEntry* dv_portgroup(ceso::NetInventory& inv, const std::string& name,
                                     const ceso::DvSwitch& sw) {
    const ceso::NetEntry* pg = inv.dvportgroup(name);
    if (pg && pg->vswitch != sw.name)
      ceso::fail("distributed portgroup " + ceso::quote(name) + " is on " +
                 ceso::quote(pg->vswitch) + ", not on " + ceso::quote(sw.name));
    return pg;
  }

  void emit_dv(const ceso::Target& t, ceso::vim::Client& c, const std::string& name, bool changed) {
    const ceso::NetEntry* after = inventory(c).dvportgroup(name);
    if (!after)
      ceso::fail("distributed portgroup " + ceso::quote(name) + " is not there after the change");
    ceso::ordered_json rec = ceso::net_record(*after, c.endpoint().id);
    rec["changed"] = changed;
    out_.emit(ceso::pass_through(t.record, rec, {"changed"}));
  }

  // set --dvs: a new VLAN, sent with the configVersion read.
  void set_dv(const ceso::Target& t, ceso::vim::Client& c, ceso::NetInventory& inv,
              const std::string& name, const std::string& dvs, const Change& ch) {
    const ceso::DvSwitch& sw = dv_switch(c, inv, dvs);
    const ceso::NetEntry* pg = dv_portgroup(inv, name, sw);
    if (!pg)
      ceso::fail("no distributed portgroup " + ceso::quote(name) + " on " + ceso::quote(sw.name) +
                 " (ceso-net add --dvs makes one)");
    if (!ch.vlan) ceso::usage_error("set --dvs needs --vlan N");
    int vlan = *ch.vlan;
    bool same = pg->vlan == vlan && (vlan != ceso::kVlanTrunk || pg->vlan_ranges == "0-4094");
    bool changed = false;
    if (!same) {
      ceso::ordered_json params = {{"portgroup", name},
                                   {"dvs", sw.name},
                                   {"vlan", vlan},
                                   {"config_version", pg->config_version}};
      ceso::Mutation m{c.endpoint().id, "", "", "ReconfigureDVPortgroup_Task", params};
      m.transport = "api";
      ceso::vim::MoRef ref = pg->network;
      std::string version = pg->config_version;
      if (!gate_.perform(m, [&] { ceso::reconfigure_dvportgroup_vlan(c, ref, version, vlan); }))
        return;
      changed = true;
      cache_.erase(c.endpoint().id);
    }
    emit_dv(t, c, name, changed);
  }

  // rm --dvs: Destroy_Task, refused while a VM has a NIC on it.
  void remove_dv(const ceso::Target& t, ceso::vim::Client& c, ceso::NetInventory& inv,
                 const std::string& name, const std::string& dvs) {
    const ceso::DvSwitch& sw = dv_switch(c, inv, dvs);
    const ceso::NetEntry* pg = dv_portgroup(inv, name, sw);
    ceso::ordered_json rec;
    bool changed = false;
    if (!pg) {
      rec = {{"type", "net"},   {"kind", "dvportgroup"}, {"endpoint", c.endpoint().id},
             {"host", nullptr}, {"name", name},          {"vswitch", sw.name},
             {"absent", true}};
    } else {
      std::string users;
      for (const auto& u : pg->clients) users += (users.empty() ? "" : ", ") + ceso::quote(u.name);
      if (!users.empty())
        ceso::fail("distributed portgroup " + ceso::quote(name) + " is in use by VMs: " + users +
                   " (vCenter refuses to remove it, also with --force; move their NICs with "
                   "ceso-set --network)");
      rec = ceso::net_record(*pg, c.endpoint().id);
      ceso::ordered_json params = {{"portgroup", name}, {"dvs", sw.name}, {"key", pg->key}};
      ceso::Mutation m{c.endpoint().id, "", "", "Destroy_Task", params};
      m.transport = "api";
      ceso::vim::MoRef ref = pg->network;
      if (!gate_.perform(m, [&] { ceso::destroy_dvportgroup(c, ref); })) return;
      changed = true;
      cache_.erase(c.endpoint().id);
      rec["removed"] = true;
    }
    rec["changed"] = changed;
    out_.emit(ceso::pass_through(t.record, rec, {"changed", "removed", "absent"}));
  }

  // add --dvs: a distributed portgroup on a vCenter.
  void add_dv(const ceso::Target& t, ceso::vim::Client& c, ceso::NetInventory& inv,
              const std::string& name, const std::string& dvs, const Change& ch) {
    const ceso::DvSwitch* sw = &dv_switch(c, inv, dvs);
    int vlan = ch.vlan.value_or(0);
    bool changed = false;
    if (const ceso::NetEntry* pg = inv.dvportgroup(name)) {
      if (pg->vswitch != sw->name || pg->vlan != vlan)
        ceso::fail("distributed portgroup " + ceso::quote(name) + " already exists (VLAN " +
                   (pg->vlan ? std::to_string(*pg->vlan) : "?") + " on " +
                   ceso::quote(pg->vswitch) + ")");
    } else {
      ceso::ordered_json params = {{"portgroup", name}, {"dvs", sw->name}, {"vlan", vlan}};
      ceso::Mutation m{c.endpoint().id, "", "", "AddDVPortgroup_Task", params};
      m.transport = "api";
      if (!gate_.perform(m, [&] { ceso::add_dvportgroup(c, sw->ref, name, vlan); })) return;
      changed = true;
      cache_.erase(c.endpoint().id);
    }
    const ceso::NetEntry* after = inventory(c).dvportgroup(name);
    if (!after)
      ceso::fail("distributed portgroup " + ceso::quote(name) + " is not there after the change");
    ceso::ordered_json rec = ceso::net_record(*after, c.endpoint().id);
    rec["changed"] = changed;
    out_.emit(ceso::pass_through(t.record, rec, {"changed"}));
  }

  bool add(ceso::vim::Client& c, const ceso::HostNet& h, const ceso::NetEntry* pg,
           const std::string& name, const Change& ch) {
    int vlan = ch.vlan.value_or(0);
    if (pg) {
      if (pg->vswitch == ch.vswitch && pg->vlan == vlan) return false;
      ceso::fail("portgroup " + ceso::quote(name) + " already exists on " + ceso::quote(h.name) +
                 " (VLAN " + (pg->vlan ? std::to_string(*pg->vlan) : "?") + " on " +
                 ceso::quote(pg->vswitch) + "); ceso-net set changes it");
    }
    if (!h.vswitch(ch.vswitch))
      ceso::fail("no standard vSwitch " + ceso::quote(ch.vswitch) + " on " + ceso::quote(h.name) +
                 " (ceso-net ls --kind vswitch lists them)");
    ceso::PortGroupSpec spec{name, vlan, ch.vswitch, ""};
    return perform(
        c, h.name, "AddPortGroup", {{"portgroup", name}, {"vswitch", ch.vswitch}, {"vlan", vlan}},
        [&] { ceso::add_portgroup(c, h.network_system, spec); },
        [&](ceso::VmWriter& w) { ceso::ssh_add_portgroup(w, name, ch.vswitch, vlan); });
  }

  bool set(ceso::vim::Client& c, const ceso::HostNet& h, const ceso::NetEntry& pg,
           const Change& ch) {
    ceso::PortGroupSpec spec{pg.name, ch.vlan.value_or(pg.vlan.value_or(0)),
                             ch.vswitch.empty() ? pg.vswitch : ch.vswitch, pg.policy_xml};
    if (pg.vmkernel && (pg.vlan != spec.vlan || pg.vswitch != spec.vswitch))
      ceso::fail("portgroup " + ceso::quote(pg.name) + " on " + ceso::quote(h.name) +
                 " carries a VMkernel NIC: a new VLAN or vSwitch can cut the host off the "
                 "network, so ceso-net does not change it (use the host's console)");
    if (!h.vswitch(spec.vswitch))
      ceso::fail("no standard vSwitch " + ceso::quote(spec.vswitch) + " on " + ceso::quote(h.name) +
                 " (ceso-net ls --kind vswitch lists them)");
    if (pg.vlan == spec.vlan && pg.vswitch == spec.vswitch) return false;
    if (pg.vswitch != spec.vswitch && over_ssh(c))
      ceso::fail("portgroup " + ceso::quote(pg.name) + " on " + ceso::quote(h.name) +
                 ": over SSH (free ESXi) esxcli changes only its VLAN, it cannot move it to " +
                 ceso::quote(spec.vswitch) + " (ceso-net rm, then add it there)");
    ceso::ordered_json params = {{"portgroup", pg.name}};
    if (pg.vlan != spec.vlan) params["vlan"] = spec.vlan;
    if (pg.vswitch != spec.vswitch) params["vswitch"] = spec.vswitch;
    return perform(
        c, h.name, "UpdatePortGroup", params,
        [&] { ceso::update_portgroup(c, h.network_system, pg.name, spec); },
        [&](ceso::VmWriter& w) { ceso::ssh_set_portgroup_vlan(w, pg.name, spec.vlan); });
  }

  bool remove(ceso::vim::Client& c, const ceso::HostNet& h, const ceso::NetEntry& pg,
              const Change& ch) {
    if (pg.vmkernel)
      ceso::fail("portgroup " + ceso::quote(pg.name) + " on " + ceso::quote(h.name) +
                 " carries a VMkernel NIC (host management or storage traffic); not removed");
    std::string on, off;
    for (const auto& u : pg.clients) {
      std::string& list = u.power == "on" ? on : off;
      list += (list.empty() ? "" : ", ") + ceso::quote(u.name);
    }
    if (!on.empty())
      ceso::fail("portgroup " + ceso::quote(pg.name) + " on " + ceso::quote(h.name) +
                 " is in use by powered-on VMs: " + on +
                 " (move their NICs with ceso-set --network, or power them off)");
    if (!off.empty() && !ch.force)
      ceso::fail("portgroup " + ceso::quote(pg.name) + " on " + ceso::quote(h.name) +
                 " is used by powered-off VMs: " + off +
                 " (their NICs would lose their network; --force removes it anyway)");
    return perform(
        c, h.name, "RemovePortGroup", {{"portgroup", pg.name}},
        [&] { ceso::remove_portgroup(c, h.network_system, pg.name); },
        [&](ceso::VmWriter& w) { ceso::ssh_remove_portgroup(w, pg.name, pg.vswitch); });
  }
};

ceso::Exit change(const ceso::Args& args, ceso::VmLocator& locator) {
  Change ch;
  if (auto v = args.maybe("vlan")) ch.vlan = ceso::parse_vlan(*v);
  ch.vswitch = args.get("vswitch");
  ch.dvs = args.get("dvs");
  ch.force = args.has("force");
  if (args.has("dvs") && ch.dvs.empty()) ceso::usage_error("--dvs: empty name");
  if (!ch.dvs.empty() && args.has("vswitch"))
    ceso::usage_error("--vswitch and --dvs exclude each other");
  if (args.verb == "add" && ch.vswitch.empty() && ch.dvs.empty())
    ceso::usage_error(
        "add needs --vswitch NAME (ceso-net ls --kind vswitch lists them) or --dvs NAME");
  if (args.has("vswitch") && ch.vswitch.empty()) ceso::usage_error("--vswitch: empty name");
  if (args.verb == "set" && !ch.dvs.empty() && !ch.vlan)
    ceso::usage_error("set --dvs needs --vlan N (a distributed portgroup's VLAN)");
  if (args.verb == "set" && !ch.vlan && ch.vswitch.empty())
    ceso::usage_error("set needs --vlan N or --vswitch NAME");
  ceso::Output out(args, kColumns, line);
  ceso::Gate gate =
      ceso::tool_gate(args.has("dry-run"), [&](const ceso::ordered_json& plan) { out.emit(plan); });
  auto writers = ceso::vm_writers(args);  // API, or SSH on a free-licensed host
  NetTool tool(args, locator, out, gate, *writers);
  ceso::Outcome outcome;
  ceso::for_each_target(args, outcome,
                        [&](const ceso::Target& t) {
                          tool.act(t, ch);
                          outcome.succeeded();
                        },
                        {"net"});
  out.finish();
  return outcome.exit_code();
}

ceso::Exit run(const ceso::Args& args) {
  if (args.verb.empty()) {
    if (args.operands.empty()) ceso::usage_error("missing command: ls, add, set or rm");
    ceso::usage_error("unknown command " + ceso::quote(args.operands.front()) +
                      " (use ls, add, set or rm)");
  }
  ceso::VmLocator locator(ceso::endpoint_resolver(args));
  if (args.verb == "ls") {
    if (!args.operands.empty())
      ceso::usage_error("ls takes no arguments (filter with --kind, --esxi)");
    return list(args, locator);
  }
  return change(args, locator);
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
