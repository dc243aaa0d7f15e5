// A small XML tree built with expat, for SOAP responses, and XML escaping for
// requests. Namespace prefixes are dropped from element and attribute names
// ("soapenv:Body" → "Body", "xsi:type" → "type") because vSphere responses
// use one vocabulary and prefixes vary between servers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ceso::xml {

// The deepest element a parsed document may have (the root is level 1);
// deeper input is refused with LimitExceeded ("host answer nested deeper than
// 512 levels"). Real vSphere answers are shallow: the deepest are snapshot
// trees (ESXi allows 32 snapshots in a chain: about 45 levels with the SOAP
// envelope) and a disk's backing.parent chain (at most 255 links: about 265
// levels). 512 leaves about twice the deepest real answer.
inline constexpr size_t kMaxDepth = 512;

// Copying, destroying and serialising a Node never recurse (a tree may be
// kMaxDepth deep, and trees built in code may be deeper): they walk the tree
// with an explicit stack.
struct Node {
  std::string name;                                        // local name
  std::vector<std::pair<std::string, std::string>> attrs;  // local names
  std::string text;  // character data directly inside this element
  std::vector<Node> children;

  Node() = default;
  Node(const Node& other);
  Node(Node&&) noexcept = default;
  Node& operator=(const Node& other);
  Node& operator=(Node&&) noexcept = default;
  ~Node();

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

// Parse a document. Throws ceso::Error naming the line of a syntax error,
// LimitExceeded for an element deeper than kMaxDepth.
Node parse(std::string_view document);

// The element as XML text: names and attribute keys as stored, text and
// attribute values escaped; `root_attrs` (e.g. namespace declarations) is
// added verbatim to the outermost start tag. Throws like escape().
std::string serialize(const Node& node, std::string_view root_attrs = {});

// Asked as each element opens whether it is built into the tree: `open` are
// the elements around it (open.front() is the document node, open.back() its
// parent), `name` its local name, `xsi_type` its xsi:type without prefix ("" if
// none). A refused element and everything inside it are still checked for
// well-formedness and depth, but nothing of them is stored or allocated.
using KeepElement = std::function<bool(const std::vector<Node*>& open, std::string_view name,
                                       std::string_view xsi_type)>;
// Where a KeepElement may refuse: only inside elements named `name` whose
// parent is named `parent` (both empty: anywhere). Outside them every
// element is built without asking, which spares the parser a stop at each.
struct KeepScope {
  std::string parent, name;
};

// Incremental parsing for large responses: feed chunks as they arrive.
// Elements named `split` whose parent is named `split_parent` are handed to
// `on_split` as soon as they close and are not kept, so a 2,000-VM property
// retrieval never holds more than one object's tree. With `max_held` > 0, the
// bytes fed since the last split element closed (what the parser holds) may
// not exceed it: LimitExceeded ("host answer larger than 64 MiB"). With
// `keep`, only the elements it accepts are built (see KeepElement), asked
// within `keep_within` only (KeepScope); a refused element is dropped before
// expat tokenises it (its markup is only scanned for balance, see xml.cpp).
class StreamParser {
 public:
  StreamParser(std::string split_parent, std::string split, std::function<void(Node&&)> on_split,
               uint64_t max_held = 0, KeepElement keep = nullptr, KeepScope keep_within = {});
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
// (bad_input) for text XML 1.0 cannot carry: most C0 controls, U+FFFE and
// U+FFFF, and bytes that are not UTF-8 (naming the byte and where it is).
std::string escape(std::string_view text);

// <name>escaped text</name>: a simple element of a request.
std::string tag(std::string_view name, std::string_view text);

}  // namespace ceso::xml
