#include "vsphere/client.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "base/cancel.hpp"
#include "base/log.hpp"
#include "base/metrics.hpp"
#include "vsphere/session.hpp"

namespace ceso::vim {

namespace {

constexpr std::string_view kEnvelopeHead =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "
    "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" "
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>";
constexpr std::string_view kEnvelopeTail = "</soapenv:Body></soapenv:Envelope>";

// How each vSphere fault reads to a user, and the exit code it maps to.
struct FaultInfo {
  std::string_view type;
  Exit code;
  std::string_view explanation;  // added after the host's own message
};

const FaultInfo kFaults[] = {
    {"InvalidLogin", Exit::connection, "incorrect user name or password"},
    {"NotAuthenticated", Exit::connection, "the session is not logged in"},
    {"NoPermission", Exit::failure, "the user lacks the privilege for this operation"},
    {"RestrictedVersion", Exit::failure,
     "the host's license makes the vSphere API read-only (free ESXi / vSphere Hypervisor); "
     "use a licensed host, or do it over SSH on the host (vim-cmd, vmkfstools)"},
    {"NotSupported", Exit::failure,
     "the host does not support this operation (cloning and templates need vCenter; on a "
     "standalone ESXi host ceso copies disks instead)"},
    {"ManagedObjectNotFound", Exit::failure, "the object no longer exists"},
    {"InvalidPowerState", Exit::failure, "the VM is not in the power state this needs"},
    {"InvalidState", Exit::failure, "the object is not in a state that allows this"},
    {"DuplicateName", Exit::failure, "an object with that name already exists"},
    {"AlreadyExists", Exit::failure, "it already exists"},
    {"FileAlreadyExists", Exit::failure, "the file already exists"},
    {"FileNotFound", Exit::failure, "the file does not exist"},
    {"FileLocked", Exit::failure, "the file is locked (is a running VM using it?)"},
    {"CannotAccessFile", Exit::failure, "the file cannot be accessed"},
    {"FileFault", Exit::failure, "a datastore file operation failed"},
    {"InvalidDatastore", Exit::failure, "the datastore is not valid here"},
    {"InsufficientResourcesFault", Exit::failure, "the host lacks the resources"},
    {"InvalidArgument", Exit::failure, "the host rejected an argument"},
    {"InvalidRequest", Exit::failure, "the host rejected the request"},
    {"TaskInProgress", Exit::failure, "another task is running on the object"},
    {"ToolsUnavailable", Exit::failure, "VMware Tools is not running in the guest"},
    {"SnapshotFault", Exit::failure, "the snapshot operation failed"},
    {"RequestCanceled", Exit::failure, "the task was cancelled"},
    {"HostCommunication", Exit::connection, "the host cannot be reached"},
};

std::string strip_fault_suffix(std::string name) {
  if (name.size() > 5 && name.compare(name.size() - 5, 5, "Fault") == 0 &&
      name != "SnapshotFault" && name != "FileFault" && name != "InsufficientResourcesFault")
    name.resize(name.size() - 5);
  return name;
}

std::string property_paths_xml(const std::vector<std::string>& paths) {
  std::string out;
  for (const auto& p : paths) out += "<pathSet>" + xml::escape(p) + "</pathSet>";
  return out;
}

// The first part of the service content every tool needs that is missing
// ("" when complete). An answer without them is not a vSphere endpoint (or a
// broken one), and must not become a session that fails later in odd ways.
std::string missing_content(const ServiceContent& c) {
  if (c.api_type.empty()) return "about/apiType";
  if (c.api_version.empty()) return "about/apiVersion";
  if (c.root_folder.empty()) return "rootFolder";
  if (c.property_collector.empty()) return "propertyCollector";
  if (c.session_manager.empty()) return "sessionManager";
  if (c.view_manager.empty()) return "viewManager";
  return "";
}

ordered_json moref_json(const MoRef& r) { return ordered_json::array({r.type, r.value}); }
MoRef moref_from_json(const ordered_json& j) {
  if (!j.is_array() || j.size() != 2) return {};
  return {j[0].get<std::string>(), j[1].get<std::string>()};
}

ordered_json content_to_json(const ServiceContent& c) {
  return {{"api_type", c.api_type},
          {"api_version", c.api_version},
          {"full_name", c.full_name},
          {"instance_uuid", c.instance_uuid},
          {"root_folder", moref_json(c.root_folder)},
          {"property_collector", moref_json(c.property_collector)},
          {"view_manager", moref_json(c.view_manager)},
          {"session_manager", moref_json(c.session_manager)},
          {"file_manager", moref_json(c.file_manager)},
          {"virtual_disk_manager", moref_json(c.virtual_disk_manager)},
          {"search_index", moref_json(c.search_index)},
          {"license_manager", moref_json(c.license_manager)}};
}

std::optional<ServiceContent> content_from_json(const ordered_json& j) {
  try {
    ServiceContent c;
    c.api_type = j.at("api_type").get<std::string>();
    c.api_version = j.at("api_version").get<std::string>();
    c.full_name = j.value("full_name", "");
    c.instance_uuid = j.value("instance_uuid", "");
    c.root_folder = moref_from_json(j.at("root_folder"));
    c.property_collector = moref_from_json(j.at("property_collector"));
    c.view_manager = moref_from_json(j.at("view_manager"));
    c.session_manager = moref_from_json(j.at("session_manager"));
    c.file_manager = moref_from_json(j.at("file_manager"));
    c.virtual_disk_manager = moref_from_json(j.at("virtual_disk_manager"));
    c.search_index = moref_from_json(j.at("search_index"));
    c.license_manager = moref_from_json(j.at("license_manager"));
    if (!missing_content(c).empty()) return std::nullopt;
    return c;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string host_of(const Endpoint& ep) { return ep.id; }

}  // namespace

MoRef moref_of(const xml::Node& node) { return {node.attr("type"), node.text}; }

std::string prop_set_xml(std::string_view type, std::initializer_list<const char*> paths) {
  std::string s = "<propSet><type>" + xml::escape(type) + "</type>";
  for (const char* p : paths) s += "<pathSet>" + xml::escape(p) + "</pathSet>";
  return s + "</propSet>";
}

std::string traversal_xml(std::string_view name, std::string_view type, std::string_view path,
                          bool skip, std::initializer_list<const char*> next) {
  std::string s = "<selectSet xsi:type=\"TraversalSpec\"><name>" + xml::escape(name) +
                  "</name><type>" + xml::escape(type) + "</type><path>" + xml::escape(path) +
                  "</path><skip>" + (skip ? "true" : "false") + "</skip>";
  for (const char* n : next) s += "<selectSet><name>" + xml::escape(n) + "</name></selectSet>";
  return s + "</selectSet>";
}

MoRef task_of(const xml::Node& response) {
  const xml::Node* rv = response.child("returnval");
  if (!rv) fail("the host answered without a task");
  return moref_of(*rv);
}

std::string moref_xml(std::string_view element, const MoRef& ref) {
  std::string e(element);
  return "<" + e + " type=\"" + xml::escape(ref.type) + "\">" + xml::escape(ref.value) + "</" + e +
         ">";
}

FaultMeaning fault_meaning(std::string_view type) {
  for (const auto& f : kFaults)
    if (f.type == type) return {f.code, f.explanation};
  return {};
}

Fault fault_from_xml(const xml::Node& fault, std::string_view method_name,
                     const std::string& host) {
  // Everything below but our own explanations is the host's text.
  const std::string method = host_text(method_name);
  std::string host_message = fault.child_text("faultstring");
  std::string type;
  const xml::Node* detail_elem = nullptr;
  if (const xml::Node* detail = fault.child("detail"); detail && !detail->children.empty()) {
    detail_elem = &detail->children.front();
    type = detail_elem->type();
    if (type.empty()) type = strip_fault_suffix(detail_elem->name);
  }
  // A task's LocalizedMethodFault: <fault xsi:type="X"/> + localizedMessage.
  if (type.empty()) {
    if (const xml::Node* f = fault.child("fault")) {
      detail_elem = f;
      type = f->type();
    }
    if (host_message.empty()) host_message = fault.child_text("localizedMessage");
  }
  if (type.empty()) type = "SystemError";
  type = host_text(type, 100);
  const FaultMeaning meaning = fault_meaning(type);
  const Exit code = meaning.code;
  const std::string explanation(meaning.explanation);
  std::string msg = method + " on " + host + " failed: " + type;
  if (!host_message.empty()) msg += ": " + host_text(host_message);
  if (detail_elem) {
    // Name the file or property the host complains about, when it says.
    std::string file = detail_elem->child_text("file");
    std::string prop = detail_elem->child_text("invalidProperty");
    if (!file.empty() && host_message.find(file) == std::string::npos)
      msg += " (file " + quote(file) + ")";
    if (!prop.empty() && host_message.find(prop) == std::string::npos)
      msg += " (property " + quote(prop) + ")";
  }
  if (!explanation.empty()) msg += " — " + explanation;
  return Fault(msg, code, type, method);
}

ServiceContent service_content_from_xml(const xml::Node& rv) {
  ServiceContent c;
  c.api_type = rv.find_text("about/apiType");
  c.api_version = rv.find_text("about/apiVersion");
  c.full_name = rv.find_text("about/fullName");
  c.instance_uuid = rv.find_text("about/instanceUuid");
  auto ref = [&](std::string_view name) {
    const xml::Node* n = rv.child(name);
    return n ? moref_of(*n) : MoRef{};
  };
  c.root_folder = ref("rootFolder");
  c.property_collector = ref("propertyCollector");
  c.view_manager = ref("viewManager");
  c.session_manager = ref("sessionManager");
  c.file_manager = ref("fileManager");
  c.virtual_disk_manager = ref("virtualDiskManager");
  c.search_index = ref("searchIndex");
  c.license_manager = ref("licenseManager");
  if (std::string missing = missing_content(c); !missing.empty())
    throw Error("the service content has no " + missing + " (is this a vSphere SDK endpoint?)",
                Exit::connection);
  return c;
}

const xml::Node* ObjectContent::prop(std::string_view path) const {
  for (const auto& [name, val] : props)
    if (name == path) return &val;
  return nullptr;
}

std::string ObjectContent::text(std::string_view path) const {
  const xml::Node* n = prop(path);
  return n ? n->text : std::string();
}

std::optional<ObjectContent> object_from_xml(const xml::Node& o) {
  xml::Node copy = o;
  return object_from_xml(std::move(copy));
}

std::optional<ObjectContent> object_from_xml(xml::Node&& o) {
  const xml::Node* obj = o.child("obj");
  if (!obj) return std::nullopt;
  // An object that vanished between listing and retrieval comes back with
  // only a missingSet: leave it out.
  bool gone = false;
  for (const xml::Node* m : o.all("missingSet"))
    if (m->find("fault/fault") && m->find("fault/fault")->type() == "ManagedObjectNotFound")
      gone = true;
  if (gone && !o.child("propSet")) return std::nullopt;
  ObjectContent oc;
  oc.obj = moref_of(*obj);
  for (xml::Node& p : o.children) {
    if (p.name != "propSet") continue;
    xml::Node* val = nullptr;
    for (auto& c : p.children)
      if (c.name == "val") {
        val = &c;
        break;
      }
    if (val) oc.props.emplace_back(p.child_text("name"), std::move(*val));
  }
  return oc;
}

xml::KeepElement value_filter_keep(const std::vector<ValueFilter>& filters) {
  if (filters.empty()) return nullptr;
  return [filters](const std::vector<xml::Node*>& open, std::string_view name,
                   std::string_view xsi_type) {
    // The innermost <val> directly inside a <propSet> is the value; its
    // <name> came before it (DynamicProperty: name, val).
    for (size_t i = open.size(); i-- > 1;) {
      if (open[i]->name != "val" || open[i - 1]->name != "propSet") continue;
      const xml::Node* path = open[i - 1]->child("name");
      for (const auto& f : filters)
        if (path && path->text == f.path)
          return f.keep(open.size() - i, *open.back(), name, xsi_type);
      return true;
    }
    return true;
  };
}

Client::Client(Endpoint endpoint)
    : endpoint_(std::move(endpoint)),
      http_(std::make_unique<Http>(TlsSettings{endpoint_.insecure, endpoint_.thumbprint,
                                               endpoint_.thumbprint_sha1, endpoint_.ca_file},
                                   HttpLimits{endpoint_.idle_timeout_s, endpoint_.call_timeout_s,
                                              endpoint_.max_answer_bytes})),
      cache_(std::make_unique<SessionCache>(cache_dir(process_environment()) + "/sessions",
                                            endpoint_.id, endpoint_.user)) {}

Client::~Client() = default;

const ServiceContent& Client::content() {
  if (!connected_) connect();
  return content_;
}

xml::Node Client::raw_call(std::string_view method, const MoRef& self, std::string_view args,
                           const Split* split) {
  std::string body;
  body.reserve(kEnvelopeHead.size() + kEnvelopeTail.size() + args.size() + 256);
  body += kEnvelopeHead;
  body += "<";
  body += method;
  body += " xmlns=\"urn:vim25\">";
  body += moref_xml("_this", self);
  body += args;
  body += "</";
  body += method;
  body += ">";
  body += kEnvelopeTail;
  // Split elements are queued by the parser and handed on between chunks,
  // so the caller's function never runs inside expat's or curl's callbacks.
  std::vector<xml::Node> ready;
  std::unique_ptr<xml::StreamParser> parser;
  std::function<void(std::string_view)> stream;
  if (split) {
    parser = std::make_unique<xml::StreamParser>(
        split->parent, split->name, [&](xml::Node&& n) { ready.push_back(std::move(n)); },
        endpoint_.max_answer_bytes, split->keep, split->keep_within);
    stream = [&](std::string_view chunk) {
      parser->feed(chunk);
      for (auto& n : ready) split->fn(std::move(n));
      ready.clear();
    };
  }
  const std::string where = std::string(method) + " on " + host_of(endpoint_);
  HttpResponse resp;
  xml::Node doc;
  try {
    resp = http_->post_soap(endpoint_.url, body, soap_action_, split ? &stream : nullptr);
    metrics::record_soap_call(method, body.size(), resp.bytes_received);
    if (resp.status == 401 || resp.status == 403 || (resp.status != 200 && resp.status != 500)) {
      std::string msg = where + ": HTTP " + http_status_text(resp.status);
      if (std::string line = first_line(resp.body); !line.empty()) msg += ": " + line;
      msg += resp.status == 401 || resp.status == 403
                 ? " (not authorised)"
                 : " (is " + endpoint_.url + " a vSphere SDK endpoint?)";
      throw Error(msg, Exit::connection);
    }
    if (split && resp.status == 200) {
      doc = parser->finish();
      for (auto& n : ready) split->fn(std::move(n));
    } else {
      doc = xml::parse(resp.body);
    }
  } catch (const LimitExceeded& e) {
    throw LimitExceeded(where + ": " + e.what());
  }
  resp.body.clear();
  xml::Node* bodyn = nullptr;
  for (auto& c : doc.children)
    if (c.name == "Body") bodyn = &c;
  if (!bodyn || bodyn->children.empty())
    throw Error(where + ": response has no SOAP body", Exit::connection);
  xml::Node first = std::move(bodyn->children.front());  // moved, not copied
  if (first.name == "Fault") throw fault_from_xml(first, method, host_of(endpoint_));
  return first;
}

void Client::connect() {
  if (!adopt_cached(nullptr)) login("");
}

// Use the cached session unless it is missing, unreadable or (when given)
// the cookie the caller found expired.
bool Client::adopt_cached(const std::string* stale_cookie) {
  auto cached = cache_->load();
  if (!cached) return false;
  auto c = content_from_json(cached->content);
  if (!c || (stale_cookie && cached->cookie == *stale_cookie)) return false;
  content_ = *c;
  http_->set_cookie(cached->cookie);
  vm_view_ = cached->vm_view;
  license_ = cached->license;
  soap_action_ = "urn:vim25/" + content_.api_version;
  connected_ = true;
  return true;
}

// Log in under the cache lock. `stale_cookie` is the session the caller
// found expired: if another process already replaced it, use theirs.
void Client::login(const std::string& stale_cookie) {
  auto lock = cache_->lock();
  if (adopt_cached(&stale_cookie)) return;
  http_->set_cookie("");
  xml::Node resp = raw_call("RetrieveServiceContent", {"ServiceInstance", "ServiceInstance"});
  const xml::Node* rv = resp.child("returnval");
  if (!rv)
    throw Error("RetrieveServiceContent: empty answer from " + host_of(endpoint_),
                Exit::connection);
  try {
    content_ = service_content_from_xml(*rv);
  } catch (const Error& e) {
    throw Error("RetrieveServiceContent on " + host_of(endpoint_) + ": " + e.what(), e.code());
  }
  if (!content_.api_version.empty()) soap_action_ = "urn:vim25/" + content_.api_version;
  if (endpoint_.password.empty())
    throw Error("no password for " + quote(endpoint_.user) + " on " + host_of(endpoint_) +
                    ": set CESO_PASSWORD, CESO_PASSWORD_FILE or CESO_PASSWORD_COMMAND, or "
                    "password_file or password_command in the config",
                Exit::connection);
  try {
    raw_call("Login", content_.session_manager,
             "<userName>" + xml::escape(endpoint_.user) + "</userName><password>" +
                 xml::escape(endpoint_.password) + "</password>");
  } catch (const Fault& f) {
    if (f.fault_type() == "InvalidLogin")
      throw Error("cannot log in to " + host_of(endpoint_) + " as " + quote(endpoint_.user) +
                      ": incorrect user name or password",
                  Exit::connection);
    throw;
  }
  if (http_->cookie().empty())
    throw Error("Login on " + host_of(endpoint_) + " returned no session cookie", Exit::connection);
  vm_view_.clear();
  license_.clear();
  connected_ = true;
  cache_->save({http_->cookie(), content_to_json(content_), vm_view_, ""});
}

xml::Node Client::call(std::string_view method, const MoRef& self, std::string_view args) {
  return call_impl(method, self, args, nullptr);
}

xml::Node Client::call(std::string_view method, const MoRef& self, std::string_view args,
                       const Split& split) {
  return call_impl(method, self, args, &split);
}

xml::Node Client::call_impl(std::string_view method, const MoRef& self, std::string_view args,
                            const Split* split) {
  if (!connected_) connect();
  try {
    return raw_call(method, self, args, split);
  } catch (const Fault& f) {
    // A fault is an HTTP 500 answer: no split element reached the caller.
    if (f.fault_type() != "NotAuthenticated") throw;
  }
  // The cached session expired (or the host restarted): log in again once.
  login(http_->cookie());
  return raw_call(method, self, args, split);
}

bool free_license_editions(std::string_view editions) {
  if (editions.empty()) return false;
  size_t start = 0;
  for (;;) {
    size_t comma = editions.find(',', start);
    std::string_view e =
        editions.substr(start, comma == std::string_view::npos ? comma : comma - start);
    if (e.rfind("esxBasic", 0) != 0) return false;
    if (comma == std::string_view::npos) return true;
    start = comma + 1;
  }
}

bool Client::api_writes_restricted() {
  if (content().is_vcenter()) return false;
  if (license_.empty()) {
    std::string editions;
    if (!content_.license_manager.empty()) {
      auto objs = retrieve({content_.license_manager}, {"licenses"});
      if (!objs.empty())
        if (const xml::Node* val = objs.front().prop("licenses"))
          for (const xml::Node* l : val->all("LicenseManagerLicenseInfo"))
            editions += (editions.empty() ? "" : ",") + l->child_text("editionKey");
    }
    // "-": read, no licence listed (not free: writes are tried over the API).
    license_ = editions.empty() ? "-" : editions;
    auto lock = cache_->lock();
    if (auto cached = cache_->load(); cached && cached->cookie == http_->cookie()) {
      cached->license = license_;
      cache_->save(*cached);
    }
  }
  return free_license_editions(license_);
}

std::string Client::create_vm_view() {
  xml::Node resp = call("CreateContainerView", content().view_manager,
                        moref_xml("container", content_.root_folder) +
                            "<type>VirtualMachine</type><recursive>true</recursive>");
  std::string view = resp.child_text("returnval");
  if (view.empty()) throw Error("CreateContainerView returned no view");
  auto lock = cache_->lock();
  if (auto cached = cache_->load(); cached && cached->cookie == http_->cookie()) {
    cached->vm_view = view;
    cache_->save(*cached);
  }
  return view;
}

void Client::stream_spec(const std::string& spec_xml,
                         const std::function<void(ObjectContent&&)>& fn,
                         const std::vector<ValueFilter>& filters) {
  const MoRef pc = content().property_collector;
  Split split{"returnval",
              "objects",
              [&](xml::Node&& o) {
                if (auto oc = object_from_xml(std::move(o))) fn(std::move(*oc));
              },
              value_filter_keep(filters),
              {"propSet", "val"}};
  xml::Node resp = call("RetrievePropertiesEx", pc, spec_xml + "<options></options>", split);
  std::string token = resp.find_text("returnval/token");
  while (!token.empty()) {
    throw_if_interrupted();
    xml::Node more = call("ContinueRetrievePropertiesEx", pc,
                          "<token>" + xml::escape(token) + "</token>", split);
    token = more.find_text("returnval/token");
  }
}

std::vector<ObjectContent> Client::retrieve_spec(const std::string& spec_xml,
                                                 const std::vector<ValueFilter>& filters) {
  std::vector<ObjectContent> all;
  stream_spec(
      spec_xml, [&](ObjectContent&& oc) { all.push_back(std::move(oc)); }, filters);
  return all;
}

std::string Client::vm_spec(const std::vector<std::string>& paths) const {
  return "<specSet><propSet><type>VirtualMachine</type>" + property_paths_xml(paths) +
         "</propSet><objectSet>" + moref_xml("obj", {"ContainerView", vm_view_}) +
         "<skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><name>view</name>"
         "<type>ContainerView</type><path>view</path><skip>false</skip></selectSet>"
         "</objectSet></specSet>";
}

void Client::for_each_vm(const std::vector<std::string>& paths,
                         const std::function<void(ObjectContent&&)>& fn,
                         const std::vector<ValueFilter>& filters) {
  content();
  if (vm_view_.empty()) vm_view_ = create_vm_view();
  try {
    stream_spec(vm_spec(paths), fn, filters);
    return;
  } catch (const Fault& f) {
    if (f.fault_type() != "ManagedObjectNotFound") throw;  // (before any object arrived)
  }
  // The cached view is gone (another session's, or destroyed): make a new one.
  vm_view_ = create_vm_view();
  stream_spec(vm_spec(paths), fn, filters);
}

std::vector<ObjectContent> Client::retrieve_all_vms(const std::vector<std::string>& paths) {
  std::vector<ObjectContent> all;
  for_each_vm(paths, [&](ObjectContent&& oc) { all.push_back(std::move(oc)); });
  return all;
}

std::vector<ObjectContent> Client::retrieve(const std::vector<MoRef>& objs,
                                            const std::vector<std::string>& paths,
                                            const std::vector<ValueFilter>& filters) {
  if (objs.empty()) return {};
  std::string spec = "<specSet><propSet><type>" + xml::escape(objs.front().type) + "</type>" +
                     property_paths_xml(paths) + "</propSet>";
  for (const auto& o : objs) spec += "<objectSet>" + moref_xml("obj", o) + "</objectSet>";
  spec += "<reportMissingObjectsInResults>true</reportMissingObjectsInResults></specSet>";
  try {
    return retrieve_spec(spec, filters);
  } catch (const Fault& f) {
    // Servers without reportMissingObjectsInResults fail the whole call.
    if (f.fault_type() != "ManagedObjectNotFound") throw;
    if (objs.size() == 1) return {};
  }
  std::vector<ObjectContent> out;
  for (const auto& o : objs) {
    auto one = retrieve({o}, paths, filters);
    std::move(one.begin(), one.end(), std::back_inserter(out));
  }
  return out;
}

xml::Node Client::wait_for_task(const MoRef& task, const std::function<void(int)>& progress) {
  auto delay = std::chrono::milliseconds(20);
  bool cancel_asked = false;
  for (;;) {
    auto objs = retrieve({task}, {"info"});
    if (objs.empty())
      throw Error("task " + quote(task.value) + " disappeared on " + host_of(endpoint_));
    const xml::Node* info = objs.front().prop("info");
    std::string state = info ? info->child_text("state") : "";
    if (state == "success") {
      const xml::Node* result = info->child("result");
      return result ? *result : xml::Node{};
    }
    if (state == "error") {
      if (cancel_asked) throw Error("interrupted", Exit::interrupted);
      const xml::Node* err = info->child("error");
      std::string method = info->child_text("descriptionId");
      if (method.empty()) method = info->child_text("name");
      if (!err) throw Error(host_text(method) + " failed on " + host_of(endpoint_));
      throw fault_from_xml(*err, method, host_of(endpoint_));
    }
    if (progress && info) {
      std::string p = info->child_text("progress");
      if (!p.empty()) progress(std::atoi(p.c_str()));
    }
    if (interrupted() && !cancel_asked) {
      // Ask the host to cancel, then wait for the task to end either way: a
      // task that completes anyway returns its result, so the caller knows
      // what to undo (its next step sees the interruption).
      cancel_asked = true;
      try {
        call("CancelTask", task);
      } catch (const Error&) {
        // Not cancelable (most are not): it finishes on its own.
      }
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(1000));
  }
}

std::string datastore_file_url(const Endpoint& ep, const std::string& datacenter,
                               const std::string& datastore, const std::string& path) {
  auto esc = [](const std::string& s) {
    char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
    std::string out = e ? e : "";
    curl_free(e);
    return out;
  };
  std::string base = ep.url.substr(0, ep.url.rfind("/sdk"));
  std::string p;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string seg =
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!p.empty() || start > 0) p += '/';
    p += esc(seg);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return base + "/folder/" + p + "?dcPath=" + esc(datacenter) + "&dsName=" + esc(datastore);
}

}  // namespace ceso::vim
