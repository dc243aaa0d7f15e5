// The vSphere SOAP API (vim25) over libcurl + expat.
//
// A Client talks to one endpoint (ESXi host or vCenter). It logs in lazily,
// shares its session with the other tools of a pipeline through the session
// cache (session.hpp), renews an expired session transparently, and maps
// SOAP faults to ceso::Error with a clear message and exit code.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.hpp"
#include "base/xml.hpp"
#include "config/config.hpp"
#include "transport/http.hpp"

namespace ceso {
class SessionCache;
}

namespace ceso::vim {

// A managed object reference: type ("VirtualMachine") and value ("vm-42").
struct MoRef {
  std::string type;
  std::string value;
  bool empty() const { return value.empty(); }
  bool operator==(const MoRef&) const = default;
};

MoRef moref_of(const xml::Node& node);  // <obj type="VirtualMachine">vm-42</obj>
std::string moref_xml(std::string_view element, const MoRef& ref);
// Pieces of a PropertyFilterSpec: a propSet of `type` with its paths, and a
// TraversalSpec named `name` from `type` along `path`, then the named specs.
std::string prop_set_xml(std::string_view type, std::initializer_list<const char*> paths);
std::string traversal_xml(std::string_view name, std::string_view type, std::string_view path,
                          bool skip, std::initializer_list<const char*> next);
// The task a *_Task method answered with (its returnval); fails without one.
MoRef task_of(const xml::Node& response);

// A SOAP fault from the host. `fault_type` is the vSphere fault name
// ("InvalidLogin", "NotSupported", "FileNotFound"…) so callers can branch.
class Fault : public Error {
 public:
  Fault(std::string message, Exit code, std::string fault_type, std::string method)
      : Error(std::move(message), code), type_(std::move(fault_type)), method_(std::move(method)) {}
  const std::string& fault_type() const { return type_; }
  const std::string& method() const { return method_; }

 private:
  std::string type_;
  std::string method_;
};

// The exit code of a vSphere fault type ("InvalidLogin" → connection) and
// the explanation ceso adds after the host's message ("" for a type it has
// none for: exit failure). The one table for SOAP faults and the fault
// blocks vim-cmd prints (vsphere/vimcmd).
struct FaultMeaning {
  Exit code = Exit::failure;
  std::string_view explanation;
};
FaultMeaning fault_meaning(std::string_view type);

// Build the Fault for a SOAP fault element (Body/Fault). Exposed for tests.
Fault fault_from_xml(const xml::Node& fault, std::string_view method, const std::string& host);

struct ServiceContent {
  std::string api_type;     // "HostAgent" (ESXi) or "VirtualCenter"
  std::string api_version;  // "8.0.2.0"
  std::string full_name;
  std::string instance_uuid;
  MoRef root_folder, property_collector, view_manager, session_manager, file_manager,
      virtual_disk_manager, search_index, license_manager;
  bool is_vcenter() const { return api_type == "VirtualCenter"; }
};

ServiceContent service_content_from_xml(const xml::Node& returnval);

// One object's properties from the PropertyCollector.
struct ObjectContent {
  MoRef obj;
  std::vector<std::pair<std::string, xml::Node>> props;  // path → <val>
  const xml::Node* prop(std::string_view path) const;
  std::string text(std::string_view path) const;  // "" when absent
};

// One <objects> element; nullopt for an object that vanished (only a
// missingSet with ManagedObjectNotFound) or has no <obj>. The second form
// moves the values out of `objects` instead of copying them.
std::optional<ObjectContent> object_from_xml(const xml::Node& objects);
std::optional<ObjectContent> object_from_xml(xml::Node&& objects);

// Keeps only part of one property's value while the answer is parsed, for a
// value much larger than what the caller reads from it (a VM's device list).
// `keep(depth, parent, name, xsi_type)` is asked for each element inside the
// value (depth 1: its items, e.g. one device; depth 2: an item's fields...),
// `parent` holding what of the enclosing element is parsed so far (its
// earlier children); a refused element is skipped with all it contains,
// without building a tree.
struct ValueFilter {
  std::string path;  // "config.hardware.device"
  std::function<bool(size_t depth, const xml::Node& parent, std::string_view name,
                     std::string_view xsi_type)>
      keep;
};

// The xml::KeepElement applying `filters` to the <val> of the <propSet>s of a
// PropertyCollector answer. Exposed for tests.
xml::KeepElement value_filter_keep(const std::vector<ValueFilter>& filters);

class Client {
 public:
  explicit Client(Endpoint endpoint);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const Endpoint& endpoint() const { return endpoint_; }
  // Connects (service content + session) on first use.
  const ServiceContent& content();

  // Invoke a method. `args` is the XML of the arguments after _this (already
  // escaped). Returns the <MethodResponse> element. Re-logs in once on
  // NotAuthenticated. Throws Fault for SOAP faults, Error(connection) for
  // transport failures.
  xml::Node call(std::string_view method, const MoRef& self, std::string_view args = {});

  // For large answers: elements `name` under `parent` are parsed as they
  // arrive and handed to `fn` one at a time, not kept in the returned
  // response (see xml::StreamParser).
  struct Split {
    std::string parent, name;
    std::function<void(xml::Node&&)> fn;
    xml::KeepElement keep = nullptr;  // elements to build (null: all)
    xml::KeepScope keep_within;       // where keep is asked (empty: everywhere)
  };
  xml::Node call(std::string_view method, const MoRef& self, std::string_view args,
                 const Split& split);

  // Properties of every VirtualMachine (a container view over the root
  // folder, kept for the session), all pages.
  std::vector<ObjectContent> retrieve_all_vms(const std::vector<std::string>& paths);
  // The same, one VM at a time as the answer arrives: memory stays at one
  // VM's properties whatever the inventory size (ceso-ls). `filters` trim
  // property values as they are parsed (ValueFilter).
  void for_each_vm(const std::vector<std::string>& paths,
                   const std::function<void(ObjectContent&&)>& fn,
                   const std::vector<ValueFilter>& filters = {});
  // One RetrievePropertiesEx (and its pages) with the caller's own
  // <specSet>…</specSet> (traversals over several object types): each object
  // handed to `fn` as it arrives.
  void for_each_object(const std::string& spec_xml,
                       const std::function<void(ObjectContent&&)>& fn) {
    stream_spec(spec_xml, fn);
  }
  // Properties of the given objects (all of one type). Objects that no longer
  // exist are left out of the result. `filters` trim property values as they
  // are parsed (ValueFilter).
  std::vector<ObjectContent> retrieve(const std::vector<MoRef>& objs,
                                      const std::vector<std::string>& paths,
                                      const std::vector<ValueFilter>& filters = {});

  // Wait for a Task to finish; returns the task's info.result node (may be
  // empty). A task error becomes a Fault carrying the task's fault type.
  // `progress` gets 0..100 when the host reports it.
  xml::Node wait_for_task(const MoRef& task, const std::function<void(int)>& progress = nullptr);

  // Whether the host's licence makes the API read-only: a standalone host
  // whose LicenseManager lists only the free edition ("esxBasic", the
  // vSphere Hypervisor; docs/esxi.md). Read once per session (one
  // RetrievePropertiesEx) and kept in the session cache, so the tools of a
  // pipeline pay it once; vCenter answers false without a call.
  bool api_writes_restricted();

  Http& http() { return *http_; }

 private:
  Endpoint endpoint_;
  std::unique_ptr<Http> http_;
  std::unique_ptr<SessionCache> cache_;
  ServiceContent content_;
  bool connected_ = false;
  std::string soap_action_ = "urn:vim25/6.7";
  std::string vm_view_;
  std::string license_;  // license_editions() as cached, "" = not read yet

  xml::Node raw_call(std::string_view method, const MoRef& self, std::string_view args = {},
                     const Split* split = nullptr);
  xml::Node call_impl(std::string_view method, const MoRef& self, std::string_view args,
                      const Split* split);
  void connect();
  bool adopt_cached(const std::string* stale_cookie);
  void login(const std::string& stale_cookie);
  std::string create_vm_view();
  std::vector<ObjectContent> retrieve_spec(const std::string& spec_xml,
                                           const std::vector<ValueFilter>& filters = {});
  void stream_spec(const std::string& spec_xml, const std::function<void(ObjectContent&&)>& fn,
                   const std::vector<ValueFilter>& filters = {});
  std::string vm_spec(const std::vector<std::string>& paths) const;
};

// Whether a licence edition list ("esxBasic", comma-separated editionKeys)
// is the free one: every edition is esxBasic* (a host shows one licence).
// Exposed for tests.
bool free_license_editions(std::string_view editions);

// The `ha-datacenter` style path for datastore file URLs on this endpoint.
std::string datastore_file_url(const Endpoint& ep, const std::string& datacenter,
                               const std::string& datastore, const std::string& path);

}  // namespace ceso::vim
