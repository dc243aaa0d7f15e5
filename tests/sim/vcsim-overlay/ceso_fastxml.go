package simulator

// This file is not part of govmomi (see ceso_stream.go for how it gets here).
//
// appendObjectContent encodes one ObjectContent of a RetrievePropertiesEx answer,
// byte for byte as govmomi's vim25/xml encoder does, about four times faster: the
// encoder looks up a type's fields, checks it for marshaler methods and decodes
// every string rune by rune for every value it writes; here a type is looked at once
// (fastTypeOf) and plain ASCII text is copied as it is. cesosim's simulators answer
// ceso-ls on the same two cores as the client that is being measured (bench/fanout,
// bench/ls): the encoder was over half of a simulator's CPU time.
//
// Anything this encoder does not handle exactly like govmomi's (a type with marshaler
// methods other than time.Time, XMLName, namespaced tags, a>b paths, innerxml,
// comments, fields hidden by embedding, maps) makes appendObjectContent report
// false, and the object is encoded by govmomi's encoder instead. The cesosim test
// TestFastEncoderMatchesGovmomi compares both encoders' bytes over every property
// of every object of both inventory models.

import (
	"bytes"
	"encoding"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// The attribute govmomi writes for a `typeattr` field, and the prefix its encoder
// derives from the namespace (the URL's last segment).
const (
	fastXSIDecl   = `xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" `
	fastXSIPrefix = "XMLSchema-instance:type="
)

type fastMode uint8

const (
	fastElement fastMode = iota
	fastAttr
	fastCharData
)

type fastField struct {
	idx       []int
	name      string
	mode      fastMode
	omitEmpty bool
	typeAttr  bool
}

type fastType struct {
	ok       bool // false: govmomi's encoder must write values of this type
	isTime   bool // time.Time: its MarshalText, as govmomi's encoder calls it
	typeName string
	fields   []fastField // struct: in govmomi's order (embedded fields flattened)
	hasAttr  bool
}

var (
	fastTypes             sync.Map // reflect.Type → *fastType
	fastMarshalerType     = reflect.TypeOf((*xml.Marshaler)(nil)).Elem()
	fastMarshalerAttrType = reflect.TypeOf((*xml.MarshalerAttr)(nil)).Elem()
	fastTextMarshalerType = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()
	fastTimeType          = reflect.TypeOf(time.Time{})
	fastNameType          = reflect.TypeOf(xml.Name{})
)

func fastTypeOf(t reflect.Type) *fastType {
	if v, ok := fastTypes.Load(t); ok {
		return v.(*fastType)
	}
	v, _ := fastTypes.LoadOrStore(t, buildFastType(t))
	return v.(*fastType)
}

func fastImplements(t reflect.Type, iface reflect.Type) bool {
	return t.Implements(iface) || reflect.PtrTo(t).Implements(iface)
}

func buildFastType(t reflect.Type) *fastType {
	ft := &fastType{}
	if t == fastTimeType {
		ft.ok, ft.isTime, ft.typeName = true, true, "xsd:dateTime"
		return ft
	}
	if fastImplements(t, fastMarshalerType) || fastImplements(t, fastTextMarshalerType) ||
		fastImplements(t, fastMarshalerAttrType) {
		return ft
	}
	ft.typeName = fastTypeString(t)
	switch t.Kind() {
	case reflect.Struct:
		if t == fastNameType {
			return ft
		}
		fields, ok := fastStructFields(t)
		if !ok {
			return ft
		}
		ft.fields = fields
		for _, f := range fields {
			if f.mode == fastAttr {
				ft.hasAttr = true
			}
		}
	case reflect.Slice, reflect.Array, reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
	default:
		return ft
	}
	ft.ok = true
	return ft
}

// fastTypeString is vim25/xml's typeToString, "" where that panics.
func fastTypeString(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "xsd:boolean"
	case reflect.Int8:
		return "xsd:byte"
	case reflect.Int16:
		return "xsd:short"
	case reflect.Int32:
		return "xsd:int"
	case reflect.Int, reflect.Int64:
		return "xsd:long"
	case reflect.Uint8:
		return "xsd:unsignedByte"
	case reflect.Uint16:
		return "xsd:unsignedShort"
	case reflect.Uint32:
		return "xsd:unsignedInt"
	case reflect.Uint, reflect.Uint64:
		return "xsd:unsignedLong"
	case reflect.Float32:
		return "xsd:float"
	case reflect.Float64:
		return "xsd:double"
	case reflect.String:
		if t.Name() == "string" {
			return "xsd:string"
		}
		return t.Name()
	case reflect.Struct:
		return t.Name()
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "xsd:base64Binary"
		}
	}
	return ""
}

// fastStructFields flattens t's fields as vim25/xml's getTypeInfo does, and says
// false for anything whose encoding it does not reproduce.
func fastStructFields(t reflect.Type) ([]fastField, bool) {
	var out []fastField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("xml")
		if (f.PkgPath != "" && !f.Anonymous) || tag == "-" {
			continue
		}
		if f.Anonymous {
			et := f.Type
			if et.Kind() == reflect.Ptr {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				inner := fastTypeOf(et)
				if !inner.ok || inner.isTime {
					return nil, false
				}
				for _, in := range inner.fields {
					in.idx = append([]int{i}, in.idx...)
					out = append(out, in)
				}
				continue
			}
		}
		if f.Name == "XMLName" || strings.ContainsAny(tag, " >") {
			return nil, false
		}
		ff := fastField{idx: []int{i}, mode: fastElement}
		parts := strings.Split(tag, ",")
		ff.name = parts[0]
		for _, flag := range parts[1:] {
			switch flag {
			case "attr":
				ff.mode = fastAttr
			case "chardata":
				ff.mode = fastCharData
			case "omitempty":
				ff.omitEmpty = true
			case "typeattr":
				ff.typeAttr = true
			case "":
			default: // innerxml, cdata, comment, any
				return nil, false
			}
		}
		if ff.mode == fastCharData {
			ff.name = ""
		} else if ff.name == "" {
			ff.name = f.Name
		}
		out = append(out, ff)
	}
	// vim25/xml resolves names hidden by embedding; none are expected here.
	for i := range out {
		for j := 0; j < i; j++ {
			if out[i].mode == out[j].mode && out[i].name == out[j].name {
				return nil, false
			}
		}
	}
	return out, true
}

// fastEnc appends to buf; bad is set when a value needs govmomi's encoder.
type fastEnc struct {
	buf      []byte
	depth    int
	xsiDepth int // the open element that declared the XMLSchema-instance prefix, 0 if none
	bad      bool
}

func fastIsEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Interface, reflect.Ptr:
		return v.IsNil()
	}
	return false
}

// fastField value, as vim25/xml's fieldInfo.value without initialising nil pointers:
// invalid when an embedded pointer on the way is nil.
func fastFieldValue(v reflect.Value, idx []int) reflect.Value {
	for i, x := range idx {
		if i > 0 && v.Kind() == reflect.Ptr {
			if v.IsNil() {
				return reflect.Value{}
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

// escape appends s as vim25/xml's EscapeString and EscapeText write it.
func (e *fastEnc) escape(s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\'' || c == '&' || c == '<' || c == '>' {
			e.escapeSlow(s)
			return
		}
	}
	e.buf = append(e.buf, s...)
}

func (e *fastEnc) escapeSlow(s string) {
	last := 0
	for i := 0; i < len(s); {
		r, width := utf8.DecodeRuneInString(s[i:])
		i += width
		var esc string
		switch r {
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			if !fastInCharacterRange(r) || (r == utf8.RuneError && width == 1) {
				esc = "\uFFFD"
				break
			}
			continue
		}
		e.buf = append(e.buf, s[last:i-width]...)
		e.buf = append(e.buf, esc...)
		last = i
	}
	e.buf = append(e.buf, s[last:]...)
}

func fastInCharacterRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

func (e *fastEnc) end(name string) {
	e.buf = append(e.buf, '<', '/')
	e.buf = append(e.buf, name...)
	e.buf = append(e.buf, '>')
	if e.xsiDepth == e.depth {
		e.xsiDepth = 0
	}
	e.depth--
}

// startOpen writes `<name` and the xsi:type attribute; the caller adds any other
// attributes and the '>'.
func (e *fastEnc) startOpen(name, typeAttr string) {
	e.depth++
	e.buf = append(e.buf, '<')
	e.buf = append(e.buf, name...)
	if typeAttr != "" {
		e.buf = append(e.buf, ' ')
		if e.xsiDepth == 0 {
			e.buf = append(e.buf, fastXSIDecl...)
			e.xsiDepth = e.depth
		}
		e.buf = append(e.buf, fastXSIPrefix...)
		e.buf = append(e.buf, '"')
		e.escape(typeAttr)
		e.buf = append(e.buf, '"')
	}
}

// simple appends a non-struct value's text (vim25/xml's marshalSimple).
func (e *fastEnc) simple(v reflect.Value) {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.buf = strconv.AppendInt(e.buf, v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.buf = strconv.AppendUint(e.buf, v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		e.buf = strconv.AppendFloat(e.buf, v.Float(), 'g', -1, v.Type().Bits())
	case reflect.String:
		e.escape(v.String())
	case reflect.Bool:
		e.buf = strconv.AppendBool(e.buf, v.Bool())
	case reflect.Array, reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Uint8 {
			e.bad = true
			return
		}
		if v.Kind() == reflect.Slice {
			e.escape(string(v.Bytes()))
			return
		}
		b := make([]byte, v.Len())
		reflect.Copy(reflect.ValueOf(b), v)
		e.escape(string(b))
	default:
		e.bad = true
	}
}

// attr appends one attribute field as vim25/xml's marshalAttr and writeStart do.
func (e *fastEnc) attr(name string, v reflect.Value) {
	if !v.IsValid() {
		e.bad = true
		return
	}
	switch v.Kind() {
	case reflect.Ptr, reflect.Interface:
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if v.Kind() == reflect.Ptr || v.Kind() == reflect.Interface || !fastTypeOf(v.Type()).ok ||
		fastTypeOf(v.Type()).isTime {
		e.bad = true
		return
	}
	if v.Kind() == reflect.Slice && v.Type().Elem().Kind() != reflect.Uint8 {
		for i := 0; i < v.Len(); i++ {
			e.attr(name, v.Index(i))
		}
		return
	}
	e.buf = append(e.buf, ' ')
	e.buf = append(e.buf, name...)
	e.buf = append(e.buf, '=', '"')
	e.simple(v)
	e.buf = append(e.buf, '"')
}

// value appends v as the element(s) of field f (vim25/xml's marshalValue).
func (e *fastEnc) value(v reflect.Value, f *fastField) {
	if e.bad || !v.IsValid() {
		return
	}
	if f.omitEmpty && fastIsEmpty(v) {
		return
	}
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Ptr {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	ft := fastTypeOf(v.Type())
	if !ft.ok {
		e.bad = true
		return
	}
	kind := v.Kind()
	if !ft.isTime && (kind == reflect.Slice || kind == reflect.Array) && v.Type().Elem().Kind() != reflect.Uint8 {
		for i, n := 0, v.Len(); i < n && !e.bad; i++ {
			e.value(v.Index(i), f)
		}
		return
	}
	typeAttr := ""
	if f.typeAttr {
		if typeAttr = ft.typeName; typeAttr == "" {
			e.bad = true
			return
		}
	}
	e.startOpen(f.name, typeAttr)
	if ft.isTime {
		e.buf = append(e.buf, '>')
		text, err := v.Interface().(time.Time).MarshalText()
		if err != nil {
			e.bad = true
			return
		}
		e.escape(string(text))
		e.end(f.name)
		return
	}
	if kind != reflect.Struct {
		e.buf = append(e.buf, '>')
		e.simple(v)
		e.end(f.name)
		return
	}
	if ft.hasAttr {
		for i := range ft.fields {
			af := &ft.fields[i]
			if af.mode != fastAttr {
				continue
			}
			fv := fastFieldValue(v, af.idx)
			if fv.IsValid() && af.omitEmpty && fastIsEmpty(fv) {
				continue
			}
			if fv.IsValid() && fv.Kind() == reflect.Interface && fv.IsNil() {
				continue
			}
			e.attr(af.name, fv)
		}
	}
	e.buf = append(e.buf, '>')
	for i := range ft.fields {
		sf := &ft.fields[i]
		if sf.mode == fastAttr {
			continue
		}
		fv := fastFieldValue(v, sf.idx)
		if !fv.IsValid() {
			continue
		}
		if sf.mode == fastCharData {
			e.charData(fv)
			continue
		}
		e.value(fv, sf)
		if e.bad {
			return
		}
	}
	e.end(f.name)
}

// charData appends a `chardata` field (vim25/xml's marshalStruct).
func (e *fastEnc) charData(v reflect.Value) {
	if fastImplements(v.Type(), fastTextMarshalerType) {
		e.bad = true
		return
	}
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Ptr {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Bool, reflect.String:
		e.simple(v)
	case reflect.Slice:
		if b, ok := v.Interface().([]byte); ok {
			e.escape(string(b))
		}
	}
}

var fastObjectsField = fastField{name: "objects"}

// appendObjectContent appends oc as the <objects> element of a RetrieveResult; false
// if a value in it needs govmomi's encoder (buf is then returned unchanged).
func appendObjectContent(buf []byte, oc *types.ObjectContent) ([]byte, bool) {
	e := fastEnc{buf: buf}
	e.value(reflect.ValueOf(oc).Elem(), &fastObjectsField)
	if e.bad || e.depth != 0 {
		return buf, false
	}
	return e.buf, true
}

// govmomiObjectContent appends oc as govmomi's encoder writes it in a RetrieveResult.
func govmomiObjectContent(buf []byte, oc *types.ObjectContent) ([]byte, error) {
	var b bytes.Buffer
	enc := xml.NewEncoder(&b)
	if err := enc.EncodeElement(oc, xml.StartElement{Name: xml.Name{Local: "objects"}}); err != nil {
		return buf, err
	}
	if err := enc.Flush(); err != nil {
		return buf, err
	}
	return append(buf, b.Bytes()...), nil
}

// FastEncoderCheck encodes oc both ways, for cesosim's test: the fast encoding (ok
// false if it gave way to govmomi's) and govmomi's.
func FastEncoderCheck(oc *types.ObjectContent) (fast []byte, ok bool, std []byte, err error) {
	fast, ok = appendObjectContent(nil, oc)
	std, err = govmomiObjectContent(nil, oc)
	return fast, ok, std, err
}

// FastEncoding false makes ServeSDKStreamed use govmomi's encoder throughout (for
// cesosim's test, which compares whole answers).
var FastEncoding = true
