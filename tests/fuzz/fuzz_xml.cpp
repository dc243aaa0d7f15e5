// The XML layer (xml.hpp) every SOAP answer goes through: whole-document
// parsing, the streaming parser fed in arbitrary chunks, navigation, escaping.
#include <optional>

#include "base/xml.hpp"
#include "fuzz.hpp"

namespace {

void walk(const ceso::xml::Node& n, int depth) {
  (void)n.type();
  (void)n.attr("type");
  (void)n.child_text("name");
  (void)n.find_text("a/b/c");
  if (depth > 64) return;
  for (const auto& c : n.children) walk(c, depth + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ceso;
  std::string_view text = ceso_fuzz::as_text(data, size);
  bool whole_ok = false;
  ceso_fuzz::expect_ok_or_error([&] {
    xml::Node doc = xml::parse(text);
    whole_ok = true;
    walk(doc, 0);
  });
  // The same bytes streamed in chunks whose size comes from the first byte,
  // splitting out <objects> under <returnval> as the PropertyCollector does.
  size_t chunk = size ? 1 + data[0] % 61 : 1;
  size_t split = 0;
  bool stream_ok = false;
  ceso_fuzz::expect_ok_or_error([&] {
    xml::StreamParser p("returnval", "objects", [&](xml::Node&& n) {
      ++split;
      walk(n, 0);
    });
    for (size_t off = 0; off < size; off += chunk) p.feed(text.substr(off, chunk));
    xml::Node rest = p.finish();
    stream_ok = true;
    walk(rest, 0);
  });
  // Chunking must not change the verdict on a document.
  CESO_FUZZ_CHECK(whole_ok == stream_ok, "whole and streamed parsing agree on validity");
  // With a KeepElement the skimmer drops refused elements before expat (only
  // their balance checked): it may accept more, never refuse a document
  // expat accepts whole.
  bool skim_ok = false;
  ceso_fuzz::expect_ok_or_error([&] {
    auto keep = [](const std::vector<xml::Node*>& open, std::string_view name,
                   std::string_view type) {
      return open.size() < 3 || ((name.empty() || name[0] != 'd') && type != "D");
    };
    xml::StreamParser p(
        "returnval", "objects", [&](xml::Node&& n) { walk(n, 0); }, 0, keep,
        size % 2 ? xml::KeepScope{} : xml::KeepScope{"propSet", "val"});
    for (size_t off = 0; off < size; off += chunk) p.feed(text.substr(off, chunk));
    walk(p.finish(), 0);
    skim_ok = true;
  });
  CESO_FUZZ_CHECK(!whole_ok || skim_ok, "the skimmer accepts what expat accepts");
  // Keeping everything, the skimmer (which reads plain start-tag attributes
  // itself) builds the tree expat builds and refuses what expat refuses.
  {
    auto tree_text = [](const xml::Node& n) -> std::optional<std::string> {
      try {
        return xml::serialize(n);
      } catch (const Error&) {
        return std::nullopt;  // a control character in text: compared as such
      }
    };
    std::optional<std::optional<std::string>> whole, skimmed;
    try {
      whole = tree_text(xml::parse(text));
    } catch (const Error&) {
    }
    try {
      auto keep_all = [](const std::vector<xml::Node*>&, std::string_view, std::string_view) {
        return true;
      };
      xml::StreamParser p("", "", nullptr, 0, keep_all,
                          size % 2 ? xml::KeepScope{} : xml::KeepScope{"propSet", "val"});
      for (size_t off = 0; off < size; off += chunk) p.feed(text.substr(off, chunk));
      skimmed = tree_text(p.finish());
    } catch (const Error&) {
    }
    CESO_FUZZ_CHECK(whole == skimmed, "keeping everything, the skimmer builds expat's tree");
  }
  // What escape() accepts must reach the host as the same text, in element
  // content and in attribute values (check name: "escape").
  static const bool check_escape = ceso_fuzz::checked("escape");
  std::string escaped;
  try {
    escaped = xml::escape(text);
  } catch (const Error& e) {
    ceso_fuzz::check_message(e);
    return 0;
  }
  if (!check_escape) return 0;
  xml::Node n;
  try {
    n = xml::parse("<a x=\"" + escaped + "\">" + escaped + "</a>");
  } catch (const Error& e) {
    std::fprintf(stderr, "escape() output is not well-formed XML: %s\n", e.what());
    CESO_FUZZ_CHECK(false, "escaped text parses");
  }
  CESO_FUZZ_CHECK(n.text == text, "escaped text reads back unchanged");
  CESO_FUZZ_CHECK(n.attr("x") == text, "escaped attribute reads back unchanged");
  return 0;
}
