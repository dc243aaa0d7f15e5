// A SOAP answer from a hostile or broken host, taken the way vim::Client
// takes it (vsphere/client.cpp raw_call, wait_for_task): parse, find Body, turn a Fault
// into a ceso::Error; otherwise read service content and PropertyCollector
// objects, and a task's error into a Fault. Both the whole-document path
// (fault answers) and the streaming path (RetrievePropertiesEx) run.
#include "base/xml.hpp"
#include "fuzz.hpp"
#include "vsphere/client.hpp"

namespace {

using namespace ceso;

const std::string kHost = "esxi1.lab:443";

void check_fault(const vim::Fault& f) {
  ceso_fuzz::check_message(f);
  int code = static_cast<int>(f.code());
  CESO_FUZZ_CHECK(code >= 1 && code <= 6, "a fault maps to a documented failure exit code");
  CESO_FUZZ_CHECK(!f.fault_type().empty(), "a fault has a type");
}

void read_object(const vim::ObjectContent& oc) {
  (void)oc.text("name");
  (void)oc.text("config.files.vmPathName");
  // A task's info (wait_for_task): an error state becomes a Fault.
  if (const xml::Node* info = oc.prop("info")) {
    (void)info->child_text("progress");
    if (info->child_text("state") == "error")
      if (const xml::Node* err = info->child("error"))
        check_fault(vim::fault_from_xml(*err, info->child_text("descriptionId"), kHost));
  }
}

void read_answer(const xml::Node& doc) {
  const xml::Node* body = doc.child("Body");
  if (!body || body->children.empty()) return;  // raw_call: "response has no SOAP body"
  const xml::Node& first = body->children.front();
  if (first.name == "Fault") {
    check_fault(vim::fault_from_xml(first, "RetrievePropertiesEx", kHost));
    return;
  }
  const xml::Node* rv = first.child("returnval");
  if (!rv) return;
  vim::ServiceContent sc = vim::service_content_from_xml(*rv);
  (void)sc.is_vcenter();
  for (const xml::Node* o : rv->all("objects"))
    if (auto oc = vim::object_from_xml(*o)) read_object(*oc);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = ceso_fuzz::as_text(data, size);
  ceso_fuzz::expect_ok_or_error([&] { read_answer(xml::parse(text)); });
  // The streamed PropertyCollector answer, fed in chunks as curl would.
  ceso_fuzz::expect_ok_or_error([&] {
    xml::StreamParser p("returnval", "objects", [&](xml::Node&& n) {
      if (auto oc = vim::object_from_xml(n)) read_object(*oc);
    });
    size_t chunk = size ? 1 + data[size - 1] % 509 : 1;
    for (size_t off = 0; off < size; off += chunk) p.feed(text.substr(off, chunk));
    read_answer(p.finish());
  });
  return 0;
}
