// A small XML tree built with expat, for SOAP responses, and XML escaping for
// requests. Namespace prefixes are dropped from element and attribute names
// ("soapenv:Body" → "Body", "xsi:type" → "type") because vSphere responses
// use one vocabulary and prefixes vary between servers.
#pragma once

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

// Escape text for element content or attribute values. Throws ceso::Error
// (bad_input) for characters XML 1.0 cannot carry (most C0 controls).
std::string escape(std::string_view text);

}  // namespace ceso::xml
