#include "base/xml.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "base/error.hpp"

namespace {

std::string nested(size_t levels, const std::string& inner = "x") {
  std::string doc;
  doc.reserve(levels * 7 + inner.size());
  for (size_t i = 0; i < levels; ++i) doc += "<n>";
  doc += inner;
  for (size_t i = 0; i < levels; ++i) doc += "</n>";
  return doc;
}

// The message of the LimitExceeded `fn` throws ("" and a failure if none).
template <typename Fn>
std::string limit_message(Fn fn) {
  try {
    fn();
  } catch (const ceso::LimitExceeded& e) {
    EXPECT_EQ(e.code(), ceso::Exit::connection);
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a LimitExceeded: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no LimitExceeded";
  return "";
}

// A chain of `levels` nodes built in code, not parsed (no depth limit).
ceso::xml::Node chain(size_t levels) {
  ceso::xml::Node root;
  root.name = "n";
  ceso::xml::Node* cur = &root;
  for (size_t i = 1; i < levels; ++i) {
    cur->children.emplace_back();
    cur = &cur->children.back();
    cur->name = "n";
  }
  cur->text = "leaf";
  return root;
}

TEST(Xml, EscapesEverythingSpecial) {
  EXPECT_EQ(ceso::xml::escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  EXPECT_EQ(ceso::xml::escape("web 01 é"), "web 01 é");
  EXPECT_EQ(ceso::xml::escape("a\rb"), "a&#13;b");
  EXPECT_EQ(ceso::xml::escape("a\tb\nc"), "a&#9;b&#10;c");
}

TEST(Xml, RejectsControlCharacters) {
  try {
    ceso::xml::escape(std::string("a\x01", 2));
    FAIL();
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::bad_input);
    EXPECT_NE(std::string(e.what()).find("0x01"), std::string::npos);
  }
}

// Text that is not UTF-8, or holds a character XML excludes, would make the
// host refuse the whole request: refused here, saying which byte.
TEST(Xml, RejectsWhatIsNotUtf8) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"web\xff", "not valid UTF-8 (byte 0xff at byte 4)"},
      {"\xc3", "not valid UTF-8 (byte 0xc3 at byte 1)"},              // cut short
      {"a\xc0\xaf", "not valid UTF-8 (byte 0xc0 at byte 2)"},         // overlong '/'
      {"\xed\xa0\x80", "not valid UTF-8 (byte 0xed at byte 1)"},      // a surrogate
      {"\xf4\x90\x80\x80", "not valid UTF-8 (byte 0xf4 at byte 1)"},  // above U+10FFFF
      {"\x80", "not valid UTF-8 (byte 0x80 at byte 1)"},
      {"x\xef\xbf\xbe", "a character (U+FFFE) that XML cannot carry"},
      {"\xef\xbf\xbf", "a character (U+FFFF) that XML cannot carry"},
  };
  for (const auto& [text, why] : bad) {
    SCOPED_TRACE(text);
    try {
      ceso::xml::escape(text);
      ADD_FAILURE() << "accepted";
    } catch (const ceso::Error& e) {
      EXPECT_EQ(e.code(), ceso::Exit::bad_input);
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  }
  // The largest code points of each length, and U+FFFD, go as they are.
  const std::string good = "\x7f\xdf\xbf\xef\xbf\xbd\xef\xbf\xbd\xf4\x8f\xbf\xbf \xe2\x98\x83";
  EXPECT_EQ(ceso::xml::escape(good), good);
  EXPECT_EQ(ceso::xml::parse("<a>" + ceso::xml::escape(good) + "</a>").text, good);
}

TEST(Xml, EscapedTextRoundTripsThroughParser) {
  std::string hostile = "web \"01\" & <x> 'q' é ☃";
  auto doc = ceso::xml::parse("<a><name>" + ceso::xml::escape(hostile) + "</name></a>");
  EXPECT_EQ(doc.child_text("name"), hostile);
}

TEST(Xml, DropsPrefixesAndKeepsTypes) {
  auto doc = ceso::xml::parse(
      "<soapenv:Envelope xmlns:soapenv=\"s\" xmlns:xsi=\"i\"><soapenv:Body>"
      "<val xsi:type=\"xsd:string\">x</val><obj type=\"VirtualMachine\">vm-1</obj>"
      "</soapenv:Body></soapenv:Envelope>");
  EXPECT_EQ(doc.name, "Envelope");
  const auto* val = doc.find("Body/val");
  ASSERT_NE(val, nullptr);
  EXPECT_EQ(val->type(), "string");
  EXPECT_EQ(val->attr("type"), "");
  EXPECT_EQ(doc.find_text("Body/obj"), "vm-1");
  EXPECT_EQ(doc.find("Body/obj")->attr("type"), "VirtualMachine");
}

TEST(Xml, KeepsWhitespaceInLeavesOnly) {
  auto doc = ceso::xml::parse("<a>\n  <b>  </b>\n</a>");
  EXPECT_EQ(doc.text, "");
  EXPECT_EQ(doc.child_text("b"), "  ");
}

TEST(Xml, MalformedNamesLine) {
  try {
    ceso::xml::parse("<a>\n<b>\n</a>");
    FAIL();
  } catch (const ceso::Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
  }
}

TEST(Xml, AllAndMissing) {
  auto doc = ceso::xml::parse("<a><x>1</x><y/><x>2</x></a>");
  ASSERT_EQ(doc.all("x").size(), 2u);
  EXPECT_EQ(doc.all("x")[1]->text, "2");
  EXPECT_EQ(doc.child("z"), nullptr);
  EXPECT_EQ(doc.find_text("y/z"), "");
}

TEST(XmlLimits, NestingUpToTheLimitIsAccepted) {
  auto doc = ceso::xml::parse(nested(ceso::xml::kMaxDepth));
  const ceso::xml::Node* n = &doc;
  size_t depth = 1;
  while (!n->children.empty()) n = &n->children.front(), ++depth;
  EXPECT_EQ(depth, ceso::xml::kMaxDepth);
  EXPECT_EQ(n->text, "x");
}

TEST(XmlLimits, OneLevelDeeperIsRefused) {
  std::string msg = limit_message([] { ceso::xml::parse(nested(ceso::xml::kMaxDepth + 1)); });
  EXPECT_EQ(msg, "host answer nested deeper than 512 levels");
}

TEST(XmlLimits, MillionLevelsAreRefusedNotACrash) {
  for (size_t levels : {100000u, 1000000u})
    EXPECT_EQ(limit_message([&] { ceso::xml::parse(nested(levels)); }),
              "host answer nested deeper than 512 levels")
        << levels;
}

TEST(XmlLimits, DeepNestingInsideAStreamedObjectIsRefused) {
  size_t handed = 0;
  ceso::xml::StreamParser p("returnval", "objects", [&](ceso::xml::Node&&) { ++handed; });
  std::string msg = limit_message([&] {
    p.feed("<Envelope><Body><R><returnval><objects><obj>vm-1</obj></objects><objects><val>");
    std::string deep = nested(200000);
    for (size_t at = 0; at < deep.size(); at += 4096) p.feed(deep.substr(at, 4096));
  });
  EXPECT_EQ(msg, "host answer nested deeper than 512 levels");
  EXPECT_EQ(handed, 1u);  // the object before it was handed on
}

TEST(XmlLimits, StreamedAnswerHoldsAtMostTheCap) {
  const uint64_t cap = 1 << 20;
  // Many objects, together far more than the cap: fine, each is handed on.
  size_t handed = 0;
  ceso::xml::StreamParser ok(
      "returnval", "objects", [&](ceso::xml::Node&&) { ++handed; }, cap);
  ok.feed("<Envelope><Body><R><returnval>");
  std::string object = "<objects><obj>" + std::string(10000, 'v') + "</obj></objects>";
  for (int i = 0; i < 300; ++i) ok.feed(object);  // 3 MB
  ok.feed("</returnval></R></Body></Envelope>");
  ok.finish();
  EXPECT_EQ(handed, 300u);
  // One endless element (held, never handed on) is stopped at the cap.
  ceso::xml::StreamParser endless(
      "returnval", "objects", [](ceso::xml::Node&&) {}, cap);
  EXPECT_EQ(limit_message([&] {
              endless.feed("<Envelope><Body><R><returnval><endless>");
              for (;;) endless.feed(std::string(16384, 'A'));
            }),
            "host answer larger than 1 MiB");
  // So is an object that grows past it.
  ceso::xml::StreamParser big(
      "returnval", "objects", [](ceso::xml::Node&&) {}, cap);
  EXPECT_EQ(limit_message([&] {
              big.feed("<Envelope><Body><R><returnval><objects><obj>");
              for (int i = 0; i < 100; ++i) big.feed(std::string(16384, 'A'));
            }),
            "host answer larger than 1 MiB");
}

// KeepElement: a refused element is neither built nor its text kept, but its
// bytes are still checked (well-formedness, depth) like the rest.
TEST(XmlKeep, RefusedElementsAreSkippedButStillChecked) {
  std::vector<std::string> asked;
  auto keep = [&](const std::vector<ceso::xml::Node*>& open, std::string_view name,
                  std::string_view type) {
    asked.push_back(std::string(name) + ":" + std::string(type) + "@" +
                    std::to_string(open.size()));
    return name != "drop" && type != "Dropped";
  };
  ceso::xml::StreamParser p("", "", nullptr, 0, keep);
  p.feed(
      "<a xmlns:x=\"urn:x\">one<drop><keep>lost</keep></drop>two"
      "<b x:type=\"x:Dropped\"><c/></b><b x:type=\"Kept\" type=\"plain\">3</b></a>");
  auto doc = p.finish();
  EXPECT_EQ(doc.name, "a");
  EXPECT_EQ(doc.text, "onetwo");
  ASSERT_EQ(doc.children.size(), 1u);
  EXPECT_EQ(doc.children[0].type(), "Kept");
  EXPECT_EQ(doc.children[0].attr("type"), "plain");
  EXPECT_EQ(doc.children[0].text, "3");
  // Asked once per element outside refused ones; nothing inside <drop> or
  // the Dropped <b>.
  EXPECT_EQ(asked, (std::vector<std::string>{"a:@1", "drop:@2", "b:Dropped@2", "b:Kept@2"}));

  auto refuse_all_inside = [](const std::vector<ceso::xml::Node*>& open, std::string_view,
                              std::string_view) { return open.size() < 2; };
  ceso::xml::StreamParser bad("", "", nullptr, 0, refuse_all_inside);
  EXPECT_THROW(
      {
        bad.feed("<a><skipped><x></y></skipped></a>");
        bad.finish();
      },
      ceso::Error);
  ceso::xml::StreamParser deep("", "", nullptr, 0, refuse_all_inside);
  EXPECT_EQ(limit_message([&] {
              std::string doc = nested(ceso::xml::kMaxDepth + 1);
              deep.feed(doc);
              deep.finish();
            }),
            "host answer nested deeper than 512 levels");
}

TEST(XmlTree, CopyIsDeepAndEqual) {
  auto doc = ceso::xml::parse("<a k=\"v\"><b>1</b><c><d x=\"y\">2</d><e/></c><b>3</b></a>");
  ceso::xml::Node copy = doc;
  EXPECT_EQ(ceso::xml::serialize(copy), ceso::xml::serialize(doc));
  EXPECT_EQ(ceso::xml::serialize(copy),
            "<a k=\"v\"><b>1</b><c><d x=\"y\">2</d><e></e></c><b>3</b></a>");
  copy.children[1].children[0].text = "changed";
  EXPECT_EQ(doc.find_text("c/d"), "2");  // deep: the original is untouched
  ceso::xml::Node assigned;
  assigned = doc;
  EXPECT_EQ(ceso::xml::serialize(assigned), ceso::xml::serialize(doc));
  assigned = assigned;  // self-assignment keeps it
  EXPECT_EQ(assigned.find_text("c/d"), "2");
}

TEST(XmlTree, MillionDeepTreeCopiesSerialisesAndDiesWithoutRecursion) {
  // Built in code, so the parser's limit does not apply: copy, serialise and
  // destroy must not recurse (a recursive destructor overflows the stack).
  const size_t levels = 1000000;
  ceso::xml::Node root = chain(levels);
  {
    ceso::xml::Node copy = root;
    const ceso::xml::Node* n = &copy;
    size_t depth = 1;
    while (!n->children.empty()) n = &n->children.front(), ++depth;
    EXPECT_EQ(depth, levels);
    EXPECT_EQ(n->text, "leaf");
  }
  std::string text = ceso::xml::serialize(root);
  EXPECT_EQ(text.size(), levels * 7 + 4);
  std::vector<ceso::xml::Node> many(3, root);  // copies inside a vector, destroyed with it
  ceso::xml::Node moved = std::move(root);
  EXPECT_EQ(moved.children.size(), 1u);
}

TEST(XmlTree, SerializeEscapesAndAddsRootAttributes) {
  ceso::xml::Node n;
  n.name = "config";
  n.attrs = {{"xsi:type", "a\"<"}};
  n.text = "x & y";
  n.children.emplace_back().name = "name";
  n.children.back().text = "<web>";
  EXPECT_EQ(ceso::xml::serialize(n, "xmlns=\"urn:vim25\""),
            "<config xmlns=\"urn:vim25\" xsi:type=\"a&quot;&lt;\">x &amp; y<name>&lt;web&gt;</name>"
            "</config>");
}

}  // namespace

// A refused element is dropped by the skimmer before expat sees it: its
// markup is scanned for balance only, so what looks like a tag inside an
// attribute value, a comment, a CDATA section or a processing instruction
// must not count, wherever the chunks are cut.
TEST(XmlKeep, DroppedWhateverTheMarkupAndTheChunks) {
  const std::string doc =
      "<?xml version=\"1.0\"?><r xmlns:x=\"urn:x\"><v>"
      "<d x:type=\"Gone\" note=\"a > b\"><d>nested same name</d><!-- <d> --><![CDATA[</d><d>]]>"
      "<?pi <d> ?><e/><d a='>'/></d>"
      "<k x:type=\"Disk\"><cap>7</cap><skip>x</skip></k>"
      "<d x:type=\"Gone\"/>"
      "<!-- <k x:type=\"Disk\"> --><![CDATA[<k>]]>text&amp;more"
      "</v><after>1</after></r>";
  std::vector<std::string> asked;
  auto keep = [&](const std::vector<ceso::xml::Node*>& open, std::string_view name,
                  std::string_view type) {
    asked.push_back(std::string(name) + ":" + std::string(type));
    if (open.back()->name == "v") return type == "Disk";
    if (open.back()->name == "k") return name == "cap";
    return true;
  };
  for (size_t cut : {doc.size(), size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{16}}) {
    SCOPED_TRACE("chunks of " + std::to_string(cut));
    asked.clear();
    ceso::xml::StreamParser p("", "", nullptr, 0, keep, {"r", "v"});
    for (size_t at = 0; at < doc.size(); at += cut) p.feed(doc.substr(at, cut));
    auto r = p.finish();
    ASSERT_EQ(r.children.size(), 2u);
    const auto& v = r.children[0];
    EXPECT_EQ(v.text, "<k>text&more");  // the CDATA and the text around the dropped ones
    ASSERT_EQ(v.children.size(), 1u);
    EXPECT_EQ(v.children[0].type(), "Disk");
    ASSERT_EQ(v.children[0].children.size(), 1u);
    EXPECT_EQ(v.children[0].children[0].name, "cap");
    EXPECT_EQ(v.children[0].children[0].text, "7");
    EXPECT_EQ(r.children[1].text, "1");
    // Asked once per element inside <v> (the scope), never inside a dropped one.
    EXPECT_EQ(asked, (std::vector<std::string>{"d:Gone", "k:Disk", "cap:", "skip:", "d:Gone"}));
  }
}

TEST(XmlKeep, DroppedMarkupMustBalance) {
  auto refuse_inside = [](const std::vector<ceso::xml::Node*>& open, std::string_view,
                          std::string_view) { return open.size() < 2; };
  auto parse = [&](const std::string& doc) {
    ceso::xml::StreamParser p("", "", nullptr, 0, refuse_inside);
    p.feed(doc);
    return p.finish();
  };
  EXPECT_THROW(parse("<a><s><x></y></s></a>"), ceso::Error);       // mismatched
  EXPECT_THROW(parse("<a><s><x></x>"), ceso::Error);               // never closed
  EXPECT_THROW(parse("<a><s><!DOCTYPE a></s></a>"), ceso::Error);  // a declaration inside
  EXPECT_THROW(parse("<a><s><x></x></s></b>"), ceso::Error);       // expat's part is checked
  EXPECT_THROW(parse("<a><s attr=\"<\"></s></a>"), ceso::Error);   // '<' in a value
  EXPECT_EQ(parse("<a><s><x a='a > b' b=\"/>\"></x></s>kept</a>").text, "kept");
  // With a DOCTYPE the whole document goes to expat, which still applies keep.
  EXPECT_EQ(parse("<!DOCTYPE a><a><s><x/></s>kept</a>").text, "kept");
}

// The cap counts the input since the last split element, dropped bytes too.
TEST(XmlKeep, DroppedBytesCountTowardsTheCap) {
  const uint64_t cap = 1 << 20;
  auto drop_big = [](const std::vector<ceso::xml::Node*>&, std::string_view name,
                     std::string_view) { return name != "big"; };
  size_t handed = 0;
  ceso::xml::StreamParser ok(
      "returnval", "objects", [&](ceso::xml::Node&&) { ++handed; }, cap, drop_big);
  ok.feed("<Envelope><Body><R><returnval>");
  std::string object = "<objects><big>" + std::string(600000, 'v') + "</big><obj>o</obj></objects>";
  for (int i = 0; i < 5; ++i) ok.feed(object);  // 3 MB, each object under the cap
  ok.feed("</returnval></R></Body></Envelope>");
  ok.finish();
  EXPECT_EQ(handed, 5u);
  ceso::xml::StreamParser endless(
      "returnval", "objects", [](ceso::xml::Node&&) {}, cap, drop_big);
  EXPECT_EQ(limit_message([&] {
              endless.feed("<Envelope><Body><R><returnval><objects><big>");
              for (;;) endless.feed(std::string(16384, 'A'));
            }),
            "host answer larger than 1 MiB");
}

// Keeping everything, the skimmer builds the tree expat builds from the
// whole text and refuses what expat refuses: each document whole, in chunks
// of each size in `cuts`, with no keep scope and with <r><CHILD>.
static void expect_skimmer_builds_expats_tree(const std::vector<std::string>& docs,
                                              std::initializer_list<size_t> cuts,
                                              const std::string& child) {
  auto keep_all = [](const std::vector<ceso::xml::Node*>&, std::string_view, std::string_view) {
    return true;
  };
  for (const auto& doc : docs) {
    SCOPED_TRACE(doc.size() > 200 ? doc.substr(0, 60) + "…" : doc);
    std::optional<std::string> whole;
    try {
      whole = ceso::xml::serialize(ceso::xml::parse(doc));
    } catch (const ceso::Error&) {
    }
    std::vector<size_t> sizes = {doc.size()};
    sizes.insert(sizes.end(), cuts);
    for (size_t cut : sizes) {
      SCOPED_TRACE("chunks of " + std::to_string(cut));
      for (auto scope : {ceso::xml::KeepScope{}, ceso::xml::KeepScope{"r", child}}) {
        std::optional<std::string> skimmed;
        try {
          ceso::xml::StreamParser p("", "", nullptr, 0, keep_all, scope);
          for (size_t at = 0; at < doc.size(); at += cut) p.feed(doc.substr(at, cut));
          skimmed = ceso::xml::serialize(p.finish());
        } catch (const ceso::Error&) {
        }
        EXPECT_EQ(skimmed, whole);
      }
    }
  }
}

// The skimmer reads plain start-tag attributes itself and hands expat the
// tag without them: the tree is the one expat builds from the whole text,
// and what it refuses is refused, whatever the attributes and the chunks.
TEST(XmlKeep, AttributesReadByTheSkimmerAreExpatsAttributes) {
  const std::vector<std::string> docs = {
      // plain: read by the skimmer
      "<r xmlns:x=\"urn:x\" a=\"1\"><v x:type=\"x:T\" type=\"plain\" empty=\"\">t"
      "<w  b=\"sp  aces\"   c=\"x'y>z/\" d.e-f:g_h=\"9\"/></v><v x:type=\"T\">u</v></r>",
      "<soapenv:Envelope xmlns:soapenv=\"urn:s\"><val xmlns:XMLSchema-instance=\"urn:i\" "
      "XMLSchema-instance:type=\"xsd:string\">vm</val><obj type=\"VirtualMachine\">vm-1</obj>"
      "</soapenv:Envelope>",
      // not plain: left to expat, which decodes and normalises
      "<r a='1' b=\"&amp;&#9;&lt;\" c=\"tab\there\" d=\"\xc3\xa9\"><v\na=\"1\"\tb=\"2\" /></r>",
      "<r a = \"1\" b =\"2\"><v a=\"1\" b=\"2\" c=\"3\" d=\"4\" e=\"5\" f=\"6\" g=\"7\" h=\"8\" "
      "i=\"9\"/></r>",
      "<r><v 1a=\"x\" -b=\"y\"/></r>",
      // refused by expat either way
      "<r a=\"1\" a=\"2\"></r>",
      "<r><v a=\"1\"b=\"2\"/></r>",
      "<r><v a=\"1\" / ></r>",
      "<r><v a=\"<\"/></r>",
      "<r a=\"1\"></s>",
  };
  expect_skimmer_builds_expats_tree(docs, {1, 2, 3, 7}, "v");
}

// The skimmer builds kept leaves with plain text itself (expat never sees
// them): the tree is expat's, and what expat refuses is refused, whatever
// the text, the names, the depth and the chunks.
TEST(XmlKeep, LeavesBuiltByTheSkimmerAreExpatsLeaves) {
  std::string deep;
  for (size_t i = 0; i + 1 < ceso::xml::kMaxDepth; ++i) deep += "<d>";
  std::string deep_close;
  for (size_t i = 0; i + 1 < ceso::xml::kMaxDepth; ++i) deep_close += "</d>";
  const std::vector<std::string> docs = {
      // plain leaves: built by the skimmer
      "<r><name>config.uuid</name><val xmlns:XMLSchema-instance=\"urn:i\" "
      "XMLSchema-instance:type=\"xsd:int\">2</val><obj type=\"VirtualMachine\">vm-7</obj>"
      "<e></e><t>tab\there\nline &gt; x</t><p:q>x</p:q><n.a-m_e>y</n.a-m_e></r>",
      "<r>  <a>1</a>\n <b>  </b><c>x</c>tail</r>",
      // not plain: left to expat, which decodes, normalises or refuses
      "<r><a>&amp;&lt;&#65;</a><b>cr\r\nlf</b><c>\xc3\xa9</c><d>]]</d><e><![CDATA[x]]></e></r>",
      "<r><a>x</a ><b>y</b\n></r>",
      "<r><a>]]></a></r>",
      "<r><a>ctl\x01</a></r>",
      "<r><a>nul\x00x</a></r>",
      "<r><a>\xff</a></r>",
      "<r><1a>x</1a></r>",
      "<r><-a>x</-a></r>",
      "<r><:a>x</:a></r>",
      "<r><a>x</b></r>",
      "<r><a>x</A></r>",
      "<r><a>x</ab></r>",
      "<a>top</a>",
      "<a>top</a><b>after</b>",
      "<r></r><b>after</b>",
      "<r><a>x</a>",
      "<r><a>x",
      "<r><a a=\"1\" a=\"2\">x</a></r>",
      // leaves at the depth limit and one level beyond it
      "<r>" + deep.substr(3) + "<v>x</v>" + deep_close.substr(4) + "</r>",
      "<r>" + deep + "<v>x</v>" + deep_close + "</r>",
  };
  expect_skimmer_builds_expats_tree(docs, {1, 2, 5, 11}, "a");
}

// A leaf the skimmer builds is offered to `keep` like any element (and
// dropped when refused), and a split leaf still reaches on_split.
TEST(XmlKeep, LeavesAreOfferedAndSplit) {
  // The last <drop> is one the skimmer cannot read (an entity in its
  // xsi:type): expat's Builder must still ask about it after the leaves.
  const std::string doc =
      "<Envelope><returnval><objects>o1</objects><objects><propSet><name>n</name>"
      "<val x:type=\"T\"><drop>gone</drop><keep y:type=\"xsd:int\">3</keep>"
      "<drop z:type=\"a&amp;b\">gone too</drop></val></propSet></objects></returnval></Envelope>";
  // Whole, the leaves are built by the skimmer; in chunks of 3 bytes a
  // leaf's end is not there yet when its start tag is read.
  for (size_t cut : {doc.size(), size_t{3}}) {
    SCOPED_TRACE("chunks of " + std::to_string(cut));
    std::vector<std::string> asked;
    auto keep = [&](const std::vector<ceso::xml::Node*>& open, std::string_view name,
                    std::string_view type) {
      asked.push_back(std::to_string(open.size()) + ":" + std::string(name) + ":" +
                      std::string(type));
      return name != "drop";
    };
    std::vector<std::string> split;
    ceso::xml::StreamParser p(
        "returnval", "objects",
        [&](ceso::xml::Node&& n) {
          split.push_back(n.children.empty() ? n.name + "=" + n.text : ceso::xml::serialize(n));
        },
        0, keep, ceso::xml::KeepScope{"propSet", "val"});
    for (size_t at = 0; at < doc.size(); at += cut) p.feed(doc.substr(at, cut));
    ceso::xml::Node rest = p.finish();
    ASSERT_EQ(split.size(), 2u);
    EXPECT_EQ(split[0], "objects=o1");
    EXPECT_EQ(split[1],
              "<objects><propSet><name>n</name><val xsi:type=\"T\"><keep xsi:type=\"xsd:int\">3"
              "</keep></val></propSet></objects>");
    EXPECT_EQ(asked, (std::vector<std::string>{"6:drop:", "6:keep:int", "6:drop:a&b"}));
  }
}

// The bytes of attributes expat did not see still count towards the cap, and
// only once.
TEST(XmlKeep, AttributesReadByTheSkimmerCountTowardsTheCap) {
  const uint64_t cap = 1 << 20;
  auto keep_all = [](const std::vector<ceso::xml::Node*>&, std::string_view, std::string_view) {
    return true;
  };
  size_t handed = 0;
  ceso::xml::StreamParser ok(
      "returnval", "objects", [&](ceso::xml::Node&& n) { handed += n.attr("a").size(); }, cap,
      keep_all);
  ok.feed("<Envelope><Body><R><returnval>");
  std::string object = "<objects a=\"" + std::string(600000, 'v') + "\"><obj>o</obj></objects>";
  for (int i = 0; i < 5; ++i) ok.feed(object);  // 3 MB, each object under the cap
  ok.feed("</returnval></R></Body></Envelope>");
  ok.finish();
  EXPECT_EQ(handed, 5u * 600000);
  ceso::xml::StreamParser big(
      "returnval", "objects", [](ceso::xml::Node&&) {}, cap, keep_all);
  EXPECT_EQ(limit_message([&] {
              big.feed("<Envelope><Body><R><returnval><objects><obj a=\"" +
                       std::string(600000, 'v') + "\"/><obj b=\"" + std::string(600000, 'v') +
                       "\"/>");
            }),
            "host answer larger than 1 MiB");
}
