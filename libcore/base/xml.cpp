#include "base/xml.hpp"

#include <expat.h>

#include <cstdio>

#include "base/error.hpp"

namespace ceso::xml {

namespace {

std::string_view local_name(std::string_view qname) {
  size_t colon = qname.rfind(':');
  return colon == std::string_view::npos ? qname : qname.substr(colon + 1);
}

struct Builder {
  Node root;
  std::vector<Node*> stack;  // root (not an element) and the open elements
  // Streaming: children named `split` of an element named `split_parent`
  // go to on_split when they close.
  std::string split_parent, split;
  std::function<void(Node&&)> on_split;
  XML_Parser parser = nullptr;
  bool too_deep = false;    // stopped: an element deeper than kMaxDepth
  uint64_t split_mark = 0;  // input offset where the last split element closed
  KeepElement keep;         // null: build every element
  size_t skipping = 0;      // > 0: inside a refused element, this many levels deep

  // Keep whitespace-only text out of structural nodes but keep it in leaves
  // (a VM annotation may be just spaces); decided when the element closes.
  static void start(void* data, const XML_Char* name, const XML_Char** atts) {
    auto* b = static_cast<Builder*>(data);
    if (b->too_deep) return;
    if (b->stack.size() + b->skipping > kMaxDepth) {  // this element would be level kMaxDepth + 1
      b->too_deep = true;
      XML_StopParser(b->parser, XML_FALSE);
      return;
    }
    if (b->skipping) {
      ++b->skipping;
      return;
    }
    if (b->keep) {
      std::string_view xsi_type;
      for (size_t i = 0; atts[i]; i += 2) {
        std::string_view q = atts[i];
        if (local_name(q) == "type" && local_name(q).size() != q.size())
          xsi_type = local_name(atts[i + 1]);
      }
      if (!b->keep(b->stack, local_name(name), xsi_type)) {
        // Inside a refused element expat only checks the markup: no text
        // is handed over until it closes.
        b->skipping = 1;
        XML_SetCharacterDataHandler(b->parser, nullptr);
        return;
      }
    }
    Node* parent = b->stack.back();
    parent->children.emplace_back();
    Node& n = parent->children.back();
    n.name = std::string(local_name(name));
    // xsi:type is kept apart from a plain `type` attribute: a moref inside
    // a task result carries both (xsi:type="ManagedObjectReference"
    // type="VirtualMachineSnapshot").
    for (size_t i = 0; atts[i]; i += 2) {
      std::string_view q = atts[i];
      std::string_view local = local_name(q);
      std::string key =
          (local == "type" && local.size() != q.size()) ? "xsi:type" : std::string(local);
      n.attrs.emplace_back(std::move(key), std::string(atts[i + 1]));
    }
    b->stack.push_back(&n);
  }
  static void end(void* data, const XML_Char*) {
    auto* b = static_cast<Builder*>(data);
    if (b->too_deep) return;
    if (b->skipping) {
      if (--b->skipping == 0) XML_SetCharacterDataHandler(b->parser, chars);
      return;
    }
    Node* n = b->stack.back();
    if (!n->children.empty() && n->text.find_first_not_of(" \t\r\n") == std::string::npos)
      n->text.clear();
    b->stack.pop_back();
    Node* parent = b->stack.back();
    if (b->on_split && n->name == b->split && parent->name == b->split_parent) {
      b->on_split(std::move(*n));
      parent->children.pop_back();  // n is always the last child while it is open
      b->split_mark = static_cast<uint64_t>(XML_GetCurrentByteIndex(b->parser));
    }
  }
  static void chars(void* data, const XML_Char* s, int len) {
    auto* b = static_cast<Builder*>(data);
    if (b->too_deep || b->skipping) return;
    b->stack.back()->text.append(s, static_cast<size_t>(len));
  }
};

}  // namespace

struct StreamParser::Impl {
  Builder builder;
  std::unique_ptr<XML_ParserStruct, decltype(&XML_ParserFree)> parser{XML_ParserCreate("UTF-8"),
                                                                      XML_ParserFree};
  uint64_t fed = 0;       // bytes fed so far
  uint64_t max_held = 0;  // 0: no limit
  void check(int status) {
    if (builder.too_deep)
      throw LimitExceeded("host answer nested deeper than " + std::to_string(kMaxDepth) +
                          " levels");
    if (status == XML_STATUS_ERROR)
      throw Error("malformed XML from the server (line " +
                  std::to_string(XML_GetCurrentLineNumber(parser.get())) +
                  "): " + XML_ErrorString(XML_GetErrorCode(parser.get())));
  }
};

StreamParser::StreamParser(std::string split_parent, std::string split,
                           std::function<void(Node&&)> on_split, uint64_t max_held,
                           KeepElement keep)
    : impl_(std::make_unique<Impl>()) {
  if (!impl_->parser) throw Error("out of memory creating the XML parser");
  impl_->max_held = max_held;
  Builder& b = impl_->builder;
  b.parser = impl_->parser.get();
  b.stack.push_back(&b.root);
  b.split_parent = std::move(split_parent);
  b.split = std::move(split);
  b.on_split = std::move(on_split);
  b.keep = std::move(keep);
  XML_SetUserData(impl_->parser.get(), &b);
  XML_SetElementHandler(impl_->parser.get(), Builder::start, Builder::end);
  XML_SetCharacterDataHandler(impl_->parser.get(), Builder::chars);
}

StreamParser::~StreamParser() = default;

void StreamParser::feed(std::string_view chunk) {
  impl_->fed += chunk.size();
  impl_->check(XML_Parse(impl_->parser.get(), chunk.data(), static_cast<int>(chunk.size()), 0));
  // Split elements are handed on; what is left since the last one is held.
  if (impl_->max_held && impl_->fed - impl_->builder.split_mark > impl_->max_held)
    throw LimitExceeded("host answer larger than " + size_text(impl_->max_held));
}

Node StreamParser::finish() {
  impl_->check(XML_Parse(impl_->parser.get(), "", 0, 1));
  Node& root = impl_->builder.root;
  if (root.children.size() != 1) throw Error("malformed XML from the server: no root element");
  return std::move(root.children.front());
}

Node::Node(const Node& other) : name(other.name), attrs(other.attrs), text(other.text) {
  // Level by level: each copied node's children are filled in completely
  // (so their addresses are final) before they are queued.
  std::vector<std::pair<const Node*, Node*>> todo{{&other, this}};
  while (!todo.empty()) {
    auto [from, to] = todo.back();
    todo.pop_back();
    to->children.reserve(from->children.size());
    for (const Node& c : from->children) {
      Node& copy = to->children.emplace_back();
      copy.name = c.name;
      copy.attrs = c.attrs;
      copy.text = c.text;
    }
    for (size_t i = 0; i < from->children.size(); ++i)
      todo.emplace_back(&from->children[i], &to->children[i]);
  }
}

Node& Node::operator=(const Node& other) {
  if (this != &other) *this = Node(other);
  return *this;
}

Node::~Node() {
  // The children's subtrees are moved into one flat list and taken apart
  // there, so each destructor call sees a node without children.
  if (children.empty()) return;
  std::vector<Node> pending = std::move(children);
  while (!pending.empty()) {
    Node n = std::move(pending.back());
    pending.pop_back();
    for (Node& c : n.children) pending.push_back(std::move(c));
    n.children.clear();  // moved-from shells: no children left
  }
}

const Node* Node::child(std::string_view n) const {
  for (const auto& c : children)
    if (c.name == n) return &c;
  return nullptr;
}

std::vector<const Node*> Node::all(std::string_view n) const {
  std::vector<const Node*> out;
  for (const auto& c : children)
    if (c.name == n) out.push_back(&c);
  return out;
}

std::string Node::child_text(std::string_view n) const {
  const Node* c = child(n);
  return c ? c->text : std::string();
}

const Node* Node::find(std::string_view path) const {
  const Node* cur = this;
  while (cur && !path.empty()) {
    size_t slash = path.find('/');
    cur = cur->child(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
  }
  return cur;
}

std::string Node::find_text(std::string_view path) const {
  const Node* n = find(path);
  return n ? n->text : std::string();
}

std::string Node::attr(std::string_view n) const {
  for (const auto& [k, v] : attrs)
    if (k == n) return v;
  return {};
}

std::string Node::type() const { return std::string(local_name(attr("xsi:type"))); }

Node parse(std::string_view document) {
  StreamParser p("", "", nullptr);
  constexpr size_t kChunk = 1 << 20;  // XML_Parse takes an int length
  for (size_t at = 0; at < document.size(); at += kChunk) p.feed(document.substr(at, kChunk));
  return p.finish();
}

std::string serialize(const Node& node, std::string_view root_attrs) {
  std::string out;
  // Each entry: a node to open, or (close) the end tag of one already opened.
  struct Step {
    const Node* node;
    bool close;
  };
  std::vector<Step> todo{{&node, false}};
  while (!todo.empty()) {
    Step s = todo.back();
    todo.pop_back();
    const Node& n = *s.node;
    if (s.close) {
      out += "</" + n.name + ">";
      continue;
    }
    out += "<" + n.name;
    if (&n == &node && !root_attrs.empty()) out += " " + std::string(root_attrs);
    for (const auto& [k, v] : n.attrs) out += " " + k + "=\"" + escape(v) + "\"";
    out += ">" + escape(n.text);
    todo.push_back({&n, true});
    for (auto c = n.children.rbegin(); c != n.children.rend(); ++c) todo.push_back({&*c, false});
  }
  return out;
}

std::string tag(std::string_view name, std::string_view text) {
  std::string n(name);
  return "<" + n + ">" + escape(text) + "</" + n + ">";
}

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (unsigned char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      // As character references, so they survive in attribute values too
      // (a parser normalises a raw tab or newline there to a space).
      case '\t':
        out += "&#9;";
        break;
      case '\n':
        out += "&#10;";
        break;
      case '\r':
        out += "&#13;";
        break;  // a raw CR would be normalized away
      default:
        if (c < 0x20) {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", c);
          bad_input(std::string("text contains a control character (") + hex +
                    ") that XML cannot carry");
        }
        out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace ceso::xml
