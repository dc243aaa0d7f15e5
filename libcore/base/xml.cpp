#include "base/xml.hpp"

#include <expat.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <optional>
#include <tuple>
#include <utility>

#include "base/error.hpp"
#include "base/util.hpp"

namespace ceso::xml {

namespace {

std::string_view local_name(std::string_view qname) {
  const void* colon = qname.empty() ? nullptr : ::memrchr(qname.data(), ':', qname.size());
  if (!colon) return qname;
  size_t after = static_cast<size_t>(static_cast<const char*>(colon) - qname.data()) + 1;
  return qname.substr(after);
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
  uint64_t dropped = 0;     // input bytes the skimmer kept from expat so far
  bool kept_next = false;   // the skimmer asked `keep` about the next element: yes
  KeepScope scope;          // where `keep` is asked
  size_t scopes_open = 0;   // scope elements open now
  // A start tag the skimmer read the attributes of itself and handed expat
  // without them (StreamParser::Impl::plain_attributes): the element that
  // starts at input offset `plain_at` (as expat counts) takes `plain_attrs`.
  bool plain_pending = false;
  uint64_t plain_at = 0;
  std::vector<std::pair<std::string, std::string>> plain_attrs;  // as Node::attrs

  bool scope_element(const Node& n, const Node& parent) const {
    return !scope.name.empty() && n.name == scope.name && parent.name == scope.parent;
  }

  // Keep whitespace-only text out of structural nodes but keep it in leaves
  // (a VM annotation may be just spaces); decided when the element closes.
  static void start(void* data, const XML_Char* name, const XML_Char** atts) {
    auto* b = static_cast<Builder*>(data);
    if (b->too_deep) return;
    const bool plain = b->plain_pending &&
                       static_cast<uint64_t>(XML_GetCurrentByteIndex(b->parser)) == b->plain_at;
    if (plain) b->plain_pending = false;
    if (b->stack.size() + b->skipping > kMaxDepth) {  // this element would be level kMaxDepth + 1
      b->too_deep = true;
      XML_StopParser(b->parser, XML_FALSE);
      return;
    }
    if (b->skipping) {
      ++b->skipping;
      return;
    }
    if (b->keep && !std::exchange(b->kept_next, false) &&
        (b->scope.name.empty() || b->scopes_open > 0)) {
      std::string_view xsi_type;
      if (plain) {
        for (const auto& [k, v] : b->plain_attrs)
          if (k == "xsi:type") xsi_type = local_name(v);
      }
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
    // A few children at once: an element with one child mostly has more
    // (an object's properties, a device's fields).
    if (parent->children.empty()) parent->children.reserve(4);
    Node& n = parent->children.emplace_back();
    n.name.assign(local_name(name));
    // xsi:type is kept apart from a plain `type` attribute: a moref inside
    // a task result carries both (xsi:type="ManagedObjectReference"
    // type="VirtualMachineSnapshot").
    if (plain) n.attrs = std::move(b->plain_attrs);
    size_t count = 0;
    while (atts[count]) count += 2;
    if (count) n.attrs.reserve(count / 2);
    for (size_t i = 0; i < count; i += 2) {
      std::string_view q = atts[i];
      std::string_view local = local_name(q);
      if (local == "type" && local.size() != q.size())
        n.attrs.emplace_back("xsi:type", atts[i + 1]);
      else
        n.attrs.emplace_back(std::piecewise_construct, std::forward_as_tuple(local),
                             std::forward_as_tuple(atts[i + 1]));
    }
    if (b->scope_element(n, *parent)) ++b->scopes_open;
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
    if (b->scope_element(*n, *parent)) --b->scopes_open;
    if (b->on_split && n->name == b->split && parent->name == b->split_parent) {
      b->on_split(std::move(*n));
      parent->children.pop_back();  // n is always the last child while it is open
      b->split_mark = static_cast<uint64_t>(XML_GetCurrentByteIndex(b->parser)) + b->dropped;
    }
  }
  static void chars(void* data, const XML_Char* s, int len) {
    auto* b = static_cast<Builder*>(data);
    if (b->too_deep || b->skipping) return;
    b->stack.back()->text.append(s, static_cast<size_t>(len));
  }
};

// The first of '<', '>', '"' and '\'' in s from `i` on (s.size() if none):
// the bytes that matter in a start tag. Sixteen bytes at a time with SSE2.
size_t find_special(std::string_view s, size_t i) {
#if defined(__SSE2__)
  const __m128i lt = _mm_set1_epi8('<'), gt = _mm_set1_epi8('>'), dq = _mm_set1_epi8('"'),
                sq = _mm_set1_epi8('\'');
  for (; i + 16 <= s.size(); i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, lt), _mm_cmpeq_epi8(v, gt)),
                               _mm_or_si128(_mm_cmpeq_epi8(v, dq), _mm_cmpeq_epi8(v, sq)));
    if (int mask = _mm_movemask_epi8(hit)) return i + static_cast<size_t>(__builtin_ctz(mask));
  }
#endif
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '<' || c == '>' || c == '"' || c == '\'') return i;
  }
  return s.size();
}

// One piece of markup starting with '<' in a skimmed buffer.
struct Markup {
  enum Kind { incomplete, start, end, other, declaration, bad } kind = incomplete;
  size_t end_at = 0;          // just after its '>'
  bool self_closing = false;  // <a/>
};

Markup markup_at(std::string_view s, size_t at) {
  Markup m;
  auto until = [&](size_t from, std::string_view term) {
    size_t e = s.find(term, from);
    if (e != std::string_view::npos) m.end_at = e + term.size();
    return e != std::string_view::npos;
  };
  if (at + 1 >= s.size()) return m;
  char c = s[at + 1];
  if (c == '/') {
    if (until(at + 2, ">")) m.kind = Markup::end;
    return m;
  }
  if (c == '?') {
    if (until(at + 2, "?>")) m.kind = Markup::other;
    return m;
  }
  if (c == '!') {
    std::string_view rest = s.substr(at);
    // Too short yet to tell a comment, a CDATA section and a declaration apart?
    auto begins = [&](std::string_view full) {
      return rest.size() < full.size() && full.substr(0, rest.size()) == rest;
    };
    if (begins("<!--") || begins("<![CDATA[")) return m;
    if (rest.substr(0, 4) == "<!--") {
      if (until(at + 4, "-->")) m.kind = Markup::other;
    } else if (rest.substr(0, 9) == "<![CDATA[") {
      if (until(at + 9, "]]>")) m.kind = Markup::other;
    } else {
      m.kind = Markup::declaration;  // <!DOCTYPE…: left to expat
    }
    return m;
  }
  char quote = 0;
  for (size_t i = at + 1; i < s.size(); ++i) {
    i = find_special(s, i);
    if (i == s.size()) break;
    char x = s[i];
    if (x == '<') {
      m.kind = Markup::bad;  // not well-formed (also inside a value): expat says so
      return m;
    }
    if (quote) {
      if (x == quote) quote = 0;
    } else if (x == '"' || x == '\'') {
      quote = x;
    } else if (x == '>') {
      m.kind = Markup::start;
      m.end_at = i + 1;
      m.self_closing = s[i - 1] == '/';
      return m;
    }
  }
  return m;
}

bool xml_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The qualified name of a start or end tag (`tag` without its '<' or '</').
std::string_view tag_name(std::string_view tag) {
  static const auto kEnd = [] {
    std::array<bool, 256> t{};
    for (unsigned char c : {' ', '\t', '\r', '\n', '/', '>'}) t[c] = true;
    return t;
  }();
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i sp = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t'), cr = _mm_set1_epi8('\r'),
                lf = _mm_set1_epi8('\n'), slash = _mm_set1_epi8('/'), gt = _mm_set1_epi8('>');
  for (; i + 16 <= tag.size(); i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tag.data() + i));
    __m128i hit =
        _mm_or_si128(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, sp), _mm_cmpeq_epi8(v, tab)),
                                  _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf))),
                     _mm_or_si128(_mm_cmpeq_epi8(v, slash), _mm_cmpeq_epi8(v, gt)));
    if (int mask = _mm_movemask_epi8(hit))
      return tag.substr(0, i + static_cast<size_t>(__builtin_ctz(mask)));
  }
#endif
  while (i < tag.size() && !kEnd[static_cast<unsigned char>(tag[i])]) ++i;
  return tag.substr(0, i);
}

// The xsi:type (any prefix) of a start tag, undecoded; nullopt when the tag
// is not plain enough to read it here (the element is then left to expat).
std::optional<std::string_view> tag_xsi_type(std::string_view tag) {
  size_t i = tag_name(tag).size();
  std::string_view type;
  for (;;) {
    while (i < tag.size() && xml_space(tag[i])) ++i;
    if (i >= tag.size() || tag[i] == '/' || tag[i] == '>') return type;
    size_t name_start = i;
    while (i < tag.size() && tag[i] != '=' && !xml_space(tag[i])) ++i;
    std::string_view attr = tag.substr(name_start, i - name_start);
    while (i < tag.size() && xml_space(tag[i])) ++i;
    if (i >= tag.size() || tag[i] != '=') return std::nullopt;
    ++i;
    while (i < tag.size() && xml_space(tag[i])) ++i;
    if (i >= tag.size() || (tag[i] != '"' && tag[i] != '\'')) return std::nullopt;
    size_t close = tag.find(tag[i], i + 1);
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view value = tag.substr(i + 1, close - i - 1);
    i = close + 1;
    if (local_name(attr) == "type" && local_name(attr).size() != attr.size()) {
      if (value.find('&') != std::string_view::npos) return std::nullopt;
      type = local_name(value);
    }
  }
}

// A start tag's attributes as expat reports them, when they are plain
// enough to read here: name="value" pairs after one or more spaces, ASCII
// names, values of printable ASCII without '<', '&' or '"' (nothing for
// expat to replace or normalise), no name twice, at most eight.
struct PlainTag {
  std::array<std::pair<std::string_view, std::string_view>, 8> attrs;  // qname, value
  size_t count = 0;
  std::string_view xsi_type;  // the last prefixed `type`, without its prefix

  // The attributes as a Node keeps them (Builder::start's naming).
  void to_attrs(std::vector<std::pair<std::string, std::string>>& out) const {
    out.reserve(out.size() + count);
    for (size_t i = 0; i < count; ++i) {
      auto [q, value] = attrs[i];
      std::string_view local = local_name(q);
      if (local == "type" && local.size() != q.size())
        out.emplace_back("xsi:type", value);
      else
        out.emplace_back(local, value);
    }
  }
};

// `tag` without its '<' (up to and with its '>'), `name_size` the length of
// its name. False when the attributes are not plain (expat reads them).
// ASCII name characters: 1, may start a name; 2, may continue one.
const std::array<uint8_t, 256>& name_chars() {
  static const auto kName = [] {
    std::array<uint8_t, 256> t{};
    for (int c = 0; c < 256; ++c) {
      bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
      bool more = alpha || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':';
      t[static_cast<size_t>(c)] = static_cast<uint8_t>((alpha ? 1 : 0) | (more ? 2 : 0));
    }
    return t;
  }();
  return kName;
}

bool plain_attributes(std::string_view tag, size_t name_size, bool self_closing, PlainTag& out) {
  const auto& kName = name_chars();
  auto plain_value = [](unsigned char c) {
    return c >= 0x20 && c < 0x7f && c != '<' && c != '&' && c != '"';
  };
  size_t end = tag.size() - 1 - (self_closing ? 1 : 0);  // at '/>' or '>'
  size_t i = name_size;
  out.count = 0;
  out.xsi_type = {};
  for (;;) {
    size_t spaces = i;
    while (i < end && tag[i] == ' ') ++i;
    if (i == end) return true;
    if (i == spaces || out.count == out.attrs.size()) return false;
    size_t name_start = i;
    if (!(kName[static_cast<unsigned char>(tag[i])] & 1)) return false;
    while (++i < end && (kName[static_cast<unsigned char>(tag[i])] & 2)) {
    }
    std::string_view q = tag.substr(name_start, i - name_start);
    if (i + 1 >= end || tag[i] != '=' || tag[i + 1] != '"') return false;
    size_t value_start = i += 2;
#if defined(__SSE2__)
    // Sixteen bytes at a time up to the first that is not plain (the closing
    // quote among them): below 0x20 or from 0x7f on (signed: negative), '<', '&'.
    const __m128i low = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f), lt = _mm_set1_epi8('<'),
                  amp = _mm_set1_epi8('&'), dq = _mm_set1_epi8('"');
    for (; i + 16 <= end; i += 16) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tag.data() + i));
      __m128i stop =
          _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(v, low), _mm_cmpeq_epi8(v, del)),
                       _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, lt), _mm_cmpeq_epi8(v, amp)),
                                    _mm_cmpeq_epi8(v, dq)));
      if (int mask = _mm_movemask_epi8(stop)) {
        i += static_cast<size_t>(__builtin_ctz(mask));
        break;
      }
    }
#endif
    while (i < end && plain_value(static_cast<unsigned char>(tag[i]))) ++i;
    if (i >= end || tag[i] != '"') return false;
    std::string_view value = tag.substr(value_start, i - value_start);
    ++i;
    for (size_t k = 0; k < out.count; ++k)
      if (out.attrs[k].first == q) return false;  // expat refuses it
    out.attrs[out.count++] = {q, value};
    std::string_view local = local_name(q);
    if (local == "type" && local.size() != q.size()) out.xsi_type = local_name(value);
  }
}

// A name of ASCII name characters, not starting with a digit, '.', '-' or ':'
// (expat checks the same of names it reads; others are left to it).
bool plain_name(std::string_view name) {
  const auto& kName = name_chars();
  if (name.empty() || !(kName[static_cast<unsigned char>(name[0])] & 1)) return false;
  for (char c : name)
    if (!(kName[static_cast<unsigned char>(c)] & 2)) return false;
  return true;
}

// Where `</qname>` ends, when it follows s[from…] at once after text that
// expat would hand over unchanged and could not refuse: printable ASCII, tab
// and line feed, without '<', '&' (references) or ']' (a "]]>"). 0 when
// not, or not all there yet.
size_t plain_leaf_end(std::string_view s, size_t from, std::string_view qname) {
  static const auto kText = [] {
    std::array<bool, 256> t{};
    for (int c = 0x20; c < 0x7f; ++c) t[static_cast<size_t>(c)] = true;
    t['<'] = t['&'] = t[']'] = false;
    t['\t'] = t['\n'] = true;
    return t;
  }();
  size_t i = from;
  while (i < s.size() && kText[static_cast<unsigned char>(s[i])]) ++i;
  const size_t end = i + 2 + qname.size() + 1;
  if (i >= s.size() || s[i] != '<' || end > s.size() || s[i + 1] != '/' ||
      s.compare(i + 2, qname.size(), qname) != 0 || s[end - 1] != '>')
    return 0;
  return end;
}

}  // namespace

// With a KeepElement, the input passes a skimmer before expat: at each start
// tag (expat having parsed everything before it, so `open` is current) the
// element is offered to `keep`; a refused one is dropped with all it
// contains, its markup only scanned here (tags balanced and matching,
// comments, CDATA and processing instructions passed over, the depth limit),
// never tokenised by expat. What is dropped is not otherwise checked (its
// text, entity references, encoding): nothing of it is read. A document with
// a DOCTYPE, or markup the skimmer cannot read, goes to expat whole. A start
// tag passed on with plain attributes (plain_attributes) reaches expat
// without them; the Builder gives the element the attributes read here
// (Builder::plain_attrs), and the bytes left out count as dropped (the cap).
struct StreamParser::Impl {
  Builder builder;
  std::unique_ptr<XML_ParserStruct, decltype(&XML_ParserFree)> parser{XML_ParserCreate("UTF-8"),
                                                                      XML_ParserFree};
  uint64_t fed = 0;       // bytes fed so far
  uint64_t to_expat = 0;  // bytes given to expat so far
  uint64_t max_held = 0;  // 0: no limit
  // The skimmer (keep set).
  std::string carry;    // input not yet given to expat or dropped
  std::string scratch;  // a plain start tag without its attributes, and what came before it
  PlainTag tag_plain;   // the attributes of the start tag being looked at
  // The names open inside the element being dropped, one after the other
  // (one buffer, no allocation per element), and where each starts.
  std::string dropping_names;
  std::vector<size_t> dropping;
  bool whole = false;  // a DOCTYPE or odd markup: the rest goes to expat
  KeepScope scope;
  // The elements open before the scan position: whether each is named like a
  // scope element's parent (kParentName) and whether it is a scope element
  // (kScope): where `keep` is to be asked. Only a hint: the decision itself
  // is taken on expat's tree.
  static constexpr uint8_t kParentName = 1, kScope = 2;
  std::vector<uint8_t> names;
  size_t scopes_open = 0;
  void push_dropping(std::string_view name) {
    dropping.push_back(dropping_names.size());
    dropping_names.append(name);
  }
  std::string_view dropping_back() const {
    return std::string_view(dropping_names).substr(dropping.back());
  }
  void pop_dropping() {
    dropping_names.resize(dropping.back());
    dropping.pop_back();
  }
  void check(int status) {
    if (builder.too_deep)
      throw LimitExceeded("host answer nested deeper than " + std::to_string(kMaxDepth) +
                          " levels");
    if (status == XML_STATUS_ERROR)
      throw Error("malformed XML from the server (line " +
                  std::to_string(XML_GetCurrentLineNumber(parser.get())) +
                  "): " + XML_ErrorString(XML_GetErrorCode(parser.get())));
  }
  void parse(std::string_view bytes, bool final = false) {
    constexpr size_t kChunk = 1 << 20;  // XML_Parse takes an int length
    do {
      std::string_view part = bytes.substr(0, kChunk);
      bytes.remove_prefix(part.size());
      to_expat += part.size();
      check(XML_Parse(parser.get(), part.data(), static_cast<int>(part.size()),
                      final && bytes.empty()));
    } while (!bytes.empty());
  }
  void skim(std::string_view chunk);
};

void StreamParser::Impl::skim(std::string_view chunk) {
  carry.append(chunk);
  std::string_view s = carry;
  size_t done = 0;  // s[0, done) given to expat or dropped
  size_t pos = 0;   // scanned up to here
  auto give = [&](size_t upto) {
    if (upto > done) parse(s.substr(done, upto - done));
    done = upto;
  };
  auto drop = [&](size_t upto) {
    builder.dropped += upto - done;
    done = upto;
  };
  while (pos < s.size() && !whole) {
    const void* lt = std::memchr(s.data() + pos, '<', s.size() - pos);
    if (!lt) {
      pos = s.size();
      break;
    }
    size_t at = static_cast<size_t>(static_cast<const char*>(lt) - s.data());
    Markup m = markup_at(s, at);
    if (m.kind == Markup::incomplete) {
      pos = at;
      break;
    }
    if (!dropping.empty()) {
      if (m.kind == Markup::start) {
        if (!m.self_closing) {
          if (builder.stack.size() + dropping.size() > kMaxDepth)
            throw LimitExceeded("host answer nested deeper than " + std::to_string(kMaxDepth) +
                                " levels");
          push_dropping(tag_name(s.substr(at + 1, m.end_at - at - 1)));
        }
      } else if (m.kind == Markup::end) {
        std::string_view open = dropping_back();
        std::string_view rest = s.substr(at + 2, m.end_at - at - 2);
        bool closes = rest.size() > open.size() && rest.substr(0, open.size()) == open &&
                      tag_name(rest.substr(open.size())).empty();
        std::string_view name = closes ? open : tag_name(rest);
        if (name != open)
          throw Error("malformed XML from the server: </" + host_text(name, 100) + "> closes <" +
                      host_text(open, 100) + ">");
        pop_dropping();
      } else if (m.kind != Markup::other) {
        throw Error("malformed XML from the server: a declaration inside an element");
      }
      pos = m.end_at;
      drop(pos);
      continue;
    }
    if (m.kind == Markup::declaration || m.kind == Markup::bad) {
      whole = true;
      break;
    }
    if (m.kind == Markup::start) {
      std::string_view tag = s.substr(at + 1, m.end_at - at - 1);
      std::string_view qname = tag_name(tag);
      bool kept = true;
      const bool plain =
          !qname.empty() && plain_attributes(tag, qname.size(), m.self_closing, tag_plain);
      if ((scope.name.empty() || scopes_open > 0) && builder.skipping == 0 && !builder.too_deep) {
        auto type = plain ? std::optional(tag_plain.xsi_type) : tag_xsi_type(tag);
        if (!qname.empty() && type) {
          give(at);  // expat is now just before this element
          if (builder.keep(builder.stack, local_name(qname), *type)) {
            builder.kept_next = true;
          } else {
            kept = false;
            if (!m.self_closing) push_dropping(qname);
            drop(m.end_at);
          }
        }
      }
      // A kept leaf with plain attributes and plain text (<name>config.uuid
      // </name>, <val xsi:type="xsd:int">2</val>, <obj type="…">vm-7</obj>,
      // most of what a listing keeps) is built here, with expat's tree
      // current (given up to it) and the same decision on keeping it that
      // Builder::start would take; expat never sees its bytes (counted as
      // dropped). Split elements, scope-less documents' roots and anything
      // deeper than the limit go the usual way.
      if (kept && plain && !m.self_closing && !builder.plain_pending && builder.skipping == 0 &&
          !builder.too_deep && plain_name(qname)) {
        std::string_view local = local_name(qname);
        const size_t leaf_end = plain_leaf_end(s, m.end_at, qname);
        if (leaf_end && (builder.split.empty() || local != builder.split)) {
          const size_t text_end = leaf_end - (3 + qname.size());  // at its "</"
          give(at);
          if (builder.stack.size() >= 2 && builder.stack.size() <= kMaxDepth && !builder.too_deep) {
            const bool asked = std::exchange(builder.kept_next, false);
            if (asked || !builder.keep ||
                !(builder.scope.name.empty() || builder.scopes_open > 0) ||
                builder.keep(builder.stack, local, tag_plain.xsi_type)) {
              Node* parent = builder.stack.back();
              if (parent->children.empty()) parent->children.reserve(4);
              Node& n = parent->children.emplace_back();
              n.name.assign(local);
              tag_plain.to_attrs(n.attrs);
              n.text.assign(s.substr(m.end_at, text_end - m.end_at));
            }
            drop(leaf_end);
            pos = leaf_end;
            continue;
          }
        }
      }
      // Expat spends about as much on a start tag's attributes as on the
      // rest of a property value (<val xmlns:XMLSchema-instance="…"
      // XMLSchema-instance:type="xsd:string">): plain ones are read here and
      // expat gets the tag without them.
      if (kept && plain && tag_plain.count > 0 && !builder.plain_pending && !builder.too_deep) {
        builder.plain_attrs.clear();
        tag_plain.to_attrs(builder.plain_attrs);
        scratch.assign(s.substr(done, at - done));
        scratch += '<';
        scratch += qname;
        scratch += m.self_closing ? "/>" : ">";
        builder.plain_pending = true;
        builder.plain_at = to_expat + (at - done);
        builder.dropped += (m.end_at - done) - scratch.size();
        done = m.end_at;
        parse(scratch);
      }
      if (kept && !m.self_closing) {
        uint8_t flags = 0;
        if (!scope.name.empty()) {
          std::string_view local = local_name(qname);
          if (local == scope.parent) flags |= kParentName;
          if (local == scope.name && !names.empty() && (names.back() & kParentName))
            flags |= kScope;
        }
        names.push_back(flags);
        if (flags & kScope) ++scopes_open;
      }
    } else if (m.kind == Markup::end && !names.empty()) {
      if (names.back() & kScope) --scopes_open;
      names.pop_back();
    }
    pos = m.end_at;
  }
  if (whole) pos = s.size();
  if (dropping.empty())
    give(pos);
  else
    drop(pos);
  carry.erase(0, done);
}

StreamParser::StreamParser(std::string split_parent, std::string split,
                           std::function<void(Node&&)> on_split, uint64_t max_held,
                           KeepElement keep, KeepScope keep_within)
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
  b.scope = keep_within;
  impl_->scope = std::move(keep_within);
  XML_SetUserData(impl_->parser.get(), &b);
  XML_SetElementHandler(impl_->parser.get(), Builder::start, Builder::end);
  XML_SetCharacterDataHandler(impl_->parser.get(), Builder::chars);
}

StreamParser::~StreamParser() = default;

void StreamParser::feed(std::string_view chunk) {
  impl_->fed += chunk.size();
  if (impl_->builder.keep)
    impl_->skim(chunk);
  else
    impl_->check(XML_Parse(impl_->parser.get(), chunk.data(), static_cast<int>(chunk.size()), 0));
  // Split elements are handed on; what is left since the last one is held.
  if (impl_->max_held && impl_->fed - impl_->builder.split_mark > impl_->max_held)
    throw LimitExceeded("host answer larger than " + size_text(impl_->max_held));
}

Node StreamParser::finish() {
  if (!impl_->dropping.empty())
    throw Error("malformed XML from the server: <" + host_text(impl_->dropping_back(), 100) +
                "> not closed");
  // What the skimmer held back (an unfinished tag) goes to expat, which says
  // what is wrong with it.
  std::string rest = std::move(impl_->carry);
  impl_->parse(rest, true);
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
  // Children without children of their own go with the vector (their
  // destructors return at once): most elements hold only leaves.
  if (std::all_of(children.begin(), children.end(),
                  [](const Node& c) { return c.children.empty(); }))
    return;
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
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      // UTF-8 as it is, when it is UTF-8 of characters XML can carry (the
      // host's parser refuses the rest, and the whole call with it).
      auto cp = next_code_point(text, i);
      char hex[16];
      if (!cp) {
        std::snprintf(hex, sizeof hex, "0x%02x", c);
        bad_input(std::string("text is not valid UTF-8 (byte ") + hex + " at byte " +
                  std::to_string(i + 1) + ")");
      }
      if (cp->value == 0xfffe || cp->value == 0xffff) {
        std::snprintf(hex, sizeof hex, "U+%04X", static_cast<unsigned>(cp->value));
        bad_input(std::string("text contains a character (") + hex + ") that XML cannot carry");
      }
      out.append(text.substr(i, cp->length));
      i += cp->length - 1;
      continue;
    }
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
