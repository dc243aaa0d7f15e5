package main

import (
	"bytes"
	stdxml "encoding/xml"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/vim25/types"
)

// Request schema checking. vcsim decodes requests with govmomi's lenient decoder: it
// skips unknown elements, accepts children in any order and morefs without their type
// attribute, and guesses types. A real host's deserializer (vmomi, and pyVmomi's
// SoapAdapter) rejects all of these with an InvalidRequest fault, so a client tested only
// against vcsim can send requests that every real host refuses. checkRequest walks the
// request body against govmomi's generated request type (types.<Method>, whose field
// order and `xml` tags are the WSDL's sequences) and reports the first violation:
//
//   - an element that is not a property of its data object's type ("unknown element");
//   - an element that is a property but comes after a later one (WSDL sequences are
//     ordered);
//   - a required property or parameter that is missing (no omitempty, not a pointer);
//   - a ManagedObjectReference without its type attribute;
//   - a polymorphic value (govmomi `typeattr`) without xsi:type where its declared type
//     is abstract, or whose children only a subtype has; an xsi:type that is unknown or
//     not a subtype of the declared type; an xsd:anyType value without xsi:type;
//   - text where a data object is expected, child elements in a simple value, and
//     numbers or booleans that do not parse.

const xsiNS = "http://www.w3.org/2001/XMLSchema-instance"

// abstractTypes are the polymorphic base types that are never sent as themselves: the
// host has no way to know which device, backing or customization a bare base value is,
// so a value of one of these declared types must name its subtype with xsi:type.
var abstractTypes = map[string]bool{
	"VirtualDevice":                           true,
	"VirtualDeviceBackingInfo":                true,
	"VirtualDeviceDeviceBackingInfo":          true,
	"VirtualDeviceFileBackingInfo":            true,
	"VirtualDevicePipeBackingInfo":            true,
	"VirtualDeviceRemoteDeviceBackingInfo":    true,
	"VirtualDeviceURIBackingInfo":             true,
	"VirtualController":                       true,
	"VirtualSCSIController":                   true,
	"VirtualEthernetCard":                     true,
	"VirtualSoundCard":                        true,
	"VirtualUSBController":                    true,
	"VirtualMachineBootOptionsBootableDevice": true,
	"VirtualMachineProfileSpec":               true,
	"VirtualDiskSpec":                         true,
	"CustomizationIdentitySettings":           true,
	"CustomizationIpGenerator":                true,
	"CustomizationIpV6Generator":              true,
	"CustomizationName":                       true,
	"CustomizationOptions":                    true,
	"MethodFault":                             true,
}

// schemaError is one request that does not follow the schema.
type schemaError struct {
	Method string
	Path   string // element path from the method element, e.g. ReconfigVM_Task/spec/deviceChange[0]/device
	Line   int
	Col    int
	Msg    string // what is wrong, in a real host's words where it has some
}

func (e *schemaError) Error() string {
	return fmt.Sprintf("%s at %s (line %d, column %d) while parsing call information for method %s",
		e.Msg, e.Path, e.Line, e.Col, e.Method)
}

var (
	anyType   = reflect.TypeOf((*types.AnyType)(nil)).Elem()
	morefType = reflect.TypeOf(types.ManagedObjectReference{})
	timeType  = reflect.TypeOf(time.Time{})
)

// checkRequest checks a SOAP request body. It returns nil for well-formed requests and
// for what it cannot judge (not XML, no Body, a method govmomi does not know): those go
// to vcsim, which answers them with its own faults.
func checkRequest(body []byte) *schemaError {
	dec := stdxml.NewDecoder(bytes.NewReader(body))
	method, ok := findMethod(dec)
	if !ok {
		return nil
	}
	rt, known := types.TypeFunc()(method.Name.Local)
	if !known || rt.Kind() != reflect.Struct {
		return nil
	}
	c := &checker{dec: dec, method: method.Name.Local, path: []string{method.Name.Local}}
	err := c.dataObject(method, rt, true, false)
	var se *schemaError
	if errors.As(err, &se) {
		return se
	}
	return nil // an XML syntax error: vcsim's decoder reports it
}

// findMethod reads up to the first element inside soapenv:Body.
func findMethod(dec *stdxml.Decoder) (stdxml.StartElement, bool) {
	depth := 0
	inBody := false
	for {
		tok, err := dec.Token()
		if err != nil {
			return stdxml.StartElement{}, false
		}
		switch t := tok.(type) {
		case stdxml.StartElement:
			depth++
			if inBody {
				return t, true
			}
			if depth == 2 && t.Name.Local == "Body" {
				inBody = true
			} else if depth == 2 {
				if err := dec.Skip(); err != nil { // soapenv:Header
					return stdxml.StartElement{}, false
				}
				depth--
			}
		case stdxml.EndElement:
			depth--
		}
	}
}

type checker struct {
	dec    *stdxml.Decoder
	method string
	path   []string
}

func (c *checker) fail(format string, args ...interface{}) error {
	line, col := c.dec.InputPos()
	return &schemaError{Method: c.method, Path: strings.Join(c.path, "/"), Line: line, Col: col,
		Msg: fmt.Sprintf(format, args...)}
}

// field is one element of a data object's sequence.
type field struct {
	name     string
	typ      reflect.Type // element type (for slices: of one item)
	many     bool
	required bool
}

var fieldCache sync.Map // reflect.Type → []field

// fieldsOf lists a struct's elements in WSDL order: govmomi embeds the base type first,
// so flattening embedded structs in declaration order gives base properties, then the
// extension's, as the XSD extension sequence has them.
func fieldsOf(t reflect.Type) []field {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]field)
	}
	var out []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("xml")
		if sf.Anonymous && tag == "" {
			out = append(out, fieldsOf(sf.Type)...)
			continue
		}
		parts := strings.Split(tag, ",")
		if parts[0] == "" || parts[0] == "-" {
			continue // attributes, chardata
		}
		opts := "," + strings.Join(parts[1:], ",") + ","
		f := field{name: parts[0], typ: sf.Type}
		if f.typ.Kind() == reflect.Slice && f.typ.Elem().Kind() != reflect.Uint8 {
			f.many, f.typ = true, f.typ.Elem()
		}
		f.required = !f.many && !strings.Contains(opts, ",omitempty,") && f.typ.Kind() != reflect.Ptr
		if f.typ.Kind() == reflect.Ptr {
			f.typ = f.typ.Elem()
		}
		out = append(out, f)
	}
	fieldCache.Store(t, out)
	return out
}

func xsiType(start stdxml.StartElement) string {
	for _, a := range start.Attr {
		if a.Name.Space == xsiNS && a.Name.Local == "type" {
			return a.Value
		}
	}
	return ""
}

// localType drops a QName prefix: "xsd:string" → "string", "vim25:VirtualDisk" → "VirtualDisk".
func localType(q string) string {
	if i := strings.LastIndexByte(q, ':'); i >= 0 {
		return q[i+1:]
	}
	return q
}

// xsdTypes are the XML Schema simple types an xsd:anyType value may name.
var xsdTypes = map[string]reflect.Kind{
	"string": reflect.String, "anyURI": reflect.String, "dateTime": reflect.String,
	"base64Binary": reflect.String, "boolean": reflect.Bool,
	"byte": reflect.Int8, "short": reflect.Int16, "int": reflect.Int32, "long": reflect.Int64,
	"float": reflect.Float32, "double": reflect.Float64,
}

// value checks one element whose declared type is t (for polymorphic fields, the Base
// interface; for anyType, the empty interface) and consumes it up to its end tag.
func (c *checker) value(start stdxml.StartElement, t reflect.Type) error {
	given := xsiType(start)
	switch {
	case t == anyType:
		if given == "" {
			return c.fail("Missing xsi:type: a value of declared type anyType must name its type")
		}
		if k, ok := xsdTypes[localType(given)]; ok {
			return c.simple(reflect.TypeOf(kindSample[k]))
		}
		actual, ok := types.TypeFunc()(localType(given))
		if !ok {
			return c.fail("Unknown type %q in xsi:type", given)
		}
		return c.typed(start, actual)
	case t.Kind() == reflect.Interface:
		base, _ := types.TypeFunc()(strings.TrimPrefix(t.Name(), "Base"))
		if given == "" {
			if base == nil || abstractTypes[base.Name()] {
				return c.fail("Missing xsi:type: the declared type %s is abstract, the value must name its subtype (e.g. xsi:type=%q)",
					baseName(t, base), exampleSubtype(t))
			}
			return c.dataObject(start, base, false, true)
		}
		actual, ok := types.TypeFunc()(localType(given))
		if !ok {
			return c.fail("Unknown type %q in xsi:type", given)
		}
		if actual.Kind() != reflect.Struct || !reflect.PtrTo(actual).Implements(t) {
			return c.fail("Type %q in xsi:type is not a %s", given, baseName(t, base))
		}
		return c.typed(start, actual)
	case t.Kind() == reflect.Struct && t != timeType:
		if given != "" && localType(given) != t.Name() {
			return c.fail("Type %q in xsi:type is not a %s (which has no subtypes)", given, t.Name())
		}
		return c.typed(start, t)
	}
	return c.simple(t)
}

var kindSample = map[reflect.Kind]interface{}{
	reflect.String: "", reflect.Bool: false, reflect.Int8: int8(0), reflect.Int16: int16(0),
	reflect.Int32: int32(0), reflect.Int64: int64(0), reflect.Float32: float32(0), reflect.Float64: float64(0),
}

func (c *checker) typed(start stdxml.StartElement, t reflect.Type) error {
	if len(c.path) > 0 && xsiType(start) != "" {
		c.path[len(c.path)-1] += "(" + t.Name() + ")"
	}
	switch {
	case t == morefType:
		return c.moref(start)
	case t.Kind() == reflect.Struct && t != timeType:
		return c.dataObject(start, t, false, false)
	}
	return c.simple(t)
}

func baseName(iface, base reflect.Type) string {
	if base != nil {
		return base.Name()
	}
	return strings.TrimPrefix(iface.Name(), "Base")
}

// exampleSubtype names one concrete type of a polymorphic declared type, for the hint.
func exampleSubtype(iface reflect.Type) string {
	examples := map[string]string{
		"BaseVirtualDevice":            "VirtualDisk",
		"BaseVirtualDeviceBackingInfo": "VirtualDiskFlatVer2BackingInfo",
		"BaseVirtualController":        "ParaVirtualSCSIController",
		"BaseVirtualEthernetCard":      "VirtualVmxnet3",
		"BaseVirtualDiskSpec":          "FileBackedVirtualDiskSpec",
	}
	if e, ok := examples[iface.Name()]; ok {
		return e
	}
	return "<subtype>"
}

// moref checks a ManagedObjectReference: a type attribute and the id as text.
func (c *checker) moref(start stdxml.StartElement) error {
	hasType := false
	for _, a := range start.Attr {
		if a.Name.Local == "type" && a.Name.Space != xsiNS && a.Value != "" {
			hasType = true
		}
	}
	if !hasType {
		return c.fail(`Missing attribute "type" of a ManagedObjectReference (e.g. <%s type="Datastore">)`, start.Name.Local)
	}
	return c.simple(reflect.TypeOf(""))
}

// simple checks a value without child elements and its text against the Go kind.
func (c *checker) simple(t reflect.Type) error {
	var text strings.Builder
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return err
		}
		switch tk := tok.(type) {
		case stdxml.StartElement:
			return c.fail("Unexpected element tag %q seen in a value of simple type %s", tk.Name.Local, simpleName(t))
		case stdxml.CharData:
			text.Write(tk)
		case stdxml.EndElement:
			return c.parses(strings.TrimSpace(text.String()), t)
		}
	}
}

func simpleName(t reflect.Type) string {
	if t.Name() != "" {
		return t.Name()
	}
	return t.String()
}

func (c *checker) parses(s string, t reflect.Type) error {
	var err error
	switch t.Kind() {
	case reflect.Bool:
		if s != "true" && s != "false" && s != "1" && s != "0" {
			err = errors.New("not a boolean")
		}
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		_, err = strconv.ParseInt(s, 10, t.Bits())
	case reflect.Float32, reflect.Float64:
		_, err = strconv.ParseFloat(s, t.Bits())
	}
	if err != nil {
		return c.fail("Invalid value %q for type %s", s, simpleName(t))
	}
	return nil
}

// dataObject checks the children of a data object (or, for the method element, its
// parameters) against the type's sequence. untyped: the declared type is polymorphic
// and the value did not name a subtype, so an unknown child hints at a missing xsi:type.
func (c *checker) dataObject(start stdxml.StartElement, t reflect.Type, isMethod, untyped bool) error {
	fields := fieldsOf(t)
	seen := make([]int, len(fields))
	pos := 0 // index of the last matched field; children may only move forward
	what := "property"
	if isMethod {
		what = "parameter"
	}
	// Checked at the end tag, not when a child skips ahead, so that a required property
	// that comes later is reported as out of order rather than missing.
	missing := func() error {
		for k := range fields {
			if fields[k].required && seen[k] == 0 {
				if isMethod {
					return c.fail("Required parameter %s is missing", fields[k].name)
				}
				return c.fail("Required property %s is missing from data object of type %s", fields[k].name, t.Name())
			}
		}
		return nil
	}
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return err
		}
		switch tk := tok.(type) {
		case stdxml.CharData:
			if len(bytes.TrimSpace(tk)) > 0 {
				return c.fail("Unexpected text %q in data object of type %s", truncate(string(bytes.TrimSpace(tk)), 40), t.Name())
			}
		case stdxml.EndElement:
			return missing()
		case stdxml.StartElement:
			name := tk.Name.Local
			j := indexOf(fields, name, pos)
			if j < 0 || (j == pos && seen[j] > 0 && !fields[j].many) {
				c.path = append(c.path, name) // the path of a fault names the offending element
			}
			switch {
			case j < 0 && indexOf(fields, name, 0) >= 0:
				return c.fail("Unexpected element tag %q seen in data object of type %s: out of WSDL sequence order, %q must come before %q",
					name, t.Name(), name, fields[pos].name)
			case j < 0:
				hint := ""
				if untyped {
					hint = " (the value has no xsi:type, so it was read as its declared type " + t.Name() + ")"
				}
				return c.fail("Unexpected element tag %q seen: %s has no %s %q%s", name, t.Name(), what, name, hint)
			case j == pos && seen[j] > 0 && !fields[j].many:
				return c.fail("Unexpected element tag %q seen: %s %q of %s given twice", name, what, name, t.Name())
			}
			pos = j
			seg := name
			if fields[j].many {
				seg = fmt.Sprintf("%s[%d]", name, seen[j])
			}
			seen[j]++
			c.path = append(c.path, seg)
			if err := c.value(tk, fields[j].typ); err != nil {
				return err
			}
			c.path = c.path[:len(c.path)-1]
		}
	}
}

func indexOf(fields []field, name string, from int) int {
	for k := from; k < len(fields); k++ {
		if fields[k].name == name {
			return k
		}
	}
	return -1
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
