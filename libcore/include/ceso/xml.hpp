// A small XML tree built with expat, for SOAP responses, and XML escaping for
// requests. Namespace prefixes are dropped from element and attribute names
// ("soapenv:Body" → "Body", "xsi:type" → "type") because vSphere responses
// use one vocabulary and prefixes vary between servers.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ceso::xml {

struct Node {
  std::string name;  // local name
  std::vector<std::pair<std::string, std::string>> attrs;  // local names
  std::string text;  // character data directly inside this element
  std::vector<Node> children;

  // First child with this local name, or nullptr.
  const Node* child(std::string_view name) const;
  // All children with this local name.
  std::vector<const Node*> all(std::string_view name) const;
  // Text of the first child with this name ("" if absent).
  std::string child_text(std::string_view name) const;
  // Follow a path of child names: "config/hardware/numCPU".
  const Node* find(std::string_view path) const;
  std::string find_text(std::string_view path) const;
  // Attribute by local name ("" if absent).
  std::string attr(std::string_view name) const;
  // xsi:type with any prefix removed ("xsd:string" → "string").
  std::string type() const;
};

// Parse a document. Throws ceso::Error naming the line of a syntax error.
Node parse(std::string_view document);

// Incremental parsing for large responses: feed chunks as they arrive.
// Elements named `split` whose parent is named `split_parent` are handed to
// `on_split` as soon as they close and are not kept, so a 2,000-VM property
// retrieval never holds more than one object's tree.
class StreamParser {
 public:
  StreamParser(std::string split_parent, std::string split, std::function<void(Node&&)> on_split);
  ~StreamParser();
  StreamParser(const StreamParser&) = delete;
  StreamParser& operator=(const StreamParser&) = delete;

  void feed(std::string_view chunk);  // throws ceso::Error on malformed XML
  Node finish();                      // the document without the split elements

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Escape text for element content or attribute values. Throws ceso::Error
// (bad_input) for characters XML 1.0 cannot carry (most C0 controls).
std::string escape(std::string_view text);

}  // namespace ceso::xml
